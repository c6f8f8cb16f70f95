//! The shard-count tuner's command line (`examples/tune.rs`): every refusal names the flag and
//! the bad value and exits with status 2 after the usage line; `--help` succeeds. The parsing and
//! the recommendation rule are tested in-process (the example's own files, included with
//! `#[path]`); a few cases run the real example binary for its exit status and messages.

#[path = "../examples/tune/args.rs"]
mod args;
#[path = "../examples/tune/recommend.rs"]
mod recommend;

use args::{Args, Command, USAGE, USAGE_EXIT_CODE, UsageError, Workload};
use recommend::{Point, recommend};
use std::path::{Path, PathBuf};
use std::process::{Child, Output, Stdio};
use std::time::{Duration, Instant};

fn parse(args: &[&str]) -> Result<Command, UsageError> {
    args::parse(args.iter().copied(), 4)
}

fn run_args(args: &[&str]) -> Args {
    match parse(args) {
        Ok(Command::Run(args)) => args,
        other => panic!("{args:?}: expected a run, got {other:?}"),
    }
}

fn refusal(args: &[&str]) -> String {
    match parse(args) {
        Err(UsageError(message)) => message,
        other => panic!("{args:?}: expected a refusal, got {other:?}"),
    }
}

#[test]
fn no_arguments_is_the_default_workload_on_every_core() {
    let args = run_args(&[]);
    assert_eq!(
        args,
        Args {
            threads: 4,
            capacity: 100_000,
            workload: Workload::Synthetic {
                keys: 1_000_000,
                zipf: 1.0,
                read_ratio: 0.9,
                seconds: 4.0
            },
            callback_us: args::DEFAULT_CALLBACK_US,
            shards: None,
            max_pending: None,
            plot: None,
        }
    );
    // 1, 2, 4, … 16 × cores; on two cores that is six configurations (well under a minute).
    assert_eq!(args.shard_counts(4, 16), [1, 2, 4, 8, 16, 32, 64]);
    let two_cores = match args::parse(std::iter::empty::<&str>(), 2) {
        Ok(Command::Run(args)) => args,
        other => panic!("{other:?}"),
    };
    assert_eq!(two_cores.threads, 2);
    assert_eq!(two_cores.shard_counts(2, 8), [1, 2, 4, 8, 16, 32]);
}

#[test]
fn every_flag_is_read_in_both_spellings() {
    let args = run_args(&[
        "--threads",
        "8",
        "--capacity=10_000",
        "--keys",
        "50000",
        "--zipf=0.8",
        "--read-ratio",
        "1",
        "--callback-us=200",
        "--seconds",
        "0.5",
        "--shards",
        "1,4,16",
        "--max-pending=1, 8,8192",
        "--plot",
        "out.svg",
    ]);
    assert_eq!(args.threads, 8);
    assert_eq!(args.capacity, 10_000);
    assert_eq!(
        args.workload,
        Workload::Synthetic { keys: 50_000, zipf: 0.8, read_ratio: 1.0, seconds: 0.5 }
    );
    assert_eq!(args.callback_us, 200.0);
    assert_eq!(args.shards.as_deref(), Some(&[1, 4, 16][..]));
    assert_eq!(args.max_pending.as_deref(), Some(&[1, 8, 8192][..]));
    assert_eq!(args.plot.as_deref(), Some(Path::new("out.svg")));
    assert_eq!(args.shard_counts(2, 8), [1, 4, 16]);
}

#[test]
fn the_sweep_stops_at_the_capacity_and_caps_are_compared_at_the_default_shard_count() {
    assert_eq!(run_args(&["--capacity", "10"]).shard_counts(2, 1), [1, 2, 4, 8]);
    assert_eq!(run_args(&["--threads", "8"]).shard_counts(2, 8).last(), Some(&128));
    assert_eq!(
        run_args(&["--threads", "8", "--capacity", "100"]).shard_counts(2, 1).last(),
        Some(&64)
    );
    assert_eq!(run_args(&["--max-pending", "1,8,8192"]).shard_counts(2, 8), [8]);
    // More threads than cores: up to 16 × the threads.
    assert_eq!(run_args(&["--threads", "2"]).shard_counts(2, 8), [1, 2, 4, 8, 16, 32]);
    assert_eq!(
        run_args(&["--threads", "2", "--max-pending", "4"]).shard_counts(2, 8),
        [1, 2, 4, 8, 16, 32]
    );
}

#[test]
fn a_trace_replaces_the_synthetic_keys() {
    let args = run_args(&["--trace", "tests/data/traces/loop.trace.gz", "--capacity", "1000"]);
    assert_eq!(args.workload, Workload::Trace(PathBuf::from("tests/data/traces/loop.trace.gz")));
    for flag in ["--keys", "--zipf", "--read-ratio", "--seconds"] {
        let message = refusal(&["--trace", "t.lis", flag, "1"]);
        assert!(message.starts_with(flag) && message.contains("--trace"), "{message}");
    }
}

#[test]
fn help_wins_wherever_it_is() {
    assert_eq!(parse(&["--help"]), Ok(Command::Help));
    assert_eq!(parse(&["-h"]), Ok(Command::Help));
    assert_eq!(parse(&["--threads", "2", "--help"]), Ok(Command::Help));
}

#[test]
fn bad_numbers_are_refused_naming_the_flag_and_the_value() {
    let cases: &[(&[&str], &str, &str)] = &[
        (&["--threads", "abc"], "--threads", "abc"),
        (&["--threads", "0"], "--threads", "0"),
        (&["--threads", "-2"], "--threads", "-2"),
        (&["--capacity", "1e5"], "--capacity", "1e5"),
        (&["--capacity=12.5"], "--capacity", "12.5"),
        (&["--keys", "lots"], "--keys", "lots"),
        (&["--zipf", "-1"], "--zipf", "-1"),
        (&["--zipf", "NaN"], "--zipf", "NaN"),
        (&["--read-ratio", "1.5"], "--read-ratio", "1.5"),
        (&["--read-ratio", "90%"], "--read-ratio", "90%"),
        (&["--callback-us", "-3"], "--callback-us", "-3"),
        (&["--seconds", "0"], "--seconds", "0"),
        (&["--seconds", "inf"], "--seconds", "inf"),
        (&["--shards", "1,,4"], "--shards", "1,,4"),
        (&["--shards", "3"], "--shards", "3"),
        (&["--max-pending", "0"], "--max-pending", "0"),
        (&["--max-pending", "1;8"], "--max-pending", "1;8"),
    ];
    for (args, flag, value) in cases {
        let message = refusal(args);
        assert!(message.starts_with(flag), "{args:?}: {message}");
        assert!(message.contains(value), "{args:?}: {message}");
        assert!(!message.contains('\n'), "one line: {message}");
    }
    let message = refusal(&["--shards", "256", "--capacity", "100"]);
    assert!(message.contains("256") && message.contains("100"), "{message}");
}

#[test]
fn unknown_flags_missing_values_and_stray_words_are_refused() {
    assert!(refusal(&["--thread", "2"]).contains("unknown flag `--thread`"));
    assert!(refusal(&["--threads=2", "--bogus=1"]).contains("`--bogus`"));
    assert_eq!(refusal(&["--threads"]), "--threads needs a value");
    assert_eq!(refusal(&["--capacity="]), "--capacity needs a value");
    assert!(refusal(&["--trace"]).starts_with("--trace needs a value"));
    assert!(refusal(&["8"]).contains("unexpected argument `8`"));
}

#[test]
fn the_recommendation_is_the_smallest_count_that_is_fast_enough_and_keeps_its_hit_ratio() {
    let point = |shards, throughput, hit_ratio| Point { shards, throughput, hit_ratio };
    let points = [
        point(1, 50.0, 0.800),
        point(2, 90.0, 0.800),
        point(4, 96.0, 0.799),
        point(8, 100.0, 0.798),
        point(16, 99.0, 0.790),
    ];
    let rec = recommend(&points).unwrap();
    assert_eq!((rec.chosen.shards, rec.fastest.shards, rec.within_tolerance), (4, 8, true));
    assert!((rec.loss - 0.1).abs() < 1e-9, "{rec:?}");

    // 4 and 8 are fast enough but lose 0.5 points or more; 2 keeps its hit ratio but is not
    // fast enough, yet it is the fastest that keeps it.
    let points = [
        point(1, 50.0, 0.800),
        point(2, 90.0, 0.7999),
        point(4, 96.0, 0.794),
        point(8, 100.0, 0.790),
    ];
    let rec = recommend(&points).unwrap();
    assert_eq!((rec.chosen.shards, rec.within_tolerance), (2, false));

    // Within 5 % of the best, or not.
    assert_eq!(recommend(&[point(1, 95.5, 0.5), point(2, 100.0, 0.5)]).unwrap().chosen.shards, 1);
    assert_eq!(recommend(&[point(1, 94.5, 0.5), point(2, 100.0, 0.5)]).unwrap().chosen.shards, 2);
    assert_eq!(recommend(&[]), None);
}

/// How long a fallback `cargo build --example tune` may take before the test gives up.
const BUILD_WITHIN: Duration = Duration::from_secs(300);

/// The tune example's binary: `cargo test` builds the examples into `<target>/<profile>/examples/`
/// next to `deps/`, where this test runs. If it is not there (`cargo test --test tune_cli`
/// builds only this test), build it.
fn tune_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("the test's own path");
    let profile_dir = exe.parent().and_then(Path::parent).expect("<target>/<profile>/deps/");
    let binary = profile_dir.join("examples").join(format!("tune{}", std::env::consts::EXE_SUFFIX));
    if binary.exists() {
        return binary;
    }
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut build = std::process::Command::new(cargo);
    build.args(["build", "--example", "tune"]).current_dir(env!("CARGO_MANIFEST_DIR"));
    if profile_dir.file_name().is_some_and(|name| name == "release") {
        build.arg("--release");
    }
    let target_dir = profile_dir.parent().expect("<target>/");
    let child = build.env("CARGO_TARGET_DIR", target_dir).stdin(Stdio::null()).spawn();
    let status = child.map_err(|e| e.to_string()).and_then(|child| wait(child, BUILD_WITHIN));
    assert!(
        status.is_ok() && binary.exists(),
        "{} is missing and building it failed ({status:?}): run `cargo test --workspace` (which \
         builds the examples) or `cargo build --example tune` first",
        binary.display()
    );
    binary
}

/// Waits for `child` up to `limit`, killing it past that.
fn wait(mut child: Child, limit: Duration) -> Result<Output, String> {
    let start = Instant::now();
    while child.try_wait().map_err(|e| e.to_string())?.is_none() {
        if start.elapsed() > limit {
            let _ = child.kill();
            return Err(format!("still running after {limit:?}"));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let output = child.wait_with_output().map_err(|e| e.to_string())?;
    if output.status.success() { Ok(output) } else { Err(format!("{}", output.status)) }
}

/// Runs the tuner with `args`; returns its exit code, stdout and stderr.
fn tune(args: &[&str]) -> (Option<i32>, String, String) {
    let output = std::process::Command::new(tune_binary())
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdin(Stdio::null())
        .output()
        .expect("run the tune example");
    let text = |bytes: Vec<u8>| String::from_utf8(bytes).expect("UTF-8 output");
    (output.status.code(), text(output.stdout), text(output.stderr))
}

#[test]
fn the_binary_exits_with_2_after_the_message_and_the_usage_line() {
    let (code, stdout, stderr) = tune(&["--threads", "abc"]);
    assert_eq!(code, Some(i32::from(USAGE_EXIT_CODE)), "{stderr}");
    assert_eq!(stdout, "");
    assert_eq!(
        stderr,
        format!("error: --threads: expected a whole number >= 1, got `abc`\n{USAGE}\n")
    );

    let (code, _, stderr) = tune(&["--max-pending"]);
    assert_eq!(code, Some(2));
    assert!(stderr.starts_with("error: --max-pending needs a value\nusage: "), "{stderr}");

    let (code, stdout, _) = tune(&["--help"]);
    assert_eq!(code, Some(0));
    assert_eq!(stdout, format!("{}\n\n{USAGE}\n", args::HELP));
}

#[test]
fn an_unreadable_trace_or_unwritable_plot_exits_with_2_naming_the_file() {
    let missing = "tests/data/traces/no-such-trace.lis.zst";
    let (code, stdout, stderr) = tune(&["--trace", missing]);
    assert_eq!(code, Some(2), "{stderr}");
    let first = stderr.lines().next().unwrap_or_default();
    assert!(
        first.starts_with("error: --trace: cannot open") && first.contains(missing),
        "{stderr}"
    );
    assert_eq!(stderr.lines().nth(1), Some(USAGE));
    assert!(!stdout.contains("Mops/s"), "nothing was measured: {stdout}");

    // A file that is there but is no trace.
    let (code, _, stderr) = tune(&["--trace", "Cargo.toml"]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("Cargo.toml: unknown trace format"), "{stderr}");

    // A plot that cannot be written is refused before anything is measured.
    let (code, stdout, stderr) = tune(&["--plot", "Cargo.toml/plot.svg"]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.starts_with("error: --plot: cannot write Cargo.toml/plot.svg"), "{stderr}");
    assert_eq!(stdout, "");
}
