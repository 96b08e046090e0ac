//! `--model select`: one thread, one `select(2)` loop, level-triggered (the course's select
//! server): the readiness loop over [`SelectPoller`], whose limits (FD_SETSIZE, no `POLLRDHUP`)
//! are the model's.

use super::reactor::Reactor;
use crate::admit::Shared;
use crate::listener::Listener;
use crate::poller::select::SelectPoller;
use crate::session::Protocol;
use std::io;
use std::sync::Arc;

pub(crate) fn run<P: Protocol>(shared: Arc<Shared<P>>, listeners: Vec<Listener>) -> io::Result<()> {
    let hub = shared.hub.clone();
    Reactor::new(SelectPoller::default(), shared, hub, listeners)?.run(false)
}
