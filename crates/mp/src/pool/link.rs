//! One worker as the pool thread sees it: its process, its socket and slot, the tasks in
//! flight to it (oldest first, answered in that order), and the buffers between; writing tasks
//! without blocking, reading and matching answers, and reaping it once its socket closes.

use std::collections::VecDeque;
use std::os::fd::{AsRawFd, RawFd};
use std::time::{Duration, Instant};

use super::worker::{frame_need, parse_frame, Slot, INIT_FAILED};
use super::Job;
use crate::handle::Tracked;
use crate::sync::Shm;
use crate::{sys, Process, ProcessError};

/// Initial capacity of a worker's buffers; the read buffer is compacted past half of it.
pub(super) const BUF: usize = 64 * 1024;

pub(super) struct Worker {
    pub(super) proc: Option<Process<()>>,
    pub(super) pid: u32,
    pub(super) sock: Tracked,
    pub(super) slot: Shm<Slot>,
    /// Tasks sent (or being sent), oldest first; the worker answers in this order.
    pub(super) inflight: VecDeque<Job>,
    pub(super) out: Vec<u8>,
    pub(super) opos: usize,
    pub(super) rbuf: Vec<u8>,
    pub(super) rpos: usize,
    pub(super) sent: u64,
    /// Has been sent `maxtasksperchild` tasks: gets no more, exits after answering them.
    pub(super) retiring: bool,
    pub(super) eof: bool,
    /// Sequence number of the next frame sent to this worker (starts at 1: its slot's
    /// `current` is 0 before the first task).
    pub(super) next_seq: u64,
    /// The slot's `current` as last seen, and since when it has not moved.
    pub(super) seen_current: u64,
    pub(super) since: Instant,
}

fn send_nb(fd: RawFd, buf: &[u8]) -> std::io::Result<usize> {
    // SAFETY: `buf` is a live slice and the length passed is its own; send only reads it.
    sys::retry(|| unsafe {
        libc::send(
            fd,
            buf.as_ptr().cast(),
            buf.len(),
            libc::MSG_NOSIGNAL | libc::MSG_DONTWAIT,
        )
    })
    .map(|n| n as usize)
}

/// Write as much of the worker's pending tasks as its socket takes now.
pub(super) fn flush(w: &mut Worker) {
    while w.opos < w.out.len() {
        match send_nb(w.sock.as_raw_fd(), &w.out[w.opos..]) {
            Ok(n) => w.opos += n,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return,
            // The worker is gone; its EOF is handled on the read side.
            Err(_) => {
                w.eof = true;
                break;
            }
        }
    }
    w.out.clear();
    w.opos = 0;
}

/// Read every result frame available and complete those tasks. Returns an initializer
/// failure message if the worker reported one.
pub(super) fn collect(w: &mut Worker, local: &mut VecDeque<Job>) -> Option<String> {
    let mut init_failed = None;
    loop {
        if w.rpos > 0 && w.rpos == w.rbuf.len() {
            w.rbuf.clear();
            w.rpos = 0;
        } else if w.rpos > BUF / 2 {
            w.rbuf.drain(..w.rpos);
            w.rpos = 0;
        }
        let need = frame_need(&w.rbuf[w.rpos..]).unwrap_or(0);
        w.rbuf
            .reserve((w.rpos + need).saturating_sub(w.rbuf.len()).max(BUF / 2));
        let len = w.rbuf.len();
        let spare = w.rbuf.capacity() - len;
        // SAFETY: writes at most `spare` bytes into the Vec's spare capacity, which starts at `len`
        // and is `capacity - len` long; the socket is owned by `w`.
        let n = sys::retry(|| unsafe {
            libc::recv(
                w.sock.as_raw_fd(),
                w.rbuf.as_mut_ptr().add(len).cast(),
                spare,
                libc::MSG_DONTWAIT,
            )
        });
        match n {
            Ok(0) => {
                w.eof = true;
                break;
            }
            // SAFETY: recv initialised `n <= spare` bytes right after the first `len`.
            Ok(n) => unsafe { w.rbuf.set_len(len + n as usize) },
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
            Err(_) => {
                w.eof = true;
                break;
            }
        }
        while let Some((id, body, total)) = parse_frame(&w.rbuf[w.rpos..]) {
            if id == INIT_FAILED {
                init_failed = Some(String::from_utf8_lossy(body).into_owned());
            } else {
                answer(&mut w.inflight, id, body, local);
            }
            w.rpos += total;
        }
    }
    init_failed
}

/// A worker's answer for frame `seq`: complete the task, or run it elsewhere if the worker
/// skipped it (empty body: taken back by `steal`). Answers for tasks already taken back, or
/// already answered, no longer match the oldest task in flight and are ignored.
pub(super) fn answer(
    inflight: &mut VecDeque<Job>,
    seq: u64,
    body: &[u8],
    local: &mut VecDeque<Job>,
) {
    if inflight.front().is_none_or(|j| j.seq != seq) {
        return;
    }
    let job = inflight.pop_front().expect("checked");
    if body.is_empty() {
        local.push_front(job);
    } else {
        job.complete(Ok(body));
    }
}

/// Reap a worker that closed its socket; returns its exit code (minus the signal if killed).
pub(super) fn reap(w: &mut Worker) -> i32 {
    let Some(mut p) = w.proc.take() else {
        return 0;
    };
    let r = match p.join_timeout(Duration::from_secs(2)) {
        Err(ProcessError::Timeout) => {
            // Closed its socket but lingers: it is no use to us any more.
            let _ = p.kill();
            p.join()
        }
        r => r,
    };
    match r {
        Ok(()) => 0,
        Err(ProcessError::Killed { signal }) => -signal,
        Err(ProcessError::Exited { code }) => code,
        Err(_) => 1,
    }
}
