//! The verbs: RETR STOR APPE STOU REST ABOR (and the listing's data connection, for
//! `cmd::list`). Each checks everything that can refuse, answers `150`, and leaves a
//! [`Transfer`] in the session's state; the data connection is the one `PASV`/`PORT` prepared.

use super::flight::Transfer;
use super::sink::{self, Mode, Plan};
use crate::reply::{io_error, reply};
use crate::state::{Data, State};
use crate::stats::Direction;
use crate::vpath;
use crate::xferlog::{Direction as LogDirection, Record};
use bingfa_net::{ChannelId, Context};
use std::sync::Arc;

/// The data channel for a transfer: the passive one prepared, or an active connect now.
fn open_data(s: &mut State, cx: &mut Context) -> Option<ChannelId> {
    if !matches!(s.data, Data::None) && !crate::cmd::tls::may_transfer(s, cx) {
        return None;
    }
    let tls = s.protection.private();
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
            crate::cmd::tls::reuse_refused(cx);
            None
        }
    }
}

/// The transfer log's record of a transfer of `path`, when there is a log.
fn record(s: &State, path: &str, direction: LogDirection) -> Option<Record> {
    let log = s.shared.xferlog.clone()?;
    let auth = s.auth();
    Some(Record::new(
        log,
        s.peer.ip(),
        &auth.name,
        crate::cmd::auth::is_anonymous(&auth.name),
        path,
        s.ascii,
        direction,
    ))
}

fn mode_name(s: &State) -> &'static str {
    if s.ascii {
        "ASCII"
    } else {
        "BINARY"
    }
}

pub(crate) fn retr(s: &mut State, arg: &str, cx: &mut Context) {
    let Some(p) = crate::cmd::path(s, arg, cx) else {
        return;
    };
    let (file, st) = match s.auth().root.open_read(vpath::rel(&p)) {
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
    let stats = &s.shared.stats;
    let record = record(s, &p, LogDirection::Out);
    let x = if s.ascii {
        Transfer::ascii(id, file, (start, size), stats, record, cx)
    } else {
        cx.channel_send_file(id, Arc::new(file), start, size - start);
        cx.channel_close(id);
        let mut x = Transfer::send(id).metered(stats, Direction::Down, size - start);
        x.queued = size - start;
        x.record = record;
        x
    };
    s.xfer = Some(x);
}

/// A name for STOU to announce: the argument (or `file`) if free now, else `name.1`,
/// `name.2`… It is only announced: the file takes the first name still free when complete
/// (`sink::Plan::finish`), so a file that appears meanwhile is never replaced.
fn unique(s: &State, p: &str) -> Option<String> {
    (0..sink::UNIQUE_TRIES)
        .map(|i| sink::unique_name(p, i))
        .find(|cand| {
            matches!(s.auth().root.lstat(vpath::rel(cand)),
                Err(e) if e.raw_os_error() == Some(libc::ENOENT))
        })
}

/// STOR, APPE, STOU: every check that can refuse, then the `150`; nothing is created,
/// truncated or opened for writing here (see [`super::sink`]).
pub(crate) fn stor(s: &mut State, arg: &str, mode: Mode, cx: &mut Context) {
    let arg = if mode == Mode::Unique && arg.is_empty() {
        "file"
    } else {
        arg
    };
    let Some(mut p) = crate::cmd::path(s, arg, cx) else {
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
    let root = s.auth().root.clone();
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
    let record = record(s, &p, LogDirection::In);
    let plan = Plan {
        root,
        path: p,
        mode,
        rest,
        replace: s.auth().write(),
        fsync: s.shared.cfg.fsync_uploads,
    };
    let mut x = Transfer::recv(id, plan, s.ascii).metered(&s.shared.stats, Direction::Up, 0);
    x.record = record;
    s.xfer = Some(x);
}

/// A listing (made on the blocking pool, see `cmd::list`): queued on the data channel, closed
/// after it. A big one is a scratch file sent as a file range: not held in the session's
/// memory nor counted against `max_outbound` (which would cut it).
pub(crate) fn send_listing(s: &mut State, body: crate::spool::Body, text: &str, cx: &mut Context) {
    let Some(id) = open_data(s, cx) else { return };
    reply(cx, 150, text);
    match body {
        crate::spool::Body::Bytes(b) => cx.channel_write(id, &b),
        crate::spool::Body::File(f, len) => cx.channel_send_file(id, f, 0, len),
    }
    cx.channel_close(id);
    s.xfer = Some(Transfer::send(id));
}

pub(crate) fn rest(s: &mut State, arg: &str, cx: &mut Context) {
    match arg.trim().parse::<u64>() {
        Ok(n) => {
            s.rest = n;
            reply(cx, 350, &format!("Restart position accepted ({n})."));
        }
        Err(_) => reply(cx, 501, "REST needs a byte offset."),
    }
}

pub(crate) fn abor(s: &mut State, cx: &mut Context) {
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
