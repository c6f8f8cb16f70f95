//! The tuner's command line, parsed by hand (no dependency) into [`Args`]. Shared through
//! `#[path]` by `examples/tune.rs` and `tests/tune_cli.rs`, so that every refusal can be tested
//! in-process; the example prints the [`UsageError`] and the usage line and exits with
//! [`USAGE_EXIT_CODE`].

use std::fmt;
use std::path::PathBuf;

/// The exit status for a command line the tuner refuses (as for most Unix tools).
pub const USAGE_EXIT_CODE: u8 = 2;

/// The one-line usage, printed after every refusal.
pub const USAGE: &str = "usage: cargo run --release --example tune -- [--threads N] \
    [--capacity N] [--keys N] [--zipf S] [--read-ratio R] [--callback-us US] [--seconds S] \
    [--shards N,N,..] [--max-pending N,N,..] [--trace FILE] [--plot FILE.svg] [--help]";

/// Default cache capacity (entries).
pub const DEFAULT_CAPACITY: usize = 100_000;
/// Default key space of the synthetic workload.
pub const DEFAULT_KEYS: u64 = 1_000_000;
/// Default Zipf exponent of the synthetic workload.
pub const DEFAULT_ZIPF: f64 = 1.0;
/// Default fraction of operations that are (read-through) gets; the rest are inserts.
pub const DEFAULT_READ_RATIO: f64 = 0.9;
/// Default work done by the eviction callback per entry, in microseconds: "a little work".
pub const DEFAULT_CALLBACK_US: f64 = 0.1;
/// Default measured time per configuration, in seconds (after a warm-up).
pub const DEFAULT_SECONDS: f64 = 4.0;
/// The default shard sweep goes up to this many shards per core (or per thread, if more).
pub const SWEEP_SHARDS_PER_CORE: usize = 16;

/// `--help`.
pub const HELP: &str = "\
shardlru's shard-count tuner: runs a workload against the cache for several shard counts and
recommends the smallest one within 5 % of the best throughput whose hit ratio stays within
0.5 points of one shard's.

Workload (read-through: a get, and on a miss an insert of the key):
  --threads N          worker threads                       [default: available cores]
  --capacity N         cache capacity in entries            [default: 100000]
  --keys N             key space of the synthetic workload  [default: 1000000]
  --zipf S             Zipf exponent of the keys (0: uniform) [default: 1.0]
  --read-ratio R       fraction of operations that are gets, the rest inserts [default: 0.9]
  --callback-us US     work per evicted entry in the eviction callback, in microseconds;
                       below 50 it spins (CPU work), from 50 up it sleeps (blocking I/O)
                       [default: 0.1]
  --seconds S          measured time per configuration, after 1 s of warm-up [default: 4]
  --trace FILE         replay a trace instead, once, the threads sharing it in its order:
                       *.lis (ARC) or *.trace (LIRS), optionally .gz or .zst, as the traces
                       in tests/data/traces/ (not with --keys, --zipf, --read-ratio, --seconds)

What to compare:
  --shards N,N,..      shard counts (powers of two) [default: 1, 2, 4, .. 16 x the cores or
                       the threads, if more, at most the capacity; with several --max-pending
                       values, the library's default shard count]
  --max-pending N,N,.. max_pending_callbacks values [default: the library's default]

Output:
  --plot FILE.svg      also draw throughput and hit ratio against the shard count
  --help               this text";

/// What the command line asks for.
#[derive(Clone, Debug, PartialEq)]
pub enum Command {
    /// Run the tuner.
    Run(Args),
    /// Print [`HELP`] and exit successfully.
    Help,
}

/// A parsed and checked command line.
#[derive(Clone, Debug, PartialEq)]
pub struct Args {
    /// Worker threads.
    pub threads: usize,
    /// Cache capacity in entries.
    pub capacity: usize,
    /// Where the keys come from.
    pub workload: Workload,
    /// Microseconds of work per evicted entry in the callback.
    pub callback_us: f64,
    /// `--shards`, if given: the shard counts to measure.
    pub shards: Option<Vec<usize>>,
    /// `--max-pending`, if given: the pending-callback caps to measure.
    pub max_pending: Option<Vec<usize>>,
    /// `--plot`, if given: where to write the SVG.
    pub plot: Option<PathBuf>,
}

/// Where the keys come from.
#[derive(Clone, Debug, PartialEq)]
pub enum Workload {
    /// Seeded Zipf keys, timed for a fixed duration per configuration.
    Synthetic {
        /// Key space.
        keys: u64,
        /// Zipf exponent (0: uniform).
        zipf: f64,
        /// Fraction of operations that are gets.
        read_ratio: f64,
        /// Measured seconds per configuration.
        seconds: f64,
    },
    /// A trace file, replayed once per configuration.
    Trace(PathBuf),
}

/// A refused command line: one line naming the flag and the bad value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UsageError(pub String);

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

impl Args {
    /// The shard counts to measure: `--shards`, or by default every power of two from 1 up to
    /// [`SWEEP_SHARDS_PER_CORE`] × the cores (or the threads, if more), but no more than the
    /// capacity. `library_default` is the builder's default shard count for this capacity,
    /// measured alone when several `--max-pending` values are compared.
    pub fn shard_counts(&self, cores: usize, library_default: usize) -> Vec<usize> {
        if let Some(shards) = &self.shards {
            return shards.clone();
        }
        if self.max_pending.as_ref().is_some_and(|caps| caps.len() > 1) {
            return vec![library_default];
        }
        let top = (SWEEP_SHARDS_PER_CORE * cores.max(self.threads)).min(self.capacity);
        std::iter::successors(Some(1usize), |&n| n.checked_mul(2))
            .take_while(|&n| n <= top)
            .collect()
    }
}

/// Parses the arguments after the program name. `cores` is the default thread count.
pub fn parse<I>(args: I, cores: usize) -> Result<Command, UsageError>
where
    I: IntoIterator,
    I::Item: Into<String>,
{
    let mut threads = cores.max(1);
    let mut capacity = DEFAULT_CAPACITY;
    let mut keys = None;
    let mut zipf = None;
    let mut read_ratio = None;
    let mut callback_us = DEFAULT_CALLBACK_US;
    let mut seconds = None;
    let mut shards = None;
    let mut max_pending = None;
    let mut trace = None;
    let mut plot = None;

    let mut args = args.into_iter().map(Into::into);
    while let Some(arg) = args.next() {
        if arg == "--help" || arg == "-h" {
            return Ok(Command::Help);
        }
        if !arg.starts_with("--") {
            return Err(UsageError(format!(
                "unexpected argument `{arg}`: every option is a --flag"
            )));
        }
        // `--flag value` or `--flag=value`.
        let (flag, inline) = match arg.split_once('=') {
            Some((flag, value)) => (flag.to_owned(), Some(value.to_owned())),
            None => (arg, None),
        };
        let known = [
            "--threads",
            "--capacity",
            "--keys",
            "--zipf",
            "--read-ratio",
            "--callback-us",
            "--seconds",
            "--shards",
            "--max-pending",
            "--trace",
            "--plot",
        ];
        if !known.contains(&flag.as_str()) {
            return Err(UsageError(format!("unknown flag `{flag}` (--help lists them)")));
        }
        let value = match inline.or_else(|| args.next()) {
            Some(value) if !value.is_empty() => value,
            _ => return Err(UsageError(format!("{flag} needs a value"))),
        };
        let flag = flag.as_str();
        match flag {
            "--threads" => threads = positive(flag, &value)?,
            "--capacity" => capacity = positive(flag, &value)?,
            "--keys" => keys = Some(positive(flag, &value)? as u64),
            "--zipf" => zipf = Some(number(flag, &value, 0.0, f64::MAX, "a number >= 0")?),
            "--read-ratio" => {
                read_ratio = Some(number(flag, &value, 0.0, 1.0, "a fraction from 0 to 1")?);
            }
            "--callback-us" => {
                callback_us = number(flag, &value, 0.0, 1e7, "microseconds from 0 to 10000000")?;
            }
            "--seconds" => {
                let s = number(flag, &value, 0.0, 3600.0, "seconds, more than 0, at most 3600")?;
                if s == 0.0 {
                    return Err(bad(flag, &value, "seconds, more than 0, at most 3600"));
                }
                seconds = Some(s);
            }
            "--shards" => {
                let list = list(flag, &value)?;
                if let Some(&n) = list.iter().find(|n| !n.is_power_of_two()) {
                    return Err(UsageError(format!(
                        "{flag}: {n} is not a power of two (a shard count must be one)"
                    )));
                }
                shards = Some(list);
            }
            "--max-pending" => max_pending = Some(list(flag, &value)?),
            "--trace" => trace = Some(PathBuf::from(value)),
            "--plot" => plot = Some(PathBuf::from(value)),
            _ => unreachable!("every known flag is matched"),
        }
    }

    if let Some(&n) = shards.iter().flatten().find(|&&n| n > capacity) {
        return Err(UsageError(format!(
            "--shards: {n} is more than the capacity {capacity} (each shard holds at least one \
             entry)"
        )));
    }
    let workload = match trace {
        Some(path) => {
            let given = [
                ("--keys", keys.is_some()),
                ("--zipf", zipf.is_some()),
                ("--read-ratio", read_ratio.is_some()),
                ("--seconds", seconds.is_some()),
            ];
            if let Some((flag, _)) = given.iter().find(|(_, given)| *given) {
                return Err(UsageError(format!(
                    "{flag} does not apply to --trace (the trace gives the requests, all \
                     read-through gets, replayed once)"
                )));
            }
            Workload::Trace(path)
        }
        None => Workload::Synthetic {
            keys: keys.unwrap_or(DEFAULT_KEYS),
            zipf: zipf.unwrap_or(DEFAULT_ZIPF),
            read_ratio: read_ratio.unwrap_or(DEFAULT_READ_RATIO),
            seconds: seconds.unwrap_or(DEFAULT_SECONDS),
        },
    };
    Ok(Command::Run(Args { threads, capacity, workload, callback_us, shards, max_pending, plot }))
}

fn bad(flag: &str, value: &str, expected: &str) -> UsageError {
    UsageError(format!("{flag}: expected {expected}, got `{value}`"))
}

/// A whole number at least 1; `_` may group digits (`100_000`).
fn positive(flag: &str, value: &str) -> Result<usize, UsageError> {
    match value.replace('_', "").parse::<usize>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(bad(flag, value, "a whole number >= 1")),
    }
}

/// A finite number in `min..=max`.
fn number(flag: &str, value: &str, min: f64, max: f64, expected: &str) -> Result<f64, UsageError> {
    match value.replace('_', "").parse::<f64>() {
        Ok(x) if x.is_finite() && (min..=max).contains(&x) => Ok(x),
        _ => Err(bad(flag, value, expected)),
    }
}

/// A comma-separated list of whole numbers at least 1.
fn list(flag: &str, value: &str) -> Result<Vec<usize>, UsageError> {
    value
        .split(',')
        .map(|item| {
            positive(flag, item.trim())
                .map_err(|_| bad(flag, value, "whole numbers >= 1, comma-separated"))
        })
        .collect()
}
