//! The memcached text protocol: a hand-written, incremental parser of requests.
//!
//! ```text
//!  request line                                        data block (storage commands only)
//!  ────────────────────────────────────────────────    ──────────────────────────────────
//!  <command> <arg> <arg> … [noreply] \r\n               <bytes> bytes of data \r\n
//! ```
//!
//! [`Parser::parse`] takes the bytes read so far and returns the next complete [`Request`],
//! consuming exactly its bytes, or `None` ("incomplete: read more") consuming nothing. It never
//! blocks, never panics on any input, and keeps one piece of state across calls: how many bytes
//! of a refused data block are still to be swallowed. So the requests it returns depend only on
//! the byte stream, not on how the stream was split into reads (the property test in
//! `tests/protocol.rs` checks this on arbitrary streams split at arbitrary points).
//!
//! # Replies to bad input, as memcached gives them
//!
//! A bad request is not an error of the parser: it is a [`Request::Invalid`] whose
//! [`Refusal::reply`] the connection sends back, in order with the other replies.
//!
//! | input | reply | then |
//! |---|---|---|
//! | unknown command, empty line, wrong number of arguments | `ERROR` | next line |
//! | a key over [`MAX_KEY_LEN`], a non-numeric or negative number, a bad `noreply` | `CLIENT_ERROR bad command line format` | next line (a storage command's block is swallowed if its length parsed) |
//! | a data block not followed by `\r\n` | `CLIENT_ERROR bad data chunk` | after `<bytes>` + 2 bytes |
//! | `<bytes>` over the item size limit | `SERVER_ERROR object too large for cache` | the block is swallowed |
//! | a non-zero `exptime` (or `flush_all` delay) | `CLIENT_ERROR …not supported…` | the block is swallowed |
//! | a line over [`MAX_LINE`] ([`MAX_GET_LINE`] for `get`/`gets`) | `CLIENT_ERROR line too long` | the connection closes |
//!
//! Where memcached leaves a refused block to be read as commands (a storage line with a key too
//! long or bad flags), this parser swallows it whenever `<bytes>` itself parsed: the block is
//! data, and reading it as commands would answer a stream of `ERROR`s.
//!
//! # Line endings
//!
//! A request line ends at `\n`, with an optional `\r` before it (memcached accepts both); a data
//! block must be followed by exactly `\r\n`. Tokens are separated by runs of spaces.
//!
//! # `noreply`
//!
//! `noreply` silences the normal replies (`STORED`, `DELETED`, `NOT_FOUND`, `OK`, …). Errors are
//! always sent: the protocol does not let a client tell a malformed `noreply` apart.
//!
//! # Bounds
//!
//! A request line that has no `\n` within its limit is refused and the connection closed, so
//! the connection's buffer never holds more than one line limit, or one line plus one item of at
//! most the item size limit plus 2 bytes, before a complete request is parsed out of it.

use bytes::{Buf, Bytes, BytesMut};
use memchr::memchr;

/// What `version` answers and `stats` reports: the memcached release whose text protocol this
/// server speaks a subset of, then this crate's version. Clients parse the first part:
/// libmemcached refuses a major version of 0, and some clients enable commands by version (the
/// meta commands of 1.6 are not served here, hence 1.4).
pub const VERSION: &str = concat!("1.4.39-shardlru-server-", env!("CARGO_PKG_VERSION"));

/// The longest key memcached accepts, in bytes.
pub const MAX_KEY_LEN: usize = 250;

/// The longest request line accepted, `\r\n` included, except for `get`/`gets`: memcached's
/// own bound on a line before it gives up on the connection (2048 bytes, `proto_text.c`).
pub const MAX_LINE: usize = 2048;

/// The longest `get`/`gets` line accepted, `\r\n` included: room for 256 keys of the longest
/// length, or about 2,000 keys of 30 bytes, in one multi-get.
pub const MAX_GET_LINE: usize = 64 * 1024;

/// The default largest value accepted, in bytes (memcached's default item size, `-I 1m`).
pub const DEFAULT_MAX_ITEM_SIZE: usize = 1024 * 1024;

/// The largest `<bytes>` that parses at all: memcached reads it into an `int` and refuses
/// lengths above `INT_MAX - 2` as a bad command line (larger than any item size limit).
const MAX_DATA_LEN: u64 = i32::MAX as u64 - 2;

/// The most arguments any command but `get`/`gets` takes (`set <key> <flags> <exptime> <bytes>
/// noreply`); a line with more is refused whole.
const MAX_ARGS: usize = 5;

/// The token that asks for no reply.
const NOREPLY: &[u8] = b"noreply";

/// One parsed request: what the client asked for, or why it was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Request {
    /// `get <key>*` or `gets <key>*` (`cas`: reply with each item's cas unique).
    Get {
        /// The keys, in request order: at least one.
        keys: Vec<Bytes>,
        /// `gets`: each `VALUE` line carries the item's cas unique.
        cas: bool,
    },
    /// `set`, `add` or `replace <key> <flags> 0 <bytes> [noreply]` with its data block.
    Store {
        /// Which of the three.
        mode: StoreMode,
        /// The key.
        key: Bytes,
        /// The client's opaque flags, returned with the value.
        flags: u32,
        /// The data block, `\r\n` excluded; a copy, so that it pins no read buffer.
        value: Bytes,
        /// No `STORED`/`NOT_STORED` reply.
        noreply: bool,
    },
    /// `delete <key> [0] [noreply]`.
    Delete {
        /// The key.
        key: Bytes,
        /// No `DELETED`/`NOT_FOUND` reply.
        noreply: bool,
    },
    /// `touch <key> 0 [noreply]`: the server keeps no expiry, so a touch only checks presence
    /// (and makes the item the most recently used).
    Touch {
        /// The key.
        key: Bytes,
        /// No `TOUCHED`/`NOT_FOUND` reply.
        noreply: bool,
    },
    /// `flush_all [0] [noreply]`: invalidate every item.
    FlushAll {
        /// No `OK` reply.
        noreply: bool,
    },
    /// `version`: answered with [`VERSION`].
    Version,
    /// `stats`.
    Stats,
    /// `quit`: close the connection once the replies before it are sent.
    Quit,
    /// A request refused: its reply is [`Refusal::reply`].
    Invalid(Refusal),
}

impl Request {
    /// Whether the connection closes after this request (and its reply): nothing after it in
    /// the stream is parsed.
    pub fn closes(&self) -> bool {
        matches!(self, Request::Quit | Request::Invalid(Refusal::LineTooLong))
    }
}

/// The storage commands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoreMode {
    /// Store, whatever is there.
    Set,
    /// Store only if the key holds no item.
    Add,
    /// Store only if the key holds an item.
    Replace,
}

/// Why a request was refused; each has its memcached reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// An unknown command, an empty line, or a known one with the wrong number of arguments.
    UnknownCommand,
    /// A key too long, a number that does not parse, a misplaced token.
    BadFormat,
    /// A data block not followed by `\r\n`.
    BadDataChunk,
    /// A value over the item size limit.
    TooLarge,
    /// A non-zero `exptime`: the cache has no expiry.
    ExptimeUnsupported,
    /// A `touch` whose `exptime` is not a number.
    InvalidExptime,
    /// A non-zero `flush_all` delay.
    DelayUnsupported,
    /// A request line over its limit: the connection closes after the reply.
    LineTooLong,
}

impl Refusal {
    /// The reply line, `\r\n` included.
    pub fn reply(self) -> &'static [u8] {
        match self {
            Refusal::UnknownCommand => b"ERROR\r\n",
            Refusal::BadFormat => b"CLIENT_ERROR bad command line format\r\n",
            Refusal::BadDataChunk => b"CLIENT_ERROR bad data chunk\r\n",
            Refusal::TooLarge => b"SERVER_ERROR object too large for cache\r\n",
            Refusal::ExptimeUnsupported => {
                b"CLIENT_ERROR exptime not supported: items never expire here, use 0\r\n"
            }
            Refusal::InvalidExptime => b"CLIENT_ERROR invalid exptime argument\r\n",
            Refusal::DelayUnsupported => b"CLIENT_ERROR flush_all delay not supported, use 0\r\n",
            Refusal::LineTooLong => b"CLIENT_ERROR line too long\r\n",
        }
    }
}

/// The incremental parser of one connection. See the module docs.
#[derive(Debug)]
pub struct Parser {
    /// The largest value accepted, in bytes.
    max_item_size: usize,
    /// Bytes of a refused data block (and its `\r\n`) still to be discarded before the next
    /// request line.
    swallow: u64,
    /// Set once a line was too long: the stream cannot be resynchronised, and nothing after it
    /// is parsed.
    closed: bool,
}

/// A request line cut into tokens, the command first.
struct Line<'a> {
    command: &'a [u8],
    /// The arguments, `args[..count]`; `count > MAX_ARGS` means "too many" (only `get`/`gets`
    /// read past them, from `rest`).
    args: [&'a [u8]; MAX_ARGS],
    count: usize,
    /// Everything after the command, for `get`/`gets`.
    rest: &'a [u8],
}

impl<'a> Line<'a> {
    /// Cuts `line` (its `\r\n` removed) at runs of spaces. `None` for a line of spaces only.
    fn split(line: &'a [u8]) -> Option<Self> {
        let command = tokens(line).next()?;
        // `command` is a subslice of `line`: where it ends is where the arguments start.
        let start = command.as_ptr() as usize - line.as_ptr() as usize + command.len();
        let rest = &line[start..];
        let mut args: [&[u8]; MAX_ARGS] = [&[]; MAX_ARGS];
        let mut count = 0;
        for token in tokens(rest) {
            if count < MAX_ARGS {
                args[count] = token;
            }
            count += 1;
        }
        Some(Line { command, args, count, rest })
    }

    /// The arguments, or `None` if there are more than `MAX_ARGS`.
    fn args(&self) -> Option<&[&'a [u8]]> {
        (self.count <= MAX_ARGS).then(|| &self.args[..self.count])
    }
}

/// The space-separated tokens of `line`.
fn tokens(line: &[u8]) -> impl Iterator<Item = &[u8]> {
    line.split(|&byte| byte == b' ').filter(|token| !token.is_empty())
}

impl Parser {
    /// A parser that refuses values over `max_item_size` bytes.
    pub fn new(max_item_size: usize) -> Self {
        Self { max_item_size, swallow: 0, closed: false }
    }

    /// Parses the next complete request at the front of `buf` and consumes its bytes, or
    /// returns `None` (consuming at most swallowed bytes) if `buf` does not hold one yet.
    ///
    /// After a [`Refusal::LineTooLong`] it returns `None` for ever.
    pub fn parse(&mut self, buf: &mut BytesMut) -> Option<Request> {
        if self.closed {
            return None;
        }
        if self.swallow > 0 {
            let n = self.swallow.min(buf.len() as u64);
            buf.advance(n as usize);
            self.swallow -= n;
            if self.swallow > 0 {
                return None;
            }
        }
        let limit = line_limit(buf);
        let Some(newline) = memchr(b'\n', &buf[..buf.len().min(limit)]) else {
            if buf.len() >= limit {
                // No `\n` within the limit: whatever the rest, the line is too long.
                self.closed = true;
                buf.clear();
                return Some(Request::Invalid(Refusal::LineTooLong));
            }
            return None;
        };
        let line_len = newline + 1;
        let end = if newline > 0 && buf[newline - 1] == b'\r' { newline - 1 } else { newline };
        let Some(line) = Line::split(&buf[..end]) else {
            buf.advance(line_len);
            return Some(Request::Invalid(Refusal::UnknownCommand));
        };
        let parsed = match line.command {
            b"get" => parse_get(&line, false),
            b"gets" => parse_get(&line, true),
            b"set" => return self.parse_store(buf, line_len, StoreMode::Set),
            b"add" => return self.parse_store(buf, line_len, StoreMode::Add),
            b"replace" => return self.parse_store(buf, line_len, StoreMode::Replace),
            b"delete" => parse_delete(&line),
            b"touch" => parse_touch(&line),
            b"flush_all" => parse_flush_all(&line),
            b"version" => parse_bare(&line, Request::Version),
            b"stats" => parse_bare(&line, Request::Stats),
            b"quit" => parse_bare(&line, Request::Quit),
            _ => Request::Invalid(Refusal::UnknownCommand),
        };
        buf.advance(line_len);
        Some(parsed)
    }

    /// A storage command whose line is `buf[..line_len]`: the request once its data block is
    /// in `buf`, or a refusal (swallowing the block when its length is known).
    fn parse_store(
        &mut self,
        buf: &mut BytesMut,
        line_len: usize,
        mode: StoreMode,
    ) -> Option<Request> {
        let end =
            if line_len >= 2 && buf[line_len - 2] == b'\r' { line_len - 2 } else { line_len - 1 };
        let line = Line::split(&buf[..end]).expect("the line starts with the command");
        let header = match line.args() {
            Some(&[key, flags, exptime, bytes]) => (key, flags, exptime, bytes, None),
            Some(&[key, flags, exptime, bytes, noreply]) => {
                (key, flags, exptime, bytes, Some(noreply))
            }
            _ => {
                buf.advance(line_len);
                return Some(Request::Invalid(Refusal::UnknownCommand));
            }
        };
        let (key, flags, exptime, bytes, noreply) = header;
        let Some(len) = parse_u64(bytes).filter(|&len| len <= MAX_DATA_LEN) else {
            // Unknown length: the block, if any, is read as commands (as memcached does).
            buf.advance(line_len);
            return Some(Request::Invalid(Refusal::BadFormat));
        };
        let refusal = if key.len() > MAX_KEY_LEN
            || noreply.is_some_and(|token| token != NOREPLY)
            || parse_u32(flags).is_none()
        {
            Some(Refusal::BadFormat)
        } else {
            match parse_i64(exptime) {
                None => Some(Refusal::BadFormat),
                Some(_) if len > self.max_item_size as u64 => Some(Refusal::TooLarge),
                Some(0) => None,
                Some(_) => Some(Refusal::ExptimeUnsupported),
            }
        };
        if let Some(refusal) = refusal {
            buf.advance(line_len);
            // The block goes unread, as it arrives (the next calls).
            self.swallow = len + 2;
            return Some(Request::Invalid(refusal));
        }
        // `len <= max_item_size`, a `usize`.
        let len = len as usize;
        let total = line_len + len + 2;
        if buf.len() < total {
            return None;
        }
        if &buf[line_len + len..total] != b"\r\n" {
            buf.advance(total);
            return Some(Request::Invalid(Refusal::BadDataChunk));
        }
        let key = Bytes::copy_from_slice(key);
        let flags = parse_u32(flags).expect("checked above");
        let value = Bytes::copy_from_slice(&buf[line_len..line_len + len]);
        let noreply = noreply.is_some();
        buf.advance(total);
        Some(Request::Store { mode, key, flags, value, noreply })
    }
}

/// The line limit for the line at the front of `buf`: `get`/`gets` lines may be longer.
fn line_limit(buf: &[u8]) -> usize {
    if buf.starts_with(b"get ") || buf.starts_with(b"gets ") { MAX_GET_LINE } else { MAX_LINE }
}

/// `get`/`gets`: one key at least, none too long.
fn parse_get(line: &Line<'_>, cas: bool) -> Request {
    let mut keys = Vec::new();
    for key in tokens(line.rest) {
        if key.len() > MAX_KEY_LEN {
            return Request::Invalid(Refusal::BadFormat);
        }
        keys.push(Bytes::copy_from_slice(key));
    }
    if keys.is_empty() {
        return Request::Invalid(Refusal::UnknownCommand);
    }
    Request::Get { keys, cas }
}

/// `delete <key> [0] [noreply]`: the `0` is the legacy hold time, the only one accepted.
fn parse_delete(line: &Line<'_>) -> Request {
    let (key, noreply) = match line.args() {
        Some(&[key]) => (key, false),
        Some(&[key, b"0"]) => (key, false),
        Some(&[key, NOREPLY]) | Some(&[key, b"0", NOREPLY]) => (key, true),
        Some(&[_, _]) | Some(&[_, _, _]) => return Request::Invalid(Refusal::BadFormat),
        _ => return Request::Invalid(Refusal::UnknownCommand),
    };
    if key.len() > MAX_KEY_LEN {
        return Request::Invalid(Refusal::BadFormat);
    }
    Request::Delete { key: Bytes::copy_from_slice(key), noreply }
}

/// `touch <key> <exptime> [noreply]`: without expiry, only `exptime` 0 is accepted.
fn parse_touch(line: &Line<'_>) -> Request {
    let (key, exptime, noreply) = match line.args() {
        Some(&[key, exptime]) => (key, exptime, false),
        Some(&[key, exptime, NOREPLY]) => (key, exptime, true),
        Some(&[_, _, _]) => return Request::Invalid(Refusal::BadFormat),
        _ => return Request::Invalid(Refusal::UnknownCommand),
    };
    if key.len() > MAX_KEY_LEN {
        return Request::Invalid(Refusal::BadFormat);
    }
    match parse_i64(exptime) {
        None => Request::Invalid(Refusal::InvalidExptime),
        Some(0) => Request::Touch { key: Bytes::copy_from_slice(key), noreply },
        Some(_) => Request::Invalid(Refusal::ExptimeUnsupported),
    }
}

/// `flush_all [delay] [noreply]`: only an immediate flush (delay 0) is accepted.
fn parse_flush_all(line: &Line<'_>) -> Request {
    let (delay, noreply) = match line.args() {
        Some(&[]) => (None, false),
        Some(&[NOREPLY]) => (None, true),
        Some(&[delay]) => (Some(delay), false),
        Some(&[delay, NOREPLY]) => (Some(delay), true),
        Some(&[_, _]) => return Request::Invalid(Refusal::BadFormat),
        _ => return Request::Invalid(Refusal::UnknownCommand),
    };
    match delay.map(parse_i64) {
        None | Some(Some(0)) => Request::FlushAll { noreply },
        Some(None) => Request::Invalid(Refusal::BadFormat),
        Some(Some(_)) => Request::Invalid(Refusal::DelayUnsupported),
    }
}

/// A command without arguments.
fn parse_bare(line: &Line<'_>, request: Request) -> Request {
    if line.count == 0 { request } else { Request::Invalid(Refusal::UnknownCommand) }
}

/// A decimal number of digits only (no sign, no spaces), or `None` (also on overflow).
fn parse_u64(token: &[u8]) -> Option<u64> {
    if token.is_empty() {
        return None;
    }
    token.iter().try_fold(0u64, |n, &byte| {
        let digit = byte.checked_sub(b'0').filter(|&digit| digit <= 9)?;
        n.checked_mul(10)?.checked_add(u64::from(digit))
    })
}

/// A `u32` in decimal (memcached's flags are 32 bits).
fn parse_u32(token: &[u8]) -> Option<u32> {
    parse_u64(token).and_then(|n| u32::try_from(n).ok())
}

/// An `i64` in decimal with an optional `-` (memcached reads `exptime` as signed).
fn parse_i64(token: &[u8]) -> Option<i64> {
    match token.strip_prefix(b"-") {
        Some(digits) => parse_u64(digits).and_then(|n| 0i64.checked_sub_unsigned(n)),
        None => parse_u64(token).and_then(|n| i64::try_from(n).ok()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Parses all of `input` in one buffer.
    fn parse_all(input: &[u8]) -> Vec<Request> {
        let mut parser = Parser::new(16);
        let mut buf = BytesMut::from(input);
        std::iter::from_fn(|| parser.parse(&mut buf)).collect()
    }

    fn store(mode: StoreMode, key: &str, flags: u32, value: &[u8], noreply: bool) -> Request {
        Request::Store {
            mode,
            key: Bytes::copy_from_slice(key.as_bytes()),
            flags,
            value: Bytes::copy_from_slice(value),
            noreply,
        }
    }

    #[test]
    fn commands() {
        let requests = parse_all(
            b"get a bb\r\ngets  c\nset k 5 0 3\r\nabc\r\nadd k 0 0 0 noreply\r\n\r\n\
              replace k 4294967295 0 1\r\nx\r\ndelete k\r\ndelete k 0 noreply\r\n\
              touch k 0\r\nflush_all\r\nflush_all 0 noreply\r\nversion\r\nstats\r\nquit\r\n",
        );
        let key = |k: &str| Bytes::copy_from_slice(k.as_bytes());
        assert_eq!(
            requests,
            [
                Request::Get { keys: vec![key("a"), key("bb")], cas: false },
                Request::Get { keys: vec![key("c")], cas: true },
                store(StoreMode::Set, "k", 5, b"abc", false),
                store(StoreMode::Add, "k", 0, b"", true),
                store(StoreMode::Replace, "k", u32::MAX, b"x", false),
                Request::Delete { key: key("k"), noreply: false },
                Request::Delete { key: key("k"), noreply: true },
                Request::Touch { key: key("k"), noreply: false },
                Request::FlushAll { noreply: false },
                Request::FlushAll { noreply: true },
                Request::Version,
                Request::Stats,
                Request::Quit,
            ]
        );
    }

    #[test]
    fn refusals() {
        use Refusal::*;
        let cases: &[(&[u8], &[Refusal])] = &[
            (b"bogus\r\n", &[UnknownCommand]),
            (b"\r\n", &[UnknownCommand]),
            (b"   \r\n", &[UnknownCommand]),
            (b"get\r\n", &[UnknownCommand]),
            (b"set k 0 0\r\n", &[UnknownCommand]),
            (b"set k 0 0 x\r\n", &[BadFormat]),
            (b"set k 0 0 -1\r\n", &[BadFormat]),
            (b"set k 0 0 99999999999\r\n", &[BadFormat]),
            (b"set k x 0 1\r\na\r\n", &[BadFormat]),
            (b"set k 4294967296 0 1\r\na\r\n", &[BadFormat]),
            (b"set k 0 0 1 yes\r\na\r\n", &[BadFormat]),
            (b"set k 0 5 1\r\na\r\n", &[ExptimeUnsupported]),
            (b"set k 0 -1 1\r\na\r\n", &[ExptimeUnsupported]),
            (b"set k 0 0 17\r\n01234567890123456\r\n", &[TooLarge]),
            (b"set k 0 0 1\r\nab\r\n", &[BadDataChunk, UnknownCommand]),
            (b"delete k 5\r\n", &[BadFormat]),
            (b"touch k x\r\n", &[InvalidExptime]),
            (b"touch k 10\r\n", &[ExptimeUnsupported]),
            (b"flush_all 10\r\n", &[DelayUnsupported]),
            (b"flush_all x\r\n", &[BadFormat]),
            (b"version 1\r\n", &[UnknownCommand]),
        ];
        for &(input, expected) in cases {
            let expected: Vec<_> = expected.iter().map(|&r| Request::Invalid(r)).collect();
            assert_eq!(parse_all(input), expected, "{:?}", String::from_utf8_lossy(input));
        }
    }

    #[test]
    fn long_keys_are_refused() {
        let key = "k".repeat(MAX_KEY_LEN + 1);
        let refused = [Request::Invalid(Refusal::BadFormat)];
        assert_eq!(parse_all(format!("get a {key}\r\n").as_bytes()), refused);
        assert_eq!(parse_all(format!("set {key} 0 0 1\r\nx\r\n").as_bytes()), refused);
        assert_eq!(parse_all(format!("delete {key}\r\n").as_bytes()), refused);
        let ok = "k".repeat(MAX_KEY_LEN);
        assert!(matches!(
            &parse_all(format!("get {ok}\r\n").as_bytes())[..],
            [Request::Get { .. }]
        ));
    }

    #[test]
    fn a_line_over_the_limit_closes() {
        let mut input = vec![b'x'; MAX_LINE];
        input.extend_from_slice(b"\r\nversion\r\n");
        assert_eq!(parse_all(&input), [Request::Invalid(Refusal::LineTooLong)]);
        // A get line may be longer.
        let mut get = b"get".to_vec();
        while get.len() < MAX_LINE * 2 {
            get.extend_from_slice(b" key");
        }
        get.extend_from_slice(b"\r\n");
        assert!(matches!(&parse_all(&get)[..], [Request::Get { keys, .. }] if keys.len() > 500));
    }

    #[test]
    fn a_refused_block_is_swallowed_as_it_arrives() {
        let mut parser = Parser::new(4);
        let mut buf = BytesMut::from(&b"set k 0 0 10\r\n0123"[..]);
        assert_eq!(parser.parse(&mut buf), Some(Request::Invalid(Refusal::TooLarge)));
        assert_eq!(parser.parse(&mut buf), None);
        assert!(buf.is_empty());
        buf.extend_from_slice(b"456789\r");
        assert_eq!(parser.parse(&mut buf), None);
        buf.extend_from_slice(b"\nversion\r\n");
        assert_eq!(parser.parse(&mut buf), Some(Request::Version));
    }

    #[test]
    fn numbers() {
        assert_eq!(parse_u64(b"18446744073709551615"), Some(u64::MAX));
        assert_eq!(parse_u64(b"18446744073709551616"), None);
        assert_eq!(parse_u64(b"+1"), None);
        assert_eq!(parse_i64(b"-9223372036854775808"), Some(i64::MIN));
        assert_eq!(parse_i64(b"-"), None);
        assert_eq!(parse_i64(b"--1"), None);
    }
}
