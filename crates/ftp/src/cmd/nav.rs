//! PWD, CWD, CDUP (and XPWD XCWD XCUP). The working directory is virtual (`/` is the user's
//! root); CWD checks the target resolves beneath the root and is a directory.

use crate::reply::{io_error, quote_path, reply};
use crate::state::State;
use crate::vpath;
use bingfa_net::Context;

pub(crate) fn pwd(s: &State, cx: &mut Context) {
    reply(
        cx,
        257,
        &format!("{} is the current directory.", quote_path(&s.auth().cwd)),
    );
}

pub(crate) fn cwd(s: &mut State, arg: &str, cx: &mut Context) {
    let Some(p) = super::path(s, arg, cx) else {
        return;
    };
    match s.auth().root.stat(vpath::rel(&p)) {
        Ok(st) if st.st_mode & libc::S_IFMT == libc::S_IFDIR => {
            s.auth_mut().cwd = p;
            reply(cx, 250, "Directory successfully changed.");
        }
        Ok(_) => reply(cx, 550, "Not a directory."),
        Err(e) => io_error(cx, &e),
    }
}
