//! What each request does to the store, and the reply it writes.
//!
//! | request | reply |
//! |---|---|
//! | `get`/`gets` | `VALUE <key> <flags> <bytes> [<cas>]` + data for each key found, then `END` |
//! | `set`/`add`/`replace` | `STORED`, `NOT_STORED`, or `SERVER_ERROR out of memory storing object` |
//! | `delete` | `DELETED` or `NOT_FOUND` |
//! | `touch` (exptime 0) | `TOUCHED` or `NOT_FOUND` |
//! | `flush_all` | `OK` |
//! | `version` | `VERSION 1.4.39-shardlru-server-<crate version>` (protocol.rs, [`VERSION`]) |
//! | `stats` | `STAT <name> <value>` lines, then `END` (stats.rs) |
//! | `quit` | nothing: the connection closes |
//! | refused | the refusal's reply (protocol.rs) |
//!
//! `noreply` drops the replies of the second column's first words; error replies are always
//! written. A store error (the spill's disk) answers `SERVER_ERROR <message>`.

use crate::Error;
use crate::connection::Connection;
use crate::protocol::{Request, VERSION};
use crate::server::Shared;
use crate::store::Outcome;
use std::sync::Arc;

/// What the handler does after a request.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Flow {
    /// Go on with the next request.
    Continue,
    /// Flush the replies and close the connection.
    Close,
}

/// Applies `request` and queues its reply on `connection`.
///
/// # Errors
///
/// Only a failed write to the client; store errors are replies.
pub(crate) async fn apply(
    request: Request,
    shared: &Arc<Shared>,
    connection: &mut Connection,
) -> Result<Flow, Error> {
    let stats = &shared.stats;
    let store = &shared.store;
    let reply: &[u8] = match request {
        Request::Get { keys, cas } => {
            stats.cmd_get.add(keys.len() as u64);
            for key in keys {
                match store.get(&key).await {
                    Some(item) => {
                        stats.get_hits.add(1);
                        connection.write_value(&key, &item, cas).await?;
                    }
                    None => stats.get_misses.add(1),
                }
            }
            b"END\r\n"
        }
        Request::Store { mode, key, flags, value, noreply } => {
            stats.cmd_set.add(1);
            match store.store(mode, key, flags, value).await {
                Ok(Outcome::Stored) if noreply => return Ok(Flow::Continue),
                Ok(Outcome::Stored) => b"STORED\r\n",
                Ok(Outcome::NotStored) if noreply => return Ok(Flow::Continue),
                Ok(Outcome::NotStored) => b"NOT_STORED\r\n",
                Ok(Outcome::TooHeavy) => b"SERVER_ERROR out of memory storing object\r\n",
                Err(error) => return server_error(connection, &error).await,
            }
        }
        Request::Delete { key, noreply } => match store.delete(&key).await {
            Ok(deleted) => {
                let counter = if deleted { &stats.delete_hits } else { &stats.delete_misses };
                counter.add(1);
                if noreply {
                    return Ok(Flow::Continue);
                }
                if deleted { b"DELETED\r\n" } else { b"NOT_FOUND\r\n" }
            }
            Err(error) => return server_error(connection, &error).await,
        },
        Request::Touch { key, noreply } => {
            stats.cmd_touch.add(1);
            let touched = store.get(&key).await.is_some();
            let counter = if touched { &stats.touch_hits } else { &stats.touch_misses };
            counter.add(1);
            if noreply {
                return Ok(Flow::Continue);
            }
            if touched { b"TOUCHED\r\n" } else { b"NOT_FOUND\r\n" }
        }
        Request::FlushAll { noreply } => {
            stats.cmd_flush.add(1);
            match store.flush_all().await {
                Ok(()) if noreply => return Ok(Flow::Continue),
                Ok(()) => b"OK\r\n",
                Err(error) => return server_error(connection, &error).await,
            }
        }
        Request::Version => {
            connection.write_all(format!("VERSION {VERSION}\r\n").as_bytes()).await?;
            return Ok(Flow::Continue);
        }
        Request::Stats => {
            let mut out = Vec::new();
            stats.render(&store.stats(), &shared.config, &mut out);
            connection.write_all(&out).await?;
            return Ok(Flow::Continue);
        }
        Request::Quit => return Ok(Flow::Close),
        Request::Invalid(refusal) => {
            connection.write_all(refusal.reply()).await?;
            let closes = Request::Invalid(refusal).closes();
            return Ok(if closes { Flow::Close } else { Flow::Continue });
        }
    };
    connection.write_all(reply).await?;
    Ok(Flow::Continue)
}

/// Writes `SERVER_ERROR <error>` on one line.
async fn server_error(connection: &mut Connection, error: &Error) -> Result<Flow, Error> {
    let message = error.to_string().replace(['\r', '\n'], " ");
    connection.write_all(format!("SERVER_ERROR {message}\r\n").as_bytes()).await?;
    Ok(Flow::Continue)
}
