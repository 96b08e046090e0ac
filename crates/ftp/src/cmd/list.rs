//! LIST NLST MLSD (over the data connection) and MLST STAT (on the control connection).
//! `ls`-style options (`LIST -la dir`) are accepted; names starting with a dot are shown by
//! LIST/NLST only with `-a` (as `ls`), by MLSD always; an upload's hidden temporary name never.

use crate::listing;
use crate::reply::{io_error, multi, reply};
use crate::session::FtpSession;
use crate::vpath;
use bingfa_net::Context;
use bingfa_root::Entry;

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Form {
    Long,
    Names,
    Machine,
}

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

/// The entries to list: a directory's, or the file itself as one entry.
fn entries(s: &FtpSession, p: &str, all: bool) -> std::io::Result<(libc::stat, Vec<Entry>)> {
    let root = &super::auth(s).root;
    let st = root.stat(vpath::rel(p))?;
    if st.st_mode & libc::S_IFMT != libc::S_IFDIR {
        let name = vpath::split(p).map_or("/", |(_, n)| n);
        let e = Entry {
            name: name.as_bytes().to_vec(),
            lstat: st,
            target: Some(st),
        };
        return Ok((st, vec![e]));
    }
    let mut v = root.read_dir(vpath::rel(p))?;
    v.retain(|e| !e.name.starts_with(b".bingfa-upload-") && (all || !e.name.starts_with(b".")));
    v.retain(|e| crate::perm::listed(s, &e.name));
    Ok((st, v))
}

pub fn list(s: &mut FtpSession, arg: &str, form: Form, cx: &mut Context) {
    let (opts, path) = split_args(arg);
    let Some(p) = super::path(s, path, cx) else {
        return;
    };
    let (st, ents) = match entries(s, &p, opts.contains('a') || form == Form::Machine) {
        Ok(x) => x,
        Err(e) => return io_error(cx, &e),
    };
    let body = match form {
        Form::Long => listing::list(&ents),
        Form::Names => listing::nlst(&ents),
        Form::Machine => {
            if st.st_mode & libc::S_IFMT != libc::S_IFDIR {
                return reply(cx, 501, "MLSD needs a directory.");
            }
            listing::mlsd(&st, &ents, super::auth(s).write)
        }
    };
    super::transfer::send_bytes(s, body, "Here comes the directory listing.", cx);
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
    let (opts, path) = split_args(arg);
    let Some(p) = super::path(s, path, cx) else {
        return;
    };
    match entries(s, &p, opts.contains('a')) {
        Ok((_, ents)) => {
            let now = listing::now();
            let lines: Vec<String> = ents
                .iter()
                .map(|e| {
                    listing::ls_line(
                        &String::from_utf8_lossy(&e.name),
                        &e.target.unwrap_or(e.lstat),
                        now,
                    )
                })
                .collect();
            multi(cx, 213, &format!("Status of {p}:"), &lines, "End of status");
        }
        Err(e) => io_error(cx, &e),
    }
}
