//! Starting a child: re-executing this binary with a bootstrap socket (spawn) or forking the
//! caller with every lock of ours held across the fork; and the child's side, which reads its
//! bootstrap, takes its new identity, runs the function and reports back, never returning.

use super::entry::{addr_of, panic_message, Entry, Outcome};
use super::identity::{become_child, set_child_identity, ParentProcess, IDENTITY};
use super::{Boot, ENV_CHILD};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::panic::{catch_unwind, AssertUnwindSafe};

use crate::children::{self};
use crate::error::ProcessError;
use crate::handle::{self, Tracked};
use crate::{codec, sys, wire};

fn set_death_signal(parent: libc::pid_t) -> std::io::Result<()> {
    // SAFETY: PR_SET_PDEATHSIG takes integers only; it is async-signal-safe (a raw system call), as
    // this must be between fork and exec.
    sys::cvt(unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) })?;
    // The parent may have died before the prctl took effect: then we were already re-parented.
    // SAFETY: getppid cannot fail and takes no pointer.
    if unsafe { libc::getppid() } != parent {
        // SAFETY: _exit is async-signal-safe and runs none of the parent's copied destructors.
        unsafe { libc::_exit(1) };
    }
    Ok(())
}

pub(super) fn launch_spawn(
    boot: &Boot,
    fds: &[RawFd],
) -> Result<(libc::pid_t, Tracked), ProcessError> {
    let (parent_end, child_end) = Tracked::create_pair(sys::socketpair)?;
    let child_raw = child_end.as_raw_fd();
    let daemon = boot.daemon;
    let parent = boot.parent_pid;
    let mut cmd = std::process::Command::new("/proc/self/exe");
    if let Some(arg0) = std::env::args_os().next() {
        cmd.arg0(arg0);
    }
    cmd.env(ENV_CHILD, child_raw.to_string());
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            sys::set_inheritable(child_raw)?;
            if daemon {
                set_death_signal(parent)?;
            }
            Ok(())
        });
    }
    let child = cmd.spawn().map_err(ProcessError::Start)?;
    drop(child_end);
    let pid = child.id() as libc::pid_t;
    let payload = codec::encode(boot)?;
    // If the child died at once the send fails with EPIPE; join then reports how it died.
    let _ = wire::send_frame(&parent_end, &payload, fds);
    Ok((pid, parent_end))
}

pub(super) fn launch_fork(
    boot: Boot,
    fds: &[RawFd],
) -> Result<(libc::pid_t, Tracked), ProcessError> {
    use std::io::Write;
    let (parent_end, child_end) = Tracked::create_pair(sys::socketpair)?;
    // Every lock the child may take is held across fork(), so no thread of ours is inside one
    // when memory is copied: a lock held by a thread that does not exist in the child would
    // never be released there. The standard streams first (another thread may be in the middle
    // of `println!`), flushed so buffered output is not written twice; then bingfa-mp's own.
    let mut out = std::io::stdout().lock();
    let mut err = std::io::stderr().lock();
    let _ = out.flush();
    let _ = err.flush();
    let mut identity = IDENTITY.lock().unwrap_or_else(|e| e.into_inner());
    let fork_fds = handle::fork_guard();
    let fork_children = children::fork_locks();
    // SAFETY: every lock this crate and std's stdio take is held across the fork (above), so the
    // child finds none of them held by a thread it does not have; glibc's own fork resets malloc's
    // locks. Other locks held by the parent's other threads (the user's) may be held forever in the
    // child: a hang, never memory unsafety, and the documented cost of StartMethod::Fork, as in
    // Python. The child never returns into the parent's frames: run_child ends in _exit.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        let dups = fork_fds.child_adopt(fds, child_end.as_raw_fd());
        fork_children.child_reset();
        set_child_identity(
            &mut identity,
            boot.name.clone(),
            boot.daemon,
            ParentProcess {
                pid: boot.parent_pid as u32,
                name: boot.parent_name.clone(),
            },
        );
        // The forking thread owns these in the child too (the same thread, copied).
        drop(identity);
        drop(err);
        drop(out);
        if boot.daemon && set_death_signal(boot.parent_pid).is_err() {
            // SAFETY: _exit is async-signal-safe and runs none of the parent's copied destructors.
            unsafe { libc::_exit(1) };
        }
        // The parent's copy of the handles lives on in this address space but is never dropped
        // here: run_child ends in _exit.
        run_child(boot.entry, boot.func, &boot.args, dups, child_end);
    }
    drop(fork_children);
    drop(fork_fds);
    drop(identity);
    drop(err);
    drop(out);
    if pid < 0 {
        return Err(ProcessError::Start(std::io::Error::last_os_error()));
    }
    drop(child_end);
    Ok((pid, parent_end))
}

/// Run the child's function and report back; never returns.
pub(crate) fn run_child(
    entry: usize,
    func: usize,
    args: &[u8],
    fds: Vec<OwnedFd>,
    sock: Tracked,
) -> ! {
    use std::io::Write;
    // SAFETY: the parent recorded the offset of an `Entry` trampoline of this binary.
    let entry = unsafe { std::mem::transmute::<usize, Entry>(addr_of(entry)) };
    // Nothing may unwind out of here: in a fork child the frames above belong to a copy of
    // the parent, and in a spawned child to `main` before it started.
    let ran = catch_unwind(AssertUnwindSafe(|| {
        handle::providing(fds, || entry(addr_of(func), args))
    }));
    let (bytes, code) = ran.unwrap_or_else(|p| {
        // `Outcome::Codec` encodes the same whatever `R` is.
        let msg = format!("in the child's bootstrap: {}", panic_message(p));
        (
            codec::encode(&Outcome::<()>::Codec(msg)).unwrap_or_default(),
            1,
        )
    });
    // Like Python's child bootstrap: the child's own children are handled before it exits.
    let _ = catch_unwind(children::shutdown);
    let _ = wire::send_frame(&sock, &bytes, &[]);
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().flush();
    // SAFETY: _exit takes an integer; skipping atexit handlers and destructors is the point (in a
    // fork child they belong to the parent's copy).
    unsafe { libc::_exit(code) }
}

/// The child side of a spawn, entered from [`crate::init`].
pub(crate) fn spawned_child_main(fd_text: &str) -> ! {
    // SAFETY: setting a disposition to SIG_IGN installs no handler code.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };
    let Ok(fd) = fd_text.parse::<RawFd>() else {
        eprintln!("bingfa-mp: bad {ENV_CHILD}");
        // SAFETY: _exit takes an integer; there is nothing to run yet.
        unsafe { libc::_exit(70) }
    };
    // SAFETY: ENV_CHILD is set only by launch_spawn, to the number of the socket it made
    // inheritable for exactly this child, and child_entry removes the variable before we get here,
    // so no one else claims this descriptor.
    let sock = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: F_SETFD takes no pointer; `fd` is the socket just adopted, open.
    unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
    let boot = match wire::recv_frame(&sock) {
        Ok(Some((bytes, fds))) => match codec::decode::<Boot>(&bytes) {
            Ok(b) => (b, fds),
            Err(e) => {
                eprintln!("bingfa-mp: corrupt bootstrap message: {e}");
                // SAFETY: _exit takes an integer; nothing of ours is running yet.
                unsafe { libc::_exit(70) }
            }
        },
        // The parent went away before telling us what to run.
        // SAFETY: _exit takes an integer; nothing of ours is running yet.
        _ => unsafe { libc::_exit(70) },
    };
    let (boot, fds) = boot;
    become_child(
        boot.name.clone(),
        boot.daemon,
        ParentProcess {
            pid: boot.parent_pid as u32,
            name: boot.parent_name.clone(),
        },
    );
    run_child(boot.entry, boot.func, &boot.args, fds, Tracked::new(sock))
}
