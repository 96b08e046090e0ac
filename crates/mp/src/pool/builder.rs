//! How a [`Pool`] is made: [`Builder`]'s settings (workers, initializer, `maxtasksperchild`,
//! start method) and `build`, which starts the pool thread and waits until it has started the
//! workers (or failed to).

use std::sync::{mpsc, Arc};

use parking_lot::Mutex;
use serde::{de::DeserializeOwned, Serialize};

use super::worker::{self, Init, InitEntry};
use super::{engine, Job, Pool, PoolError, Shared};
use crate::process::offset_of;
use crate::{codec, StartMethod};

/// Configures a [`Pool`].
#[derive(Clone, Default)]
pub struct Builder {
    processes: Option<usize>,
    maxtasks: u64,
    method: StartMethod,
    init: Option<Init>,
}

impl std::fmt::Debug for Builder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Builder")
            .field("processes", &self.processes)
            .field("maxtasksperchild", &self.maxtasks)
            .field("start_method", &self.method)
            .field("initializer", &self.init.is_some())
            .finish()
    }
}

impl Builder {
    /// Number of workers (default [`crate::cpu_count`]).
    pub fn processes(mut self, n: usize) -> Builder {
        self.processes = Some(n.max(1));
        self
    }

    /// Run `f(args)` once in every worker before its first task. `args` may hold handles
    /// (`Value`, `Queue`, `Lock`…): each worker gets its own copy of the descriptors.
    pub fn initializer<A>(mut self, f: fn(A), args: A) -> Builder
    where
        A: Serialize + DeserializeOwned + Send + Sync + 'static,
    {
        self.init = Some(Init {
            entry: offset_of(worker::init_entry::<A> as InitEntry as usize) as u64,
            func: offset_of(f as usize) as u64,
            args: Arc::new(move || codec::encode(&args)),
        });
        self
    }

    /// Replace each worker after it has run `k` tasks (chunks), as Python's
    /// `maxtasksperchild`; 0 (the default) keeps workers for the pool's life.
    pub fn maxtasksperchild(mut self, k: u64) -> Builder {
        self.maxtasks = k;
        self
    }

    /// How workers are started (default [`StartMethod::Spawn`]).
    pub fn start_method(mut self, m: StartMethod) -> Builder {
        self.method = m;
        self
    }

    /// Start the workers.
    pub fn build(self) -> Result<Pool, PoolError> {
        let processes = self.processes.unwrap_or_else(crate::cpu_count);
        let shared = Arc::new(Shared::new().map_err(|e| PoolError::Start(e.to_string()))?);
        let cfg = engine::Config {
            processes,
            maxtasks: self.maxtasks,
            method: self.method,
            init: self.init,
        };
        let (tx, rx) = mpsc::channel();
        let sh = shared.clone();
        // The workers are started by the pool thread itself: their death signal is tied to the
        // thread that starts them, and this one lives exactly as long as they should.
        let thread = std::thread::Builder::new()
            .name("bingfa-mp-pool".into())
            .spawn(move || {
                let sh2 = sh.clone();
                let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
                    let mut e = engine::Engine::new(sh, cfg);
                    match e.start() {
                        Ok(()) => {
                            let _ = tx.send(Ok(()));
                            e.run();
                        }
                        Err(err) => {
                            let _ = tx.send(Err(err));
                            e.terminate_after_failed_start();
                        }
                    }
                }));
                if let Err(p) = ran {
                    // A bug, not a user error: the jobs it held completed as `Terminated` when
                    // they were dropped; refuse new ones rather than queue them for nobody.
                    eprintln!(
                        "bingfa-mp: the pool thread panicked: {}",
                        crate::process::panic_message(p)
                    );
                    let pending: Vec<Job> = {
                        let mut st = sh2.state.lock();
                        st.terminated = true;
                        st.finished = true;
                        st.pending.drain(..).collect()
                    };
                    drop(pending);
                }
            })
            .map_err(|e| PoolError::Start(e.to_string()))?;
        match rx.recv() {
            Ok(Ok(())) => Ok(Pool {
                shared,
                thread: Mutex::new(Some(thread)),
                processes,
            }),
            Ok(Err(e)) => {
                let _ = thread.join();
                Err(e)
            }
            Err(_) => {
                let _ = thread.join();
                Err(PoolError::Start("the pool thread died".into()))
            }
        }
    }
}

impl Pool {
    /// A pool of `n` workers with the default start method.
    pub fn new(n: usize) -> Result<Pool, PoolError> {
        Pool::builder().processes(n).build()
    }

    /// A [`Builder`] for a pool with more settings than [`Pool::new`] takes.
    pub fn builder() -> Builder {
        Builder::default()
    }
}
