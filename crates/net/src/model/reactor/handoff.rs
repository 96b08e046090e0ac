//! Connections that move between loops (the `threadpool` model): a worker loop serves one until
//! it is idle and *releases* it; the poller loop holds idle ones and *dispatches* one that has
//! work. A connection travels by value, so one thread at a time runs its session. Its hub
//! wake-ups follow it through a [`Route`].

use super::{Reactor, Reg};
use crate::admit::Peer;
use crate::conn::Conn;
use crate::poller::Poller;
use crate::session::Protocol;
use crate::wake::Wake;
use std::io;
use std::net::TcpStream;
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// The wake-up "slot" that means: connections were handed to this loop (see `Handoff`).
pub(super) const INBOX: usize = usize::MAX;

/// Work for a threadpool worker: a connection just accepted, or one with something to do.
pub(crate) enum Job<S: crate::session::Session> {
    New(TcpStream, Peer),
    Resume(Box<Conn<S>>),
}

/// Where a loop sends connections it gives away (see `Reactor::dispatching`/`releasing`).
pub(crate) type Handoff<S> = Box<dyn FnMut(Conn<S>) + Send>;

/// Connections handed to a loop from other threads, with the wake-up that tells it.
pub(crate) struct Inbox<S: crate::session::Session> {
    pub(super) conns: Mutex<Vec<Conn<S>>>,
    pub(super) wake: Arc<Wake>,
}

impl<S: crate::session::Session> Inbox<S> {
    /// What was given and not yet taken in (the loop has ended).
    pub(crate) fn drain(&self) -> Vec<Conn<S>> {
        std::mem::take(&mut *self.conns.lock().unwrap_or_else(|e| e.into_inner()))
    }

    pub(crate) fn give(&self, conn: Conn<S>) {
        self.conns
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(conn);
        self.wake.wake(INBOX);
    }
}

impl<Pl: Poller, P: Protocol> Reactor<Pl, P> {
    /// Poller mode: hold idle connections only; one with readiness, a due timer or hub mail
    /// goes to `to` (a threadpool worker) instead of being served here.
    pub(crate) fn dispatching(mut self, to: Handoff<P::Session>) -> Self {
        self.mobile = true;
        self.dispatch = Some(to);
        self
    }
    /// Worker mode: serve connections until they go idle, then give them to `to` (the
    /// threadpool's poller). During shutdown they stay until they close.
    pub(crate) fn releasing(mut self, to: Handoff<P::Session>) -> Self {
        self.mobile = true;
        self.release = Some(to);
        self
    }
    /// Where other threads hand this loop connections.
    pub(crate) fn inbox(&self) -> Arc<Inbox<P::Session>> {
        self.inbox.clone()
    }
    /// Take in a connection another loop gave away (always counted: threadpool connections
    /// hold a place until they close).
    pub(super) fn adopt_conn(&mut self, mut conn: Conn<P::Session>) {
        if self.deadline.is_none() && self.shared.shutdown.is_shutting_down() {
            self.begin_shutdown();
        }
        let slot = match self.free.pop() {
            Some(s) => s,
            None => {
                self.conns.push(None);
                self.counted.push(false);
                self.scheduled.push((None, 0));
                self.conns.len() - 1
            }
        };
        let gen = self.scheduled[slot].1.wrapping_add(1);
        self.scheduled[slot] = (None, gen);
        // Point wake-ups here, then re-arm them: a wake-up that went to the old owner is lost
        // there, and the mail it announced is found by the checks below (poller) or by the
        // settle (worker).
        if let Some(r) = conn.route() {
            r.point(&self.wake, slot);
        }
        conn.rearm_mail();
        {
            let (poller, _, env) = self.env_parts();
            conn.attach(&mut Reg { poller, slot }, &env);
        }
        self.conns[slot] = Some(conn);
        self.counted[slot] = true;
        self.live += 1;
        if self.dispatch.is_some() {
            let due = {
                let c = self.conns[slot].as_ref().expect("just placed");
                !c.is_idle(&self.shared.limits)
                    || c.is_closed()
                    || c.deadline(&self.shared.limits)
                        .is_some_and(|d| d <= Instant::now())
            };
            if due || self.deadline.is_some() {
                self.hand_off(slot);
            } else {
                self.after(slot);
            }
            return;
        }
        let shutting = self.deadline.is_some();
        self.with_conn(slot, |conn, reg, env| {
            let now = Instant::now();
            if conn.deadline(env.limits).is_some_and(|d| d <= now) {
                conn.on_tick(now, reg, env);
            }
            if shutting {
                conn.shutdown(reg, env);
            }
            conn.settle(reg, env);
        });
    }
    /// Give the connection in `slot` away (to the workers, or back to the poller).
    pub(super) fn hand_off(&mut self, slot: usize) {
        let Some(mut conn) = self.conns.get_mut(slot).and_then(Option::take) else {
            return;
        };
        {
            let (poller, _, _) = self.env_parts();
            conn.detach(&mut Reg { poller, slot });
        }
        self.scheduled[slot].0 = None;
        self.counted[slot] = false;
        self.free.push(slot);
        self.live -= 1;
        let to = if self.dispatch.is_some() {
            self.dispatch.as_mut()
        } else {
            self.release.as_mut()
        };
        match to {
            Some(to) => to(conn),
            None => unreachable!("hand_off without a destination"),
        }
    }
    pub(super) fn take_inbox(&mut self) {
        for c in self.inbox.drain() {
            self.adopt_conn(c);
        }
    }
    /// A threadpool worker: serve a connection from the queue until it closes or is released.
    pub(crate) fn serve_job(&mut self, job: Job<P::Session>) -> io::Result<()> {
        self.start()?;
        match job {
            Job::New(stream, peer) => self.adopt(stream, peer, true),
            Job::Resume(conn) => self.adopt_conn(*conn),
        }
        self.run_loop(true)
    }
}
