//! LIST NLST MLSD (over the data connection) and MLST STAT (on the control connection).
//! `ls`-style options (`LIST -la dir`) are accepted; names starting with a dot are shown by
//! LIST/NLST only with `-a` (as `ls`), by MLSD always; the server's own in-flight upload files
//! never ([`bingfa_root::is_temp_name`]), nor names [`listing::listable`] refuses (not UTF-8,
//! or with control characters).
//!
//! A listing is blocking work (a `readdir` of 80,000 entries, a sort, megabytes of rendering
//! take half a second), so it is made on bingfa-net's blocking pool ([`job`]), as HTTP's are:
//! input waits meanwhile (so replies stay in order) and the driver tells the session when it is
//! made; the other sessions of the event loop go on. A big one is spooled (see
//! [`crate::spool`]); `STAT` of a
//! big directory is sent the same way, as the body of its multi-line `213`.
//!
//! LIST, NLST and STAT expand a wildcard in the last component (`NLST *.txt`; see
//! [`vpath::matches`]) when no entry has that literal name: the matches are listed under the
//! name the client gave (`sub/*.txt` → `sub/a.txt`), at most [`MAX_MATCHES`] of them.

pub(crate) mod job;

use crate::listing;
use crate::reply::{io_error, multi, reply};
use crate::spool::Body;
use crate::state::State;
use crate::vpath;
use bingfa_net::{Context, TaskId};
use job::{make, Ask, Fail, Pending};
use std::io;

#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Form {
    Long,
    Names,
    Machine,
}

/// Most names a wildcard expands to; more is refused (`550`), not cut short silently.
pub(crate) const MAX_MATCHES: usize = 10_000;

/// (options, path) of `-la dir`.
fn split_args(arg: &str) -> (String, &str) {
    let mut opts = String::new();
    let mut rest = arg.trim();
    while rest.starts_with('-') {
        let (o, r) = rest.split_once(' ').unwrap_or((rest, ""));
        opts.push_str(&o[1..]);
        rest = r.trim_start();
    }
    (opts, rest)
}

/// Hands the listing to the pool; input waits until it is answered.
fn start(s: &mut State, arg: &str, form: Form, stat: bool, cx: &mut Context) {
    let (opts, path) = split_args(arg);
    let Some(p) = super::path(s, path, cx) else {
        return;
    };
    let a = s.auth();
    let ask = Ask {
        root: a.root.clone(),
        path: p.clone(),
        given: path.to_string(),
        all: opts.contains('a') || form == Form::Machine,
        hidden: s.shared.cfg.hidden,
        form,
        write: a.write(),
        stat,
    };
    s.listing = Some(Pending {
        task: cx.spawn_blocking(move |cancel| make(&ask, cancel)),
        stat: stat.then_some(p),
    });
    cx.pause_input(true);
}

pub(crate) fn list(s: &mut State, arg: &str, form: Form, cx: &mut Context) {
    start(s, arg, form, false, cx);
}

/// The listing's task ended: answer it. `false` when `task` is not the listing's (it is
/// someone else's).
pub(crate) fn on_task_done(s: &mut State, task: TaskId, cx: &mut Context) -> bool {
    let Some(pending) = s.listing.as_ref().filter(|p| p.task.id() == task) else {
        return false;
    };
    let made = match pending.task.try_take() {
        // Not possible once the driver says it ended; wait for the next word if it were.
        Ok(None) => return true,
        Ok(Some(r)) => r,
        Err(_lost) => Err(Fail::Io(io::Error::other("listing lost"))),
    };
    let pending = s.listing.take().expect("pending");
    s.undefer(cx);
    match (made, pending.stat) {
        (Err(Fail::Io(e)), _) => io_error(cx, &e),
        (Err(Fail::NotDir), _) => reply(cx, 501, "MLSD needs a directory."),
        (Err(Fail::TooMany), _) => reply(
            cx,
            550,
            &format!("Too many names match (at most {MAX_MATCHES})."),
        ),
        (Ok(body), None) => {
            super::transfer::send_listing(s, body, "Here comes the directory listing.", cx)
        }
        (Ok(body), Some(p)) => {
            cx.write(format!("213-Status of {}:\r\n", p.replace(['\r', '\n'], " ")).as_bytes());
            match body {
                Body::Bytes(b) => cx.write_vec(b),
                Body::File(f, n) => cx.send_file(f, 0, n),
            }
            cx.write(b"213 End of status\r\n");
        }
    }
    true
}

pub(crate) fn mlst(s: &mut State, arg: &str, cx: &mut Context) {
    let Some(p) = super::path(s, arg, cx) else {
        return;
    };
    match s.auth().root.stat(vpath::rel(&p)) {
        Ok(st) => {
            let line = listing::facts(&p, &st, listing::kind(&st), s.auth().write());
            multi(cx, 250, &format!("Listing {p}"), &[line], "End");
        }
        Err(e) => io_error(cx, &e),
    }
}

pub(crate) fn stat(s: &mut State, arg: &str, cx: &mut Context) {
    if s.xfer.is_some() {
        return reply(cx, 213, "Status: a transfer is in progress.");
    }
    if arg.trim().is_empty() {
        let a = s.auth();
        let lines = vec![
            format!("Connected to {}", s.peer.ip()),
            format!("Logged in as {}", a.name),
            format!("TYPE: {}", if s.ascii { "ASCII" } else { "BINARY" }),
            "No data connection".to_string(),
        ];
        return multi(cx, 211, "FTP server status:", &lines, "End of status");
    }
    start(s, arg, Form::Long, true, cx);
}
