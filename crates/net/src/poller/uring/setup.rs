//! Setting the ring up and taking it down: why the kernel refused it (the start-up error),
//! the probe of a multishot receive the start-up check runs, and the drop that cancels every
//! request and waits for them before any memory they use is freed.

use super::stream::RecvState;
use super::{UringPoller, ACCEPT, CANCEL_ALL, RECV, SEND};
use crate::poller::{Interest, Poller, Received};
use io_uring::{cqueue, opcode, types};
use std::io::{self, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::Duration;

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
    /// Requests the kernel may still be writing or reading through: leak their memory (once,
    /// at the loop's end) rather than free it under the kernel.
    fn leak_if_held(&mut self, cancelled_all: bool) {
        if self.receives > 0 {
            self.bufs.leak = true;
        }
        if self.sends > 0 || !cancelled_all {
            std::mem::forget(std::mem::take(&mut self.orphans));
            std::mem::forget(std::mem::take(&mut self.watches));
            std::mem::forget(std::mem::take(&mut self.counters));
        }
    }
}

impl Drop for UringPoller {
    /// Cancel every request still in flight and wait for the cancellation and for every
    /// receive's and accept's last completion, so the files they hold (sockets, listeners) are released
    /// before the loop's owner goes on, and no receive can write into the buffers once they
    /// are freed.
    fn drop(&mut self) {
        let cancel = opcode::AsyncCancel2::new(types::CancelBuilder::any().all())
            .build()
            .user_data(CANCEL_ALL);
        if self.push(cancel).is_err() {
            self.leak_if_held(false);
            return;
        }
        let mut cancelled = false;
        // Bounded: cancelling polls and receives is immediate; each round waits at most 100 ms.
        for _ in 0..20 {
            let ts = types::Timespec::from(Duration::from_millis(100));
            let args = types::SubmitArgs::new().timespec(&ts);
            match self.ring.submitter().submit_with_args(1, &args) {
                Ok(_) => {}
                Err(e) if matches!(e.raw_os_error(), Some(libc::ETIME) | Some(libc::EINTR)) => {}
                Err(_) => break,
            }
            // With any a removal reaped early and kept for a wait that never came.
            let mut batch = std::mem::take(&mut self.reaped);
            batch.extend(self.ring.completion());
            for cqe in batch {
                if cqe.user_data() == CANCEL_ALL {
                    cancelled = true;
                } else if cqe.user_data() >= super::refuse::REFUSAL_LAST {
                } else if cqe.user_data() & RECV != 0 && !cqueue::more(cqe.flags()) {
                    self.receives = self.receives.saturating_sub(1);
                } else if cqe.user_data() & SEND != 0 {
                    self.sends = self.sends.saturating_sub(1);
                } else if cqe.user_data() & (RECV | ACCEPT) == ACCEPT {
                    if cqe.result() >= 0 {
                        // A connection accepted as the loop ended: ours to close.
                        // SAFETY: the completion's result is a descriptor the kernel just
                        // installed for us; nothing else knows its number.
                        drop(unsafe { OwnedFd::from_raw_fd(cqe.result()) });
                    }
                    if !cqueue::more(cqe.flags()) {
                        self.accepts = self.accepts.saturating_sub(1);
                    }
                }
            }
            if cancelled && self.receives == 0 && self.sends == 0 && self.accepts == 0 {
                return;
            }
        }
        self.leak_if_held(cancelled);
    }
}

impl UringPoller {
    /// Check that this kernel's receives can be multishot (Linux 6.0; provided-buffer rings
    /// alone came in 5.19): one receive on a socket pair, armed before a byte is sent, must
    /// bring the byte back and stay armed (`IORING_CQE_F_MORE`). Run by the model's start-up
    /// check, so an older kernel gets a clear error instead of connections that fail.
    pub(crate) fn probe(&mut self) -> io::Result<()> {
        let mut fds = [0; 2];
        // SAFETY: socketpair writes two descriptors into the array it is given.
        let r = unsafe {
            libc::socketpair(
                libc::AF_UNIX,
                libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
                0,
                fds.as_mut_ptr(),
            )
        };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: both were just created and are owned by nobody else.
        let (a, b) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        self.add_stream(a.as_raw_fd(), 0, Interest::READ)?;
        self.arm_pending()?;
        self.ring.submit()?;
        // Kept open to the end: its close would end the receive.
        let mut b = std::os::unix::net::UnixStream::from(b);
        b.write_all(b"x")?;
        let mut events = Vec::new();
        let mut got = Vec::new();
        let end = std::time::Instant::now() + Duration::from_secs(2);
        while got.is_empty() && std::time::Instant::now() < end {
            self.wait(&mut events, Some(Duration::from_millis(100)))?;
            if let Some(Received::Error(e)) = self.recv(a.as_raw_fd(), &mut got, 16) {
                self.delete(a.as_raw_fd());
                return Err(unsupported(&e.to_string()));
            }
        }
        let armed = self
            .watches
            .get(&a.as_raw_fd())
            .and_then(|w| w.stream.as_ref())
            .is_some_and(|st| st.recv == RecvState::Armed);
        self.delete(a.as_raw_fd());
        drop(b);
        if got != b"x" || !armed {
            return Err(unsupported("the receive did not stay armed"));
        }
        Ok(())
    }
}

fn unsupported(why: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::Unsupported,
        format!(
            "this kernel's io_uring has no multishot receive ({why}); Linux 6.0 or later is \
             needed"
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// This kernel (the project's CI and development machines run io_uring) passes the
    /// start-up probe, and the probe leaves no receive behind.
    #[test]
    fn multishot_receive_probe() {
        let mut p = UringPoller::new().expect("io_uring");
        p.probe().expect("multishot receive");
        assert!(p.watches.is_empty());
    }

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
