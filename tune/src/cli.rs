//! The tuner's command line: flags declared with clap's derive into [`Cli`], then checked
//! together into [`Args`]. clap writes `--help` and refuses an unknown flag, a missing value or
//! a value its parser rejects, naming the flag; the one check that involves two flags (a shard
//! count above the capacity) follows the parse and refuses through clap too, as does
//! [`usage_error`] for an input found bad at run time (an unreadable trace). Every refusal thus
//! prints `error: …` and the usage line, and exits with status 2.

use crate::measure::{SLEEP_FROM_US, WARM_UP};
use crate::recommend::{MAX_HIT_RATIO_LOSS, THROUGHPUT_TOLERANCE};
use clap::error::ErrorKind;
use clap::{ArgAction, CommandFactory, Parser};
use std::ffi::OsString;
use std::path::PathBuf;

/// Default cache capacity (entries).
pub const DEFAULT_CAPACITY: usize = 100_000;
/// Default key space of the synthetic workload.
pub const DEFAULT_KEYS: usize = 1_000_000;
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
/// The most work `--callback-us` accepts: ten seconds per evicted entry.
const MAX_CALLBACK_US: f64 = 1e7;
/// The longest `--seconds` accepts: an hour per configuration.
const MAX_SECONDS: f64 = 3600.0;

/// `--help`'s heading for the flags that describe the workload.
const WORKLOAD: &str = "Workload (read-through: a get, and on a miss an insert of the key)";
/// `--help`'s heading for the flags that choose the configurations.
const COMPARE: &str = "What to compare";
/// `--help`'s heading for the flags that set how evicted entries reach the callback.
const DELIVERY: &str = "Delivery of evicted entries (the same in every configuration)";
/// `--help`'s heading for the output flags.
const OUTPUT: &str = "Output";

// Each flag repeated takes its last value (`args_override_self`), as the hand-written parser
// before clap did. Numbers may group digits with `_` (`100_000`). The numeric flags allow
// negative numbers so that `--threads -2` reaches the value parser and is refused as a bad
// value of `--threads`, not as an unknown flag `-2`.
#[derive(Debug, Parser)]
#[command(name = "shardlru-tune", about = about(), args_override_self = true)]
struct Cli {
    /// Worker threads [default: available cores]
    #[arg(long, value_name = "N", value_parser = positive, allow_negative_numbers = true,
          help_heading = WORKLOAD)]
    threads: Option<usize>,

    /// Cache capacity in entries
    #[arg(long, value_name = "N", default_value_t = DEFAULT_CAPACITY, value_parser = positive,
          allow_negative_numbers = true, help_heading = WORKLOAD)]
    capacity: usize,

    /// Key space of the synthetic workload
    #[arg(long, value_name = "N", default_value_t = DEFAULT_KEYS, value_parser = positive,
          allow_negative_numbers = true, help_heading = WORKLOAD)]
    keys: usize,

    /// Zipf exponent of the keys (0: uniform)
    #[arg(long, value_name = "S", default_value_t = DEFAULT_ZIPF, value_parser = zipf_exponent,
          allow_negative_numbers = true, help_heading = WORKLOAD)]
    zipf: f64,

    /// Fraction of operations that are gets, the rest inserts
    #[arg(long, value_name = "R", default_value_t = DEFAULT_READ_RATIO, value_parser = fraction,
          allow_negative_numbers = true, help_heading = WORKLOAD)]
    read_ratio: f64,

    #[arg(long, value_name = "US", default_value_t = DEFAULT_CALLBACK_US, value_parser = micros,
          allow_negative_numbers = true, help_heading = WORKLOAD, help = format!(
              "Work per evicted entry in the eviction callback, in microseconds;\nbelow \
               {SLEEP_FROM_US} it spins (CPU work), from {SLEEP_FROM_US} up it sleeps\n\
               (blocking I/O)"))]
    callback_us: f64,

    #[arg(long, value_name = "S", default_value_t = DEFAULT_SECONDS, value_parser = seconds,
          allow_negative_numbers = true, help_heading = WORKLOAD, help = format!(
              "Measured time per configuration, after {} s of warm-up",
              WARM_UP.as_secs_f64()))]
    seconds: f64,

    /// Replay a trace instead, once, the threads sharing it in its order:
    /// *.lis (ARC) or *.trace (LIRS), optionally .gz or .zst, as the traces
    /// in tests/data/traces/ (not with --keys, --zipf, --read-ratio, --seconds)
    #[arg(long, value_name = "FILE", help_heading = WORKLOAD, verbatim_doc_comment,
          conflicts_with_all = ["keys", "zipf", "read_ratio", "seconds"])]
    trace: Option<PathBuf>,

    #[arg(long, value_name = "N,N,..", value_delimiter = ',', action = ArgAction::Set,
          value_parser = shard_count, allow_negative_numbers = true, help_heading = COMPARE,
          help = format!(
              "Shard counts (powers of two) [default: 1, 2, 4, .. {SWEEP_SHARDS_PER_CORE} x \
               the cores or\nthe threads, if more, at most the capacity; with several \
               --max-pending\nvalues, the library's default shard count]"))]
    shards: Option<Vec<usize>>,

    /// max_pending_callbacks values [default: the library's default]
    #[arg(long, value_name = "N,N,..", value_delimiter = ',', action = ArgAction::Set,
          value_parser = list_item, allow_negative_numbers = true, help_heading = COMPARE)]
    max_pending: Option<Vec<usize>>,

    /// Bound the queue of evicted entries (max_queued): a write that finds N
    /// queued delivers until fewer are [default: no bound]
    #[arg(long, value_name = "N", value_parser = positive, allow_negative_numbers = true,
          help_heading = DELIVERY, verbatim_doc_comment)]
    max_queued: Option<usize>,

    /// Deliver evicted entries on N background threads (spawn_purge_threads):
    /// the writes only queue them [default: the writes deliver them]
    #[arg(long, value_name = "N", value_parser = positive, allow_negative_numbers = true,
          help_heading = DELIVERY, verbatim_doc_comment)]
    background: Option<usize>,

    /// Also draw throughput and hit ratio against the shard count
    #[arg(long, value_name = "FILE.svg", help_heading = OUTPUT)]
    plot: Option<PathBuf>,
}

/// The tuner's one-paragraph description, at the top of `--help`.
fn about() -> String {
    format!(
        "shardlru's shard-count tuner: runs a workload against the cache for several shard \
         counts\nand recommends the smallest one within {:.0} % of the best throughput whose \
         hit ratio\nstays within {MAX_HIT_RATIO_LOSS} points of one shard's.",
        THROUGHPUT_TOLERANCE * 100.0
    )
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
    /// `--max-queued`, if given: the bound on queued evicted entries, for every configuration.
    pub max_queued: Option<usize>,
    /// `--background`, if given: how many delivery threads every configuration's cache runs.
    pub background: Option<usize>,
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

impl Args {
    /// Whether the run watches how evicted entries are delivered (`--max-pending`,
    /// `--max-queued` or `--background`): callbacks are counted and inserts timed, the table
    /// shows the delivery columns, and each synthetic configuration is measured in one piece.
    pub fn watches_delivery(&self) -> bool {
        self.max_pending.is_some() || self.max_queued.is_some() || self.background.is_some()
    }

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

/// Parses a command line, the program name first; `cores` is the default thread count. The
/// error is clap's: a refusal, or `--help` (whose `exit` prints the help and exits with 0).
pub fn parse<I, T>(args: I, cores: usize) -> Result<Args, clap::Error>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let cli = Cli::try_parse_from(args)?;
    if let Some(&n) = cli.shards.iter().flatten().find(|&&n| n > cli.capacity) {
        return Err(usage_error(format!(
            "--shards: {n} is more than the capacity {} (each shard holds at least one entry)",
            cli.capacity
        )));
    }
    let workload = match cli.trace {
        Some(path) => Workload::Trace(path),
        None => Workload::Synthetic {
            keys: cli.keys as u64,
            zipf: cli.zipf,
            read_ratio: cli.read_ratio,
            seconds: cli.seconds,
        },
    };
    Ok(Args {
        threads: cli.threads.unwrap_or(cores.max(1)),
        capacity: cli.capacity,
        workload,
        callback_us: cli.callback_us,
        shards: cli.shards,
        max_pending: cli.max_pending,
        max_queued: cli.max_queued,
        background: cli.background,
        plot: cli.plot,
    })
}

/// A refusal of the command line found after parsing: printed like clap's own (`error: ` and
/// `message`, then the usage line) and exiting with status 2.
pub fn usage_error(message: impl std::fmt::Display) -> clap::Error {
    Cli::command().error(ErrorKind::ValueValidation, message)
}

/// A whole number at least 1; `_` may group digits (`100_000`).
fn positive(value: &str) -> Result<usize, String> {
    match value.replace('_', "").parse::<usize>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err("expected a whole number >= 1".to_owned()),
    }
}

/// One item of a comma-separated list of whole numbers at least 1 (spaces around it allowed).
fn list_item(value: &str) -> Result<usize, String> {
    positive(value.trim()).map_err(|_| "expected whole numbers >= 1, comma-separated".to_owned())
}

/// One shard count of `--shards`: a list item, and a power of two.
fn shard_count(value: &str) -> Result<usize, String> {
    let n = list_item(value)?;
    if n.is_power_of_two() {
        Ok(n)
    } else {
        Err(format!("{n} is not a power of two (a shard count must be one)"))
    }
}

/// A finite number in `range`, or `expected` as the refusal.
fn number(
    value: &str,
    range: std::ops::RangeInclusive<f64>,
    expected: &str,
) -> Result<f64, String> {
    match value.replace('_', "").parse::<f64>() {
        Ok(x) if x.is_finite() && range.contains(&x) => Ok(x),
        _ => Err(format!("expected {expected}")),
    }
}

fn zipf_exponent(value: &str) -> Result<f64, String> {
    number(value, 0.0..=f64::MAX, "a number >= 0")
}

fn fraction(value: &str) -> Result<f64, String> {
    number(value, 0.0..=1.0, "a fraction from 0 to 1")
}

fn micros(value: &str) -> Result<f64, String> {
    number(value, 0.0..=MAX_CALLBACK_US, &format!("microseconds from 0 to {MAX_CALLBACK_US}"))
}

fn seconds(value: &str) -> Result<f64, String> {
    let expected = format!("seconds, more than 0, at most {MAX_SECONDS}");
    let s = number(value, 0.0..=MAX_SECONDS, &expected)?;
    if s == 0.0 { Err(format!("expected {expected}")) } else { Ok(s) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn parse(args: &[&str]) -> Result<Args, clap::Error> {
        super::parse(std::iter::once("shardlru-tune").chain(args.iter().copied()), 4)
    }

    fn run_args(args: &[&str]) -> Args {
        parse(args).unwrap_or_else(|e| panic!("{args:?}: expected a run, got {e}"))
    }

    /// The refusal's kind and its first line.
    fn refusal(args: &[&str]) -> (ErrorKind, String) {
        match parse(args) {
            Err(e) => (e.kind(), e.to_string().lines().next().unwrap_or_default().to_owned()),
            Ok(parsed) => panic!("{args:?}: expected a refusal, got {parsed:?}"),
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
                callback_us: DEFAULT_CALLBACK_US,
                shards: None,
                max_pending: None,
                max_queued: None,
                background: None,
                plot: None,
            }
        );
        assert!(!args.watches_delivery());
        // 1, 2, 4, … 16 × cores; on two cores that is six configurations (well under a minute).
        assert_eq!(args.shard_counts(4, 16), [1, 2, 4, 8, 16, 32, 64]);
        let two_cores = super::parse(["shardlru-tune"], 2).unwrap();
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
            "--max-queued=10_000",
            "--background",
            "2",
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
        assert_eq!((args.max_queued, args.background), (Some(10_000), Some(2)));
        assert_eq!(args.plot.as_deref(), Some(Path::new("out.svg")));
        assert_eq!(args.shard_counts(2, 8), [1, 4, 16]);
    }

    #[test]
    fn a_repeated_flag_takes_its_last_value() {
        let args = run_args(&["--threads", "2", "--threads", "3", "--shards", "1,2", "--shards=4"]);
        assert_eq!((args.threads, args.shards.as_deref()), (3, Some(&[4][..])));
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
    fn the_bound_and_the_delivery_threads_watch_delivery_without_changing_the_sweep() {
        for flags in
            [&["--max-pending", "1"][..], &["--max-queued", "1000"], &["--background", "1"]]
        {
            assert!(run_args(flags).watches_delivery(), "{flags:?}");
        }
        let args = run_args(&["--max-queued", "1000", "--background", "2"]);
        assert_eq!(
            (args.max_queued, args.background, args.max_pending.as_deref()),
            (Some(1000), Some(2), None)
        );
        assert_eq!(args.shard_counts(2, 8), run_args(&[]).shard_counts(2, 8));
    }

    #[test]
    fn a_trace_replaces_the_synthetic_keys() {
        let args = run_args(&["--trace", "tests/data/traces/loop.trace.gz", "--capacity", "1000"]);
        assert_eq!(
            args.workload,
            Workload::Trace(PathBuf::from("tests/data/traces/loop.trace.gz"))
        );
        for flag in ["--keys", "--zipf", "--read-ratio", "--seconds"] {
            let (kind, message) = refusal(&["--trace", "t.lis", flag, "1"]);
            assert_eq!(kind, ErrorKind::ArgumentConflict, "{message}");
            assert!(message.contains(flag) && message.contains("--trace"), "{message}");
        }
    }

    #[test]
    fn help_wins_wherever_it_is() {
        for args in [&["--help"][..], &["-h"], &["--threads", "2", "--help"]] {
            assert_eq!(refusal(args).0, ErrorKind::DisplayHelp, "{args:?}");
        }
    }

    #[test]
    fn bad_numbers_are_refused_naming_the_flag_and_the_value() {
        // The value as the refusal quotes it: a list's bad item, not the whole list.
        let cases: &[(&[&str], &str, &str)] = &[
            (&["--threads", "abc"], "--threads", "abc"),
            (&["--threads", "0"], "--threads", "0"),
            (&["--threads", "-2"], "--threads", "-2"),
            (&["--capacity", "1e5"], "--capacity", "1e5"),
            (&["--capacity=12.5"], "--capacity", "12.5"),
            (&["--capacity="], "--capacity", ""),
            (&["--capacity", "-5"], "--capacity", "-5"),
            (&["--keys", "-1"], "--keys", "-1"),
            (&["--keys", "lots"], "--keys", "lots"),
            (&["--zipf", "-1"], "--zipf", "-1"),
            (&["--zipf", "NaN"], "--zipf", "NaN"),
            (&["--read-ratio", "1.5"], "--read-ratio", "1.5"),
            (&["--read-ratio", "90%"], "--read-ratio", "90%"),
            (&["--read-ratio", "-0.5"], "--read-ratio", "-0.5"),
            (&["--callback-us", "-3"], "--callback-us", "-3"),
            (&["--callback-us", "1e8"], "--callback-us", "1e8"),
            (&["--seconds", "0"], "--seconds", "0"),
            (&["--seconds", "inf"], "--seconds", "inf"),
            (&["--seconds", "3601"], "--seconds", "3601"),
            (&["--seconds", "-1"], "--seconds", "-1"),
            (&["--shards", "1,,4"], "--shards", ""),
            (&["--shards", "3"], "--shards", "3"),
            (&["--shards", "1,6"], "--shards", "6"),
            (&["--shards", "-4"], "--shards", "-4"),
            (&["--max-pending", "0"], "--max-pending", "0"),
            (&["--max-pending", "1;8"], "--max-pending", "1;8"),
            (&["--max-pending", "-1"], "--max-pending", "-1"),
            (&["--max-queued", "0"], "--max-queued", "0"),
            (&["--max-queued", "-1"], "--max-queued", "-1"),
            (&["--max-queued", "1,2"], "--max-queued", "1,2"),
            (&["--background", "0"], "--background", "0"),
            (&["--background", "two"], "--background", "two"),
        ];
        for (args, flag, value) in cases {
            let (kind, message) = refusal(args);
            assert_eq!(kind, ErrorKind::ValueValidation, "{args:?}: {message}");
            assert!(
                message.starts_with(&format!("error: invalid value '{value}' for '{flag} <")),
                "{args:?}: {message}"
            );
        }
        let (kind, message) = refusal(&["--shards", "256", "--capacity", "100"]);
        assert_eq!(kind, ErrorKind::ValueValidation);
        assert_eq!(
            message,
            "error: --shards: 256 is more than the capacity 100 (each shard holds at least one \
             entry)"
        );
    }

    #[test]
    fn unknown_flags_missing_values_and_stray_words_are_refused() {
        let cases: &[(&[&str], ErrorKind, &str)] = &[
            (&["--thread", "2"], ErrorKind::UnknownArgument, "'--thread'"),
            (&["--threads=2", "--bogus=1"], ErrorKind::UnknownArgument, "'--bogus'"),
            (&["8"], ErrorKind::UnknownArgument, "'8'"),
            (&["--threads"], ErrorKind::InvalidValue, "a value is required for '--threads <N>'"),
            (&["--trace"], ErrorKind::InvalidValue, "a value is required for '--trace <FILE>'"),
        ];
        for (args, expected_kind, fragment) in cases {
            let (kind, message) = refusal(args);
            assert_eq!(kind, *expected_kind, "{args:?}: {message}");
            assert!(message.contains(fragment), "{args:?}: {message}");
        }
    }

    #[test]
    fn clap_accepts_the_command_definition() {
        Cli::command().debug_assert();
    }
}
