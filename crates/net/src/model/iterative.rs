//! `--model iterative`: one connection at a time (the course's 循环服务器). The loop serves the
//! current client to the end; clients that arrive meanwhile are accepted (so the connection
//! limit and its refusal still apply) and wait their turn in order, unserved.

use super::reactor::Reactor;
use crate::admit::Shared;
use crate::listener::Listener;
use crate::poller::poll::PollPoller;
use crate::session::Protocol;
use std::io;
use std::sync::Arc;

pub(crate) fn run<P: Protocol>(shared: Arc<Shared<P>>, listeners: Vec<Listener>) -> io::Result<()> {
    let hub = shared.hub.clone();
    Reactor::new(PollPoller::default(), shared, hub, listeners)?
        .one_at_a_time()
        .run(false)
}
