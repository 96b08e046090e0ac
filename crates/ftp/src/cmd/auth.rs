//! USER and PASS. `USER` always answers 331, whoever the user is (no enumeration); a wrong
//! password — or an unknown user, checked against a dummy hash so it costs the same — gets its
//! `530` only after `login_delay` (input waits meanwhile), and the connection is closed after
//! `max_failures` failures. The argon2 check runs on the verify pool, off the event loop. Anonymous (`anonymous`/`ftp`) logs in with any password when
//! allowed, seeing `--root`.

use crate::config::Anonymous;
use crate::reply::reply;
use crate::session::{Auth, FtpSession};
use bingfa_net::blocking::Task;
use bingfa_net::Context;
use bingfa_root::Root;
use std::sync::Arc;
use std::time::Duration;

fn is_anonymous(name: &str) -> bool {
    name.eq_ignore_ascii_case("anonymous") || name.eq_ignore_ascii_case("ftp")
}

pub fn user(s: &mut FtpSession, arg: &str, cx: &mut Context) {
    if s.auth.is_some() {
        return reply(cx, 530, "Already logged in.");
    }
    if !super::tls::may_login(s, cx) {
        return;
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

/// A password check running on the blocking pool (see [`crate::verify`]).
pub struct Check {
    name: String,
    /// Whether `name` is a user at all (an unknown one is checked against a dummy hash, so it
    /// takes as long, and fails).
    known: bool,
    answer: Task<bool>,
}

/// How often a session looks for its password check's answer.
const POLL: Duration = Duration::from_millis(2);

pub fn pass(s: &mut FtpSession, arg: &str, cx: &mut Context) {
    if s.auth.is_some() {
        return reply(cx, 230, "Already logged in.");
    }
    let Some(name) = s.user.take() else {
        return reply(cx, 503, "Login with USER first.");
    };
    let shared = s.shared.clone();
    if is_anonymous(&name) && shared.cfg.anonymous != Anonymous::Off {
        let root = shared.anon_root.clone();
        let write = shared.cfg.anonymous == Anonymous::Write;
        return logged_in(s, "anonymous".into(), root, write, cx);
    }
    let (hash, known) = match shared.users.get(&name) {
        Some(a) => (a.hash.as_str(), true),
        None => (shared.dummy_hash.as_str(), false),
    };
    s.checking = Some(Check {
        name,
        known,
        answer: crate::verify::verify(hash, arg),
    });
    // Input waits (as during a failed login's delay) until the answer is known.
    s.delaying = true;
    cx.set_timer(POLL);
}

fn logged_in(s: &mut FtpSession, name: String, root: Arc<Root>, write: bool, cx: &mut Context) {
    tracing::debug!(user = %name, peer = %s.peer, "login");
    s.auth = Some(Auth { name, root, write });
    s.cwd = "/".into();
    reply(cx, 230, "Login successful.");
}

/// The session timer: the password check's answer, or the end of a failed login's delay.
pub fn on_timer(s: &mut FtpSession, cx: &mut Context) {
    if let Some(check) = &s.checking {
        let ok = match check.answer.try_take() {
            Ok(None) => return cx.set_timer(POLL),
            Ok(Some(ok)) => ok && check.known,
            Err(_lost) => false,
        };
        let check = s.checking.take().expect("checking");
        if ok {
            let a = &s.shared.users[&check.name];
            let (root, write) = (a.root.clone(), a.write);
            s.delaying = false;
            logged_in(s, check.name, root, write, cx);
            s.undefer(cx);
        } else {
            s.failures += 1;
            cx.set_timer(s.shared.cfg.login_delay);
        }
        return;
    }
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
