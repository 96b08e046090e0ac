//! The concurrency models, one file each, and the two loops they are built from.
//!
//! - `reactor/`: the readiness loop. It watches listeners, connections, their data channels,
//!   the hub's wake-ups and the relay link through a [`Poller`](crate::poller::Poller), and
//!   runs `conn/` on what is ready. Every model but `async` runs it: many connections per loop
//!   (`select`, `poll`, `epoll`, `uring`, `prefork`), one at a time (`iterative`), or one connection per
//!   loop (`thread`, `fork`, and `threadpool`'s workers).
//! - `acceptor.rs`: the blocking accept loop of the models where one place accepts and hands
//!   connections out (`thread`, `threadpool`, `fork`).
//!
//! The loops live here, under the models, because nothing else runs them: admission
//! (`admit/`), connections (`conn/`) and pollers (`poller/`) sit below and never name a
//! model. `async` drives `conn/` from tokio tasks instead.

mod acceptor;
mod async_tokio;
mod epoll;
mod fork;
mod iterative;
mod poll;
mod prefork;
mod reactor;
mod select;
mod thread;
mod threadpool;
mod uring;

use crate::admit::Shared;
use crate::config::Model;
use crate::listener::Listener;
use crate::session::Protocol;
use std::io;
use std::sync::Arc;

/// Whether `model` can run on this kernel; `Err` says why not (io_uring refused).
pub(crate) fn check(model: Model) -> Result<(), String> {
    match model {
        Model::Uring => uring::check(),
        _ => Ok(()),
    }
}

/// Serve `listeners` under `model` until shutdown completes.
pub(crate) fn run<P: Protocol>(
    model: Model,
    shared: Arc<Shared<P>>,
    listeners: Vec<Listener>,
    workers: usize,
    edge_triggered: bool,
) -> io::Result<()> {
    match model {
        Model::Iterative => iterative::run(shared, listeners),
        Model::Fork => fork::run(shared, listeners),
        Model::Thread => thread::run(shared, listeners),
        Model::ThreadPool => threadpool::run(shared, listeners, workers),
        Model::Prefork => prefork::run(shared, listeners, workers),
        Model::Select => select::run(shared, listeners),
        Model::Poll => poll::run(shared, listeners),
        Model::Epoll => epoll::run(shared, listeners, workers, edge_triggered),
        Model::Async => async_tokio::run(shared, listeners, workers),
        Model::Uring => uring::run(shared, listeners, workers),
    }
}
