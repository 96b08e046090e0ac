//! The io_uring poller: readiness through a completion ring. Each watched descriptor has one
//! `IORING_OP_POLL_ADD` in flight; its completion is the event. The `uring` model runs one per
//! worker thread (see `model/uring.rs`), under the same reactor as `epoll`.
//!
//! Why one-shot polls, re-armed: a one-shot poll that is armed again after its event checks
//! readiness at once when the kernel takes it, which is exactly level-triggered readiness, the
//! discipline `conn/` is written for (it may stop reading at a bound and expect to be told
//! again). A multishot poll only fires on new wake-ups (edge semantics). The re-arm costs no
//! system call: every change of a turn (arm, re-arm, change of interest, removal) is queued in
//! the submission ring and handed over by the single `io_uring_enter` that also waits, with the
//! turn's timeout as its `EXT_ARG` timespec, so the wait, its timeout and every registration of
//! a turn are one system call (epoll needs an `epoll_ctl` per change plus `epoll_wait`).
//!
//! Why a removal is submitted at once: a poll request holds a reference to its file, so a
//! closed socket stays open in the kernel until its poll is removed. The removal is submitted
//! before the caller closes the descriptor (the cancelled request lets go of the file before
//! `io_uring_enter` returns); on drop every request left is cancelled and waited for, so no
//! socket (or listening port) outlives the loop.

use crate::poller::{Event, Interest, Poller};
use io_uring::{opcode, squeue, types, IoUring};
use std::collections::HashMap;
use std::io;
use std::os::fd::RawFd;
use std::time::Duration;

/// The `user_data` of requests whose completion is not an event (removals, cancellations).
const IGNORED: u64 = u64::MAX;
/// Submission slots: a turn re-arms at most this many polls per `io_uring_enter`; more are
/// handed over in extra submits (only under thousands of events in one turn).
const SQ_ENTRIES: u32 = 1024;
/// Completion slots; past them the kernel keeps completions aside (IORING_FEAT_NODROP) and the
/// crate's submit flushes them, so none is lost.
const CQ_ENTRIES: u32 = 8192;

/// One watched descriptor.
struct Watch {
    token: usize,
    /// The poll(2) mask wanted (0: nothing, so no request is armed).
    mask: u32,
    /// The `user_data` of the poll in flight, if any: `fd << 32 | sequence`, so a completion
    /// of an older request (removed, or for a descriptor number since reused) is recognised.
    armed: Option<u64>,
}

pub(crate) struct UringPoller {
    ring: IoUring,
    watches: HashMap<RawFd, Watch>,
    /// Descriptors whose poll must be (re)armed by the next wait.
    rearm: Vec<RawFd>,
    seq: u32,
}

/// Why the ring could not be set up, for the message the server gives at start.
pub(crate) fn setup_error(e: &io::Error) -> String {
    if e.raw_os_error().is_none() {
        return e.to_string(); // our own check of the kernel's features (`UringPoller::new`)
    }
    let disabled = std::fs::read_to_string("/proc/sys/kernel/io_uring_disabled")
        .ok()
        .and_then(|s| s.trim().parse::<u8>().ok());
    explain(e, disabled)
}

/// The reason, from `io_uring_setup`'s error and `kernel.io_uring_disabled` (if readable).
pub(crate) fn explain(e: &io::Error, disabled: Option<u8>) -> String {
    let sysctl = match disabled {
        Some(2) => " (kernel.io_uring_disabled = 2: io_uring is switched off for everyone)",
        Some(1) => {
            " (kernel.io_uring_disabled = 1: only members of kernel.io_uring_group or \
             CAP_SYS_ADMIN may use it)"
        }
        _ => "",
    };
    match e.raw_os_error() {
        Some(libc::ENOSYS) => {
            "io_uring_setup is not implemented (ENOSYS): the kernel was built without \
             io_uring, or a sandbox hides the system call"
                .to_string()
        }
        Some(libc::EPERM) | Some(libc::EACCES) => format!(
            "io_uring_setup was refused ({}){sysctl}; a seccomp profile or container runtime \
             may also forbid it",
            if e.raw_os_error() == Some(libc::EPERM) {
                "EPERM"
            } else {
                "EACCES"
            }
        ),
        Some(libc::ENOMEM) => format!(
            "io_uring_setup failed for lack of locked memory (ENOMEM: {e}); raise \
             RLIMIT_MEMLOCK{sysctl}"
        ),
        _ => format!("io_uring_setup failed: {e}{sysctl}"),
    }
}

impl UringPoller {
    pub(crate) fn new() -> io::Result<Self> {
        let ring = IoUring::builder()
            // The kernel runs completion work when we enter, not by interrupting the thread.
            .setup_coop_taskrun()
            .setup_cqsize(CQ_ENTRIES)
            .setup_clamp()
            .build(SQ_ENTRIES)?;
        if !ring.params().is_feature_ext_arg() {
            // The wait's timeout rides on io_uring_enter's EXT_ARG (Linux 5.11).
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "this kernel's io_uring has no IORING_FEAT_EXT_ARG (Linux 5.11 or later is \
                 needed for a wait with a timeout)",
            ));
        }
        Ok(UringPoller {
            ring,
            watches: HashMap::new(),
            rearm: Vec::new(),
            seq: 0,
        })
    }

    /// Queue a request, handing the queue to the kernel first if it is full.
    fn push(&mut self, entry: squeue::Entry) -> io::Result<()> {
        loop {
            // SAFETY: the entries queued here (poll add, poll remove, cancel) point at no
            // memory of ours; the kernel reads only their fields.
            if unsafe { self.ring.submission().push(&entry) }.is_ok() {
                return Ok(());
            }
            self.ring.submit()?;
        }
    }

    /// Withdraw the poll in flight for `w`, if any (its completion, -ECANCELED or a last
    /// event, is then ignored: it no longer matches `armed`).
    fn disarm(&mut self, armed: Option<u64>) {
        if let Some(ud) = armed {
            let entry = opcode::PollRemove::new(ud).build().user_data(IGNORED);
            if let Err(e) = self.push(entry) {
                tracing::warn!("io_uring: cannot queue a poll removal: {e}");
            }
        }
    }

    fn arm_pending(&mut self) -> io::Result<()> {
        let rearm = std::mem::take(&mut self.rearm);
        for fd in &rearm {
            let Some(w) = self.watches.get_mut(fd) else {
                continue;
            };
            if w.armed.is_some() || w.mask == 0 {
                continue;
            }
            self.seq = self.seq.wrapping_add(1);
            let ud = ((*fd as u32 as u64) << 32) | self.seq as u64;
            w.armed = Some(ud);
            let entry = opcode::PollAdd::new(types::Fd(*fd), w.mask)
                .build()
                .user_data(ud);
            if let Err(e) = self.push(entry) {
                // Not queued: left unarmed and kept in the list, so the next wait tries again
                // rather than the descriptor going unwatched for good.
                if let Some(w) = self.watches.get_mut(fd) {
                    w.armed = None;
                }
                self.rearm = rearm;
                return Err(e);
            }
        }
        self.rearm = rearm;
        self.rearm.clear();
        Ok(())
    }
}

fn mask(interest: Interest) -> u32 {
    let mut m = 0;
    if interest.read {
        m |= libc::POLLIN | libc::POLLRDHUP;
    } else if interest.hangup {
        m |= libc::POLLRDHUP;
    }
    if interest.write {
        m |= libc::POLLOUT;
    }
    m as u16 as u32
}

impl Poller for UringPoller {
    fn add(&mut self, fd: RawFd, token: usize, interest: Interest) -> io::Result<()> {
        if self.watches.contains_key(&fd) {
            return Err(io::Error::from_raw_os_error(libc::EEXIST));
        }
        self.watches.insert(
            fd,
            Watch {
                token,
                mask: mask(interest),
                armed: None,
            },
        );
        self.rearm.push(fd);
        Ok(())
    }

    fn modify(&mut self, fd: RawFd, token: usize, interest: Interest) -> io::Result<()> {
        let m = mask(interest);
        let Some(w) = self.watches.get_mut(&fd) else {
            return Err(io::Error::from_raw_os_error(libc::ENOENT));
        };
        w.token = token;
        if w.mask == m {
            return Ok(()); // the poll in flight (or the pending re-arm) already asks for it
        }
        w.mask = m;
        let old = w.armed.take();
        self.disarm(old);
        self.rearm.push(fd);
        Ok(())
    }

    fn delete(&mut self, fd: RawFd) {
        if let Some(w) = self.watches.remove(&fd) {
            if w.armed.is_some() {
                self.disarm(w.armed);
                // Handed over now, not with the next wait: the caller closes the descriptor
                // next, and the socket must really close then (a peer told "aborted" must find
                // the port shut, a client must see its FIN), which it cannot while a poll
                // still holds it. One system call, as epoll's EPOLL_CTL_DEL is.
                if let Err(e) = self.ring.submit() {
                    tracing::warn!("io_uring: cannot submit a poll removal: {e}");
                }
            }
        }
    }

    fn wait(&mut self, events: &mut Vec<Event>, timeout: Option<Duration>) -> io::Result<()> {
        events.clear();
        self.arm_pending()?;
        let r = match timeout {
            None => self.ring.submit_and_wait(1),
            // A turn that must not block still hands over its queue (and reaps what is there).
            Some(d) if d.is_zero() => self.ring.submit(),
            Some(d) => {
                let ts = types::Timespec::from(d);
                let args = types::SubmitArgs::new().timespec(&ts);
                self.ring.submitter().submit_with_args(1, &args)
            }
        };
        if let Err(e) = r {
            match e.raw_os_error() {
                // The timeout passed, a signal came (the loop comes round and sees the
                // shutdown flag), or completions wait to be reaped first.
                Some(libc::ETIME) | Some(libc::EINTR) | Some(libc::EBUSY) => {}
                _ => return Err(e),
            }
        }
        for cqe in self.ring.completion() {
            let ud = cqe.user_data();
            if ud == IGNORED {
                continue;
            }
            let fd = (ud >> 32) as u32 as RawFd;
            let Some(w) = self.watches.get_mut(&fd) else {
                continue; // removed since
            };
            if w.armed != Some(ud) {
                continue; // an older request for this descriptor
            }
            w.armed = None;
            self.rearm.push(fd);
            let res = cqe.result();
            let (readable, writable, hup, rdhup) = if res < 0 {
                // The poll itself failed: let the next read or write surface the error.
                (true, true, false, false)
            } else {
                let f = res as u32 as i16;
                let bad = f & (libc::POLLERR | libc::POLLHUP | libc::POLLNVAL) != 0;
                (
                    bad || f & (libc::POLLIN | libc::POLLRDHUP) != 0,
                    bad || f & libc::POLLOUT != 0,
                    bad,
                    f & libc::POLLRDHUP != 0,
                )
            };
            events.push(Event {
                token: w.token,
                readable,
                writable,
                hup,
                rdhup,
            });
        }
        Ok(())
    }
}

impl Drop for UringPoller {
    /// Cancel every request still in flight and wait for the cancellation, so the files they
    /// hold (sockets, listeners) are released before the loop's owner goes on.
    fn drop(&mut self) {
        let cancel = opcode::AsyncCancel2::new(types::CancelBuilder::any().all())
            .build()
            .user_data(IGNORED - 1);
        if self.push(cancel).is_err() {
            return;
        }
        // Wait (bounded: cancelling polls is immediate) for the cancellation's own completion.
        for _ in 0..8 {
            if self.ring.submit_and_wait(1).is_err() {
                return;
            }
            if self.ring.completion().any(|c| c.user_data() == IGNORED - 1) {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_are_explained() {
        let eperm = io::Error::from_raw_os_error(libc::EPERM);
        let m = explain(&eperm, Some(2));
        assert!(m.contains("refused (EPERM)"), "{m}");
        assert!(m.contains("io_uring_disabled = 2"), "{m}");
        let enosys = io::Error::from_raw_os_error(libc::ENOSYS);
        let m = explain(&enosys, None);
        assert!(m.contains("not implemented (ENOSYS)"), "{m}");
        // ENOSYS is io::ErrorKind::Unsupported too: still explained, not taken for our own.
        assert!(setup_error(&enosys).contains("not implemented (ENOSYS)"));
        let m = explain(&io::Error::from_raw_os_error(libc::ENOMEM), Some(0));
        assert!(m.contains("RLIMIT_MEMLOCK"), "{m}");
        assert!(!m.contains("io_uring_disabled"), "{m}");
    }
}
