//! RETR STOR APPE STOU REST ABOR ALLO, and the transfer in flight: which data channel, and
//! what to do with its events. The pieces: [`ascii`] (TYPE A both ways), [`sink`] (where an
//! upload goes, made only once nothing can refuse it), [`events`] (the data channel's events).
//!
//! Downloads in binary mode are one `channel_send_file` (sendfile under every model); in ASCII
//! mode the file is converted (LF → CRLF) in 64 KiB pieces, the next queued when the channel
//! drains. Uploads go to an unnamed temporary file in the target directory that is renamed
//! over the target only when the client's EOF says the file is complete; an `ABOR`, a broken
//! data or control connection, or a full disk (`452`) drop it, leaving the old file untouched
//! and nothing partial. A resumed upload (`REST n` + `STOR`, or `APPE`) writes in place: what
//! arrived is kept, which is the point of resuming. With `fsync_uploads` the data is synced
//! before the `226` (writeback starts every few MiB as it arrives, so the final sync waits
//! only for the tail); without it the `226` comes as soon as the file is in place.

mod ascii;
mod events;
mod sink;

pub use events::on_channel;

use crate::reply::{io_error, reply};
use crate::session::{Data, FtpSession};
use crate::vpath;
use ascii::{Decoder, Encoder};
use bingfa_net::{ChannelId, Context};
use sink::{Durable, Plan, Sink};
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::sync::Arc;

const ASCII_CHUNK: usize = 64 * 1024;

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Replace,
    Append,
    Unique,
}

pub struct Transfer {
    pub id: ChannelId,
    kind: Kind,
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
        /// Made at the first byte or the EOF (see [`sink`]).
        sink: Option<(Sink, Option<Durable>)>,
        /// TYPE A: CRLF → LF.
        ascii: Option<Decoder>,
    },
}

/// The data channel for a transfer: the passive one prepared, or an active connect now.
fn open_data(s: &mut FtpSession, cx: &mut Context) -> Option<ChannelId> {
    if !matches!(s.data, Data::None) && !super::tls::may_transfer(s, cx) {
        return None;
    }
    let tls = s.prot_private;
    match std::mem::replace(&mut s.data, Data::None) {
        Data::Passive {
            id,
            tls: opened_tls,
            ..
        } => {
            if opened_tls && !tls {
                // Its TLS may already be under way; a clear transfer needs a new connection.
                cx.channel_abort(id);
                reply(cx, 425, "PROT C since PASV: open a new data connection.");
                return None;
            }
            // PROT P since PASV applies to the transfer, whenever the client connected: the
            // channel was paused at `Connected` (below), so nothing was read in the clear.
            if tls && !opened_tls {
                cx.channel_tls(id);
            }
            // Paused until now: an upload's first bytes (or its handshake) wait for it.
            cx.channel_pause(id, false);
            Some(id)
        }
        Data::Active(addr) => {
            let id = cx.connect(addr);
            if tls {
                cx.channel_tls(id);
            }
            Some(id)
        }
        Data::None => {
            reply(cx, 425, "Use PORT, PASV, EPRT or EPSV first.");
            None
        }
        Data::Refused => {
            super::tls::reuse_refused(cx);
            None
        }
    }
}

fn mode_name(s: &FtpSession) -> &'static str {
    if s.ascii {
        "ASCII"
    } else {
        "BINARY"
    }
}

pub fn retr(s: &mut FtpSession, arg: &str, cx: &mut Context) {
    let Some(p) = super::path(s, arg, cx) else {
        return;
    };
    let (file, st) = match super::auth(s).root.open_read(vpath::rel(&p)) {
        Ok(f) => f,
        Err(e) => return io_error(cx, &e),
    };
    let size = st.st_size as u64;
    let start = std::mem::take(&mut s.rest);
    if start > size {
        return reply(cx, 554, "Restart position beyond the end of the file.");
    }
    let Some(id) = open_data(s, cx) else { return };
    let name = vpath::split(&p).map_or("/", |(_, n)| n);
    reply(
        cx,
        150,
        &format!(
            "Opening {} mode data connection for {name} ({} bytes).",
            mode_name(s),
            size - start
        ),
    );
    let kind = if s.ascii {
        let mut prev = [0u8];
        let prev =
            (start > 0 && file.read_at(&mut prev, start - 1).unwrap_or(0) == 1).then_some(prev[0]);
        let mut k = Kind::Ascii {
            file,
            offset: start,
            end: size,
            enc: Encoder::after(prev),
        };
        ascii_piece(id, &mut k, cx);
        k
    } else {
        cx.channel_send_file(id, Arc::new(file), start, size - start);
        cx.channel_close(id);
        Kind::Send
    };
    s.xfer = Some(Transfer { id, kind });
}

/// Queue the next converted piece of an ASCII download (or close at the end).
fn ascii_piece(id: ChannelId, k: &mut Kind, cx: &mut Context) {
    let Kind::Ascii {
        file,
        offset,
        end,
        enc,
    } = k
    else {
        return;
    };
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
    if *offset >= *end {
        cx.channel_close(id);
    }
}

/// A name for STOU to announce: the argument (or `file`) if free now, else `name.1`,
/// `name.2`… It is only announced: the file takes the first name still free when complete
/// (`sink::Plan::finish`), so a file that appears meanwhile is never replaced.
fn unique(s: &FtpSession, p: &str) -> Option<String> {
    (0..sink::UNIQUE_TRIES)
        .map(|i| sink::unique_name(p, i))
        .find(|cand| {
            matches!(super::auth(s).root.lstat(vpath::rel(cand)),
                Err(e) if e.raw_os_error() == Some(libc::ENOENT))
        })
}

/// STOR, APPE, STOU: every check that can refuse, then the `150`; nothing is created,
/// truncated or opened for writing here (see [`sink`]).
pub fn stor(s: &mut FtpSession, arg: &str, mode: Mode, cx: &mut Context) {
    let arg = if mode == Mode::Unique && arg.is_empty() {
        "file"
    } else {
        arg
    };
    let Some(mut p) = super::path(s, arg, cx) else {
        return;
    };
    if !crate::perm::may_store(s, &p, mode, s.rest, cx) {
        // The refused STOR used up its REST, as a transfer would.
        s.rest = 0;
        return;
    }
    if mode == Mode::Unique {
        match unique(s, &p) {
            Some(u) => p = u,
            None => return reply(cx, 550, "No unique name available."),
        }
    }
    let Some((dir, name)) = vpath::split(&p) else {
        return reply(cx, 550, "Is a directory.");
    };
    let root = super::auth(s).root.clone();
    if let Ok(st) = root.stat(vpath::rel(&p)) {
        if st.st_mode & libc::S_IFMT == libc::S_IFDIR {
            return reply(cx, 550, "Is a directory.");
        }
    }
    // The directory must be there now (a missing one gets its 550 before the 150).
    match root.stat(vpath::rel(dir)) {
        Ok(st) if st.st_mode & libc::S_IFMT == libc::S_IFDIR => {}
        Ok(_) => return io_error(cx, &std::io::Error::from_raw_os_error(libc::ENOTDIR)),
        Err(e) => return io_error(cx, &e),
    }
    let name = name.to_string();
    let rest = std::mem::take(&mut s.rest);
    let Some(id) = open_data(s, cx) else { return };
    if mode == Mode::Unique {
        reply(cx, 150, &format!("FILE: {name}"));
    } else {
        reply(cx, 150, "Ok to send data.");
    }
    s.xfer = Some(Transfer {
        id,
        kind: Kind::Recv {
            plan: Plan {
                root,
                path: p,
                mode,
                rest,
                replace: super::auth(s).write,
                fsync: s.shared.cfg.fsync_uploads,
            },
            sink: None,
            ascii: s.ascii.then(Decoder::default),
        },
    });
}

/// A listing (made on the blocking pool, see `cmd::list`): queued on the data channel, closed
/// after it. A big one is a scratch file sent as a file range: not held in the session's
/// memory nor counted against `max_outbound` (which would cut it).
pub fn send_listing(s: &mut FtpSession, body: crate::spool::Body, text: &str, cx: &mut Context) {
    let Some(id) = open_data(s, cx) else { return };
    reply(cx, 150, text);
    match body {
        crate::spool::Body::Bytes(b) => cx.channel_write(id, &b),
        crate::spool::Body::File(f, len) => cx.channel_send_file(id, f, 0, len),
    }
    cx.channel_close(id);
    s.xfer = Some(Transfer {
        id,
        kind: Kind::Send,
    });
}

pub fn rest(s: &mut FtpSession, arg: &str, cx: &mut Context) {
    match arg.trim().parse::<u64>() {
        Ok(n) => {
            s.rest = n;
            reply(cx, 350, &format!("Restart position accepted ({n})."));
        }
        Err(_) => reply(cx, 501, "REST needs a byte offset."),
    }
}

pub fn abor(s: &mut FtpSession, cx: &mut Context) {
    if let Data::Passive { id, .. } = std::mem::replace(&mut s.data, Data::None) {
        cx.channel_abort(id);
    }
    match s.xfer.take() {
        Some(x) => {
            // Dropping the transfer drops an upload's temporary file: nothing is stored.
            cx.channel_abort(x.id);
            reply(cx, 426, "Connection closed; transfer aborted.");
            reply(cx, 226, "Abort successful.");
            s.transfer_ended(cx);
        }
        None => reply(cx, 225, "No transfer to abort."),
    }
}
