//! Readers for the cache traces kept in `tests/data/traces/` (see the README there for the
//! formats and their sources). Used by the trace tests and by the tuner's `--trace FILE`.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

/// The directory of the traces kept in the repository: `tests/data/traces/` at the workspace
/// root, of which this crate is a member folder.
pub fn dir() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/data/traces"))
}

/// Reads a trace into its sequence of requested keys. The format follows the file name:
///
/// * `*.lis` (ARC): lines `start count ignored request`, each standing for `count` requests of
///   pages `start`, `start + 1`, …
/// * `*.trace` (LIRS): one key per line; `*` lines and blank lines are skipped.
///
/// Either may be compressed, as `*.zst` (Zstandard) or `*.gz` (gzip).
pub fn read(path: &Path) -> io::Result<Vec<u64>> {
    let file = File::open(path)
        .map_err(|e| io::Error::new(e.kind(), format!("cannot open {}: {e}", path.display())))?;
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
    let (stem, reader): (&str, Box<dyn Read>) = if let Some(stem) = name.strip_suffix(".zst") {
        let decoder = ruzstd::decoding::StreamingDecoder::new(file).map_err(|e| {
            io::Error::new(io::ErrorKind::InvalidData, format!("{}: {e}", path.display()))
        })?;
        (stem, Box::new(decoder))
    } else if let Some(stem) = name.strip_suffix(".gz") {
        (stem, Box::new(flate2::read::GzDecoder::new(file)))
    } else {
        (name, Box::new(file))
    };
    let arc = if stem.ends_with(".lis") {
        true
    } else if stem.ends_with(".trace") {
        false
    } else {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "{}: unknown trace format (expected *.lis or *.trace, maybe .gz/.zst)",
                path.display()
            ),
        ));
    };
    let mut keys = Vec::new();
    for (number, line) in BufReader::new(reader).lines().enumerate() {
        let line =
            line.map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
        let bad = |what: &str| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{}:{}: {what}: {line:?}", path.display(), number + 1),
            )
        };
        let line = line.trim();
        if arc {
            let mut fields = line.split_whitespace().map(str::parse::<u64>);
            let (Some(Ok(start)), Some(Ok(count))) = (fields.next(), fields.next()) else {
                return Err(bad("expected `start count ignored request`"));
            };
            keys.extend(start..start + count);
        } else if !line.is_empty() && line != "*" {
            keys.push(line.parse().map_err(|_| bad("expected a non-negative integer key"))?);
        }
    }
    Ok(keys)
}
