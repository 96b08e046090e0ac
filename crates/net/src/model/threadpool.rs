//! `--model threadpool`: `workers` threads serve connections that have work (线程池); a
//! shared poller thread holds the ones that have none.
//!
//! A thread pool that gives each worker a connection until it closes lets idle keep-alive
//! clients hold every worker while new clients wait in the queue (64 quiet clients made the
//! 65th wait a minute). Here a connection moves:
//!
//! ```text
//!  acceptor ──New──▶ job queue ──▶ worker: serves it until it would block on read
//!                        ▲                  with nothing to write (Conn::is_idle)
//!                        │                          │ release
//!                        └──Resume── poller (epoll) ◀┘  holds idle connections: readiness,
//!                                                       a due timer or hub mail sends it back
//! ```
//!
//! A connection is owned by one thread at a time (it travels by value), so its session's
//! callbacks stay serial. Its hub wake-ups follow it through a `Route` each new owner points at
//! itself. The job queue holds at most `max_connections` (the acceptor counts before queueing).
//! During shutdown the poller hands every connection to the workers, which tell them and keep
//! them until they close or the grace period ends.

use super::acceptor::{accept_loop, AcceptHooks};
use super::reactor::{Inbox, Job, Reactor};
use crate::admit::{Peer, Shared};
use crate::conn::Conn;
use crate::listener::Listener;
use crate::poller::epoll::EpollPoller;
use crate::poller::poll::PollPoller;
use crate::session::{Protocol, Session};
use std::collections::VecDeque;
use std::io;
use std::net::TcpStream;
use std::sync::{Arc, Condvar, Mutex};

/// The work queue: jobs, and whether the pool is closing.
struct Queue<S: Session> {
    items: Mutex<(VecDeque<Job<S>>, bool)>,
    ready: Condvar,
}

impl<S: Session> Queue<S> {
    fn push(&self, job: Job<S>) {
        self.items
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .0
            .push_back(job);
        self.ready.notify_one();
    }

    /// The next job; `None` once the pool is closing and the queue is empty.
    fn pop(&self) -> Option<Job<S>> {
        let mut g = self.items.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if let Some(job) = g.0.pop_front() {
                return Some(job);
            }
            if g.1 {
                return None;
            }
            g = self.ready.wait(g).unwrap_or_else(|e| e.into_inner());
        }
    }

    fn close(&self) {
        self.items.lock().unwrap_or_else(|e| e.into_inner()).1 = true;
        self.ready.notify_all();
    }
}

/// Where workers send idle connections: the poller's inbox while it runs, else (the poller
/// has ended, during shutdown) straight back to the queue.
struct Back<S: Session> {
    poller: Mutex<Option<Arc<Inbox<S>>>>,
    queue: Arc<Queue<S>>,
}

impl<S: Session> Back<S> {
    fn give(&self, conn: Conn<S>) {
        let g = self.poller.lock().unwrap_or_else(|e| e.into_inner());
        match g.as_ref() {
            Some(inbox) => inbox.give(conn),
            None => self.queue.push(Job::Resume(Box::new(conn))),
        }
    }

    /// The poller has ended: from now on idle connections go to the queue, and whatever it
    /// had not taken in goes there too.
    fn poller_gone(&self) {
        let inbox = self.poller.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(inbox) = inbox {
            for c in inbox.drain() {
                self.queue.push(Job::Resume(Box::new(c)));
            }
        }
    }
}

struct Hooks<S: Session> {
    queue: Arc<Queue<S>>,
}

impl<S: Session> AcceptHooks for Hooks<S> {
    fn on_conn(&mut self, stream: TcpStream, peer: Peer) {
        self.queue.push(Job::New(stream, peer));
    }
}

pub(crate) fn run<P: Protocol>(
    shared: Arc<Shared<P>>,
    listeners: Vec<Listener>,
    workers: usize,
) -> io::Result<()> {
    let queue: Arc<Queue<P::Session>> = Arc::new(Queue {
        items: Mutex::new((VecDeque::new(), false)),
        ready: Condvar::new(),
    });
    let hub = shared.hub.clone();
    let to_workers = queue.clone();
    let poller = Reactor::new(
        EpollPoller::new(false)?,
        shared.clone(),
        hub.clone(),
        Vec::new(),
    )?
    .dispatching(Box::new(move |conn| {
        to_workers.push(Job::Resume(Box::new(conn)))
    }));
    let back = Arc::new(Back {
        poller: Mutex::new(Some(poller.inbox())),
        queue: queue.clone(),
    });
    let back2 = back.clone();
    let poller_thread = std::thread::Builder::new()
        .name("pool-poller".into())
        .spawn(move || {
            let r = poller.run(false);
            back2.poller_gone();
            r
        })?;
    let mut threads = Vec::new();
    for _ in 0..workers.max(1) {
        let (queue, back) = (queue.clone(), back.clone());
        let mut reactor = Reactor::new(
            PollPoller::default(),
            shared.clone(),
            hub.clone(),
            Vec::new(),
        )?
        .releasing(Box::new(move |conn| back.give(conn)));
        threads.push(
            std::thread::Builder::new()
                .name("pool-worker".into())
                .spawn(move || {
                    while let Some(job) = queue.pop() {
                        if let Err(e) = reactor.serve_job(job) {
                            tracing::warn!("pool worker: {e}");
                        }
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
    // The poller hands everything to the workers on shutdown and ends; then the queue closes
    // and the workers finish what is in it (each connection told to shut down).
    let pr = poller_thread
        .join()
        .unwrap_or_else(|_| Err(io::Error::other("pool poller panicked")));
    queue.close();
    for t in threads {
        let _ = t.join();
    }
    r.and(pr)
}
