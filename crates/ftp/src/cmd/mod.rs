//! The verbs, one file per family (as mini-redis's `cmd/`): `auth` USER PASS; `nav` PWD
//! CWD CDUP; [`data`] PORT PASV EPRT EPSV; `transfer` RETR STOR APPE STOU REST ABOR ALLO;
//! `list` LIST NLST MLSD MLST STAT; `files` DELE MKD RMD RNFR RNTO SIZE MDTM; `mfmt`
//! MFMT; `misc` SYST TYPE STRU MODE NOOP FEAT OPTS HELP QUIT; `tls` AUTH PBSZ PROT (RFC
//! 4217). RFC 1123's X-aliases (XPWD XCWD XCUP XMKD XRMD) map onto their verbs here.

pub(crate) mod auth;
pub mod data;
mod files;
pub(crate) mod list;
mod mfmt;
mod misc;
mod nav;
mod tls;
pub(crate) mod transfer;

use crate::reply::reply;
use crate::state::{PasvKind, State};
use bingfa_net::Context;

/// Verbs answered before login.
const OPEN: &[&str] = &[
    "USER", "PASS", "QUIT", "SYST", "FEAT", "HELP", "NOOP", "OPTS", "AUTH", "PBSZ", "PROT",
];

pub(crate) fn dispatch(s: &mut State, verb: &str, arg: &str, cx: &mut Context) {
    if s.login.auth().is_none() && !OPEN.contains(&verb) {
        return reply(cx, 530, "Please login with USER and PASS.");
    }
    // RNTO must come right after RNFR.
    let rnfr = s.rnfr.take();
    match verb {
        "USER" => auth::user(s, arg, cx),
        "PASS" => auth::pass(s, arg, cx),
        "PWD" | "XPWD" => nav::pwd(s, cx),
        "CWD" | "XCWD" => nav::cwd(s, arg, cx),
        "CDUP" | "XCUP" => nav::cwd(s, "..", cx),
        "PORT" => data::port(s, arg, cx),
        "EPRT" => data::eprt(s, arg, cx),
        "PASV" => data::pasv(s, PasvKind::Pasv, cx),
        "EPSV" => data::epsv(s, arg, cx),
        "RETR" => transfer::retr(s, arg, cx),
        "STOR" => transfer::stor(s, arg, transfer::Mode::Replace, cx),
        "APPE" => transfer::stor(s, arg, transfer::Mode::Append, cx),
        "STOU" => transfer::stor(s, arg, transfer::Mode::Unique, cx),
        "REST" => transfer::rest(s, arg, cx),
        "ABOR" => transfer::abor(s, cx),
        "ALLO" => reply(cx, 202, "No storage allocation necessary."),
        "LIST" => list::list(s, arg, list::Form::Long, cx),
        "NLST" => list::list(s, arg, list::Form::Names, cx),
        "MLSD" => list::list(s, arg, list::Form::Machine, cx),
        "MLST" => list::mlst(s, arg, cx),
        "STAT" => list::stat(s, arg, cx),
        "DELE" => files::dele(s, arg, cx),
        "MKD" | "XMKD" => files::mkd(s, arg, cx),
        "RMD" | "XRMD" => files::rmd(s, arg, cx),
        "RNFR" => files::rnfr(s, arg, cx),
        "RNTO" => files::rnto(s, arg, rnfr, cx),
        "SIZE" => files::size(s, arg, cx),
        "MDTM" => files::mdtm(s, arg, cx),
        "MFMT" => mfmt::mfmt(s, arg, cx),
        "SYST" => reply(cx, 215, "UNIX Type: L8"),
        "TYPE" => misc::type_(s, arg, cx),
        "STRU" => misc::stru(arg, cx),
        "MODE" => misc::mode(arg, cx),
        "NOOP" => reply(cx, 200, "NOOP ok."),
        "FEAT" => misc::feat(s, cx),
        "OPTS" => misc::opts(arg, cx),
        "HELP" => misc::help(cx),
        "QUIT" => misc::quit(cx),
        "AUTH" => tls::auth(s, arg, cx),
        "PBSZ" => tls::pbsz(s, arg, cx),
        "PROT" => tls::prot(s, arg, cx),
        _ => reply(cx, 502, "Command not implemented."),
    }
}

/// `arg` as an absolute virtual path, or `550` when it would climb above the root (or
/// passes through a hidden name: [`crate::perm::visible`]). A path
/// with control characters is refused (`553`) by every verb: listings never show such names
/// (see [`crate::listing::listable`]), so none may be made or reached either. (A NUL is left
/// to the file system, which has no such name.)
pub(crate) fn path(s: &State, arg: &str, cx: &mut Context) -> Option<String> {
    if arg.chars().any(|c| c.is_control() && c != '\0') {
        reply(cx, 553, "File name not allowed.");
        return None;
    }
    let p = crate::vpath::resolve(&s.auth().cwd, arg);
    if p.is_none() {
        reply(cx, 550, "Permission denied.");
    }
    p.filter(|p| crate::perm::visible(s, p, cx))
}

/// Whether the user may change files; answers `550` if not.
pub(crate) fn may_write(s: &State, cx: &mut Context) -> bool {
    let w = s.auth().write();
    if !w {
        reply(cx, 550, "Permission denied.");
    }
    w
}
