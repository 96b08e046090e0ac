//! `--model threadpool`: `workers` threads take accepted connections from a queue (线程池).
//! The queue holds at most `max_connections` (the accept side counts before queueing), so a
//! flood waits in memory that is bounded, and the excess is refused.

use crate::acceptor::{accept_loop, AcceptHooks};
use crate::listener::Listener;
use crate::reactor::{Peer, Shared};
use crate::session::Protocol;
use crate::thread::serve_one;
use std::collections::VecDeque;
use std::io;
use std::net::TcpStream;
use std::sync::{Arc, Condvar, Mutex};

#[derive(Default)]
struct Queue {
    items: Mutex<(VecDeque<(TcpStream, Peer)>, bool)>,
    ready: Condvar,
}

struct Hooks {
    queue: Arc<Queue>,
}

impl AcceptHooks for Hooks {
    fn on_conn(&mut self, stream: TcpStream, peer: Peer) {
        self.queue
            .items
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .0
            .push_back((stream, peer));
        self.queue.ready.notify_one();
    }
}

pub(crate) fn run<P: Protocol>(
    shared: Arc<Shared<P>>,
    listeners: Vec<Listener>,
    workers: usize,
) -> io::Result<()> {
    let queue = Arc::new(Queue::default());
    let hub = shared.hub.clone();
    let mut threads = Vec::new();
    for _ in 0..workers.max(1) {
        let (queue, shared, hub) = (queue.clone(), shared.clone(), hub.clone());
        threads.push(
            std::thread::Builder::new()
                .name("pool-worker".into())
                .spawn(move || loop {
                    let job = {
                        let mut g = queue.items.lock().unwrap_or_else(|e| e.into_inner());
                        loop {
                            if let Some(job) = g.0.pop_front() {
                                break Some(job);
                            }
                            if g.1 {
                                break None;
                            }
                            g = queue.ready.wait(g).unwrap_or_else(|e| e.into_inner());
                        }
                    };
                    match job {
                        Some((s, peer)) => serve_one(shared.clone(), hub.clone(), s, peer),
                        None => return,
                    }
                })?,
        );
    }
    let r = accept_loop(
        &shared,
        &listeners,
        &mut Hooks {
            queue: queue.clone(),
        },
    );
    drop(listeners);
    {
        // Connections still queued were accepted and counted: they are served, and at once
        // told to shut down, like every other in-flight connection.
        queue.items.lock().unwrap_or_else(|e| e.into_inner()).1 = true;
        queue.ready.notify_all();
    }
    for t in threads {
        let _ = t.join();
    }
    r
}
