//! The pool's own thread: starts and replaces workers, hands tasks to them, collects results
//! and runs the completions (Python's task, result and worker handler threads, as one).
//!
//! Tasks go to workers over per-worker socket pairs, written without blocking, so a worker that
//! is slow to read never stops this thread from collecting everyone's results. Each worker holds
//! at most a window of unanswered tasks, sized from the backlog as Python sizes `map` chunks:
//! a deep backlog of tiny tasks goes out in large batches (one system call for hundreds of
//! tasks), a handful of long tasks one at a time so no worker sits idle behind another.
//!
//! When a worker goes idle while another has tasks queued behind one that has run for
//! [`STEAL_AFTER`], those queued tasks are taken back and run by the idle worker (see the
//! fence in `worker`): a long task delays only itself, and tasks that wait for each other
//! cannot deadlock by being queued behind each other.
//!
//! One worker's socket, tasks in flight and buffers, and the reading and writing of them, are in
//! `link.rs`; this file decides who gets what, and when workers start, are replaced and stop.

use std::collections::VecDeque;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::link::{answer, collect, flush, reap, Worker, BUF};
use super::worker::{self, begin_frame, end_frame, parse_frame, Boot, Init, InitField, Slot};
use super::{Job, PoolError, Shared};
use crate::handle::Tracked;
use crate::sync::Shm;
use crate::{sys, Process, ProcessError, StartMethod};

/// Most unanswered tasks one worker holds.
const MAX_WINDOW: usize = 256;
/// How long a worker's task may run before the tasks queued behind it are taken back for an
/// idle worker.
pub(crate) const STEAL_AFTER: Duration = Duration::from_millis(2);

pub(crate) struct Config {
    pub processes: usize,
    pub maxtasks: u64,
    pub method: StartMethod,
    pub init: Option<Init>,
}

pub(crate) struct Engine {
    shared: Arc<Shared>,
    cfg: Config,
    workers: Vec<Worker>,
    local: VecDeque<Job>,
    /// When to look again for tasks to steal, if some worker is idle.
    steal_check: Option<Duration>,
    started: usize,
    broken: Option<PoolError>,
}

pub(crate) fn eventfd() -> std::io::Result<OwnedFd> {
    // SAFETY: eventfd takes no pointer.
    let fd = sys::cvt(unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) })?;
    // SAFETY: eventfd succeeded: a fresh descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

pub(crate) fn poke(fd: &OwnedFd) {
    let one: u64 = 1;
    // SAFETY: writes the 8 bytes of `one`, a live u64 (an eventfd takes exactly 8); `fd` is
    // borrowed, so open.
    unsafe { libc::write(fd.as_raw_fd(), (&one as *const u64).cast(), 8) };
}

fn drain_eventfd(fd: &OwnedFd) {
    let mut v: u64 = 0;
    // SAFETY: reads at most 8 bytes into `v`, a live u64; `fd` is borrowed, so open.
    unsafe { libc::read(fd.as_raw_fd(), (&mut v as *mut u64).cast(), 8) };
}

impl Engine {
    pub(crate) fn new(shared: Arc<Shared>, cfg: Config) -> Engine {
        Engine {
            shared,
            cfg,
            workers: Vec::new(),
            local: VecDeque::new(),
            steal_check: None,
            started: 0,
            broken: None,
        }
    }

    fn start_worker(&mut self) -> Result<Worker, PoolError> {
        let (mine, theirs) = sys::socketpair().map_err(|e| PoolError::Start(e.to_string()))?;
        let (mine, theirs) = (Tracked::new(mine), Tracked::new(theirs));
        let slot: Shm<Slot> = Shm::with_len(worker::SLOT_LEN, |_| Ok(()))
            .map_err(|e| PoolError::Start(e.to_string()))?;
        self.started += 1;
        let boot = Boot {
            sock: theirs,
            slot: slot.clone(),
            init: InitField::Source(self.cfg.init.clone()),
            maxtasks: self.cfg.maxtasks,
        };
        // Daemon: workers die with the pool's process, even if it is SIGKILLed. Started from
        // this thread, which outlives every worker (the death signal follows the thread).
        let proc = Process::builder()
            .name(format!("PoolWorker-{}", self.started))
            .daemon(true)
            .start_method(self.cfg.method)
            .spawn(worker::worker_main, boot)
            .map_err(|e| PoolError::Start(e.to_string()))?;
        Ok(Worker {
            pid: proc.pid(),
            proc: Some(proc),
            sock: mine,
            slot,
            inflight: VecDeque::new(),
            out: Vec::with_capacity(BUF),
            opos: 0,
            rbuf: Vec::with_capacity(BUF),
            rpos: 0,
            sent: 0,
            retiring: false,
            eof: false,
            next_seq: 1,
            seen_current: 0,
            since: Instant::now(),
        })
    }

    /// Start the workers; `Err` if the first ones cannot be started at all.
    pub(crate) fn start(&mut self) -> Result<(), PoolError> {
        for _ in 0..self.cfg.processes {
            let w = self.start_worker()?;
            self.workers.push(w);
        }
        Ok(())
    }

    pub(crate) fn run(mut self) {
        loop {
            let (closing, terminated) = {
                let mut st = self.shared.state.lock();
                self.local.extend(st.pending.drain(..));
                (st.closed, st.terminated)
            };
            if terminated {
                self.terminate();
                return;
            }
            if let Some(e) = &self.broken {
                for job in self.local.drain(..) {
                    job.complete(Err(e.clone()));
                }
            }
            self.dispatch();
            self.steal_check = self.steal();
            self.dispatch();
            for w in &mut self.workers {
                flush(w);
            }
            if closing
                && self.local.is_empty()
                && self.workers.iter().all(|w| w.inflight.is_empty())
            {
                self.shutdown();
                return;
            }
            self.wait_and_collect(closing);
            self.bury_dead();
        }
    }

    fn dispatch(&mut self) {
        if self.local.is_empty() || self.workers.is_empty() {
            return;
        }
        let inflight: usize = self.workers.iter().map(|w| w.inflight.len()).sum();
        let window =
            ((self.local.len() + inflight) / (4 * self.workers.len())).clamp(1, MAX_WINDOW);
        // Least-loaded first, so a short backlog spreads over idle workers.
        let mut order: Vec<usize> = (0..self.workers.len()).collect();
        order.sort_by_key(|&i| self.workers[i].inflight.len());
        for i in order {
            let w = &mut self.workers[i];
            while !w.retiring && !w.eof && w.inflight.len() < window {
                let Some(mut job) = self.local.pop_front() else {
                    return;
                };
                if w.inflight.is_empty() {
                    // Busy from now: the stealing clock starts here, not when it last moved.
                    w.since = Instant::now();
                    w.seen_current = w.slot.get().current.load(Ordering::Relaxed);
                }
                job.seq = w.next_seq;
                w.next_seq += 1;
                let at = begin_frame(&mut w.out, job.seq);
                w.out.extend_from_slice(&job.entry.to_le_bytes());
                w.out.extend_from_slice(&job.func.to_le_bytes());
                w.out.extend_from_slice(&job.args);
                end_frame(&mut w.out, at);
                w.inflight.push_back(job);
                w.sent += 1;
                if self.cfg.maxtasks > 0 && w.sent >= self.cfg.maxtasks {
                    w.retiring = true;
                }
            }
        }
    }

    /// If a worker is idle and nothing is waiting, take back the tasks queued behind any task
    /// that has run for [`STEAL_AFTER`]. Returns when to check again, if that may be needed.
    fn steal(&mut self) -> Option<Duration> {
        if !self.local.is_empty()
            || !self
                .workers
                .iter()
                .any(|w| w.inflight.is_empty() && !w.retiring && !w.eof)
        {
            return None;
        }
        let now = Instant::now();
        let mut check = None::<Duration>;
        for v in &mut self.workers {
            if v.inflight.len() < 2 || v.eof {
                continue;
            }
            let slot = v.slot.get();
            let cur = slot.current.load(Ordering::SeqCst);
            if cur != v.seen_current {
                v.seen_current = cur;
                v.since = now;
            }
            let ran = now - v.since;
            if ran < STEAL_AFTER {
                let left = STEAL_AFTER - ran;
                check = Some(check.map_or(left, |c| c.min(left)));
                continue;
            }
            let last = v.inflight.back().expect("len >= 2").seq;
            slot.fence.fetch_max(last, Ordering::SeqCst);
            // Everything after what it has announced now will be skipped by the worker.
            let started = slot.current.load(Ordering::SeqCst);
            while v.inflight.back().is_some_and(|j| j.seq > started) {
                let job = v.inflight.pop_back().expect("checked");
                self.local.push_front(job);
            }
        }
        check
    }

    /// Sleep until a worker answers (or can take more bytes) or a new task arrives, then read.
    fn wait_and_collect(&mut self, closing: bool) {
        let idle = {
            let mut st = self.shared.state.lock();
            let idle = st.pending.is_empty() && !st.terminated && st.closed == closing;
            st.sleeping = idle;
            idle
        };
        let mut fds = Vec::with_capacity(self.workers.len() + 1);
        fds.push(libc::pollfd {
            fd: self.shared.wake.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        });
        for w in &self.workers {
            let mut events = libc::POLLIN;
            if w.opos < w.out.len() {
                events |= libc::POLLOUT;
            }
            fds.push(libc::pollfd {
                fd: w.sock.as_raw_fd(),
                events,
                revents: 0,
            });
        }
        // A bounded sleep is a safety net only: every state change pokes the eventfd.
        let timeout = match (idle, self.steal_check) {
            (false, _) => 0,
            (true, None) => 1000,
            (true, Some(d)) => d.as_micros().div_ceil(1000).max(1) as i32,
        };
        // SAFETY: `fds` is a live Vec of pollfd and the count is its length; its descriptors (the
        // eventfd and the workers' sockets) are owned by `self` and open for the call.
        unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout) };
        self.shared.state.lock().sleeping = false;
        if fds[0].revents != 0 {
            drain_eventfd(&self.shared.wake);
        }
        for (i, w) in self.workers.iter_mut().enumerate() {
            let r = fds[i + 1].revents;
            if r & libc::POLLOUT != 0 {
                flush(w);
            }
            if r & (libc::POLLIN | libc::POLLHUP | libc::POLLERR) != 0 {
                if let Some(msg) = collect(w, &mut self.local) {
                    if self.broken.is_none() {
                        self.broken = Some(PoolError::Initializer(msg));
                    }
                }
            }
        }
    }

    /// Replace workers that exited: retired ones quietly; dead ones fail the task they held.
    fn bury_dead(&mut self) {
        let mut i = 0;
        while i < self.workers.len() {
            if !self.workers[i].eof {
                i += 1;
                continue;
            }
            let mut w = self.workers.swap_remove(i);
            let exitcode = reap(&mut w);
            // Results it finished but had not sent yet are still in its slot.
            let mut parked = worker::unsent_results(&w.slot);
            while let Some((seq, body, total)) = parse_frame(parked) {
                // Frames already received through the socket no longer match.
                answer(&mut w.inflight, seq, body, &mut self.local);
                parked = &parked[total..];
            }
            let current = w.slot.get().current.load(Ordering::Acquire);
            if let Some(pos) = w.inflight.iter().position(|j| j.seq == current) {
                let lost = PoolError::WorkerLost {
                    pid: w.pid,
                    exitcode,
                };
                for job in w.inflight.drain(..=pos) {
                    job.complete(Err(lost.clone()));
                }
            }
            // Never started: safe to run elsewhere, in the original order.
            for job in w.inflight.drain(..).rev() {
                self.local.push_front(job);
            }
            if let Some(e) = &self.broken {
                for job in self.local.drain(..) {
                    job.complete(Err(e.clone()));
                }
                continue;
            }
            match self.start_worker() {
                Ok(nw) => self.workers.push(nw),
                Err(e) => {
                    self.broken = Some(e.clone());
                    for job in self.local.drain(..) {
                        job.complete(Err(e.clone()));
                    }
                }
            }
        }
        if self.workers.is_empty() {
            if let Some(e) = &self.broken {
                let jobs: Vec<Job> = {
                    let mut st = self.shared.state.lock();
                    st.broken = Some(e.clone());
                    st.pending.drain(..).collect()
                };
                for job in jobs {
                    job.complete(Err(e.clone()));
                }
            }
        }
    }

    /// After `close()`, with every task answered: let the workers see EOF and exit.
    fn shutdown(&mut self) {
        for mut w in self.workers.drain(..) {
            let Some(p) = w.proc.take() else { continue };
            drop(w);
            let mut p = p;
            if p.join_timeout(Duration::from_secs(5))
                .is_err_and(|e| matches!(e, ProcessError::Timeout))
            {
                let _ = p.kill();
                let _ = p.join();
            }
        }
        self.shared.state.lock().finished = true;
    }

    /// The first workers could not all be started: stop those that were.
    pub(crate) fn terminate_after_failed_start(mut self) {
        self.terminate();
    }

    /// `terminate()`: stop the workers now; every unfinished task fails with `Terminated`.
    pub(crate) fn terminate(&mut self) {
        for w in &self.workers {
            if let Some(p) = &w.proc {
                let _ = p.terminate();
            }
        }
        let mut jobs: Vec<Job> = self.local.drain(..).collect();
        for mut w in self.workers.drain(..) {
            jobs.extend(w.inflight.drain(..));
            if let Some(mut p) = w.proc.take() {
                drop(w);
                if p.join_timeout(Duration::from_secs(2))
                    .is_err_and(|e| matches!(e, ProcessError::Timeout))
                {
                    let _ = p.kill();
                    let _ = p.join();
                }
            }
        }
        {
            let mut st = self.shared.state.lock();
            jobs.extend(st.pending.drain(..));
            st.finished = true;
        }
        for job in jobs {
            job.complete(Err(PoolError::Terminated));
        }
    }
}
