//! `--model iterative`: one connection at a time (the course's 循环服务器). The loop serves the
//! current client to the end; clients that arrive meanwhile are accepted (so the connection
//! limit and its refusal still apply) and wait their turn in order, unserved.

use crate::hub::Hub;
use crate::poll::PollPoller;
use crate::reactor::{Reactor, Shared};
use crate::session::Protocol;
use std::io;
use std::net::TcpListener;
use std::sync::Arc;

pub(crate) fn run<P: Protocol>(
    shared: Arc<Shared<P>>,
    listeners: Vec<TcpListener>,
) -> io::Result<()> {
    Reactor::new(PollPoller::default(), shared, Hub::new(), listeners)?
        .one_at_a_time()
        .run(false)
}
