//! USER and PASS. `USER` always answers 331, whoever the user is (no enumeration); a wrong
//! password — or an unknown user, checked against a dummy hash so it costs the same — gets its
//! `530` only after `login_delay` (input waits meanwhile), and the connection is closed after
//! `max_failures` failures. Anonymous (`anonymous`/`ftp`) logs in with any password when
//! allowed, seeing `--root`.

use crate::config::Anonymous;
use crate::reply::reply;
use crate::session::{Auth, FtpSession};
use crate::users;
use bingfa_net::Context;

fn is_anonymous(name: &str) -> bool {
    name.eq_ignore_ascii_case("anonymous") || name.eq_ignore_ascii_case("ftp")
}

pub fn user(s: &mut FtpSession, arg: &str, cx: &mut Context) {
    if s.auth.is_some() {
        return reply(cx, 530, "Already logged in.");
    }
    s.user = Some(arg.to_string());
    if is_anonymous(arg) && s.shared.cfg.anonymous != Anonymous::Off {
        reply(
            cx,
            331,
            "Anonymous login ok, send your email address as password.",
        );
    } else {
        reply(cx, 331, "Please specify the password.");
    }
}

pub fn pass(s: &mut FtpSession, arg: &str, cx: &mut Context) {
    if s.auth.is_some() {
        return reply(cx, 230, "Already logged in.");
    }
    let Some(name) = s.user.take() else {
        return reply(cx, 503, "Login with USER first.");
    };
    let shared = s.shared.clone();
    let auth = if is_anonymous(&name) && shared.cfg.anonymous != Anonymous::Off {
        Some(Auth {
            name: "anonymous".into(),
            root: shared.anon_root.clone(),
            write: shared.cfg.anonymous == Anonymous::Write,
        })
    } else {
        match shared.users.get(&name) {
            Some(a) if users::verify(&a.hash, arg) => Some(Auth {
                name,
                root: a.root.clone(),
                write: a.write,
            }),
            Some(_) => None,
            None => {
                let _ = users::verify(&shared.dummy_hash, arg);
                None
            }
        }
    };
    match auth {
        Some(a) => {
            tracing::debug!(user = %a.name, peer = %s.peer, "login");
            s.auth = Some(a);
            s.cwd = "/".into();
            reply(cx, 230, "Login successful.");
        }
        None => {
            s.failures += 1;
            s.delaying = true;
            cx.set_timer(shared.cfg.login_delay);
        }
    }
}

/// The failed login's delay is over: answer, and close after too many failures.
pub fn on_timer(s: &mut FtpSession, cx: &mut Context) {
    if !s.delaying {
        return;
    }
    s.delaying = false;
    reply(cx, 530, "Login incorrect.");
    if s.failures >= s.shared.cfg.max_failures {
        reply(cx, 421, "Too many failed logins, closing.");
        cx.close();
        return;
    }
    s.undefer(cx);
}
