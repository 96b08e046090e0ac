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
//!
//! The pieces: `entry.rs` finds and calls the function in the child, `identity.rs` is who a
//! process is (name, parent, `current_process`), `launch.rs` starts a child (spawn or fork)
//! and is the child's side of the start; this file is the API, [`Builder`] and [`Process`].

mod entry;
mod identity;
mod launch;

use std::marker::PhantomData;
use std::os::fd::AsRawFd;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{de::DeserializeOwned, Deserialize, Serialize};

use crate::children::{self, exitcode, ChildState};
use crate::error::ProcessError;
use crate::handle::{self, Tracked};
use crate::{codec, sys, wire};
pub(crate) use entry::{addr_of, offset_of, panic_message};
use entry::{fn_entry, run_entry, Entry, Outcome};
use identity::COUNTER;
pub use identity::{
    active_children, cpu_count, current_process, parent_process, ParentProcess, ProcessInfo,
};
pub(crate) use launch::spawned_child_main;
use launch::{launch_fork, launch_spawn};

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
