//! Refusing a client while the process is out of descriptors, without a descriptor: the
//! ring's accept puts the connection in a slot of the ring's own file table (a *direct*
//! descriptor, which the process's table and its `RLIMIT_NOFILE` never see), and linked
//! requests send the refusal, shut the connection down and empty the slot.
//!
//! Why not the reserve descriptor every other model spends (`admit/exhaustion.rs`): there a
//! loop closes its spare `/dev/null` so that accept(2) can take the freed number, and a lock
//! keeps the other loops' accepts off that number meanwhile. The `uring` loops accept inside
//! the kernel, where no lock of ours is held, and another loop's accept took the freed number
//! at once in testing (the spare could then not be reopened: that loop was left with no
//! reserve and its clients waited, unanswered, until descriptors came back). A direct
//! descriptor needs no number, so there is nothing to race for.

use super::{UringPoller, IGNORED};
use crate::poller::Refused;
use io_uring::{opcode, squeue, types};
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::RawFd;
use std::time::{Duration, Instant};

/// The `user_data` of the refusal's linked requests (accept, send, shutdown, close); they are
/// waited for here, so `wait` never sees them (it skips them if it did).
pub(super) const REFUSAL: u64 = IGNORED - 2;
const STEPS: [u64; 4] = [REFUSAL, REFUSAL - 1, REFUSAL - 2, REFUSAL - 3];
/// The lowest `user_data` of those requests.
pub(super) const REFUSAL_LAST: u64 = REFUSAL - 3;
/// How long the accept may wait for a client (there was one a moment ago), and for all of the
/// requests to end.
const ACCEPT_WAIT: Duration = Duration::from_millis(50);
const GIVE_UP: Duration = Duration::from_secs(1);
/// The ring's file-table slot the refused connection passes through.
const SLOT: u32 = 0;

/// The peer's address as the kernel wrote it (`None` for a Unix-domain peer).
fn peer_ip(ss: &libc::sockaddr_storage) -> Option<IpAddr> {
    match ss.ss_family as i32 {
        libc::AF_INET => {
            // SAFETY: the family says the storage holds a sockaddr_in, which it is large
            // enough and aligned for.
            let sin = unsafe { &*(ss as *const _ as *const libc::sockaddr_in) };
            Some(IpAddr::V4(Ipv4Addr::from(u32::from_be(
                sin.sin_addr.s_addr,
            ))))
        }
        libc::AF_INET6 => {
            // SAFETY: as above, for a sockaddr_in6.
            let sin6 = unsafe { &*(ss as *const _ as *const libc::sockaddr_in6) };
            Some(IpAddr::V6(Ipv6Addr::from(sin6.sin6_addr.s6_addr)))
        }
        _ => None,
    }
}

impl UringPoller {
    /// Register the one-slot file table (at set-up); false if the kernel refuses (the loop then
    /// spends the reserve descriptor as the other models do).
    pub(super) fn register_slot(&mut self) -> bool {
        self.ring.submitter().register_files_sparse(1).is_ok()
    }

    /// Accept one client of listener `fd` into the ring's own file table, send it `msg`, shut
    /// it down and close it: no descriptor of the process is used. `None` when this ring has
    /// no file table (the caller spends its reserve instead). Waits (at most about a second)
    /// for the four requests; completions of others reaped meanwhile are kept for the next
    /// wait.
    pub(super) fn refuse_direct(
        &mut self,
        fd: RawFd,
        msg: Option<&[u8]>,
    ) -> Option<io::Result<Refused>> {
        if !self.direct {
            return None;
        }
        if !readable(fd) {
            return Some(Ok(Refused::Empty)); // so the accept below never waits for a client
        }
        // Boxed, so that a request the kernel still holds after the wait gave up can keep
        // them (they are leaked then, rather than freed under it).
        let mut addr: Box<(libc::sockaddr_storage, libc::socklen_t)> = Box::new((
            // SAFETY: sockaddr_storage is plain data, valid all-zero.
            unsafe { std::mem::zeroed() },
            std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t,
        ));
        let msg: Box<[u8]> = msg.unwrap_or_default().into();
        let slot = types::DestinationSlot::try_from_slot_target(SLOT).ok()?;
        let conn = types::Fixed(SLOT);
        let mut chain = vec![opcode::Accept::new(
            types::Fd(fd),
            &mut addr.0 as *mut _ as *mut libc::sockaddr,
            &mut addr.1,
        )
        .file_index(Some(slot))
        .build()
        // The rest only if a client was accepted...
        .flags(squeue::Flags::IO_LINK)
        .user_data(STEPS[0])];
        if !msg.is_empty() {
            chain.push(
                opcode::Send::new(conn, msg.as_ptr(), msg.len() as u32)
                    .flags(libc::MSG_NOSIGNAL | libc::MSG_DONTWAIT)
                    .build()
                    // ...and the close even if the send failed (a reset peer).
                    .flags(squeue::Flags::IO_HARDLINK)
                    .user_data(STEPS[1]),
            );
        }
        chain.push(
            opcode::Shutdown::new(conn, libc::SHUT_WR)
                .build()
                .flags(squeue::Flags::IO_HARDLINK)
                .user_data(STEPS[2]),
        );
        chain.push(opcode::Close::new(conn).build().user_data(STEPS[3]));
        let n = chain.len();
        {
            let mut sq = self.ring.submission();
            if sq.capacity() - sq.len() < n {
                drop(sq);
                if let Err(e) = self.ring.submit() {
                    return Some(Err(e));
                }
                sq = self.ring.submission();
            }
            // SAFETY: the accept writes into `addr` and the send reads `msg`; both are boxed
            // and live until every request of the chain has completed (waited for below) or
            // are leaked if the wait gives up.
            if unsafe { sq.push_multiple(&chain) }.is_err() {
                return Some(Err(io::Error::other("io_uring submission queue full")));
            }
        }
        let mut results = [None; 4];
        let start = Instant::now();
        let mut cancelled = false;
        while results.iter().flatten().count() < n {
            let elapsed = start.elapsed();
            if elapsed >= GIVE_UP {
                tracing::warn!("io_uring: a refusal's requests have not ended after 1 s");
                Box::leak(addr);
                Box::leak(msg);
                // Its slot may stay in use: the reserve descriptor from now on.
                self.direct = false;
                return Some(Err(io::Error::from(io::ErrorKind::TimedOut)));
            }
            if !cancelled && results[0].is_none() && elapsed >= ACCEPT_WAIT {
                // The client left between the check and the accept: wait for none.
                let cancel = opcode::AsyncCancel::new(STEPS[0])
                    .build()
                    .user_data(IGNORED);
                if let Err(e) = self.push(cancel) {
                    tracing::warn!("io_uring: cannot cancel a refusal's accept: {e}");
                }
                cancelled = true;
            }
            let until = if cancelled { GIVE_UP } else { ACCEPT_WAIT };
            let ts = types::Timespec::from(until.saturating_sub(elapsed));
            let args = types::SubmitArgs::new().timespec(&ts);
            if let Err(e) = self.ring.submitter().submit_with_args(1, &args) {
                if !matches!(
                    e.raw_os_error(),
                    Some(libc::ETIME | libc::EINTR | libc::EBUSY)
                ) {
                    // The chain may still be in the kernel: its memory and slot stay its own.
                    Box::leak(addr);
                    Box::leak(msg);
                    self.direct = false;
                    return Some(Err(e));
                }
            }
            for cqe in self.ring.completion() {
                let ud = cqe.user_data();
                if (REFUSAL_LAST..=REFUSAL).contains(&ud) {
                    results[(REFUSAL - ud) as usize] = Some(cqe.result());
                } else {
                    self.reaped.push(cqe);
                }
            }
        }
        Some(match results[0] {
            Some(r) if r >= 0 => Ok(Refused::One(peer_ip(&addr.0))),
            Some(r)
                if matches!(
                    -r,
                    libc::EAGAIN | libc::ECANCELED | libc::EINTR | libc::ECONNABORTED
                ) =>
            {
                Ok(Refused::Empty)
            }
            Some(r) => Err(io::Error::from_raw_os_error(-r)),
            None => Ok(Refused::Empty),
        })
    }
}

/// Whether a client waits on listener `fd` (poll(2), not waiting).
fn readable(fd: RawFd) -> bool {
    let mut p = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one live pollfd, a zero timeout.
    unsafe { libc::poll(&mut p, 1, 0) == 1 && p.revents & libc::POLLIN != 0 }
}
