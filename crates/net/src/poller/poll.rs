//! The `poll(2)` poller: the `poll` model's, and the one the per-connection models (iterative,
//! thread, threadpool, fork) use to watch a connection, its data channels, its timer and the
//! shutdown pipe at once.

use crate::poller::{timeout_ms, Event, Interest, Poller};
use std::collections::HashMap;
use std::io;
use std::os::fd::RawFd;
use std::time::Duration;

#[derive(Default)]
pub(crate) struct PollPoller {
    fds: Vec<libc::pollfd>,
    tokens: Vec<usize>,
    index: HashMap<RawFd, usize>,
}

fn mask(i: Interest) -> libc::c_short {
    (if i.read { libc::POLLIN } else { 0 })
        | (if i.write { libc::POLLOUT } else { 0 })
        | (if i.hangup { libc::POLLRDHUP } else { 0 })
}

impl Poller for PollPoller {
    fn add(&mut self, fd: RawFd, token: usize, interest: Interest) -> io::Result<()> {
        if self.index.contains_key(&fd) {
            return self.modify(fd, token, interest);
        }
        self.index.insert(fd, self.fds.len());
        self.fds.push(libc::pollfd {
            fd,
            events: mask(interest),
            revents: 0,
        });
        self.tokens.push(token);
        Ok(())
    }

    fn modify(&mut self, fd: RawFd, token: usize, interest: Interest) -> io::Result<()> {
        let i = *self
            .index
            .get(&fd)
            .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))?;
        self.fds[i].events = mask(interest);
        self.tokens[i] = token;
        Ok(())
    }

    fn delete(&mut self, fd: RawFd) {
        if let Some(i) = self.index.remove(&fd) {
            self.fds.swap_remove(i);
            self.tokens.swap_remove(i);
            if i < self.fds.len() {
                self.index.insert(self.fds[i].fd, i);
            }
        }
    }

    fn wait(&mut self, events: &mut Vec<Event>, timeout: Option<Duration>) -> io::Result<()> {
        events.clear();
        // SAFETY: fds is a valid array of pollfd of the given length.
        let n = unsafe {
            libc::poll(
                self.fds.as_mut_ptr(),
                self.fds.len() as libc::nfds_t,
                timeout_ms(timeout),
            )
        };
        if n < 0 {
            return crate::poller::wait_error();
        }
        for (p, &token) in self.fds.iter().zip(&self.tokens) {
            if p.revents == 0 {
                continue;
            }
            let bad = p.revents & (libc::POLLERR | libc::POLLHUP | libc::POLLNVAL) != 0;
            events.push(Event {
                token,
                readable: bad || p.revents & libc::POLLIN != 0,
                writable: bad || p.revents & libc::POLLOUT != 0,
                hup: bad,
                rdhup: p.revents & libc::POLLRDHUP != 0,
            });
        }
        Ok(())
    }
}
