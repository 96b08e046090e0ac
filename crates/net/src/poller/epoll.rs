//! The epoll(7) poller: level-triggered by default; `edge_triggered` registers every socket
//! once with EPOLLET, which works because `conn/` always reads and writes until EAGAIN. The
//! `epoll` model runs one per worker thread, prefork workers one per process, and the
//! threadpool's shared poller one.

use crate::poller::{timeout_ms, Event, Interest, Poller};
use crate::sys::cvt;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::Duration;

pub(crate) struct EpollPoller {
    ep: OwnedFd,
    edge: bool,
    buf: Vec<libc::epoll_event>,
}

impl EpollPoller {
    pub(crate) fn new(edge: bool) -> io::Result<Self> {
        // SAFETY: plain syscall; the fd is owned below.
        let fd = cvt(unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) })?;
        // SAFETY: fd was just created.
        let ep = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(EpollPoller {
            ep,
            edge,
            buf: Vec::with_capacity(1024),
        })
    }

    fn ctl(
        &mut self,
        op: libc::c_int,
        fd: RawFd,
        token: usize,
        interest: Interest,
    ) -> io::Result<()> {
        let mut flags = 0u32;
        if self.edge {
            // Edge-triggered: always both directions, never re-armed (conn/ drains to EAGAIN).
            flags |= (libc::EPOLLIN | libc::EPOLLOUT | libc::EPOLLRDHUP | libc::EPOLLET) as u32;
        } else {
            if interest.read {
                flags |= (libc::EPOLLIN | libc::EPOLLRDHUP) as u32;
            } else if interest.hangup {
                flags |= libc::EPOLLRDHUP as u32;
            }
            if interest.write {
                flags |= libc::EPOLLOUT as u32;
            }
        }
        let mut ev = libc::epoll_event {
            events: flags,
            u64: token as u64,
        };
        // SAFETY: valid epoll fd and event pointer.
        cvt(unsafe { libc::epoll_ctl(self.ep.as_raw_fd(), op, fd, &mut ev) })?;
        Ok(())
    }
}

impl Poller for EpollPoller {
    fn add(&mut self, fd: RawFd, token: usize, interest: Interest) -> io::Result<()> {
        self.ctl(libc::EPOLL_CTL_ADD, fd, token, interest)
    }

    fn modify(&mut self, fd: RawFd, token: usize, interest: Interest) -> io::Result<()> {
        if self.edge {
            return Ok(());
        }
        self.ctl(libc::EPOLL_CTL_MOD, fd, token, interest)
    }

    fn edge_triggered(&self) -> bool {
        self.edge
    }

    fn delete(&mut self, fd: RawFd) {
        // SAFETY: valid epoll fd; a null event is allowed for DEL.
        unsafe {
            libc::epoll_ctl(
                self.ep.as_raw_fd(),
                libc::EPOLL_CTL_DEL,
                fd,
                std::ptr::null_mut(),
            )
        };
    }

    fn wait(&mut self, events: &mut Vec<Event>, timeout: Option<Duration>) -> io::Result<()> {
        events.clear();
        self.buf.clear();
        // SAFETY: buf has capacity for `capacity()` events; the kernel writes at most that many.
        let n = unsafe {
            libc::epoll_wait(
                self.ep.as_raw_fd(),
                self.buf.as_mut_ptr(),
                self.buf.capacity() as libc::c_int,
                timeout_ms(timeout),
            )
        };
        if n < 0 {
            return crate::poller::wait_error();
        }
        // SAFETY: the kernel initialised the first n entries.
        unsafe { self.buf.set_len(n as usize) };
        for ev in &self.buf {
            let f = ev.events as libc::c_int;
            let bad = f & (libc::EPOLLERR | libc::EPOLLHUP) != 0;
            events.push(Event {
                token: ev.u64 as usize,
                readable: bad || f & (libc::EPOLLIN | libc::EPOLLRDHUP) != 0,
                writable: bad || f & libc::EPOLLOUT != 0,
                hup: bad,
                rdhup: f & libc::EPOLLRDHUP != 0,
            });
        }
        Ok(())
    }
}
