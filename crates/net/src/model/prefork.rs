//! `--model prefork`: `workers` processes forked up front, each accepting on the shared
//! listeners and serving many connections with its own epoll loop (nginx's shape; 进程池).
//!
//! The parent only supervises: it runs the hub relay between the workers, reaps and replaces a
//! worker that dies, and on shutdown forwards SIGTERM, waits, and reaps (see `fork.rs`,
//! `Family`). `max_connections` holds across workers through a counter in shared memory.

use super::fork::Family;
use super::reactor::Reactor;
use crate::admit::Shared;
use crate::hub::Hub;
use crate::listener::Listener;
use crate::poller::epoll::EpollPoller;
use crate::session::Protocol;
use crate::sys;
use std::io;
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn spawn_worker<P: Protocol>(
    family: &mut Family,
    shared: &Arc<Shared<P>>,
    listeners: &[Listener],
    index: usize,
) -> io::Result<libc::pid_t> {
    family.spawn(&[], |link| {
        shared.counter.use_ledger(index);
        shared.episode.use_slot(index);
        // Own duplicates so the loop can close them at shutdown; the originals are closed
        // right away so only the loop holds the listening sockets in this process.
        let mine = listeners
            .iter()
            .map(|l| l.try_clone())
            .collect::<io::Result<Vec<_>>>()?;
        for l in listeners {
            sys::close_fd(l.as_raw_fd());
        }
        Reactor::new(
            EpollPoller::new(false)?,
            shared.clone(),
            Hub::with_link(link),
            mine,
        )?
        .run(false)
    })
}

pub(crate) fn run<P: Protocol>(
    shared: Arc<Shared<P>>,
    listeners: Vec<Listener>,
    workers: usize,
) -> io::Result<()> {
    let mut family = Family::new()?;
    family.adopt_injector(&shared)?;
    // Worker index -> pid; the index names the worker's ledger in the connection counter.
    let mut slots: Vec<Option<libc::pid_t>> = vec![None; workers.max(1)];
    for (w, slot) in slots.iter_mut().enumerate() {
        *slot = Some(spawn_worker(&mut family, &shared, &listeners, w)?);
    }
    let sd = shared.shutdown.fd();
    let mut last_respawn = Instant::now() - Duration::from_secs(1);
    loop {
        let mut fds: Vec<libc::pollfd> = vec![libc::pollfd {
            fd: sd,
            events: libc::POLLIN,
            revents: 0,
        }];
        fds.extend(family.pollfds());
        // SAFETY: a valid array of pollfd.
        unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, 500) };
        if fds[0].revents != 0 {
            break;
        }
        for p in &fds[1..] {
            if p.revents != 0 && p.fd != family.child_r.as_raw_fd() {
                family.relay.on_ready(p.fd, true);
            }
        }
        family.relay.tick();
        for pid in family.reap(&shared.protocol) {
            if let Some(w) = slots.iter().position(|s| *s == Some(pid)) {
                // It may have died holding places (SIGKILL, a crash): give them back.
                slots[w] = None;
                let gone = shared.counter.reclaim_ledger(w);
                shared.released(gone as u64);
            }
        }
        // Replace dead workers, but not in a tight loop if they die at start.
        while let Some(w) = slots.iter().position(Option::is_none) {
            if last_respawn.elapsed() < Duration::from_millis(200) {
                break;
            }
            tracing::warn!("prefork: worker {w} died; starting a new one");
            last_respawn = Instant::now();
            slots[w] = Some(spawn_worker(&mut family, &shared, &listeners, w)?);
        }
    }
    drop(listeners);
    family.wind_down(&shared.protocol, shared.limits.shutdown_grace);
    Ok(())
}
