//! Who may do what, beyond the users file's `write`: the upload-only anonymous mode and hidden
//! names. The verbs call these checks; each answers the client itself when it refuses.
//!
//! **Upload-only** (`--anonymous upload`, vsftpd's `anon_upload_enable` with its other
//! defaults): `STOR` of a name that does not exist and `STOU`; no replacing (`STOR` over a
//! file, `REST` + `STOR`), no `APPE`, `DELE`, `RNFR`/`RNTO`, `MKD` or `RMD` (those already need
//! `write`, which this mode does not have). A name taken between the `STOR` and the upload's
//! end still wins: the upload is put in place only if the name is free ([`persist`]).
//!
//! **Hidden names** (starting with `.`: `.git`, `.env`): unless the server runs with
//! `--hidden`, no listing shows them and every path through one is answered as missing
//! (`550 No such file or directory.`, the same as a name that does not exist), as
//! `bingfa http serve` answers 404 — one rule for every face of a root.

use crate::cmd::transfer::Mode;
use crate::reply::reply;
use crate::state::{Access, State};
use crate::vpath;
use bingfa_net::Context;

/// Whether a name is hidden (`.git`, `.env`; not `.` or `..`), as HTTP's file server says.
pub(crate) fn is_hidden(name: &[u8]) -> bool {
    name.first() == Some(&b'.') && name != b"." && name != b".."
}

/// Whether the (normalised, absolute) virtual path may be used; `550` as for a missing file
/// if it passes through a hidden name.
pub(crate) fn visible(s: &State, vpath: &str, cx: &mut Context) -> bool {
    if s.shared.cfg.hidden || !vpath.split('/').any(|c| is_hidden(c.as_bytes())) {
        return true;
    }
    reply(cx, 550, "No such file or directory.");
    false
}

/// Whether the user may store to `p` in `mode` (with `rest` as the restart offset): a writer
/// may; an upload-only user only a new name (`STOR` without `REST`, or `STOU`). Answers `550`
/// when not.
pub(crate) fn may_store(s: &State, p: &str, mode: Mode, rest: u64, cx: &mut Context) -> bool {
    let a = s.auth();
    if a.access == Access::Write {
        return true;
    }
    if a.access != Access::Upload {
        reply(cx, 550, "Permission denied.");
        return false;
    }
    let new = match mode {
        Mode::Unique => true,
        Mode::Append => false,
        Mode::Replace => {
            rest == 0
                && matches!(a.root.lstat(vpath::rel(p)),
                    Err(e) if e.raw_os_error() == Some(libc::ENOENT))
        }
    };
    if !new {
        reply(
            cx,
            550,
            "Permission denied: uploads may only create new files.",
        );
    }
    new
}

#[cfg(test)]
mod tests {
    #[test]
    fn hidden_names() {
        use super::is_hidden;
        assert!(is_hidden(b".git") && is_hidden(b".env") && is_hidden(b"..."));
        assert!(!is_hidden(b".") && !is_hidden(b"..") && !is_hidden(b"a.b") && !is_hidden(b""));
    }
}
