//! Typed errors for every bingfa-mp operation. Bad use returns one of these; nothing here panics
//! or hangs on a peer's misbehaviour.

use std::io;

/// Errors from pipes, connections and queues.
#[derive(Debug, thiserror::Error)]
pub enum IpcError {
    /// The other end is closed and nothing is left to read (Python's `EOFError`).
    #[error("end of file: the other end of the pipe is closed")]
    Eof,
    /// The other end is closed, so the message cannot be delivered (Python's `BrokenPipeError`).
    #[error("broken pipe: the other end is closed")]
    BrokenPipe,
    /// This handle was closed with `close()`.
    #[error("handle is closed")]
    Closed,
    /// The message exceeds the documented maximum.
    #[error("message of {size} bytes exceeds the maximum of {max} bytes")]
    MessageTooLarge {
        /// The message's size in bytes.
        size: usize,
        /// The largest size allowed.
        max: usize,
    },
    /// The peer died or wrote garbage in the middle of a message.
    #[error("truncated or corrupt message: {0}")]
    Corrupt(String),
    /// The sender died in the middle of this message (a process sharing a sending end was
    /// killed while it wrote a large message). The message is gone; the next one is intact.
    #[error("the sender died in the middle of the message; it was dropped")]
    Torn,
    /// A timed operation ran out of time.
    #[error("timed out")]
    Timeout,
    /// `get_nowait` (or a timed get) found nothing (Python's `queue.Empty`).
    #[error("queue is empty")]
    Empty,
    /// `put_nowait` (or a timed put) found no room (Python's `queue.Full`).
    #[error("queue is full")]
    Full,
    /// The value could not be encoded or decoded.
    #[error("serialization: {0}")]
    Codec(#[from] postcard::Error),
    /// Any other operating-system error.
    #[error(transparent)]
    Io(#[from] io::Error),
}

/// Errors from starting, joining or signalling a process.
#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    /// The child's function panicked; the panic message is carried back.
    #[error("child process panicked: {message}")]
    Panicked {
        /// The panic's message.
        message: String,
    },
    /// The child exited without delivering a result (e.g. `std::process::exit` inside it).
    #[error("child process exited with code {code} before returning a result")]
    Exited {
        /// The exit code.
        code: i32,
    },
    /// The child was killed by a signal before returning a result.
    #[error("child process was killed by signal {signal}")]
    Killed {
        /// The signal's number.
        signal: i32,
    },
    /// `join_timeout` ran out of time; the handle is still valid.
    #[error("timed out waiting for the child process")]
    Timeout,
    /// The result was already taken by an earlier successful join.
    #[error("the process was already joined")]
    AlreadyJoined,
    /// Arguments or result could not be encoded or decoded.
    #[error("serialization: {0}")]
    Codec(String),
    /// Starting the process failed.
    #[error("failed to start process: {0}")]
    Start(io::Error),
    /// Any other operating-system error.
    #[error(transparent)]
    Io(#[from] io::Error),
}

impl From<postcard::Error> for ProcessError {
    fn from(e: postcard::Error) -> Self {
        ProcessError::Codec(e.to_string())
    }
}

/// Why acquiring a lock (or a shared value's lock) did not simply succeed.
///
/// `OwnerDied` still hands over the guard: the lock *is* held by the caller, but the process
/// that held it before died inside its critical section, so the data it protects may be
/// half-updated (the robust-mutex contract). Take it with [`LockError::into_guard`] after
/// checking or repairing the data.
#[derive(thiserror::Error)]
pub enum LockError<G> {
    #[error(
        "the previous owner died while holding the lock; the protected data may be inconsistent"
    )]
    /// The previous holder died inside its critical section; the lock is held now, by the
    /// guard inside, and the protected data may be half-updated.
    OwnerDied(G),
    /// `acquire_timeout` ran out of time.
    #[error("timed out waiting for the lock")]
    Timeout,
    /// `try_acquire` found the lock held.
    #[error("the lock is held by someone else")]
    WouldBlock,
    #[error(transparent)]
    /// A system call failed.
    Io(#[from] io::Error),
}

impl<G> LockError<G> {
    /// The guard, when the lock was acquired after all (`OwnerDied`).
    pub fn into_guard(self) -> Option<G> {
        match self {
            LockError::OwnerDied(g) => Some(g),
            _ => None,
        }
    }

    /// Drop the guard, keeping the kind of error (for `?` into non-generic errors).
    pub fn forget_guard(self) -> LockError<()> {
        match self {
            LockError::OwnerDied(_) => LockError::OwnerDied(()),
            LockError::Timeout => LockError::Timeout,
            LockError::WouldBlock => LockError::WouldBlock,
            LockError::Io(e) => LockError::Io(e),
        }
    }
}

impl<G> std::fmt::Debug for LockError<G> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LockError::OwnerDied(_) => f.write_str("OwnerDied(..)"),
            LockError::Timeout => f.write_str("Timeout"),
            LockError::WouldBlock => f.write_str("WouldBlock"),
            LockError::Io(e) => f.debug_tuple("Io").field(e).finish(),
        }
    }
}

/// Errors from the synchronisation primitives that hand out no guard.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// A process died holding the lock behind this primitive; it is held again now, but the
    /// state it protected may be inconsistent.
    #[error("the previous owner died while holding the lock")]
    OwnerDied,
    /// A timed wait ran out of time.
    #[error("timed out")]
    Timeout,
    /// `BoundedSemaphore::release` beyond its initial value (Python's `ValueError`).
    #[error("semaphore released too many times")]
    ReleasedTooManyTimes,
    /// The barrier was aborted, reset, or a party timed out (Python's `BrokenBarrierError`).
    #[error("the barrier is broken")]
    BrokenBarrier,
    #[error(transparent)]
    /// A system call failed.
    Io(#[from] io::Error),
}

impl<G> From<LockError<G>> for SyncError {
    fn from(e: LockError<G>) -> Self {
        match e {
            LockError::OwnerDied(_) => SyncError::OwnerDied,
            LockError::Timeout | LockError::WouldBlock => SyncError::Timeout,
            LockError::Io(e) => SyncError::Io(e),
        }
    }
}
