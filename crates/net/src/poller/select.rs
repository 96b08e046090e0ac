//! The `select(2)` poller (the `select` model's), level-triggered. `select` cannot watch
//! descriptors numbered FD_SETSIZE (1024) or above: such a connection is refused at
//! registration, which is the model's real limit, not a bug.
//!
//! select(2) has no `POLLRDHUP`, so a socket watched only for the peer's FIN (input paused,
//! `Interest::hangup`) is checked by its TCP state before each wait, and put in the read set
//! while nothing is queued on it (data or a FIN then wakes the loop). With bytes queued
//! before the FIN it cannot be put there (it would wake the loop at once, forever): the wait
//! is then cut to [`RECHECK`], so a FIN arriving behind them is seen within that.

use crate::poller::{Event, Interest, Poller};
use std::collections::BTreeMap;
use std::io;
use std::os::fd::RawFd;
use std::time::Duration;

/// How often a socket watched for a FIN but holding unread bytes is checked again.
const RECHECK: Duration = Duration::from_millis(250);

#[derive(Default)]
pub(crate) struct SelectPoller {
    fds: BTreeMap<RawFd, (usize, Interest)>,
}

impl Poller for SelectPoller {
    fn can_watch(&self, fd: RawFd) -> bool {
        fd >= 0 && (fd as usize) < libc::FD_SETSIZE
    }

    fn add(&mut self, fd: RawFd, token: usize, interest: Interest) -> io::Result<()> {
        if fd < 0 || fd as usize >= libc::FD_SETSIZE {
            return Err(io::Error::other("descriptor too large for select(2)"));
        }
        self.fds.insert(fd, (token, interest));
        Ok(())
    }

    fn modify(&mut self, fd: RawFd, token: usize, interest: Interest) -> io::Result<()> {
        self.add(fd, token, interest)
    }

    fn delete(&mut self, fd: RawFd) {
        self.fds.remove(&fd);
    }

    fn wait(&mut self, events: &mut Vec<Event>, timeout: Option<Duration>) -> io::Result<()> {
        events.clear();
        // SAFETY: fd_set is plain data; FD_ZERO/FD_SET/FD_ISSET are used on fds < FD_SETSIZE.
        unsafe {
            let mut rset: libc::fd_set = std::mem::zeroed();
            let mut wset: libc::fd_set = std::mem::zeroed();
            libc::FD_ZERO(&mut rset);
            libc::FD_ZERO(&mut wset);
            let mut maxfd = -1;
            let mut timeout = timeout;
            for (&fd, &(token, i)) in &self.fds {
                let fin_only = i.hangup && !i.read;
                if fin_only && crate::sys::peer_sent_fin(fd) {
                    events.push(Event {
                        token,
                        readable: true,
                        writable: false,
                        hup: false,
                        rdhup: true,
                    });
                    continue;
                }
                if i.read {
                    libc::FD_SET(fd, &mut rset);
                } else if fin_only {
                    if crate::sys::unread(fd) == 0 {
                        libc::FD_SET(fd, &mut rset);
                        maxfd = maxfd.max(fd);
                    } else {
                        timeout = Some(timeout.map_or(RECHECK, |t| t.min(RECHECK)));
                    }
                }
                if i.write {
                    libc::FD_SET(fd, &mut wset);
                }
                if i.read || i.write {
                    maxfd = maxfd.max(fd);
                }
            }
            if !events.is_empty() {
                return Ok(()); // a FIN to report now: no waiting
            }
            let mut tv;
            let tvp = match timeout {
                None => std::ptr::null_mut(),
                Some(d) => {
                    tv = libc::timeval {
                        tv_sec: d.as_secs() as libc::time_t,
                        tv_usec: d.subsec_micros() as libc::suseconds_t,
                    };
                    &mut tv as *mut libc::timeval
                }
            };
            let n = libc::select(maxfd + 1, &mut rset, &mut wset, std::ptr::null_mut(), tvp);
            if n < 0 {
                return crate::poller::wait_error();
            }
            for (&fd, &(token, i)) in &self.fds {
                let r = libc::FD_ISSET(fd, &rset);
                let w = libc::FD_ISSET(fd, &wset);
                // Watched for a FIN only: bytes that arrived instead wait for reading to resume.
                let fin = r && !i.read && crate::sys::peer_sent_fin(fd);
                let r = r && (i.read || fin);
                if r || w {
                    events.push(Event {
                        token,
                        readable: r,
                        writable: w,
                        hup: false,
                        rdhup: fin,
                    });
                }
            }
        }
        Ok(())
    }
}
