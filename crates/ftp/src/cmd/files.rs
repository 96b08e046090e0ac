//! DELE MKD RMD RNFR RNTO SIZE MDTM (and XMKD XRMD): one file-system call each, beneath the
//! user's root; the changing ones need write permission.

use crate::listing;
use crate::reply::{io_error, quote_path, reply};
use crate::state::State;
use crate::vpath;
use bingfa_net::Context;

/// The path, if the user may change it (`550` otherwise, or for the root itself).
fn target(s: &State, arg: &str, cx: &mut Context) -> Option<String> {
    if !super::may_write(s, cx) {
        return None;
    }
    let p = super::path(s, arg, cx)?;
    if p == "/" {
        reply(cx, 550, "Permission denied.");
        return None;
    }
    Some(p)
}

pub(crate) fn dele(s: &mut State, arg: &str, cx: &mut Context) {
    let Some(p) = target(s, arg, cx) else { return };
    match s.auth().root.unlink(vpath::rel(&p)) {
        Ok(()) => reply(cx, 250, "Delete operation successful."),
        Err(e) => io_error(cx, &e),
    }
}

pub(crate) fn mkd(s: &mut State, arg: &str, cx: &mut Context) {
    let Some(p) = target(s, arg, cx) else { return };
    match s.auth().root.mkdir(vpath::rel(&p)) {
        Ok(()) => reply(cx, 257, &format!("{} created.", quote_path(&p))),
        Err(e) => io_error(cx, &e),
    }
}

pub(crate) fn rmd(s: &mut State, arg: &str, cx: &mut Context) {
    let Some(p) = target(s, arg, cx) else { return };
    match s.auth().root.rmdir(vpath::rel(&p)) {
        Ok(()) => reply(cx, 250, "Remove directory operation successful."),
        Err(e) => io_error(cx, &e),
    }
}

pub(crate) fn rnfr(s: &mut State, arg: &str, cx: &mut Context) {
    let Some(p) = target(s, arg, cx) else { return };
    match s.auth().root.lstat(vpath::rel(&p)) {
        Ok(_) => {
            s.rnfr = Some(p);
            reply(cx, 350, "Ready for RNTO.");
        }
        Err(e) => io_error(cx, &e),
    }
}

pub(crate) fn rnto(s: &mut State, arg: &str, from: Option<String>, cx: &mut Context) {
    let Some(from) = from else {
        return reply(cx, 503, "RNFR required first.");
    };
    let Some(to) = target(s, arg, cx) else { return };
    match s.auth().root.rename(vpath::rel(&from), vpath::rel(&to)) {
        Ok(()) => reply(cx, 250, "Rename successful."),
        Err(e) => io_error(cx, &e),
    }
}

fn regular(s: &State, arg: &str, cx: &mut Context) -> Option<libc::stat> {
    let p = super::path(s, arg, cx)?;
    match s.auth().root.stat(vpath::rel(&p)) {
        Ok(st) if st.st_mode & libc::S_IFMT == libc::S_IFREG => Some(st),
        Ok(_) => {
            reply(cx, 550, "Not a plain file.");
            None
        }
        Err(e) => {
            io_error(cx, &e);
            None
        }
    }
}

pub(crate) fn size(s: &mut State, arg: &str, cx: &mut Context) {
    if s.ascii {
        // The size on the wire in TYPE A is not the file's (LF → CRLF), and computing it
        // means reading the whole file: refused, as ProFTPD and vsftpd do.
        return reply(cx, 550, "SIZE not allowed in ASCII mode: TYPE I first.");
    }
    if let Some(st) = regular(s, arg, cx) {
        reply(cx, 213, &st.st_size.to_string());
    }
}

pub(crate) fn mdtm(s: &mut State, arg: &str, cx: &mut Context) {
    if let Some(st) = regular(s, arg, cx) {
        reply(cx, 213, &listing::timeval(st.st_mtime));
    }
}
