//! The tuner binary as a user runs it: every refusal (a bad value, an unknown flag, a trace that
//! cannot be read, a plot that cannot be written) prints `error: …` naming the flag and exits
//! with status 2 before anything is measured; `--help` lists every flag and exits with 0; and a
//! short trace replay prints its table and recommendation and writes its plot. The parsing
//! itself is tested in-process, in `src/cli.rs`.

use shardlru_workloads::trace;
use std::path::PathBuf;
use std::process::{Command, Stdio};

/// Every flag the tuner takes.
const FLAGS: [&str; 13] = [
    "--threads",
    "--capacity",
    "--keys",
    "--zipf",
    "--read-ratio",
    "--callback-us",
    "--seconds",
    "--trace",
    "--shards",
    "--max-pending",
    "--max-queued",
    "--background",
    "--plot",
];

/// Runs the tuner with `args` from its crate's folder; returns its exit code, stdout and stderr.
fn tune<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> (Option<i32>, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_shardlru-tune"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdin(Stdio::null())
        .output()
        .expect("run the tuner");
    let text = |bytes: Vec<u8>| String::from_utf8(bytes).expect("UTF-8 output");
    (output.status.code(), text(output.stdout), text(output.stderr))
}

/// Asserts that `args` are refused: status 2, nothing on stdout, and a first line of stderr
/// that starts with `first_line`.
fn assert_refused(args: &[&str], first_line: &str) -> String {
    let (code, stdout, stderr) = tune(args);
    assert_eq!(code, Some(2), "{args:?}: {stderr}");
    assert_eq!(stdout, "", "{args:?}: nothing is measured");
    let first = stderr.lines().next().unwrap_or_default();
    assert!(first.starts_with(first_line), "{args:?}: {stderr}");
    stderr
}

/// A folder of this test's own under Cargo's scratch space for integration tests.
fn scratch(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("shardlru-tune-cli").join(name);
    std::fs::create_dir_all(&dir).expect("create the scratch folder");
    dir
}

#[test]
fn a_bad_value_exits_with_2_naming_the_flag_and_the_value() {
    assert_refused(&["--threads", "abc"], "error: invalid value 'abc' for '--threads <N>'");
    assert_refused(&["--seconds", "0"], "error: invalid value '0' for '--seconds <S>'");
    assert_refused(&["--shards", "3"], "error: invalid value '3' for '--shards <N,N,..>'");
    // The check across two flags, after the parse, refuses the same way.
    let stderr = assert_refused(
        &["--shards", "256", "--capacity", "100"],
        "error: --shards: 256 is more than the capacity 100",
    );
    assert!(stderr.contains("Usage: shardlru-tune"), "{stderr}");
}

#[test]
fn a_missing_value_an_unknown_flag_or_a_stray_word_exits_with_2() {
    assert_refused(&["--max-pending"], "error: a value is required for '--max-pending <N,N,..>'");
    let stderr = assert_refused(&["--thread", "2"], "error: unexpected argument '--thread'");
    assert!(stderr.contains("Usage: shardlru-tune"), "{stderr}");
    assert_refused(&["8"], "error: unexpected argument '8'");
    assert_refused(
        &["--trace", "t.lis", "--zipf", "1"],
        "error: the argument '--trace <FILE>' cannot be used with '--zipf <S>'",
    );
}

#[test]
fn help_lists_every_flag_and_exits_with_0() {
    for help in ["--help", "-h"] {
        let (code, stdout, stderr) = tune(&[help]);
        assert_eq!(code, Some(0), "{help}: {stderr}");
        assert_eq!(stderr, "");
        assert!(stdout.contains("Usage: shardlru-tune [OPTIONS]"), "{stdout}");
        for flag in FLAGS {
            assert!(stdout.contains(&format!("{flag} <")), "{help} lacks {flag}: {stdout}");
        }
        for default in ["[default: 100000]", "[default: 1000000]", "[default: 0.9]"] {
            assert!(stdout.contains(default), "{help} lacks {default}: {stdout}");
        }
    }
}

#[test]
fn an_unreadable_trace_or_unwritable_plot_exits_with_2_naming_the_file() {
    let missing = trace::dir().join("no-such-trace.lis.zst");
    let missing = missing.to_str().expect("a UTF-8 path");
    let stderr = assert_refused(&["--trace", missing], "error: --trace: cannot open");
    assert!(stderr.lines().next().unwrap_or_default().contains(missing), "{stderr}");
    assert!(stderr.contains("Usage: shardlru-tune"), "{stderr}");

    // A file that is there but is no trace.
    assert_refused(&["--trace", "Cargo.toml"], "error: --trace: Cargo.toml: unknown trace format");

    // A trace with no requests in it.
    let empty = scratch("empty-trace").join("empty.trace");
    std::fs::write(&empty, "").expect("write the empty trace");
    let empty = empty.to_str().expect("a UTF-8 path");
    assert_refused(&["--trace", empty], &format!("error: --trace: {empty} holds no requests"));

    // A plot that cannot be written is refused before anything is measured.
    assert_refused(
        &["--plot", "Cargo.toml/plot.svg"],
        "error: --plot: cannot write Cargo.toml/plot.svg",
    );
}

#[test]
fn a_short_trace_replay_prints_the_table_and_the_recommendation_and_draws_the_plot() {
    let plot = scratch("replay").join("shard-count.svg");
    let _ = std::fs::remove_file(&plot);
    let trace = trace::dir().join("multi2.trace.gz");
    let (trace, plot_arg) = (trace.to_str().unwrap(), plot.to_str().unwrap());
    let (code, stdout, stderr) = tune(&[
        "--trace",
        trace,
        "--capacity",
        "600",
        "--threads",
        "1",
        "--shards",
        "1,2",
        "--plot",
        plot_arg,
    ]);
    assert_eq!(code, Some(0), "{stderr}\n{stdout}");

    assert!(stdout.contains("workload: trace multi2.trace.gz, 26,311 requests"), "{stdout}");
    let header = stdout.lines().find(|l| l.starts_with("shards")).expect("the table's header");
    for column in ["Mops/s", "get p99", "contention", "hot shard", "hit ratio", "loss pts"] {
        assert!(header.contains(column), "{header}");
    }
    // One shard and one thread: a strict LRU, at the exact hit ratio of the traces' README
    // (9,769 hits of 26,311 at capacity 600).
    let one_shard = stdout.lines().find(|l| l.trim_start().starts_with("1 ")).expect("1 shard");
    assert!(one_shard.contains("37.13 %"), "{one_shard}");
    assert!(stdout.contains("\nrecommendation: "), "{stdout}");
    assert!(
        stdout.contains("let cache = shardlru::Cache::<K, V>::builder().capacity(600).shards("),
        "{stdout}"
    );
    assert!(stdout.contains(&format!("plot written to {}", plot.display())), "{stdout}");
    let svg = std::fs::read_to_string(&plot).expect("the plot");
    assert!(svg.starts_with("<svg") && svg.contains("shards (log scale)"), "{svg}");
}
