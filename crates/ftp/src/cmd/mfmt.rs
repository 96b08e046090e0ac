//! MFMT (draft-somers-ftp-mfxx, as pure-ftpd, ProFTPD and pyftpdlib have it): `MFMT
//! YYYYMMDDHHMMSS path` sets a file's (or directory's) modification time, UTC, and answers
//! `213 Modify=YYYYMMDDHHMMSS; path` with the time now on disk. Sync tools (rclone) use it to
//! keep the times of what they upload. It changes a file, so it needs write permission.

use crate::listing;
use crate::reply::{io_error, reply};
use crate::state::State;
use crate::vpath;
use bingfa_net::Context;

pub(crate) fn mfmt(s: &mut State, arg: &str, cx: &mut Context) {
    let Some((when, name)) = arg.split_once(' ').filter(|(_, n)| !n.is_empty()) else {
        return reply(cx, 501, "Usage: MFMT YYYYMMDDHHMMSS path");
    };
    let Some(t) = listing::parse_timeval(when) else {
        return reply(cx, 501, "Bad time: YYYYMMDDHHMMSS (UTC) expected.");
    };
    if !super::may_write(s, cx) {
        return;
    }
    let Some(p) = super::path(s, name, cx) else {
        return;
    };
    match s.auth().root.set_mtime(vpath::rel(&p), t) {
        Ok(st) => reply(
            cx,
            213,
            &format!("Modify={}; {name}", listing::timeval(st.st_mtime)),
        ),
        Err(e) => io_error(cx, &e),
    }
}
