//! One client's socket: a read buffer that the parser reads requests from, and a buffered
//! writer for the replies.
//!
//! ```text
//!  socket ──read_buf──▶ buffer: [ complete requests … | a partial one ] ──Parser──▶ Vec<Request>
//!  socket ◀──flush──── BufWriter ◀── replies, in request order
//! ```
//!
//! [`Connection::read_requests`] first parses every complete request already in the buffer and
//! returns them all, without touching the socket; only when there is none does it read more. So a
//! client that pipelines gets its replies in one flush, and a request split over many reads is
//! parsed once it is whole. It is cancel safe (the handler selects on it with the shutdown
//! signal): its only await is `read_buf`, which loses nothing when dropped, and the parsed
//! requests are returned in the same poll that parsed them.
//!
//! # Bounds
//!
//! The buffer holds at most one incomplete request plus one read ([`READ_CHUNK`]): the parser
//! refuses a line without `\n` past its limit, and a data block past the item size limit is
//! swallowed as it arrives, not buffered (protocol.rs, "Bounds"). Its capacity, once grown for
//! a large value, stays with the connection.

use crate::protocol::{Parser, Request};
use crate::store::Item;
use bytes::BytesMut;
use std::io::{self, Write};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufWriter};
use tokio::net::TcpStream;

/// The room made in the read buffer before each read.
pub(crate) const READ_CHUNK: usize = 16 * 1024;

/// How long a closing connection keeps reading (and discarding) what the client still sends,
/// so that its last replies are not lost to a reset (see [`Connection::close`]).
pub(crate) const LINGER: Duration = Duration::from_millis(500);

/// A client's socket with its buffers and parser state.
#[derive(Debug)]
pub(crate) struct Connection {
    /// The socket; writes are buffered until [`flush`](Connection::flush), reads pass through.
    stream: BufWriter<TcpStream>,
    /// Bytes read and not yet parsed.
    buffer: BytesMut,
    parser: Parser,
    /// Where a `VALUE` line is formatted before it is written.
    line: Vec<u8>,
}

impl Connection {
    pub(crate) fn new(socket: TcpStream, max_item_size: usize) -> Self {
        Self {
            stream: BufWriter::new(socket),
            buffer: BytesMut::with_capacity(READ_CHUNK),
            parser: Parser::new(max_item_size),
            line: Vec::new(),
        }
    }

    /// Every complete request in the buffer, reading from the socket until there is at least
    /// one. `None` when the client closed the connection between requests.
    ///
    /// Parsing stops after a request that closes the connection (`quit`, a line too long):
    /// what follows it is never answered.
    ///
    /// # Errors
    ///
    /// A socket error, or `UnexpectedEof` when the client closed in the middle of a request.
    pub(crate) async fn read_requests(&mut self) -> io::Result<Option<Vec<Request>>> {
        loop {
            let mut requests = Vec::new();
            while let Some(request) = self.parser.parse(&mut self.buffer) {
                let closes = request.closes();
                requests.push(request);
                if closes {
                    break;
                }
            }
            if !requests.is_empty() {
                return Ok(Some(requests));
            }
            self.buffer.reserve(READ_CHUNK);
            if self.stream.read_buf(&mut self.buffer).await? == 0 {
                return if self.buffer.is_empty() {
                    Ok(None)
                } else {
                    Err(io::Error::new(io::ErrorKind::UnexpectedEof, "closed mid-request"))
                };
            }
        }
    }

    /// Queues `bytes` for the client.
    pub(crate) async fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.stream.write_all(bytes).await
    }

    /// Queues `VALUE <key> <flags> <bytes> [<cas>]\r\n<data>\r\n`.
    pub(crate) async fn write_value(
        &mut self,
        key: &[u8],
        item: &Item,
        cas: bool,
    ) -> io::Result<()> {
        self.line.clear();
        self.line.extend_from_slice(b"VALUE ");
        self.line.extend_from_slice(key);
        write!(self.line, " {} {}", item.flags, item.value.len())?;
        if cas {
            write!(self.line, " {}", item.cas)?;
        }
        self.line.extend_from_slice(b"\r\n");
        self.stream.write_all(&self.line).await?;
        self.stream.write_all(&item.value).await?;
        self.stream.write_all(b"\r\n").await
    }

    /// Sends what is queued.
    pub(crate) async fn flush(&mut self) -> io::Result<()> {
        self.stream.flush().await
    }

    /// Closes the connection from the server's side without losing the replies sent: flushes,
    /// shuts down the sending half, then reads and discards until the client closes too, for at
    /// most [`LINGER`]. A socket closed with unread input answers with a TCP reset, which can
    /// discard replies the client has not read yet (a `quit` or a line too long arrives with
    /// more requests behind it).
    pub(crate) async fn close(&mut self) -> io::Result<()> {
        self.stream.shutdown().await?;
        let drain = async {
            let mut discard = [0; 4096];
            while self.stream.read(&mut discard).await? > 0 {}
            io::Result::Ok(())
        };
        // Past the linger time, the socket is dropped as it is.
        let _ = tokio::time::timeout(LINGER, drain).await;
        Ok(())
    }
}
