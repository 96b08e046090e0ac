//! `--model uring`: one io_uring per worker thread, each with its own SO_REUSEPORT listener
//! like `epoll`'s loops. The loop is the same reactor (`reactor/`, so every `Session` action,
//! admission limit, timer, hub wake-up and shutdown step is the one the other models run);
//! what changes is the poller (`poller/uring/`): completions from a ring instead of
//! `epoll_wait`, a connection's bytes received and sent by the ring (multishot receives into
//! provided buffers, sends) and handed to `conn/` through its transport seam (`conn/ring.rs`),
//! and every request of a turn plus the wait itself (timeout included) in one `io_uring_enter`.
//!
//! A kernel or sandbox that refuses io_uring is found before the server announces itself (see
//! [`check`]), so the user gets the model's name and the reason instead of a half-started
//! server.

use super::epoll::run_loops;
use crate::admit::Shared;
use crate::listener::Listener;
use crate::poller::uring::{setup_error, UringPoller};
use crate::session::Protocol;
use std::io;
use std::sync::Arc;

/// One loop per worker thread; worker 0 takes the listeners the server bound, the others bind
/// their own SO_REUSEPORT twins on the same addresses.
pub(crate) fn run<P: Protocol>(
    shared: Arc<Shared<P>>,
    listeners: Vec<Listener>,
    workers: usize,
) -> io::Result<()> {
    run_loops(shared, listeners, workers, "uring", UringPoller::new)
}

/// Whether this kernel lets us set up a ring; `Err` holds the reason, for the start-up error.
pub(crate) fn check() -> Result<(), String> {
    // A ring made and dropped at once: the same io_uring_setup and feature checks the loops
    // will make, and one multishot receive on a socket pair.
    UringPoller::new()
        .and_then(|mut p| p.probe())
        .map_err(|e| setup_error(&e))
}
