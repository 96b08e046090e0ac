//! bingfa-mp: Python's `multiprocessing`, made safe and fast in Rust.
//!
//! | Python                          | bingfa-mp                                            |
//! |---------------------------------|------------------------------------------------------|
//! | `Process(target, args)`         | [`Process::builder`]`().spawn(f, args)`              |
//! | subclass overriding `run`       | implement [`Run`], then `.start(obj)`                |
//! | `Pipe(duplex)`                  | [`Pipe::duplex`], [`Pipe::simplex`]                  |
//! | `Queue(maxsize)`                | [`Queue::new`], [`Queue::bounded`]                   |
//! | `current_process()` …           | [`current_process`], [`parent_process`], [`active_children`], [`cpu_count`] |
//! | `Pool(n, initializer, initargs, maxtasksperchild)` | [`Pool::new`], [`Pool::builder`]`().processes(n).initializer(f, args).maxtasksperchild(k).build()` |
//! | `pool.apply`, `apply_async` (`callback`, `error_callback`) | [`Pool::apply`], [`Pool::apply_async`] → [`AsyncResult`], [`Pool::apply_async_with`] |
//! | `pool.map(f, it, chunksize)`, `map_async`, `imap`, `imap_unordered`, `starmap(_async)` | [`Pool::map`], [`Pool::map_chunked`], [`Pool::map_async`], [`Pool::imap`], [`Pool::imap_unordered`], [`Pool::starmap`], [`Pool::starmap_async`] |
//! | `pool.close()`, `terminate()`, `join()` | [`Pool::close`], [`Pool::terminate`], [`Pool::join`]; dropping a pool terminates it |
//! | `Value('i', 0)`, `v.get_lock()` | [`Value::new`], [`Value::lock`] (guard), [`Value::get`] / [`Value::set`] |
//! | `Array('i', n)`, `Array('c', b"..")` | [`Array::new`], [`Array::from_slice`], [`Array::from_bytes`], [`Array::value`] |
//! | `Lock`, `RLock`                 | [`Lock`], [`RLock`]: guards; a dead owner gives [`LockError::OwnerDied`] with the lock |
//! | `Semaphore`, `BoundedSemaphore` | [`Semaphore`], [`BoundedSemaphore`]                  |
//! | `Event`, `Condition`, `Barrier` | [`Event`], [`Condition`], [`Barrier`]                 |
//! | `threading.Event`, `RLock`, `Semaphore`, `local` | [`thread`] (with a map of the rest of `threading` to `std`) |
//!
//! Everything in shared memory (values, arrays, locks, queues) is a handle: clone it to share
//! it between threads, pass it as a spawn argument (or through a pool's initializer) to share
//! it with a child. Its memory is freed when the last handle in any process is gone.
//!
//! ```
//! use bingfa_mp::{Pipe, Process, Queue, Sender};
//!
//! fn work(args: (Queue<u64>, Sender<String>)) -> u64 {
//!     let (q, mut tx) = args;
//!     q.put(42).unwrap();
//!     tx.send(&format!("hello from {}", std::process::id())).unwrap();
//!     7
//! }
//!
//! fn main() {
//!     let _rt = bingfa_mp::init(); // first line of main: a spawned child starts here
//!     let q = Queue::new().unwrap();
//!     let (mut rx, tx) = Pipe::simplex().unwrap();
//!     let p = Process::builder().spawn(work, (q.clone(), tx)).unwrap();
//!     assert!(rx.recv().unwrap().starts_with("hello from "));
//!     assert_eq!(q.get().unwrap(), 42);
//!     assert_eq!(p.join().unwrap(), 7);
//! }
//! ```
//!
//! Call [`init`] first in `main` and keep its [`Runtime`] alive until `main` returns: a child
//! started by re-exec enters there, and dropping the runtime joins non-daemon children. In
//! tests, put [`spawn_entry!`] once in each test crate instead.

mod children;
mod codec;
mod counters;
pub mod error;
pub mod handle;
mod pipe;
pub mod pool;
mod process;
mod queue;
mod robust;
pub mod shm;
mod spin;
pub mod sync;
mod sys;
pub mod thread;
mod value;
mod wire;

/// The private frame codec, for the fuzz targets (fuzz/) only.
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing {
    use std::io;
    use std::os::fd::{AsRawFd, OwnedFd, RawFd};

    /// The private codec's `encode`.
    pub fn encode<T: serde::Serialize + ?Sized>(value: &T) -> postcard::Result<Vec<u8>> {
        crate::codec::encode(value)
    }

    /// The private codec's `decode`.
    pub fn decode<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> postcard::Result<T> {
        crate::codec::decode(bytes)
    }

    /// The spawn socket's frame writer.
    pub fn send_frame(sock: &impl AsRawFd, payload: &[u8], fds: &[RawFd]) -> io::Result<()> {
        crate::wire::send_frame(sock, payload, fds)
    }

    /// The spawn socket's frame reader.
    pub fn recv_frame(sock: &impl AsRawFd) -> io::Result<Option<(Vec<u8>, Vec<OwnedFd>)>> {
        crate::wire::recv_frame(sock)
    }
}

pub use bytemuck::Pod;
pub use counters::Counters;
pub use error::{IpcError, LockError, ProcessError, SyncError};
pub use pipe::{Connection, Pipe, Receiver, Sender, MAX_MESSAGE};
pub use pool::{AsyncResult, Imap, Pool, PoolError};
pub use process::{
    active_children, cpu_count, current_process, parent_process, Builder, ParentProcess, Process,
    ProcessInfo, Run, StartMethod,
};
pub use queue::Queue;
pub use robust::{Acquired, RawRobustMutex};
pub use sync::{
    Barrier, BoundedSemaphore, Condition, Event, Lock, LockGuard, RLock, RLockGuard, Semaphore,
};
pub use value::{Array, ArrayGuard, Value, ValueGuard};

/// Held by `main` for its whole life; dropping it is the library's exit path.
#[must_use = "keep the runtime alive until main returns: dropping it joins the children"]
pub struct Runtime(());

impl Drop for Runtime {
    fn drop(&mut self) {
        children::shutdown();
    }
}

/// The first call in `main`. A child started by re-exec enters here, runs its function and
/// exits; it never returns. In the parent it returns the [`Runtime`] guard.
pub fn init() -> Runtime {
    child_entry();
    Runtime(())
}

/// The child check alone, for [`spawn_entry!`]'s constructor.
#[doc(hidden)]
pub fn child_entry() {
    if let Some(v) = std::env::var_os(process::ENV_CHILD) {
        // Grandchildren started with plain `std::process::Command` must not think they are ours.
        std::env::remove_var(process::ENV_CHILD);
        process::spawned_child_main(&v.to_string_lossy());
    }
}

/// Exit the process through the library's exit path: daemon children are terminated, the
/// others joined, then `std::process::exit(code)`.
pub fn exit(code: i32) -> ! {
    children::shutdown();
    std::process::exit(code)
}

/// Makes spawn work in a binary whose `main` you don't write (test harnesses, benches): a
/// constructor runs before `main` and turns a re-executed child into the child. Put it once at
/// the top level of each integration-test crate.
#[macro_export]
macro_rules! spawn_entry {
    () => {
        #[used]
        #[link_section = ".init_array"]
        static __BINGFA_MP_SPAWN_ENTRY: extern "C" fn() = {
            extern "C" fn __bingfa_mp_spawn_entry() {
                $crate::child_entry();
            }
            __bingfa_mp_spawn_entry
        };
    };
}
