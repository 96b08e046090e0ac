//! RETR STOR APPE STOU REST ABOR ALLO, and the transfer in flight: which data channel, and
//! what to do with its events.
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

use crate::reply::{io_error, reply};
use crate::session::{Data, FtpSession};
use crate::vpath;
use bingfa_net::{ChannelEvent, ChannelId, Context};
use bingfa_root::TempFile;
use std::fs::File;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::sync::Arc;

const ASCII_CHUNK: usize = 64 * 1024;
/// With `fsync_uploads`: bytes written between two starts of writeback.
const WRITEBACK_STEP: u64 = 8 << 20;

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

enum Sink {
    /// Named `name` in its directory on completion.
    Temp(TempFile, Vec<u8>),
    /// Resume: written in place at the offset (`None`: appending).
    InPlace(File, Option<u64>),
}

impl Sink {
    fn file(&self) -> &File {
        match self {
            Sink::Temp(t, _) => t.file(),
            Sink::InPlace(f, _) => f,
        }
    }
}

/// An upload that is synced before its `226`: how far it was written, and where the last
/// writeback started.
struct Durable {
    written: u64,
    started: u64,
}

impl Durable {
    /// Start writing back what arrived since the last start, once it is `WRITEBACK_STEP`: the
    /// disk works while the network does, instead of all at the end. Only a start (it does not
    /// wait for the disk); a failure shows at the final `fdatasync`.
    fn wrote(&mut self, file: &File, n: usize) {
        self.written += n as u64;
        if self.written - self.started >= WRITEBACK_STEP {
            // SAFETY: a valid fd; the range is one this upload wrote.
            unsafe {
                libc::sync_file_range(
                    std::os::fd::AsRawFd::as_raw_fd(file),
                    self.started as libc::off64_t,
                    (self.written - self.started) as libc::off64_t,
                    libc::SYNC_FILE_RANGE_WRITE,
                )
            };
            self.started = self.written;
        }
    }
}

enum Kind {
    /// Everything is queued on the channel; complete when it closes.
    Send,
    /// ASCII download: the next piece goes when the channel drains.
    Ascii { file: File, offset: u64, end: u64 },
    Recv {
        sink: Sink,
        ascii: bool,
        cr: bool,
        /// Synced before the `226` (`fsync_uploads`).
        durable: Option<Durable>,
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
        let mut k = Kind::Ascii {
            file,
            offset: start,
            end: size,
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
    let Kind::Ascii { file, offset, end } = k else {
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
    let mut out = Vec::with_capacity(n + n / 16);
    for &b in &buf[..n] {
        if b == b'\n' {
            out.push(b'\r');
        }
        out.push(b);
    }
    cx.channel_write(id, &out);
    if *offset >= *end {
        cx.channel_close(id);
    }
}

/// A name for STOU: the argument (or `file`) if free, else `name.1`, `name.2`…
fn unique(s: &FtpSession, p: &str) -> Option<String> {
    for i in 0..1000 {
        let cand = if i == 0 {
            p.to_string()
        } else {
            format!("{p}.{i}")
        };
        match super::auth(s).root.lstat(vpath::rel(&cand)) {
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return Some(cand),
            _ => continue,
        }
    }
    None
}

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
    let rest = std::mem::take(&mut s.rest);
    let sink = match (mode, rest) {
        (Mode::Append, _) => root
            .open_write(vpath::rel(&p), true)
            .map(|f| Sink::InPlace(f, None)),
        (Mode::Replace, n) if n > 0 => root.open_write(vpath::rel(&p), false).and_then(|f| {
            f.set_len(n)?;
            Ok(Sink::InPlace(f, Some(n)))
        }),
        _ => root
            .create_temp(vpath::rel(dir))
            .map(|t| Sink::Temp(t, name.as_bytes().to_vec())),
    };
    let sink = match sink {
        Ok(k) => k,
        Err(e) => return io_error(cx, &e),
    };
    let Some(id) = open_data(s, cx) else { return };
    if mode == Mode::Unique {
        reply(cx, 150, &format!("FILE: {name}"));
    } else {
        reply(cx, 150, "Ok to send data.");
    }
    s.xfer = Some(Transfer {
        id,
        kind: Kind::Recv {
            durable: s.shared.cfg.fsync_uploads.then(|| {
                // Where this upload's bytes start: an append writes at the current end.
                let at = match &sink {
                    Sink::Temp(..) => 0,
                    Sink::InPlace(_, Some(n)) => *n,
                    Sink::InPlace(f, None) => f.metadata().map_or(0, |m| m.len()),
                };
                Durable {
                    written: at,
                    started: at,
                }
            }),
            sink,
            ascii: s.ascii,
            cr: false,
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

/// Writes upload bytes, converting CRLF to LF in ASCII mode (a CR at the end of one piece is
/// held until the next shows whether an LF follows); returns how many bytes the file got.
fn write_sink(sink: &mut Sink, bytes: &[u8], ascii: bool, cr: &mut bool) -> std::io::Result<usize> {
    let converted;
    let bytes = if ascii {
        let mut out = Vec::with_capacity(bytes.len() + 1);
        for &b in bytes {
            if std::mem::take(cr) && b != b'\n' {
                out.push(b'\r');
            }
            if b == b'\r' {
                *cr = true;
            } else {
                out.push(b);
            }
        }
        converted = out;
        &converted[..]
    } else {
        bytes
    };
    match sink {
        Sink::Temp(t, _) => t.write_all(bytes)?,
        Sink::InPlace(f, Some(off)) => {
            f.write_all_at(bytes, *off)?;
            *off += bytes.len() as u64;
        }
        Sink::InPlace(f, None) => f.write_all(bytes)?,
    }
    Ok(bytes.len())
}

/// An event on a data channel: a passive listener's address, or the transfer's progress.
pub fn on_channel(s: &mut FtpSession, id: ChannelId, ev: ChannelEvent<'_>, cx: &mut Context) {
    if let Data::Passive { id: pid, kind, .. } = s.data {
        if pid == id {
            match ev {
                ChannelEvent::Listening(addr) => super::data::listening(kind, addr, cx),
                ChannelEvent::Error(_) | ChannelEvent::TooMany => {
                    s.data = Data::None;
                    reply(cx, 425, "Cannot open a passive data connection.");
                }
                ChannelEvent::Closed => s.data = Data::None,
                // A client may connect (and even start sending) before its STOR arrives:
                // its bytes wait in the kernel until a transfer takes the channel.
                ChannelEvent::Connected(_) => cx.channel_pause(id, true),
                _ => {}
            }
            return;
        }
    }
    let Some(x) = s.xfer.as_mut().filter(|x| x.id == id) else {
        return;
    };
    match (&mut x.kind, ev) {
        (
            Kind::Recv {
                sink,
                ascii,
                cr,
                durable,
            },
            ChannelEvent::Data(b),
        ) => match write_sink(sink, b, *ascii, cr) {
            Ok(n) => {
                if let Some(d) = durable {
                    d.wrote(sink.file(), n);
                }
            }
            Err(e) => {
                cx.channel_abort(id);
                io_error(cx, &e);
                s.transfer_ended(cx);
            }
        },
        (Kind::Recv { .. }, ChannelEvent::Eof) => {
            let Some(Transfer {
                kind:
                    Kind::Recv {
                        mut sink,
                        ascii,
                        cr,
                        durable,
                    },
                ..
            }) = s.xfer.take()
            else {
                unreachable!()
            };
            let mut done = Ok(0);
            if ascii && cr {
                done = write_sink(&mut sink, b"\r", false, &mut false);
            }
            let done = done
                .and_then(|_| match durable {
                    Some(_) => sink.file().sync_data(),
                    None => Ok(()),
                })
                .and_then(|_| match sink {
                    Sink::Temp(t, name) => crate::perm::persist(s, t, &name),
                    Sink::InPlace(..) => Ok(()),
                });
            cx.channel_close(id);
            match done {
                Ok(()) => reply(cx, 226, "Transfer complete."),
                Err(e) => io_error(cx, &e),
            }
            s.transfer_ended(cx);
        }
        (Kind::Ascii { .. }, ChannelEvent::Drained) => ascii_piece(id, &mut x.kind, cx),
        (Kind::Send | Kind::Ascii { .. }, ChannelEvent::Closed) => {
            reply(cx, 226, "Transfer complete.");
            s.transfer_ended(cx);
        }
        (_, ChannelEvent::Error(std::io::ErrorKind::ConnectionRefused)) => {
            reply(cx, 425, "Cannot open data connection.");
            s.transfer_ended(cx);
        }
        (_, ChannelEvent::TooMany) => {
            reply(cx, 425, "Cannot open data connection.");
            s.transfer_ended(cx);
        }
        (_, ChannelEvent::Closed | ChannelEvent::Error(_)) => {
            // A broken upload: its temporary file goes with the transfer.
            reply(cx, 426, "Connection closed; transfer aborted.");
            s.transfer_ended(cx);
        }
        _ => {}
    }
}
