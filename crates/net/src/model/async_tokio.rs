//! `--model async`: a tokio task per connection on a `workers`-thread runtime (the coroutine
//! model: gevent / asyncio). Each task drives the same `Conn` as the event-loop models, using
//! tokio's reactor for readiness (`AsyncFd`, edge-style: readiness is cleared as it is consumed,
//! which `conn/` is written for), `Notify` for hub wake-ups and `sleep_until` for timers.

use crate::admit::exhaustion::{Accepted, Reserve, BACKOFF};
use crate::admit::{make_conn, refuse, Peer, Shared};
use crate::conn::{Env, Registry};
use crate::hub::Hub;
use crate::listener::Listener;
use crate::poller::Interest;
use crate::session::Protocol;
use crate::wake::Waker;
use std::future::poll_fn;
use std::io;
use std::net::TcpStream;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;
use tokio::io::unix::AsyncFd;
use tokio::io::Interest as TokioInterest;
use tokio::sync::{mpsc, watch, Notify};

/// A descriptor owned elsewhere (by the `Conn`), registered with tokio by number.
struct FdRef(RawFd);

impl AsRawFd for FdRef {
    fn as_raw_fd(&self) -> RawFd {
        self.0
    }
}

/// The descriptors of one connection, each with the interest `conn/` last asked for.
#[derive(Default)]
struct TaskReg {
    fds: Vec<(u16, AsyncFd<FdRef>, Interest)>,
}

impl Registry for TaskReg {
    fn set(&mut self, fd: RawFd, code: u16, interest: Interest, new: bool) -> io::Result<()> {
        if new {
            // SAFETY: the fd stays open while registered: conn/ removes it before closing it,
            // and the registry is dropped before the connection (see serve_conn).
            let afd = unsafe {
                AsyncFd::register_with_interest(
                    FdRef(fd),
                    TokioInterest::READABLE | TokioInterest::WRITABLE,
                )
            }
            .map_err(io::Error::from)?;
            self.fds.push((code, afd, interest));
        } else if let Some(e) = self.fds.iter_mut().find(|e| e.0 == code) {
            e.2 = interest;
        }
        Ok(())
    }

    fn remove(&mut self, _fd: RawFd, code: u16) {
        // Dropping the AsyncFd deregisters it; conn/ calls this before closing the socket.
        self.fds.retain(|e| e.0 != code);
    }
}

impl TaskReg {
    /// Ready endpoints as (code, readable, writable, FIN); readiness is consumed here.
    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<Vec<(u16, bool, bool, bool)>> {
        let mut out = Vec::new();
        for (code, afd, interest) in &mut self.fds {
            let mut r = false;
            let mut w = false;
            let mut fin = false;
            if interest.read || interest.hangup {
                // tokio registers EPOLLRDHUP: a FIN shows as `read_closed`. Watching only for
                // it (input paused), plain readability is still consumed and reported, so no
                // edge is lost for when reading resumes.
                if let Poll::Ready(g) = afd.poll_read_ready(cx) {
                    if let Ok(mut g) = g {
                        fin = g.ready().is_read_closed();
                        g.clear_ready();
                    }
                    r = true;
                }
            }
            if interest.write {
                if let Poll::Ready(g) = afd.poll_write_ready(cx) {
                    if let Ok(mut g) = g {
                        g.clear_ready();
                    }
                    w = true;
                }
            }
            if r || w {
                out.push((*code, r, w, fin));
            }
        }
        if out.is_empty() {
            Poll::Pending
        } else {
            Poll::Ready(out)
        }
    }
}

enum Ev {
    Io(Vec<(u16, bool, bool, bool)>),
    Hub,
    Tick,
    Shutdown,
}

/// Gives the connection's place in the counter back however the task ends.
struct Place<P: Protocol>(Arc<Shared<P>>, std::net::IpAddr);

impl<P: Protocol> Drop for Place<P> {
    fn drop(&mut self) {
        self.0.release(self.1);
    }
}

async fn serve_conn<P: Protocol>(
    shared: Arc<Shared<P>>,
    hub: Hub,
    stream: TcpStream,
    peer: Peer,
    mut shut: watch::Receiver<bool>,
    _alive: mpsc::Sender<()>,
) {
    let place = Place(shared, peer.0.ip());
    let shared = &place.0;
    let notify = Arc::new(Notify::new());
    let n2 = notify.clone();
    let waker: Waker = Arc::new(move || n2.notify_one());
    let Ok(mut conn) = make_conn(shared, stream, peer, waker) else {
        return;
    };
    // Declared after `conn` so it is dropped first: deregister before the sockets close.
    let mut reg = TaskReg::default();
    let env = Env {
        hub: &hub,
        limits: &shared.limits,
        passive: &shared.passive,
        // tokio reports readiness changes only.
        level_triggered: false,
        tally: shared.tally.as_ref(),
    };
    conn.open(&mut reg, &env);
    let mut shutting = false;
    let mut hard: Option<Instant> = None;
    if *shut.borrow() {
        shutting = true;
        hard = Some(Instant::now() + shared.limits.shutdown_grace);
        conn.shutdown(&mut reg, &env);
    }
    while !conn.is_closed() {
        let deadline = [conn.deadline(&shared.limits), hard]
            .into_iter()
            .flatten()
            .min();
        let ev = tokio::select! {
            evs = poll_fn(|cx| reg.poll(cx)) => Ev::Io(evs),
            _ = notify.notified() => Ev::Hub,
            _ = tokio::time::sleep_until(deadline.unwrap_or_else(Instant::now).into()), if deadline.is_some() => Ev::Tick,
            _ = shut.changed(), if !shutting => Ev::Shutdown,
        };
        match ev {
            Ev::Io(evs) => {
                for (code, r, w, fin) in evs {
                    conn.on_ready(code, r, w, false, fin);
                }
                conn.settle(&mut reg, &env);
            }
            Ev::Hub => conn.settle(&mut reg, &env),
            Ev::Tick => {
                let now = Instant::now();
                if hard.is_some_and(|h| now >= h) {
                    conn.abort();
                } else {
                    conn.on_tick(now, &mut reg, &env);
                }
            }
            Ev::Shutdown => {
                shutting = true;
                hard = Some(Instant::now() + shared.limits.shutdown_grace);
                conn.shutdown(&mut reg, &env);
            }
        }
    }
    conn.finish(&mut reg, &env);
}

async fn accept_task<P: Protocol>(
    shared: Arc<Shared<P>>,
    hub: Hub,
    listener: Listener,
    index: usize,
    shut: watch::Receiver<bool>,
    alive: mpsc::Sender<()>,
) {
    let mut stop = shut.clone();
    // Our own accept loop over the listener's readiness rather than tokio's `accept()`: out of
    // descriptors, accept fails with EMFILE while the listener stays ready, and only the
    // reserve (see `admit/exhaustion.rs`) turns that into refusals instead of a busy loop. The same
    // loop serves TCP and Unix-domain listeners (an admin socket).
    let mut reserve = Reserve::new();
    // SAFETY: `listener` outlives the registration (declared after it, so dropped first).
    let afd = match unsafe {
        AsyncFd::register_with_interest(FdRef(listener.as_raw_fd()), TokioInterest::READABLE)
    } {
        Ok(a) => a,
        Err(e) => {
            tracing::warn!("listener: {e}");
            return;
        }
    };
    loop {
        let mut ready = tokio::select! {
            r = afd.readable() => match r {
                Ok(g) => g,
                Err(e) => {
                    tracing::warn!("listener: {e}");
                    return;
                }
            },
            _ = stop.changed() => return,
        };
        let mut backoff = false;
        for _ in 0..256 {
            match reserve.accept(&listener, index, &shared) {
                Accepted::Conn(s, peer) => {
                    if !shared.admit(peer.ip()) {
                        refuse(&shared, s, index);
                        continue;
                    }
                    tokio::spawn(serve_conn(
                        shared.clone(),
                        hub.clone(),
                        s,
                        (peer, index),
                        shut.clone(),
                        alive.clone(),
                    ));
                }
                Accepted::Refused => {}
                Accepted::Empty => {
                    ready.clear_ready();
                    break;
                }
                Accepted::BackOff => {
                    backoff = true;
                    break;
                }
            }
        }
        drop(ready);
        if backoff {
            tokio::select! {
                _ = tokio::time::sleep(BACKOFF) => {}
                _ = stop.changed() => return,
            }
        } else {
            // A full share taken (or a back-off over): let the connections run.
            tokio::task::yield_now().await;
        }
    }
}

pub(crate) fn run<P: Protocol>(
    shared: Arc<Shared<P>>,
    listeners: Vec<Listener>,
    workers: usize,
) -> io::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers.max(1))
        .enable_all()
        .build()?;
    let grace = shared.limits.shutdown_grace;
    rt.block_on(async move {
        let hub = shared.hub.clone();
        let (tx, rx) = watch::channel(false);
        let (alive, mut all_done) = mpsc::channel::<()>(1);
        for (index, l) in listeners.into_iter().enumerate() {
            l.set_nonblocking(true)?;
            tokio::spawn(accept_task(
                shared.clone(),
                hub.clone(),
                l,
                index,
                rx.clone(),
                alive.clone(),
            ));
        }
        drop(alive);
        // SAFETY: the shutdown pipe lives in `shared`, which outlives this registration.
        let sd = unsafe {
            AsyncFd::register_with_interest(FdRef(shared.shutdown.fd()), TokioInterest::READABLE)
        }
        .map_err(io::Error::from)?;
        let _ = sd.readable().await?;
        drop(sd);
        let _ = tx.send(true);
        // Every connection task holds a sender; recv() gives None once the last one ended.
        let _ = tokio::time::timeout(
            grace + std::time::Duration::from_millis(500),
            all_done.recv(),
        )
        .await;
        Ok::<(), io::Error>(())
    })?;
    rt.shutdown_timeout(std::time::Duration::from_millis(500));
    Ok(())
}
