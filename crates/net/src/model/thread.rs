//! `--model thread`: a thread per connection (threading 多线程并发). The accepting thread hands
//! each connection to a new thread, which serves it with a blocking `poll(2)` over that one
//! connection, its data channels and the shutdown pipe, then ends.

use super::acceptor::{accept_loop, AcceptHooks};
use super::reactor::Reactor;
use crate::admit::exhaustion::fd_guard;
use crate::admit::{refuse, Peer, Shared};
use crate::hub::Hub;
use crate::listener::Listener;
use crate::poller::poll::PollPoller;
use crate::session::Protocol;
use std::io;
use std::net::TcpStream;
use std::sync::Arc;
use std::thread::JoinHandle;

/// Serve one connection on the calling thread until it ends (shared with `threadpool`).
pub(crate) fn serve_one<P: Protocol>(
    shared: Arc<Shared<P>>,
    hub: Hub,
    stream: TcpStream,
    peer: Peer,
) {
    let counter_owner = shared.clone();
    let reactor = {
        // Its eventfd must not take a number the acceptor freed to refuse a client.
        let _g = fd_guard();
        Reactor::new(PollPoller::default(), shared, hub, Vec::new())
    };
    match reactor {
        Ok(mut r) => {
            r.adopt(stream, peer, true);
            if let Err(e) = r.run(true) {
                tracing::warn!("connection loop: {e}");
            }
        }
        Err(e) => {
            // Most likely out of descriptors (the loop's eventfd): refuse, never leave it hanging.
            counter_owner
                .episode
                .failed_setup("cannot serve a connection", &e);
            refuse(&counter_owner, stream, peer.1);
            counter_owner.release(peer.0.ip());
        }
    }
}

struct Hooks<P: Protocol> {
    shared: Arc<Shared<P>>,
    hub: Hub,
    threads: Vec<JoinHandle<()>>,
}

impl<P: Protocol> AcceptHooks for Hooks<P> {
    fn on_conn(&mut self, stream: TcpStream, peer: Peer) {
        let (shared, hub) = (self.shared.clone(), self.hub.clone());
        let ip = peer.0.ip();
        let spawned = std::thread::Builder::new()
            .name("conn".into())
            .spawn(move || serve_one(shared, hub, stream, peer));
        match spawned {
            Ok(h) => self.threads.push(h),
            Err(e) => {
                tracing::warn!("cannot spawn a thread: {e}");
                self.shared.release(ip);
            }
        }
    }

    fn tick(&mut self) {
        // Join finished threads now so a long-running server does not pile up handles.
        let (done, live): (Vec<_>, Vec<_>) = std::mem::take(&mut self.threads)
            .into_iter()
            .partition(|h| h.is_finished());
        for h in done {
            let _ = h.join();
        }
        self.threads = live;
    }
}

pub(crate) fn run<P: Protocol>(shared: Arc<Shared<P>>, listeners: Vec<Listener>) -> io::Result<()> {
    let mut hooks = Hooks {
        shared: shared.clone(),
        hub: shared.hub.clone(),
        threads: Vec::new(),
    };
    let r = accept_loop(&shared, &listeners, &mut hooks);
    drop(listeners);
    // Each connection thread sees the shutdown pipe itself and drains within the grace period.
    for h in hooks.threads {
        let _ = h.join();
    }
    r
}
