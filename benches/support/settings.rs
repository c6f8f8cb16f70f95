//! What every bench binary shares besides the contenders: run-length settings read from the
//! environment, the median its summaries use, and the facts about the machine a report states.
//!
//! | variable                         | meaning                                                  |
//! |----------------------------------|----------------------------------------------------------|
//! | `SHARDLRU_BENCH_QUICK=1`         | a smoke run: short runs, few repeats (about a minute)    |
//! | `SHARDLRU_BENCH_REPEATS`         | interleaved repeats per cell: the pairs behind a ratio   |
//! | `SHARDLRU_BENCH_MS`              | `compare`: timed milliseconds per run                    |
//! | `SHARDLRU_BENCH_OPS`             | `compare`: a fixed count of operations per thread instead |
//! | `SHARDLRU_BENCH_CLOCK=cpu`       | `compare`: rate each thread by its own time on a CPU     |
//! |                                  | (Linux), for A/B tests on a machine others are using     |
//! | `SHARDLRU_BENCH_THREADS`         | `compare`: thread counts, e.g. `1,2,4` or `1,2,4,8,16`   |
//! | `SHARDLRU_BENCH_CONTENDERS`      | contender names to run (comma-separated), default all   |
//! | `SHARDLRU_BENCH_WORKLOADS`       | `compare`: workloads to run, e.g. `W1,W4`, default all   |
//! | `SHARDLRU_BENCH_STREAM`          | keys per precomputed per-thread stream                   |
//! | `SHARDLRU_BENCH_OUT`             | `compare`: folder for the report (`-`: write none)       |
//! | `SHARDLRU_BENCH_FROM`            | `compare`: write the report from a saved run's output    |
//! | `SHARDLRU_BENCH_ISOLATION_MS`    | `isolation`: milliseconds per run                        |
//! | `SHARDLRU_BENCH_MEMORY_CAPACITY` | `memory`: the capacity measured                          |
//! | `SHARDLRU_REPORT_DIR`            | where `memory`, `isolation` and `cfg_cost.sh` leave their |
//! |                                  | sections, which `compare` folds into its report          |
//! | `SHARDLRU_REPORT_COMMAND`        | the command the report says produced it                  |
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::Command;

/// Whether this is a smoke run (`SHARDLRU_BENCH_QUICK=1`).
pub fn quick() -> bool {
    std::env::var("SHARDLRU_BENCH_QUICK").is_ok_and(|v| !v.is_empty() && v != "0")
}

/// `name` from the environment as a number, or `full` (`quick` in a smoke run).
pub fn number(name: &str, full: u64, quick: u64) -> u64 {
    match std::env::var(name) {
        Ok(text) => text.trim().parse().unwrap_or_else(|_| panic!("{name}={text}: not a number")),
        Err(_) if self::quick() => quick,
        Err(_) => full,
    }
}

/// `name` from the environment as a comma-separated list, if set.
pub fn list(name: &str) -> Option<Vec<String>> {
    let text = std::env::var(name).ok()?;
    Some(text.split(',').map(|item| item.trim().to_owned()).filter(|s| !s.is_empty()).collect())
}

/// The thread counts to run: `SHARDLRU_BENCH_THREADS`, or 1, 2 and 4.
pub fn threads() -> Vec<usize> {
    list("SHARDLRU_BENCH_THREADS").map_or_else(
        || vec![1, 2, 4],
        |items| items.iter().map(|t| t.parse().expect("SHARDLRU_BENCH_THREADS: numbers")).collect(),
    )
}

/// Where `memory` and `isolation` leave their report sections (`SHARDLRU_REPORT_DIR`).
pub fn report_dir() -> Option<PathBuf> {
    std::env::var_os("SHARDLRU_REPORT_DIR").map(PathBuf::from)
}

/// Writes a report section into [`report_dir`], if one is set.
pub fn leave_section(file: &str, markdown: &str) {
    if let Some(dir) = report_dir() {
        std::fs::create_dir_all(&dir).expect("create SHARDLRU_REPORT_DIR");
        let path = dir.join(file);
        std::fs::write(&path, markdown).expect("write a report section");
        eprintln!("wrote {}", path.display());
    }
}

/// The median of `values` (the mean of the middle two for an even count); NaN when empty.
pub fn median(values: impl IntoIterator<Item = f64>) -> f64 {
    let mut values: Vec<f64> = values.into_iter().collect();
    if values.is_empty() {
        return f64::NAN;
    }
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    if values.len() % 2 == 1 { values[mid] } else { (values[mid - 1] + values[mid]) / 2.0 }
}

/// A command's first line of output, or `"unknown"`.
fn first_line(program: &str, args: &[&str]) -> String {
    Command::new(program)
        .args(args)
        .output()
        .ok()
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .and_then(|text| text.lines().next().map(str::to_owned))
        .unwrap_or_else(|| "unknown".to_owned())
}

/// The CPU model (from `lscpu`), the cores this process may use, and the kernel.
pub fn machine() -> String {
    let model = Command::new("lscpu")
        .output()
        .ok()
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .and_then(|text| {
            text.lines()
                .find_map(|line| line.strip_prefix("Model name:").map(|m| m.trim().to_owned()))
        })
        .unwrap_or_else(|| "unknown CPU".to_owned());
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    format!("{model}, {cores} cores available, {}", first_line("uname", &["-sr"]))
}

/// The date and time now, UTC.
pub fn date() -> String {
    first_line("date", &["-u", "+%Y-%m-%d %H:%M UTC"])
}

/// The compiler that built this binary's sources (the `rustc` on the path).
pub fn rustc() -> String {
    first_line("rustc", &["-V"])
}
