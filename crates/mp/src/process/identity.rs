//! Who a process is (Python's `current_process()`, `parent_process()`): its name, daemon flag
//! and parent, set when bingfa-mp starts it as a child; and the process-wide facts beside it
//! (`active_children`, `cpu_count`).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use crate::children::{self};

/// Who this process is (Python's `current_process()`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessInfo {
    /// The process id.
    pub pid: u32,
    /// The name given at start (Python's `name`).
    pub name: String,
    /// Whether it was started as a daemon.
    pub daemon: bool,
}

/// This process's parent, when it was started by bingfa-mp (Python's `parent_process()`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParentProcess {
    /// The parent's process id.
    pub pid: u32,
    /// The parent's name.
    pub name: String,
}

impl ParentProcess {
    /// True while the parent lives: once it dies, this process is re-parented.
    pub fn is_alive(&self) -> bool {
        // SAFETY: getppid cannot fail and takes no pointer.
        unsafe { libc::getppid() as u32 == self.pid }
    }
}

pub(super) struct Identity {
    name: String,
    daemon: bool,
    parent: Option<ParentProcess>,
}

pub(super) static IDENTITY: Mutex<Option<Identity>> = Mutex::new(None);
pub(super) static COUNTER: AtomicUsize = AtomicUsize::new(0);

fn with_identity<T>(f: impl FnOnce(&mut Identity) -> T) -> T {
    let mut g = IDENTITY.lock().unwrap_or_else(|e| e.into_inner());
    let id = g.get_or_insert_with(|| Identity {
        name: "MainProcess".into(),
        daemon: false,
        parent: None,
    });
    f(id)
}

pub(crate) fn become_child(name: String, daemon: bool, parent: ParentProcess) {
    let mut g = IDENTITY.lock().unwrap_or_else(|e| e.into_inner());
    set_child_identity(&mut g, name, daemon, parent);
}

pub(super) fn set_child_identity(
    slot: &mut Option<Identity>,
    name: String,
    daemon: bool,
    parent: ParentProcess,
) {
    COUNTER.store(0, Ordering::Relaxed);
    *slot = Some(Identity {
        name,
        daemon,
        parent: Some(parent),
    });
}

/// This process: pid, name (`MainProcess` at the top) and daemon flag.
pub fn current_process() -> ProcessInfo {
    with_identity(|id| ProcessInfo {
        pid: std::process::id(),
        name: id.name.clone(),
        daemon: id.daemon,
    })
}

/// The process that started this one, or `None` in the main process.
pub fn parent_process() -> Option<ParentProcess> {
    with_identity(|id| id.parent.clone())
}

/// Children still running, reaping any that finished (as Python's `active_children`).
pub fn active_children() -> Vec<ProcessInfo> {
    children::active()
        .iter()
        .map(|c| ProcessInfo {
            pid: c.pid as u32,
            name: c.name.clone(),
            daemon: c.daemon,
        })
        .collect()
}

/// Number of CPUs online (Python's `cpu_count()`).
pub fn cpu_count() -> usize {
    // SAFETY: sysconf takes no pointer.
    let n = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) };
    if n < 1 {
        1
    } else {
        n as usize
    }
}
