//! `Process`: Python's `multiprocessing.Process`, with a typed result.
//!
//! A child runs a plain function `fn(A) -> R` (or a [`Run`] type) in another process. Arguments
//! and result are serde values; pipe ends, queues and shared memory inside the arguments are
//! handed over as real descriptors. Two start methods:
//! - [`StartMethod::Spawn`] (default) re-executes the current binary, which enters
//!   [`crate::init`] and runs the function there. Safe in a multi-threaded parent.
//! - [`StartMethod::Fork`] forks the caller. Fast, but only safe when the parent has no other
//!   threads that might hold a lock (allocator aside, which glibc protects) at the moment of fork.
//!
//! The function is found in the child by its offset from an anchor function in the same binary,
//! which is identical in both processes whatever the address-space layout.

use std::marker::PhantomData;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{de::DeserializeOwned, Deserialize, Serialize};

use crate::children::{self, exitcode, ChildState};
use crate::error::ProcessError;
use crate::handle::{self, Tracked};
use crate::{codec, sys, wire};

/// Environment variable that tells a re-executed binary it is a spawned child (holds the fd of
/// its bootstrap socket).
pub(crate) const ENV_CHILD: &str = "BINGFA_MP_CHILD";

/// How a child process is started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum StartMethod {
    /// Re-execute the current binary (`/proc/self/exe`); safe with threads. The default.
    #[default]
    Spawn,
    /// `fork()` the caller. Unsafe in spirit when the parent has other threads: a lock held by
    /// another thread at the moment of fork stays locked forever in the child.
    Fork,
}

/// A process type with its own `run` (Python's subclass of `Process` overriding `run`).
pub trait Run: Serialize + DeserializeOwned + 'static {
    /// What `run` returns, carried back to the parent by `join`.
    type Output: Serialize + DeserializeOwned;
    /// The child's work, run in the child process.
    fn run(self) -> Self::Output;
}

/// What a child sends back.
#[derive(Serialize, Deserialize)]
enum Outcome<R> {
    Ok(R),
    Panic(String),
    Codec(String),
}

/// Signature of the monomorphised trampoline that decodes arguments and calls the function.
type Entry = fn(usize, &[u8]) -> (Vec<u8>, i32);

#[inline(never)]
fn anchor() {}

/// A function's address as an offset from [`anchor`]: the same number names the same function in
/// any process running this binary (a re-executed child has another load address).
pub(crate) fn offset_of(addr: usize) -> usize {
    addr.wrapping_sub(anchor as fn() as usize)
}

/// The address of the function recorded by [`offset_of`], in this process.
pub(crate) fn addr_of(off: usize) -> usize {
    (anchor as fn() as usize).wrapping_add(off)
}

pub(crate) fn panic_message(p: Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".to_string()
    }
}

fn finish<R: Serialize>(r: Result<std::thread::Result<R>, postcard::Error>) -> (Vec<u8>, i32) {
    let outcome = match r {
        Err(e) => Outcome::Codec(format!("decoding arguments in the child: {e}")),
        Ok(Err(p)) => Outcome::Panic(panic_message(p)),
        Ok(Ok(v)) => Outcome::Ok(v),
    };
    let code = if matches!(outcome, Outcome::Ok(_)) {
        0
    } else {
        1
    };
    match codec::encode(&outcome) {
        Ok(b) => (b, code),
        Err(e) => {
            let o = Outcome::<R>::Codec(format!("encoding the result in the child: {e}"));
            (codec::encode(&o).unwrap_or_default(), 1)
        }
    }
}

fn fn_entry<A: DeserializeOwned, R: Serialize>(func: usize, args: &[u8]) -> (Vec<u8>, i32) {
    // SAFETY: `func` is the address of an `fn(A) -> R` of this very binary, recorded by the
    // parent for exactly this instantiation of the trampoline.
    let f = unsafe { std::mem::transmute::<usize, fn(A) -> R>(func) };
    finish(codec::decode::<A>(args).map(|a| catch_unwind(AssertUnwindSafe(|| f(a)))))
}

fn run_entry<T: Run>(_func: usize, args: &[u8]) -> (Vec<u8>, i32) {
    finish(codec::decode::<T>(args).map(|t| catch_unwind(AssertUnwindSafe(|| t.run()))))
}

/// The bootstrap message a spawned child reads first.
#[derive(Serialize, Deserialize)]
pub(crate) struct Boot {
    entry: usize,
    func: usize,
    name: String,
    daemon: bool,
    parent_pid: i32,
    parent_name: String,
    args: Vec<u8>,
}

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

struct Identity {
    name: String,
    daemon: bool,
    parent: Option<ParentProcess>,
}

static IDENTITY: Mutex<Option<Identity>> = Mutex::new(None);
static COUNTER: AtomicUsize = AtomicUsize::new(0);

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

fn set_child_identity(
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

/// Configures and starts a child process.
#[derive(Debug, Clone, Default)]
pub struct Builder {
    name: Option<String>,
    daemon: bool,
    method: StartMethod,
}

impl Builder {
    /// The defaults (same as [`Process::builder`]).
    pub fn new() -> Builder {
        Builder::default()
    }

    /// The child's name (default `Process-N`, or `Parent:N` inside a child).
    pub fn name(mut self, name: impl Into<String>) -> Builder {
        self.name = Some(name.into());
        self
    }

    /// A daemon child is killed when its parent dies, even by SIGKILL (`PR_SET_PDEATHSIG`),
    /// and terminated rather than joined at the parent's exit path. Linux ties the death signal
    /// to the *thread* that started the child: start daemons from a thread that outlives them.
    pub fn daemon(mut self, daemon: bool) -> Builder {
        self.daemon = daemon;
        self
    }

    /// How the child is started (default [`StartMethod::Spawn`]).
    pub fn start_method(mut self, method: StartMethod) -> Builder {
        self.method = method;
        self
    }

    /// Run `f(args)` in a new process.
    pub fn spawn<A, R>(self, f: fn(A) -> R, args: A) -> Result<Process<R>, ProcessError>
    where
        A: Serialize + DeserializeOwned,
        R: Serialize + DeserializeOwned,
    {
        let entry = fn_entry::<A, R> as Entry as usize;
        self.launch(entry, f as usize, &args)
    }

    /// Run a [`Run`] value's `run` in a new process.
    pub fn start<T: Run>(self, obj: T) -> Result<Process<T::Output>, ProcessError> {
        let entry = run_entry::<T> as Entry as usize;
        self.launch(entry, 0, &obj)
    }

    fn launch<A: Serialize, R>(
        self,
        entry: usize,
        func: usize,
        args: &A,
    ) -> Result<Process<R>, ProcessError> {
        let (encoded, fds) = handle::collecting(|| codec::encode(args));
        let args = encoded?;
        let name = self.name.unwrap_or_else(|| {
            let n = COUNTER.fetch_add(1, Ordering::Relaxed) + 1;
            match parent_process() {
                None => format!("Process-{n}"),
                Some(_) => format!("{}:{n}", current_process().name),
            }
        });
        let me = current_process();
        let boot = Boot {
            entry: offset_of(entry),
            func: offset_of(func),
            name: name.clone(),
            daemon: self.daemon,
            parent_pid: me.pid as i32,
            parent_name: me.name,
            args,
        };
        let (pid, sock) = match self.method {
            StartMethod::Spawn => launch_spawn(&boot, &fds)?,
            StartMethod::Fork => launch_fork(boot, &fds)?,
        };
        Ok(Process {
            child: ChildState::new(pid, name, self.daemon),
            sock: Some(sock),
            frame: None,
            taken: false,
            _r: PhantomData,
        })
    }
}

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

fn launch_spawn(boot: &Boot, fds: &[RawFd]) -> Result<(libc::pid_t, Tracked), ProcessError> {
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

fn launch_fork(boot: Boot, fds: &[RawFd]) -> Result<(libc::pid_t, Tracked), ProcessError> {
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

/// A started child. Dropping it never kills the child; a finished or dropped child is reaped.
#[derive(Debug)]
pub struct Process<R = ()> {
    child: Arc<ChildState>,
    sock: Option<Tracked>,
    /// The result frame once read (`Some(None)`: the socket closed without one), kept until
    /// the child has exited.
    frame: Option<Option<Vec<u8>>>,
    taken: bool,
    _r: PhantomData<fn() -> R>,
}

impl Process<()> {
    /// Start configuring a child.
    pub fn builder() -> Builder {
        Builder::new()
    }
}

impl<R: DeserializeOwned> Process<R> {
    /// The child's process id.
    pub fn pid(&self) -> u32 {
        self.child.pid as u32
    }

    /// The child's name.
    pub fn name(&self) -> &str {
        &self.child.name
    }

    /// Whether the child is a daemon.
    pub fn daemon(&self) -> bool {
        self.child.daemon
    }

    /// Still running? (A finished child is reaped by this call.)
    pub fn is_alive(&self) -> bool {
        self.child.reap_nowait().is_none()
    }

    /// `None` while running; the exit code, or minus the signal number if killed.
    pub fn exitcode(&self) -> Option<i32> {
        self.child.reap_nowait().map(exitcode)
    }

    /// Ask the child to stop (SIGTERM). A no-op once it has exited.
    pub fn terminate(&self) -> Result<(), ProcessError> {
        Ok(self.child.signal(libc::SIGTERM)?)
    }

    /// Kill the child (SIGKILL). A no-op once it has exited.
    pub fn kill(&self) -> Result<(), ProcessError> {
        Ok(self.child.signal(libc::SIGKILL)?)
    }

    /// Wait for the child and return its result.
    pub fn join(mut self) -> Result<R, ProcessError> {
        self.collect(None)
    }

    /// Wait at most `timeout`. `Err(Timeout)` leaves the handle usable; a result can be taken
    /// once (later joins return `AlreadyJoined`).
    pub fn join_timeout(&mut self, timeout: Duration) -> Result<R, ProcessError> {
        self.collect(Some(Instant::now() + timeout))
    }

    fn collect(&mut self, deadline: Option<Instant>) -> Result<R, ProcessError> {
        if self.taken {
            return Err(ProcessError::AlreadyJoined);
        }
        // The result arrives on the socket, or the socket hangs up when the child dies. Once
        // read, it is kept here: the child may still be busy after sending it (flushing its
        // output, say), and a timed join must not wait for that past its deadline.
        if self.frame.is_none() {
            let Some(sock) = self.sock.as_ref() else {
                return Err(ProcessError::AlreadyJoined);
            };
            if !sys::poll_readable(sock.as_raw_fd(), sys::remaining(deadline))? {
                return Err(ProcessError::Timeout);
            }
            let frame = wire::recv_frame(sock)
                .ok()
                .flatten()
                .map(|(bytes, _)| bytes);
            self.sock = None;
            self.frame = Some(frame);
        }
        let Some(status) = self.child.wait(deadline) else {
            return Err(ProcessError::Timeout);
        };
        self.taken = true;
        children::forget(&self.child);
        match self.frame.take().flatten() {
            Some(bytes) => match codec::decode::<Outcome<R>>(&bytes)? {
                Outcome::Ok(v) => Ok(v),
                Outcome::Panic(message) => Err(ProcessError::Panicked { message }),
                Outcome::Codec(m) => Err(ProcessError::Codec(m)),
            },
            // No (complete) result: report how the child ended.
            None => {
                let code = exitcode(status);
                if code < 0 {
                    Err(ProcessError::Killed { signal: -code })
                } else {
                    Err(ProcessError::Exited { code })
                }
            }
        }
    }
}

impl<R> Drop for Process<R> {
    fn drop(&mut self) {
        if self.child.reap_nowait().is_some() {
            children::forget(&self.child);
        } else {
            children::detach(self.child.clone());
        }
    }
}
