//! Carrying out what a session asked for: each [`Action`] its callbacks queued, in order, on
//! the connection (write, send a file, close, timers), on the hub (subscribe, publish) and on
//! its data channels (listen, connect, write, close). A connection that is closed stops
//! carrying them out; one that is closing drops new output.

use super::channels::{ChanState, Pending};
use super::life::Life;
use super::{passive, Conn, Env, Registry};
use crate::hub::Subscriber;
use crate::session::{Action, Message, Session};
use crate::sys;
use std::io;
use std::net::SocketAddr;

impl<S: Session> Conn<S> {
    /// Carry out the actions the last callbacks queued, in order.
    pub(super) fn apply(&mut self, reg: &mut dyn Registry, env: &Env) {
        if !self.cx.has_actions() {
            return;
        }
        let mut acts = std::mem::take(&mut self.scratch);
        acts.extend(self.cx.take_actions());
        for a in acts.drain(..) {
            if self.is_closed() {
                break;
            }
            match a {
                Action::Write(buf) => {
                    if !self.life.closing() {
                        self.out.push_bytes(buf);
                    }
                }
                Action::SendFile { file, offset, len } => {
                    if !self.life.closing() {
                        self.out.push_file(file, offset, len);
                    }
                }
                Action::Close => self.life = self.life.close(),
                Action::Abort => self.life = Life::Closed,
                Action::SetTimer(t, at) => self.timers.set(t, at),
                Action::Watch(w) => self.tasks.watch(w),
                Action::Subscribe(topic) => {
                    let sub = self
                        .sub
                        .get_or_insert_with(|| {
                            Subscriber::new(
                                self.cx.info().id,
                                env.limits.hub_queue_bytes,
                                self.waker.clone(),
                            )
                        })
                        .clone();
                    env.hub.subscribe(&topic, &sub);
                    if !self.topics.contains(&topic) {
                        self.topics.push(topic);
                    }
                }
                Action::Unsubscribe(topic) => {
                    if let Some(sub) = &self.sub {
                        env.hub.unsubscribe(&topic, sub);
                    }
                    self.topics.retain(|t| *t != topic);
                }
                Action::Publish { topic, body } => env.hub.publish(Message {
                    topic,
                    from: self.cx.info().id,
                    body,
                }),
                Action::PauseInput(p) => {
                    self.input_paused = p;
                    if !p && self.inbuf.len() > self.in_pos {
                        self.input_dirty = true;
                    }
                }
                Action::Listen(id, opts) => {
                    if !self.channel_room(id, env) {
                        continue;
                    }
                    let place = match env.limits.max_passive_per_ip {
                        None => None,
                        Some(_) => {
                            let peer = self.cx.info().peer.ip().to_canonical();
                            match passive::PassivePlace::take(env.passive, peer) {
                                Some(p) => Some(p),
                                None => {
                                    let e = io::ErrorKind::QuotaExceeded;
                                    self.events.push_back((id, Pending::Error(e)));
                                    continue;
                                }
                            }
                        }
                    };
                    let ip = self.cx.info().local.ip();
                    match passive::bind(ip, opts.ports.as_ref())
                        .and_then(|l| l.local_addr().map(|a| (l, a)))
                    {
                        Ok((l, addr)) => {
                            self.add_channel(id, ChanState::Listening(l, place), reg);
                            if self.chan_index(id).is_some() {
                                let shown =
                                    SocketAddr::new(opts.announce.unwrap_or(ip), addr.port());
                                self.events.push_back((id, Pending::Listening(shown)));
                            }
                        }
                        Err(e) => self.events.push_back((id, Pending::Error(e.kind()))),
                    }
                }
                Action::Connect(id, addr) => {
                    if !self.channel_room(id, env) {
                        continue;
                    }
                    match sys::connect_nonblocking(addr) {
                        Ok(s) => self.add_channel(id, ChanState::Connecting(s), reg),
                        Err(e) => self.events.push_back((id, Pending::Error(e.kind()))),
                    }
                }
                Action::ChannelPause(id, paused) => {
                    if let Some(i) = self.chan_index(id) {
                        self.channels[i].as_mut().expect("indexed").paused = paused;
                    }
                }
                Action::ChannelWrite(id, buf) => {
                    if let Some(i) = self.chan_index(id) {
                        let ch = self.channels[i].as_mut().expect("indexed");
                        if !ch.close_after {
                            ch.out.push_bytes(buf);
                        }
                        if ch.out.bytes > env.limits.max_outbound {
                            // The same bound as the control connection: a peer that does not
                            // read its data connection loses it.
                            self.drop_channel(i, reg);
                            self.events
                                .push_back((id, Pending::Error(io::ErrorKind::OutOfMemory)));
                        }
                    }
                }
                Action::ChannelSendFile {
                    id,
                    file,
                    offset,
                    len,
                } => {
                    if let Some(i) = self.chan_index(id) {
                        let ch = self.channels[i].as_mut().expect("indexed");
                        if !ch.close_after {
                            ch.out.push_file(file, offset, len);
                        }
                    }
                }
                Action::ChannelAbort(id) => {
                    if let Some(i) = self.chan_index(id) {
                        self.drop_channel(i, reg);
                        self.events.push_back((id, Pending::Closed));
                    }
                }
                Action::ChannelClose(id) => {
                    if let Some(i) = self.chan_index(id) {
                        let ch = self.channels[i].as_mut().expect("indexed");
                        ch.close_after = true;
                        // Not connected yet: what was queued (possibly nothing) waits for the
                        // peer, which then gets it and EOF (`flush` closes it after).
                        let flushed = matches!(ch.state, ChanState::Open(_)) && ch.out.is_empty();
                        if flushed {
                            self.drop_channel(i, reg);
                            self.events.push_back((id, Pending::Closed));
                        }
                    }
                }
                // Only the TLS layer carries these out; reaching a driver means the protocol
                // asked for TLS where none is configured. Going on in plaintext would expose
                // what the peer means to encrypt.
                Action::StartTls => {
                    tracing::error!("start_tls without the TLS layer: aborting the connection");
                    self.life = Life::Closed;
                }
                Action::ChannelTls(id) => {
                    tracing::error!("channel_tls without the TLS layer: aborting the channel");
                    if let Some(i) = self.chan_index(id) {
                        self.drop_channel(i, reg);
                        self.events.push_back((id, Pending::Closed));
                    }
                }
            }
        }
        self.scratch = acts;
        if self.out.bytes > env.limits.max_outbound {
            tracing::debug!("outbound limit passed; closing a slow consumer");
            self.life = Life::Closed;
        }
    }
}
