//! LIST NLST MLSD (over the data connection) and MLST STAT (on the control connection).
//! `ls`-style options (`LIST -la dir`) are accepted; names starting with a dot are shown by
//! LIST/NLST only with `-a` (as `ls`), by MLSD always; the server's own in-flight upload files
//! never ([`bingfa_root::is_temp_name`]), nor names [`listing::listable`] refuses (not UTF-8,
//! or with control characters).
//!
//! A listing is blocking work (a `readdir` of 80,000 entries, a sort, megabytes of rendering
//! take half a second), so it is made on bingfa-net's blocking pool, as HTTP's are: input waits
//! meanwhile (so replies stay in order) and the driver tells the session when it is made; the other
//! sessions of the event loop go on. A big one is spooled (see [`crate::spool`]); `STAT` of a
//! big directory is sent the same way, as the body of its multi-line `213`.
//!
//! LIST, NLST and STAT expand a wildcard in the last component (`NLST *.txt`; see
//! [`vpath::matches`]) when no entry has that literal name: the matches are listed under the
//! name the client gave (`sub/*.txt` → `sub/a.txt`), at most [`MAX_MATCHES`] of them.

use crate::listing;
use crate::reply::{io_error, multi, reply};
use crate::session::FtpSession;
use crate::spool::{Body, Spool};
use crate::vpath;
use bingfa_net::blocking::{Cancel, Task};
use bingfa_net::{Context, TaskId};
use bingfa_root::{Entry, Root};
use std::io;
use std::sync::Arc;

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Form {
    Long,
    Names,
    Machine,
}

/// Most names a wildcard expands to; more is refused (`550`), not cut short silently.
pub const MAX_MATCHES: usize = 10_000;

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

/// What a listing job is asked: everything it needs, owned (it runs on another thread).
struct Ask {
    root: Arc<Root>,
    /// The virtual path.
    path: String,
    /// The path as the client gave it (a wildcard's matches are named under it).
    given: String,
    all: bool,
    /// The server runs with `--hidden`: dotfiles may be listed.
    hidden: bool,
    form: Form,
    write: bool,
    /// For `STAT`: lines indented, as a multi-line reply's body.
    stat: bool,
}

enum Fail {
    Io(io::Error),
    NotDir,
    TooMany,
}

impl From<io::Error> for Fail {
    fn from(e: io::Error) -> Fail {
        Fail::Io(e)
    }
}

/// A listing being made on the blocking pool.
pub struct Pending {
    task: Task<Result<Body, Fail>>,
    /// `STAT` of this path (a reply on the control connection), or `None` for the data one.
    stat: Option<String>,
}

/// Whether a listing shows `name`: never a name no client could use or the server's own
/// temporary files; a dotfile only with `-a` (or MLSD) on a server run with `--hidden`
/// ([`crate::perm`]: one hidden rule for every face of a root).
fn visible(name: &[u8], all: bool, hidden: bool) -> bool {
    listing::listable(name)
        && !bingfa_root::is_temp_name(name)
        && (!name.starts_with(b".") || (all && hidden))
}

/// The entries to list: a directory's, the file itself as one entry, or a wildcard's matches.
fn entries(a: &Ask) -> Result<(libc::stat, Vec<Entry>), Fail> {
    let rel = vpath::rel(&a.path);
    let st = match a.root.stat(rel) {
        Ok(st) => st,
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) && a.form != Form::Machine => {
            return glob(a).ok_or(Fail::Io(e))?;
        }
        Err(e) => return Err(e.into()),
    };
    if st.st_mode & libc::S_IFMT != libc::S_IFDIR {
        let name = vpath::split(&a.path).map_or("/", |(_, n)| n);
        let e = Entry {
            name: name.as_bytes().to_vec(),
            lstat: st,
            target: Some(st),
        };
        let v = if listing::listable(&e.name) {
            vec![e]
        } else {
            vec![]
        };
        return Ok((st, v));
    }
    let mut v = a.root.read_dir(rel)?;
    v.retain(|e| visible(&e.name, a.all, a.hidden));
    Ok((st, v))
}

/// A wildcard in the last component: its matches in the directory, named as the client gave
/// the directory. `None` when it is no pattern (the caller's `ENOENT` stands).
fn glob(a: &Ask) -> Option<Result<(libc::stat, Vec<Entry>), Fail>> {
    let (dir, pat) = vpath::split(&a.path)?;
    if !vpath::has_magic(pat) {
        return None;
    }
    let prefix = a.given.rfind('/').map_or("", |i| &a.given[..=i]);
    Some((|| {
        let st = a.root.stat(vpath::rel(dir))?;
        let mut v = a.root.read_dir(vpath::rel(dir))?;
        v.retain(|e| {
            visible(&e.name, true, a.hidden)
                && std::str::from_utf8(&e.name).is_ok_and(|n| vpath::matches(pat, n))
        });
        if v.is_empty() {
            return Err(io::Error::from_raw_os_error(libc::ENOENT).into());
        }
        if v.len() > MAX_MATCHES {
            return Err(Fail::TooMany);
        }
        for e in &mut v {
            e.name.splice(0..0, prefix.bytes());
        }
        Ok((st, v))
    })())
}

/// The job: read, filter, render (spooled when big). Stops early once the session is gone.
fn make(a: &Ask, cancel: &Cancel) -> Result<Body, Fail> {
    let (st, ents) = entries(a)?;
    if cancel.is_cancelled() {
        return Ok(Body::Bytes(Vec::new()));
    }
    let mut out = Spool::new();
    match a.form {
        Form::Long => listing::list_to(&ents, a.stat, &mut out)?,
        Form::Names => listing::nlst_to(&ents, &mut out)?,
        Form::Machine => {
            if st.st_mode & libc::S_IFMT != libc::S_IFDIR {
                return Err(Fail::NotDir);
            }
            listing::mlsd_to(&st, &ents, a.write, &mut out)?
        }
    }
    drop(ents);
    Ok(out.finish()?)
}

/// Hands the listing to the pool; input waits until it is answered.
fn start(s: &mut FtpSession, arg: &str, form: Form, stat: bool, cx: &mut Context) {
    let (opts, path) = split_args(arg);
    let Some(p) = super::path(s, path, cx) else {
        return;
    };
    let a = super::auth(s);
    let ask = Ask {
        root: a.root.clone(),
        path: p.clone(),
        given: path.to_string(),
        all: opts.contains('a') || form == Form::Machine,
        hidden: s.shared.cfg.hidden,
        form,
        write: a.write,
        stat,
    };
    s.listing = Some(Pending {
        task: cx.spawn_blocking(move |cancel| make(&ask, cancel)),
        stat: stat.then_some(p),
    });
    cx.pause_input(true);
}

pub fn list(s: &mut FtpSession, arg: &str, form: Form, cx: &mut Context) {
    start(s, arg, form, false, cx);
}

/// The listing's task ended: answer it. `false` when `task` is not the listing's (it is
/// someone else's).
pub fn on_task_done(s: &mut FtpSession, task: TaskId, cx: &mut Context) -> bool {
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

pub fn mlst(s: &mut FtpSession, arg: &str, cx: &mut Context) {
    let Some(p) = super::path(s, arg, cx) else {
        return;
    };
    match super::auth(s).root.stat(vpath::rel(&p)) {
        Ok(st) => {
            let line = listing::facts(&p, &st, listing::kind(&st), super::auth(s).write);
            multi(cx, 250, &format!("Listing {p}"), &[line], "End");
        }
        Err(e) => io_error(cx, &e),
    }
}

pub fn stat(s: &mut FtpSession, arg: &str, cx: &mut Context) {
    if s.xfer.is_some() {
        return reply(cx, 213, "Status: a transfer is in progress.");
    }
    if arg.trim().is_empty() {
        let a = super::auth(s);
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
