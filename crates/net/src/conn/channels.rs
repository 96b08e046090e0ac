//! A session's data channels (FTP's data connections): a passive listener or an active connect
//! that becomes an open stream with its own outbound queue; reading them into `on_channel`,
//! writing their queues, and what the poller watches for each. Methods of `Conn`, kept apart
//! from the control connection's.

use super::outbound::Outbound;
use super::passive;
use super::{Conn, Env, Registry};
use crate::poller::Interest;
use crate::session::{ChannelEvent, ChannelId, Session};
use crate::sys;
use std::io::{self, Read};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsRawFd, RawFd};
use std::time::Instant;

/// Unsent bytes a data channel's socket may hold (TCP_NOTSENT_LOWAT). Without a limit one
/// `sendfile` queues megabytes beyond what the receiver's window takes, and that backlog is
/// then transmitted from the receiver's ACK processing — on loopback, by the client's own
/// thread, which serialises the whole transfer on the client's core, and with hundreds of
/// downloads makes every ACK push out data for the slowest readers. With 16 KiB the sender's
/// thread transmits as the window opens: 300 clients downloading 10 MiB each took about a
/// third of the CPU time, and a single RETR went faster (BENCHMARKS.md, "FTP beside vsftpd and
/// pyftpdlib"). Data already sent and not yet acknowledged does not count, so a long fat
/// network still fills its window.
const CHANNEL_NOTSENT_LOWAT: u32 = 16 * 1024;

/// Most bytes one read of a data channel takes. Uploads arrive in bulk: 256 KiB reads make a
/// 64 MiB STOR 256 reads (and 256 writes by the session) instead of 1,024 of each with the
/// control connections' 64 KiB scratch.
const CHANNEL_READ: usize = 256 * 1024;

thread_local! {
    /// The data channels' read buffer, one per thread like `SCRATCH`. Allocated zeroed (so
    /// mapped lazily): a thread that never reads an upload holds none of it.
    static CHANNEL_SCRATCH: std::cell::RefCell<Vec<u8>> =
        std::cell::RefCell::new(vec![0; CHANNEL_READ]);
}

/// Socket options of a data channel once it is connected (either direction).
fn tune(s: &TcpStream) {
    let _ = s.set_nodelay(true);
    sys::set_notsent_lowat(s.as_raw_fd(), CHANNEL_NOTSENT_LOWAT);
}

pub(super) enum ChanState {
    /// With its place in the address's passive budget, if there is one.
    Listening(
        TcpListener,
        #[allow(dead_code)] // held for its Drop: the place goes with the listener
        Option<passive::PassivePlace>,
    ),
    Connecting(TcpStream),
    Open(TcpStream),
    /// Only while a connecting stream moves to `Open`.
    Moving,
}

impl ChanState {
    pub(super) fn fd(&self) -> RawFd {
        match self {
            ChanState::Listening(l, _) => l.as_raw_fd(),
            ChanState::Connecting(s) | ChanState::Open(s) => s.as_raw_fd(),
            ChanState::Moving => -1,
        }
    }
}

pub(super) struct Chan {
    pub(super) id: ChannelId,
    pub(super) state: ChanState,
    pub(super) out: Outbound,
    pub(super) close_after: bool,
    /// Input paused by the session (`channel_pause`): not read, not watched.
    pub(super) paused: bool,
    pub(super) read_eof: bool,
    pub(super) ready_r: bool,
    pub(super) ready_w: bool,
    pub(super) hup: bool,
    pub(super) interest: Interest,
}

/// A channel event owned until it can be delivered (after the current actions are applied).
pub(super) enum Pending {
    Listening(SocketAddr),
    Connected(SocketAddr),
    Eof,
    Drained,
    Closed,
    Error(io::ErrorKind),
    TooMany,
}

impl<S: Session> Conn<S> {
    pub(super) fn read_channels(&mut self, reg: &mut dyn Registry) -> bool {
        if self.channels.iter().all(Option::is_none) {
            // Most connections never open a channel: their thread need not get the buffer.
            return false;
        }
        CHANNEL_SCRATCH.with(|scratch| self.read_channels_into(&mut scratch.borrow_mut(), reg))
    }
    pub(super) fn read_channels_into(&mut self, buf: &mut [u8], reg: &mut dyn Registry) -> bool {
        for i in 0..self.channels.len() {
            let Some(ch) = self.channels[i].as_mut() else {
                continue;
            };
            if !ch.ready_r || ch.read_eof || ch.paused {
                continue;
            }
            let ChanState::Open(s) = &ch.state else {
                continue;
            };
            let id = ch.id;
            match (&*s).read(buf) {
                Ok(0) => {
                    ch.read_eof = true;
                    ch.ready_r = false;
                    self.events.push_back((id, Pending::Eof));
                }
                Ok(n) => {
                    self.moved_in += n as u64;
                    self.last_active = Instant::now();
                    self.cx.set_now(self.last_active);
                    self.session
                        .on_channel(id, ChannelEvent::Data(&buf[..n]), &mut self.cx);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    ch.ready_r = false;
                    continue;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.events.push_back((id, Pending::Error(e.kind())));
                    self.drop_channel(i, reg);
                }
            }
            return true;
        }
        false
    }
    pub(super) fn drop_channel(&mut self, i: usize, reg: &mut dyn Registry) {
        if let Some(ch) = self.channels[i].take() {
            // Unregister before the socket closes, so the number cannot be reused while watched.
            reg.remove(ch.state.fd(), i as u16 + 1);
        }
    }
    pub(super) fn chan_index(&self, id: ChannelId) -> Option<usize> {
        self.channels
            .iter()
            .position(|c| c.as_ref().is_some_and(|c| c.id == id))
    }
    /// Whether the session may open one more channel; if not, it is told (`TooMany`) before
    /// anything is bound or connected.
    pub(super) fn channel_room(&mut self, id: ChannelId, env: &Env) -> bool {
        let open = self.channels.iter().filter(|c| c.is_some()).count();
        if open >= env.limits.max_channels {
            self.events.push_back((id, Pending::TooMany));
            return false;
        }
        true
    }
    pub(super) fn add_channel(&mut self, id: ChannelId, state: ChanState, reg: &mut dyn Registry) {
        let i = match self.channels.iter().position(Option::is_none) {
            Some(i) => i,
            None => {
                self.channels.push(None);
                self.channels.len() - 1
            }
        };
        let interest = match state {
            ChanState::Listening(..) => Interest::READ,
            _ => Interest {
                read: false,
                write: true,
                hangup: false,
            },
        };
        if let Err(e) = reg.set(state.fd(), i as u16 + 1, interest, true) {
            self.events.push_back((id, Pending::Error(e.kind())));
            return;
        }
        self.channels[i] = Some(Chan {
            id,
            state,
            out: Outbound::default(),
            close_after: false,
            paused: false,
            read_eof: false,
            ready_r: false,
            ready_w: false,
            hup: false,
            interest,
        });
    }

    /// Write what the open channels have queued, finish connects and accepts.
    pub(super) fn flush_channels(&mut self, reg: &mut dyn Registry, level_triggered: bool) {
        for i in 0..self.channels.len() {
            let Some(ch) = self.channels[i].as_mut() else {
                continue;
            };
            let id = ch.id;
            match &ch.state {
                ChanState::Listening(l, _) => {
                    if !ch.ready_r {
                        continue;
                    }
                    ch.ready_r = false;
                    let control = self.cx.info().peer.ip();
                    // Others than the control connection's client are turned away and the
                    // listener keeps waiting (a third party must not steal the transfer).
                    let accepted = loop {
                        match l.accept() {
                            Ok((_, peer)) if !passive::admits(control, peer.ip()) => {
                                // The shape of the FTP server's refusals (bingfa-ftp's `log`).
                                tracing::warn!(peer = %peer.ip(), reason = "port steal", "refused");
                                continue;
                            }
                            other => break other,
                        }
                    };
                    match accepted {
                        Ok((s, peer)) => {
                            let _ = s.set_nonblocking(true);
                            tune(&s);
                            // One connection per passive listener: swap the listener for the stream.
                            reg.remove(l.as_raw_fd(), i as u16 + 1);
                            ch.state = ChanState::Open(s);
                            ch.interest = Interest::default();
                            ch.ready_r = true;
                            ch.ready_w = true;
                            if let Err(e) =
                                reg.set(ch.state.fd(), i as u16 + 1, Interest::READ, true)
                            {
                                self.events.push_back((id, Pending::Error(e.kind())));
                                self.channels[i] = None;
                                continue;
                            }
                            ch.interest = Interest::READ;
                            self.last_active = Instant::now();
                            self.events.push_back((id, Pending::Connected(peer)));
                            // Fall through: output queued before the peer came goes out now.
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                        Err(e) => {
                            self.events.push_back((id, Pending::Error(e.kind())));
                            self.drop_channel(i, reg);
                            continue;
                        }
                    }
                }
                ChanState::Connecting(s) => {
                    if !ch.ready_w {
                        continue;
                    }
                    ch.ready_w = false;
                    match sys::take_error(s.as_raw_fd()) {
                        Ok(None) => match s.peer_addr() {
                            Ok(peer) => {
                                let ChanState::Connecting(s) =
                                    std::mem::replace(&mut ch.state, ChanState::Moving)
                                else {
                                    unreachable!()
                                };
                                tune(&s);
                                ch.state = ChanState::Open(s);
                                ch.ready_r = true;
                                self.events.push_back((id, Pending::Connected(peer)));
                            }
                            Err(e) if e.kind() == io::ErrorKind::NotConnected => {}
                            Err(e) => {
                                self.events.push_back((id, Pending::Error(e.kind())));
                                self.drop_channel(i, reg);
                                continue;
                            }
                        },
                        Ok(Some(e)) | Err(e) => {
                            self.events.push_back((id, Pending::Error(e.kind())));
                            self.drop_channel(i, reg);
                            continue;
                        }
                    }
                }
                ChanState::Open(_) | ChanState::Moving => {}
            }
            let Some(ch) = self.channels[i].as_mut() else {
                continue;
            };
            let ChanState::Open(s) = &ch.state else {
                continue;
            };
            if ch.out.is_empty() {
                if ch.close_after {
                    // Closed before it connected, with nothing (left) to send.
                    self.drop_channel(i, reg);
                    self.events.push_back((id, Pending::Closed));
                } else if ch.hup && ch.read_eof {
                    // The peer is gone and everything it sent was read: the channel is over.
                    self.drop_channel(i, reg);
                    self.events.push_back((id, Pending::Closed));
                }
                continue;
            }
            if ch.out.paused {
                // Its file budget for this turn is spent (see `Outbound::paused`).
                continue;
            }
            let mut moved = false;
            let r = ch.out.write_to(s, &mut moved, level_triggered);
            self.moved_out += std::mem::take(&mut ch.out.sent);
            match r {
                Ok(done) => {
                    if moved {
                        self.last_active = Instant::now();
                    }
                    if done {
                        if ch.close_after {
                            self.drop_channel(i, reg);
                            self.events.push_back((id, Pending::Closed));
                        } else {
                            self.events.push_back((id, Pending::Drained));
                        }
                    }
                }
                Err(e) => {
                    self.events.push_back((id, Pending::Error(e.kind())));
                    self.drop_channel(i, reg);
                }
            }
        }
    }

    pub(super) fn update_channel_interest(&mut self, reg: &mut dyn Registry) {
        for i in 0..self.channels.len() {
            let Some(ch) = self.channels[i].as_mut() else {
                continue;
            };
            let want = match &ch.state {
                ChanState::Listening(..) => Interest::READ,
                ChanState::Connecting(_) => Interest {
                    read: false,
                    write: true,
                    hangup: false,
                },
                ChanState::Open(_) => Interest {
                    read: !ch.read_eof && !ch.paused,
                    write: !ch.out.is_empty(),
                    hangup: false,
                },
                ChanState::Moving => continue,
            };
            if want != ch.interest && reg.set(ch.state.fd(), i as u16 + 1, want, false).is_ok() {
                ch.interest = want;
            }
        }
    }
}
