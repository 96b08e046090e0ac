//! `--model epoll`: one epoll(7) loop per worker thread, each with its own SO_REUSEPORT
//! listener so the kernel spreads connections over the loops with no shared accept queue and
//! no lock. Level-triggered by default; `edge_triggered` registers every socket once with
//! EPOLLET, which works because `conn/` always reads and writes until EAGAIN.
//! Prefork workers use the same poller, one per process (see `poller/epoll.rs`).

use super::reactor::Reactor;
use crate::admit::Shared;
use crate::listener::Listener;
use crate::poller::epoll::EpollPoller;
use crate::poller::Poller;
use crate::session::Protocol;
use std::io;
use std::sync::Arc;

/// One loop per worker thread; worker 0 takes the listeners the server bound, the others bind
/// their own SO_REUSEPORT twins on the same addresses.
pub(crate) fn run<P: Protocol>(
    shared: Arc<Shared<P>>,
    listeners: Vec<Listener>,
    workers: usize,
    edge: bool,
) -> io::Result<()> {
    run_loops(shared, listeners, workers, "epoll", || {
        EpollPoller::new(edge)
    })
}

/// The loops of `epoll` and `uring` (which differ only in their poller): `workers` reactors,
/// each over a poller from `new_poller`, worker 0 on this thread.
pub(super) fn run_loops<Pl: Poller + Send + 'static, P: Protocol>(
    shared: Arc<Shared<P>>,
    listeners: Vec<Listener>,
    workers: usize,
    name: &str,
    new_poller: impl Fn() -> io::Result<Pl>,
) -> io::Result<()> {
    let hub = shared.hub.clone();
    let mut per_worker = Vec::new();
    for _ in 1..workers.max(1) {
        per_worker.push(
            listeners
                .iter()
                .map(|l| l.twin())
                .collect::<io::Result<Vec<_>>>()?,
        );
    }
    per_worker.insert(0, listeners);
    // Every loop's descriptors are made before any loop runs: a loop already accepting could
    // otherwise take the last descriptors a later one needs to start (out-of-descriptor tests).
    let mut reactors = per_worker
        .into_iter()
        .map(|ls| Reactor::new(new_poller()?, shared.clone(), hub.clone(), ls))
        .collect::<io::Result<Vec<_>>>()?;
    let first = reactors.remove(0);
    let mut handles = Vec::new();
    for r in reactors {
        handles.push(
            std::thread::Builder::new()
                .name(format!("{name}-worker"))
                .spawn(move || r.run(false))?,
        );
    }
    let mut result = first.run(false);
    for h in handles {
        let r = h
            .join()
            .unwrap_or_else(|_| Err(io::Error::other(format!("{name} worker panicked"))));
        if result.is_ok() {
            result = r;
        }
    }
    result
}
