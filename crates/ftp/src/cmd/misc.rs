//! SYST TYPE STRU MODE NOOP FEAT OPTS HELP QUIT: the small verbs. Only what the server really
//! does is offered: TYPE A/I (L 8 = I), STRU F, MODE S; FEAT lists the RFC 2389/2428/3659
//! extensions implemented, MFMT (draft-somers-ftp-mfxx), and RFC 4217's when TLS is.

use crate::config::TlsPolicy;
use crate::reply::{multi, reply};
use crate::state::State;
use bingfa_net::Context;

pub(crate) fn type_(s: &mut State, arg: &str, cx: &mut Context) {
    match arg
        .to_ascii_uppercase()
        .split_whitespace()
        .collect::<Vec<_>>()[..]
    {
        ["A"] | ["A", "N"] => {
            s.ascii = true;
            reply(cx, 200, "Switching to ASCII mode.");
        }
        ["I"] | ["L", "8"] => {
            s.ascii = false;
            reply(cx, 200, "Switching to Binary mode.");
        }
        _ => reply(cx, 504, "Unsupported TYPE."),
    }
}

pub(crate) fn stru(arg: &str, cx: &mut Context) {
    if arg.eq_ignore_ascii_case("F") {
        reply(cx, 200, "Structure set to F.");
    } else {
        reply(cx, 504, "Only STRU F is supported.");
    }
}

pub(crate) fn mode(arg: &str, cx: &mut Context) {
    if arg.eq_ignore_ascii_case("S") {
        reply(cx, 200, "Mode set to S.");
    } else {
        reply(cx, 504, "Only MODE S is supported.");
    }
}

pub(crate) fn feat(s: &State, cx: &mut Context) {
    let tls: &[&str] = if s.shared.cfg.tls == TlsPolicy::Off {
        &[]
    } else {
        &["AUTH TLS", "PBSZ", "PROT"]
    };
    let f: Vec<String> = tls
        .iter()
        .chain(
            [
                "EPRT",
                "EPSV",
                "MDTM",
                "MFMT",
                "MLST type*;size*;modify*;perm*;unix.mode*;",
                "PASV",
                "REST STREAM",
                "SIZE",
                "TVFS",
                "UTF8",
            ]
            .iter(),
        )
        .map(|s| s.to_string())
        .collect();
    multi(cx, 211, "Features:", &f, "End");
}

pub(crate) fn opts(arg: &str, cx: &mut Context) {
    let up = arg.to_ascii_uppercase();
    let mut w = up.split_whitespace();
    match (w.next(), w.next()) {
        // Paths are always UTF-8 here; the option only confirms it.
        (Some("UTF8"), Some("ON")) | (Some("UTF8"), None) => reply(cx, 200, "Always in UTF8 mode."),
        (Some("UTF8"), Some("OFF")) => reply(cx, 504, "UTF8 cannot be turned off."),
        (Some("MLST"), _) => reply(cx, 200, "MLST OPTS type;size;modify;perm;unix.mode;"),
        _ => reply(cx, 501, "Option not understood."),
    }
}

pub(crate) fn help(cx: &mut Context) {
    let lines = [
        "ABOR ALLO APPE AUTH CDUP CWD  DELE EPRT EPSV FEAT HELP LIST MDTM",
        "MFMT MKD  MLSD MLST MODE NLST NOOP OPTS PASS PASV PBSZ PORT PROT",
        "PWD  QUIT REST RETR RMD  RNFR RNTO SIZE STAT STOR STOU STRU SYST",
        "TYPE USER XCUP XCWD XMKD XPWD XRMD",
    ]
    .map(String::from);
    multi(
        cx,
        214,
        "The following commands are recognized.",
        &lines,
        "Help OK.",
    );
}

pub(crate) fn quit(cx: &mut Context) {
    reply(cx, 221, "Goodbye.");
    cx.close();
}
