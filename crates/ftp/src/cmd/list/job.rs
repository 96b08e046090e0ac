//! The listing job, run on the blocking pool: the entries (a directory's, a file's, a
//! wildcard's matches), filtered, rendered in the asked form, spooled when big. It owns
//! everything it needs ([`Ask`]) and knows nothing of the session; [`Pending`] is its answer
//! to come.

use super::{Form, MAX_MATCHES};
use crate::listing;
use crate::spool::{Body, Spool};
use crate::vpath;
use bingfa_net::blocking::{Cancel, Task};
use bingfa_root::{Entry, Root};
use std::io;
use std::sync::Arc;

/// What a listing job is asked: everything it needs, owned (it runs on another thread).
pub(super) struct Ask {
    pub(super) root: Arc<Root>,
    /// The virtual path.
    pub(super) path: String,
    /// The path as the client gave it (a wildcard's matches are named under it).
    pub(super) given: String,
    pub(super) all: bool,
    /// The server runs with `--hidden`: dotfiles may be listed.
    pub(super) hidden: bool,
    pub(super) form: Form,
    pub(super) write: bool,
    /// For `STAT`: lines indented, as a multi-line reply's body.
    pub(super) stat: bool,
}

pub(super) enum Fail {
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
pub(crate) struct Pending {
    pub(super) task: Task<Result<Body, Fail>>,
    /// `STAT` of this path (a reply on the control connection), or `None` for the data one.
    pub(super) stat: Option<String>,
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
pub(super) fn make(a: &Ask, cancel: &Cancel) -> Result<Body, Fail> {
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
