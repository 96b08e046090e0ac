//! `--model poll`: one thread, one `poll(2)` loop over every socket (the course's poll
//! server): the readiness loop over [`PollPoller`].

use super::reactor::Reactor;
use crate::admit::Shared;
use crate::listener::Listener;
use crate::poller::poll::PollPoller;
use crate::session::Protocol;
use std::io;
use std::sync::Arc;

pub(crate) fn run<P: Protocol>(shared: Arc<Shared<P>>, listeners: Vec<Listener>) -> io::Result<()> {
    let hub = shared.hub.clone();
    Reactor::new(PollPoller::default(), shared, hub, listeners)?.run(false)
}
