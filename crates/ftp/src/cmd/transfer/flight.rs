//! The transfer in flight, as a state machine of its own: which data channel, what it carries
//! (a download queued whole, an ASCII download sent piece by piece, an upload into its sink),
//! and what the channel's data, drain, EOF and close do to it. It knows nothing of the session:
//! [`Transfer::on_event`] answers the client and says when the transfer has ended; the caller
//! ([`super::events`]) then ends it, and handles the channel's failures (the same for every
//! kind of transfer).

use super::ascii::{Decoder, Encoder};
use super::sink::{Durable, Plan, Sink};
use crate::reply::{io_error, reply};
use crate::stats::{Direction, FtpStats};
use crate::xferlog::Record;
use bingfa_net::{ChannelEvent, ChannelId, Context};
use std::fs::File;
use std::os::unix::fs::FileExt;

/// The most bytes of an ASCII download converted at once.
const ASCII_CHUNK: usize = 64 * 1024;

/// A transfer on its data channel.
pub(crate) struct Transfer {
    pub(crate) id: ChannelId,
    kind: Kind,
    /// A file transfer (not a listing) is counted when it ends, however it ends (`Drop`).
    meter: Option<Meter>,
    /// With `--xferlog`, a download's or upload's line, written when the transfer is dropped.
    pub(crate) record: Option<Record>,
    /// Bytes handed to the channel whole (`sendfile`), counted when it closes after them.
    pub(crate) queued: u64,
}

/// What a file transfer reports for metrics.
struct Meter {
    stats: FtpStats,
    dir: Direction,
    /// Bytes on the data connection: a download's queued range or pieces, an upload's data.
    bytes: u64,
    complete: bool,
}

impl Drop for Transfer {
    fn drop(&mut self) {
        if let Some(m) = &self.meter {
            m.stats.transfer(m.dir, m.complete, m.bytes);
        }
    }
}

enum Kind {
    /// Everything is queued on the channel; complete when it closes.
    Send,
    /// ASCII download: the next piece goes when the channel drains.
    Ascii {
        file: File,
        offset: u64,
        end: u64,
        enc: Encoder,
    },
    Recv {
        plan: Plan,
        /// Made at the first byte or the EOF (see [`super::sink`]).
        sink: Option<(Sink, Option<Durable>)>,
        /// TYPE A: CRLF → LF.
        ascii: Option<Decoder>,
    },
}

impl Transfer {
    /// Everything was queued on the channel (a binary download, a listing), and its close.
    pub(super) fn send(id: ChannelId) -> Self {
        Transfer {
            id,
            kind: Kind::Send,
            meter: None,
            record: None,
            queued: 0,
        }
    }

    /// Count this transfer as a file going `dir` (`bytes` already queued) when it ends.
    pub(super) fn metered(mut self, stats: &FtpStats, dir: Direction, bytes: u64) -> Self {
        self.meter = Some(Meter {
            stats: stats.clone(),
            dir,
            bytes,
            complete: false,
        });
        self
    }

    fn count(&mut self, bytes: usize) {
        if let Some(m) = &mut self.meter {
            m.bytes += bytes as u64;
        }
    }

    fn completed(&mut self) {
        if let Some(m) = &mut self.meter {
            m.complete = true;
        }
    }

    /// An ASCII download of `file` from `start` to `end`, logged in `record`: its first piece
    /// is queued now. Counted as a download in `stats`, piece by piece (CRLF makes it longer
    /// than the file).
    pub(super) fn ascii(
        id: ChannelId,
        file: File,
        (start, end): (u64, u64),
        stats: &FtpStats,
        record: Option<Record>,
        cx: &mut Context,
    ) -> Self {
        let mut prev = [0u8];
        let prev =
            (start > 0 && file.read_at(&mut prev, start - 1).unwrap_or(0) == 1).then_some(prev[0]);
        let mut x = Transfer {
            id,
            kind: Kind::Ascii {
                file,
                offset: start,
                end,
                enc: Encoder::after(prev),
            },
            meter: None,
            record,
            queued: 0,
        }
        .metered(stats, Direction::Down, 0);
        x.ascii_piece(cx);
        x
    }

    /// An upload as `plan` says; its sink is made at the first byte.
    pub(super) fn recv(id: ChannelId, plan: Plan, ascii: bool) -> Self {
        Transfer {
            id,
            kind: Kind::Recv {
                plan,
                sink: None,
                ascii: ascii.then(Decoder::default),
            },
            meter: None,
            record: None,
            queued: 0,
        }
    }

    /// One of the channel's events, other than a failure (`Error`, `TooMany`: the caller's).
    /// Returns whether the transfer has ended (its reply is sent).
    pub(super) fn on_event(&mut self, ev: ChannelEvent<'_>, cx: &mut Context) -> bool {
        let id = self.id;
        match (&mut self.kind, ev) {
            (Kind::Recv { plan, sink, ascii }, ChannelEvent::Data(b)) => {
                if let Some(m) = &mut self.meter {
                    m.bytes += b.len() as u64;
                }
                if let Some(r) = &mut self.record {
                    r.bytes += b.len() as u64;
                }
                let r = open_sink(plan, sink).and_then(|(sink, durable)| {
                    let n = sink.write(b, ascii.as_mut())?;
                    if let Some(d) = durable {
                        d.wrote(sink.file(), n);
                    }
                    Ok(())
                });
                if let Err(e) = r {
                    cx.channel_abort(id);
                    io_error(cx, &e);
                    return true;
                }
                false
            }
            (Kind::Recv { plan, sink, ascii }, ChannelEvent::Eof) => {
                let done = open_sink(plan, sink).map(|_| ()).and_then(|()| {
                    let (mut sink, durable) = sink.take().expect("opened");
                    if let Some(d) = ascii.as_mut() {
                        sink.write(d.finish(), None)?;
                    }
                    if durable.is_some() {
                        sink.file().sync_data()?;
                    }
                    plan.finish(sink)
                });
                cx.channel_close(id);
                if let (Some(r), true) = (&mut self.record, done.is_ok()) {
                    r.complete = true;
                }
                match done {
                    Ok(None) => reply(cx, 226, "Transfer complete."),
                    Ok(Some(name)) => reply(
                        cx,
                        226,
                        &format!("Transfer complete; the name was taken meanwhile: FILE: {name}"),
                    ),
                    Err(e) => {
                        io_error(cx, &e);
                        return true;
                    }
                }
                self.completed();
                true
            }
            (Kind::Ascii { .. }, ChannelEvent::Drained) => {
                self.ascii_piece(cx);
                false
            }
            (Kind::Send | Kind::Ascii { .. }, ChannelEvent::Closed) => {
                if let Some(r) = &mut self.record {
                    r.bytes += self.queued;
                    r.complete = true;
                }
                reply(cx, 226, "Transfer complete.");
                self.completed();
                true
            }
            (Kind::Recv { .. }, ChannelEvent::Closed) => {
                // A broken upload: its temporary file goes with the transfer.
                reply(cx, 426, "Connection closed; transfer aborted.");
                true
            }
            _ => false,
        }
    }

    /// Queue the next converted piece of an ASCII download (or close at the end).
    fn ascii_piece(&mut self, cx: &mut Context) {
        let Kind::Ascii {
            file,
            offset,
            end,
            enc,
        } = &mut self.kind
        else {
            return;
        };
        let id = self.id;
        let mut buf = vec![0u8; ASCII_CHUNK.min((*end - *offset) as usize)];
        let n = if buf.is_empty() {
            0
        } else {
            file.read_at(&mut buf, *offset).unwrap_or(0)
        };
        if n == 0 {
            cx.channel_close(id);
            return;
        }
        *offset += n as u64;
        let mut out = Vec::new();
        enc.encode(&buf[..n], &mut out);
        cx.channel_write(id, &out);
        let done = *offset >= *end;
        self.count(out.len());
        if let Some(r) = &mut self.record {
            r.bytes += out.len() as u64;
        }
        if done {
            cx.channel_close(id);
        }
    }
}

/// The upload's sink, made now if this is its first byte (or its EOF).
fn open_sink<'a>(
    plan: &Plan,
    sink: &'a mut Option<(Sink, Option<Durable>)>,
) -> std::io::Result<&'a mut (Sink, Option<Durable>)> {
    if sink.is_none() {
        *sink = Some(plan.open()?);
    }
    Ok(sink.as_mut().expect("just made"))
}
