//! USER and PASS. `USER` always answers 331, whoever the user is (no enumeration); a wrong
//! password — or an unknown user, checked against a dummy hash with the file's parameters so
//! it costs the same — gets its `530` only after `login_delay` (input waits meanwhile), and
//! the connection is closed after `max_failures` failures. The argon2 check runs on the
//! blocking pool, off the event loop ([`crate::verify`]). Anonymous (`anonymous`/`ftp`) logs in
//! with any password when allowed, seeing `--root`.
//!
//! Before a check is queued, the [`crate::guard`] is asked: a banned address gets `421` and is
//! closed (here and at connect); an address with its share of checks in flight waits, asking
//! again every [`WAIT`], so its flood holds few pool threads and others' logins are not starved. A
//! process runs one check more than an address's share at once ([`crate::verify::permit`]):
//! that bounds its argon2 memory, and still leaves a place for another address.

use crate::config::Anonymous;
use crate::guard::Refused;
use crate::log::{self, Refusal};
use crate::reply::reply;
use crate::state::{Access, Auth, Check, Login, Stage, State};
use bingfa_net::{Context, TaskId, Timer};
use bingfa_root::Root;
use std::sync::Arc;
use std::time::Duration;

pub(crate) fn is_anonymous(name: &str) -> bool {
    name.eq_ignore_ascii_case("anonymous") || name.eq_ignore_ascii_case("ftp")
}

/// At connect: a banned address is told and closed before it can send anything (false).
pub(crate) fn admit(s: &State, cx: &mut Context) -> bool {
    if s.shared.guard.banned(s.peer.ip()).is_some() {
        log::refused(s.peer.ip(), Refusal::Banned);
        banned(cx);
        return false;
    }
    true
}

fn banned(cx: &mut Context) {
    reply(
        cx,
        421,
        "Too many failed logins from your address, try again later.",
    );
    cx.close();
}

pub(crate) fn user(s: &mut State, arg: &str, cx: &mut Context) {
    if s.login.auth().is_some() {
        return reply(cx, 530, "Already logged in.");
    }
    if !super::tls::may_login(s, cx) {
        s.shared.stats.login_refused();
        return;
    }
    s.login = Login::AwaitingPass {
        user: arg.to_string(),
    };
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

/// The session's timer: a check waiting for a place asks again, a failed login's delay ends.
pub(crate) const LOGIN: Timer = Timer("ftp.login");
/// How often a session whose address has its checks in flight asks again.
const WAIT: Duration = Duration::from_millis(20);

pub(crate) fn pass(s: &mut State, arg: &str, cx: &mut Context) {
    if s.login.auth().is_some() {
        return reply(cx, 230, "Already logged in.");
    }
    // The name is used up by this PASS, whatever its outcome.
    let name = match std::mem::replace(&mut s.login, Login::AwaitingUser) {
        Login::AwaitingPass { user } => user,
        other => {
            s.login = other;
            return reply(cx, 503, "Login with USER first.");
        }
    };
    let shared = s.shared.clone();
    if shared.guard.banned(s.peer.ip()).is_some() {
        shared.stats.login_refused();
        log::refused(s.peer.ip(), Refusal::Banned);
        return banned(cx);
    }
    if is_anonymous(&name) && shared.cfg.anonymous != Anonymous::Off {
        let root = shared.anon_root.clone();
        let access = match shared.cfg.anonymous {
            Anonymous::Write => Access::Write,
            Anonymous::Upload => Access::Upload,
            _ => Access::Read,
        };
        return logged_in(s, "anonymous".into(), root, access, cx);
    }
    let (hash, known) = match shared.users.get(&name) {
        Some(a) => (a.hash.clone(), true),
        None => (shared.dummy_hash.clone(), false),
    };
    // Input waits (as during a failed login's delay) until the answer is known.
    s.login = Login::Checking(Check {
        name,
        known,
        stage: Stage::Waiting {
            hash,
            password: arg.to_string(),
        },
    });
    start(s, cx);
}

/// Queue the waiting check if the guard gives it a place (else try again after [`WAIT`]).
fn start(s: &mut State, cx: &mut Context) {
    let Login::Checking(Check {
        stage: Stage::Waiting { hash, password },
        ..
    }) = &s.login
    else {
        return;
    };
    // This process's place first (it is local and cheap), then the address's.
    let max = crate::verify::max_checks(s.shared.guard.cfg.checks_per_ip);
    let Some(permit) = crate::verify::permit(max) else {
        return cx.set_timer(LOGIN, WAIT);
    };
    match s.shared.guard.begin(s.peer.ip()) {
        Ok(lease) => {
            let task = crate::verify::verify(hash.clone(), password, lease, permit);
            // Answered in `on_task_done`, when the pool is done with it.
            cx.watch(&task);
            if let Login::Checking(check) = &mut s.login {
                check.stage = Stage::Running(task);
            }
        }
        Err(Refused::Busy) => cx.set_timer(LOGIN, WAIT),
        Err(Refused::Banned(_)) => {
            s.shared.stats.login_refused();
            log::refused(s.peer.ip(), Refusal::Banned);
            s.login = Login::Closing;
            banned(cx);
        }
    }
}

fn logged_in(s: &mut State, name: String, root: Arc<Root>, access: Access, cx: &mut Context) {
    log::login(s.peer.ip(), &name);
    s.shared.stats.login_ok();
    s.login = Login::LoggedIn(Auth {
        name,
        root,
        access,
        cwd: "/".into(),
    });
    reply(cx, 230, "Login successful.");
}

/// The password check's task ended: log in, or start a failed login's delay. `false` when
/// `task` is not the check's.
pub(crate) fn on_task_done(s: &mut State, task: TaskId, cx: &mut Context) -> bool {
    let Login::Checking(check) = &s.login else {
        return false;
    };
    let ok = match &check.stage {
        Stage::Running(t) if t.id() == task => match t.try_take() {
            // Not possible once the driver says it ended; wait for the next word if it were.
            Ok(None) => return true,
            Ok(Some(ok)) => ok && check.known,
            Err(_lost) => false,
        },
        _ => return false,
    };
    let Login::Checking(check) = std::mem::replace(&mut s.login, Login::Failed) else {
        unreachable!("checking")
    };
    if ok {
        let a = &s.shared.users[&check.name];
        let root = a.root.clone();
        let access = if a.write { Access::Write } else { Access::Read };
        logged_in(s, check.name, root, access, cx);
        s.undefer(cx);
    } else {
        s.shared.stats.login_failed();
        log::login_failed(s.peer.ip(), &check.name);
        s.failures += 1;
        cx.set_timer(LOGIN, s.shared.cfg.login_delay);
    }
    true
}

/// The [`LOGIN`] timer: a waiting check asks for a place again, or a failed login's delay ends.
pub(crate) fn on_timer(s: &mut State, cx: &mut Context) {
    if let Login::Checking(check) = &s.login {
        if matches!(check.stage, Stage::Waiting { .. }) {
            start(s, cx);
        }
        // A running check is answered in `on_task_done`.
        return;
    }
    if !matches!(s.login, Login::Failed) {
        return;
    }
    s.login = Login::AwaitingUser;
    reply(cx, 530, "Login incorrect.");
    if s.failures >= s.shared.cfg.max_failures {
        crate::log::refused(s.peer.ip(), Refusal::TooManyFailures);
        reply(cx, 421, "Too many failed logins, closing.");
        cx.close();
        return;
    }
    s.undefer(cx);
}
