//! Shared test support: run each test under both start methods, count zombies.
#![allow(dead_code)]

use std::time::{Duration, Instant};

/// Generate `spawn::NAME` and `fork::NAME` tests calling `NAME(StartMethod)`.
#[macro_export]
macro_rules! both_methods {
    ($($name:ident),* $(,)?) => {
        mod spawn {
            $( #[test] fn $name() { super::$name(bingfa_mp::StartMethod::Spawn) } )*
        }
        mod fork {
            $( #[test] fn $name() { super::$name(bingfa_mp::StartMethod::Fork) } )*
        }
    };
}

/// Children of this process in state Z (zombies), from /proc.
pub(crate) fn zombies() -> usize {
    let me = std::process::id().to_string();
    let mut n = 0;
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else {
            continue;
        };
        // pid (comm) state ppid ...; comm may contain spaces, so split after the last ')'.
        let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
            continue;
        };
        let mut f = rest.split_whitespace();
        let (state, ppid) = (f.next(), f.next());
        if state == Some("Z") && ppid == Some(me.as_str()) {
            n += 1;
        }
    }
    n
}

/// Poll `f` until it is true or `timeout` passes.
pub(crate) fn eventually(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + timeout;
    while Instant::now() < end {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    f()
}

/// Is a process with this pid still there (and not a zombie)?
pub(crate) fn pid_alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => !s
            .rsplit_once(')')
            .map(|(_, r)| r.trim_start().starts_with('Z'))
            .unwrap_or(false),
        Err(_) => false,
    }
}
