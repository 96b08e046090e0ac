//! Reply formatting (RFC 959 §4.2): `CODE text` on one line, or a multi-line reply
//! `CODE-first`, continuation lines, `CODE last`. Continuation lines start with a space so a
//! line of the body can never be mistaken for the end (a file named `226 x` in `STAT`).

use bingfa_net::Context;

/// A one-line reply. CR and LF in `text` (from a file name) would split it: they become spaces.
pub(crate) fn reply(cx: &mut Context, code: u16, text: &str) {
    let text = text.replace(['\r', '\n'], " ");
    cx.write(format!("{code} {text}\r\n").as_bytes());
}

/// A multi-line reply: `code-first`, each of `lines` indented by one space, `code last`.
pub(crate) fn multi(cx: &mut Context, code: u16, first: &str, lines: &[String], last: &str) {
    let mut s = format!("{code}-{first}\r\n");
    for l in lines {
        s.push(' ');
        s.push_str(&l.replace(['\r', '\n'], " "));
        s.push_str("\r\n");
    }
    s.push_str(&format!("{code} {last}\r\n"));
    cx.write(s.as_bytes());
}

/// A path inside a `257` reply: quoted, with embedded quotes doubled (RFC 959 appendix II).
pub(crate) fn quote_path(p: &str) -> String {
    format!("\"{}\"", p.replace('"', "\"\""))
}

/// The reply for a failed file-system operation: the user learns what went wrong, never
/// anything about what lies outside the root (an escape looks like a missing permission).
pub(crate) fn io_error(cx: &mut Context, e: &std::io::Error) {
    if bingfa_root::is_escape(e) {
        crate::log::refused(cx.info().peer.ip(), crate::log::Refusal::JailEscape);
        return reply(cx, 550, "Permission denied.");
    }
    match e.raw_os_error() {
        Some(libc::ENOSPC) | Some(libc::EDQUOT) | Some(libc::EFBIG) => {
            reply(cx, 452, "Insufficient storage space.")
        }
        Some(libc::ENOENT) | Some(libc::ENOTDIR) => reply(cx, 550, "No such file or directory."),
        Some(libc::EEXIST) => reply(cx, 550, "File exists."),
        Some(libc::ENOTEMPTY) => reply(cx, 550, "Directory not empty."),
        Some(libc::EISDIR) => reply(cx, 550, "Is a directory."),
        Some(libc::EACCES) | Some(libc::EPERM) | Some(libc::EINVAL) => {
            reply(cx, 550, "Permission denied.")
        }
        Some(libc::ENAMETOOLONG) => reply(cx, 550, "File name too long."),
        _ if e.kind() == std::io::ErrorKind::InvalidInput => {
            reply(cx, 550, "No such file or directory.")
        }
        _ => reply(cx, 451, "Local error in processing."),
    }
}
