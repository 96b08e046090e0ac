//! Making progress: [`Conn::settle`] turns what the driver reported (readiness, time, mail)
//! into session callbacks, carries out what they asked for, and writes, until nothing more can
//! move this turn; then it tells the registry what to watch. Reading is bounded per turn (so
//! one connection cannot starve the others on its loop), and a closing connection flushes,
//! sends its FIN and lingers here.

use super::channels::{ChanState, Pending};
use super::life::Life;
use super::{
    Conn, Env, Registry, CALL_BUDGET, CONTROL, GOODBYE_GRACE, LINGER, MAX_CHUNKS, READ_BUDGET,
    READ_CHUNK, SCRATCH, SCRATCH_SIZE,
};
use crate::config::Limits;
use crate::poller::Interest;
use crate::session::{ChannelEvent, Session};
use std::io::{self, Read};
use std::time::Instant;

impl<S: Session> Conn<S> {
    pub(super) fn backpressured(&self, limits: &Limits) -> bool {
        self.out.bytes >= limits.high_water || self.out.chunks.len() >= MAX_CHUNKS
    }

    pub(super) fn can_read(&self, limits: &Limits) -> bool {
        !self.read_eof
            && !self.life.closing()
            && !self.input_paused
            && !self.backpressured(limits)
            && self.inbuf.len() - self.in_pos < limits.max_input
    }

    /// Make every bit of progress possible now, then update what is watched; what the turn
    /// moved is added to the server's [`Tally`](crate::Tally) (one atomic add per turn).
    pub(crate) fn settle(&mut self, reg: &mut dyn Registry, env: &Env) {
        self.settle_turn(reg, env);
        self.report_bytes(env);
    }

    /// Add the bytes moved since the last report to the server's tally.
    pub(super) fn report_bytes(&mut self, env: &Env) {
        self.moved_out += std::mem::take(&mut self.out.sent);
        if let Some(t) = env.tally {
            t.bytes(
                std::mem::take(&mut self.moved_in),
                std::mem::take(&mut self.moved_out),
            );
        }
    }

    fn settle_turn(&mut self, reg: &mut dyn Registry, env: &Env) {
        let limits = env.limits;
        // Fairness: one connection gets a bounded share of a loop turn, so a client pouring in
        // input (and publishing to the hub) cannot starve the others sharing its thread.
        let (mut calls, mut read_bytes, mut yielded) = (0usize, 0usize, false);
        // A new turn: a queue that paused at its file budget last turn sends its share again
        // (and at most that: `flush` skips a queue that paused during this turn).
        self.out.paused = false;
        for ch in self.channels.iter_mut().flatten() {
            ch.out.paused = false;
        }
        loop {
            self.apply(reg, env);
            if self.is_closed() {
                return;
            }
            self.flush(reg, env);
            if self.is_closed() {
                return;
            }
            if let Life::Lingering { .. } = self.life {
                if self.read_pending {
                    self.discard(reg);
                }
                if self.is_closed() {
                    return;
                }
                break;
            }
            if let Some((id, ev)) = self.events.pop_front() {
                let ev = match ev {
                    Pending::Listening(a) => ChannelEvent::Listening(a),
                    Pending::Connected(a) => ChannelEvent::Connected(a),
                    Pending::Eof => ChannelEvent::Eof,
                    Pending::Drained => ChannelEvent::Drained,
                    Pending::Closed => ChannelEvent::Closed,
                    Pending::Error(k) => ChannelEvent::Error(k),
                    Pending::TooMany => ChannelEvent::TooMany,
                };
                self.cx.set_now(Instant::now());
                self.session.on_channel(id, ev, &mut self.cx);
                continue;
            }
            if self.peer_fin && self.hangup_watch() {
                // A FIN while the session waits with input paused (FTP behind a transfer):
                // its EOF would come only after it resumes, so say so now.
                self.fin_told = true;
                self.cx.set_now(Instant::now());
                self.session.on_hangup(&mut self.cx);
                continue;
            }
            if self.drained_pending {
                self.drained_pending = false;
                if !self.life.closing() {
                    self.session.on_drained(&mut self.cx);
                    continue;
                }
            }
            if !self.life.closing() {
                // A blocking-pool task ended (its wake-up brought us here, or it ended before
                // the watch was carried out).
                if let Some(id) = self.tasks.next() {
                    self.cx.set_now(Instant::now());
                    self.session.on_task_done(id, &mut self.cx);
                    continue;
                }
            }
            if calls >= CALL_BUDGET || read_bytes >= READ_BUDGET {
                // Input waits for the next turn; output, channels and hub mail still move.
                yielded = true;
            }
            if self.input_dirty
                && !yielded
                && !self.input_paused
                && !self.life.closing()
                && !self.backpressured(limits)
            {
                calls += 1;
                self.cx.set_now(Instant::now());
                let input = &self.inbuf[self.in_pos..];
                let n = self.session.on_data(input, &mut self.cx).min(input.len());
                self.in_pos += n;
                if self.in_pos == self.inbuf.len() {
                    self.inbuf.clear();
                    self.in_pos = 0;
                    if self.inbuf.capacity() > SCRATCH_SIZE {
                        // A burst is over: an idle connection keeps no big buffer.
                        self.inbuf = Vec::new();
                    }
                }
                if n == 0 || self.inbuf.is_empty() {
                    self.input_dirty = false;
                    if n == 0 && self.inbuf.len() - self.in_pos >= limits.max_input {
                        tracing::debug!("input limit reached without progress; closing");
                        self.life = Life::Closed;
                        return;
                    }
                }
                continue;
            }
            if self.read_pending && !yielded && self.can_read(limits) {
                let before = self.inbuf.len();
                if self.read_input(reg, env.level_triggered) {
                    read_bytes += self.inbuf.len().saturating_sub(before);
                    continue;
                }
                if self.is_closed() {
                    return;
                }
            }
            if self.eof_pending && !self.input_dirty && !yielded && !self.life.closing() {
                self.eof_pending = false;
                self.session.on_eof(&mut self.cx);
                continue;
            }
            if !yielded && self.read_channels(reg) {
                // Uploads count against the same per-turn share as control input.
                read_bytes += READ_CHUNK;
                continue;
            }
            if self.take_messages(limits) {
                continue;
            }
            break;
        }
        if self.hup && !self.is_closed() {
            // Reset or fully shut: whatever could be read has been; nothing more can be sent.
            self.life = Life::Closed;
            return;
        }
        let channel_input = self
            .channels
            .iter()
            .flatten()
            .any(|c| c.ready_r && !c.read_eof && !c.paused);
        // Output paused at its per-turn file budget with the socket still writable: a
        // level-triggered poller reports it again next turn, an edge-triggered driver (epoll
        // with EPOLLET, tokio) would not.
        let paused = !env.level_triggered
            && (self.out.paused || self.channels.iter().flatten().any(|c| c.out.paused));
        if paused || (yielded && (self.input_dirty || self.read_pending || channel_input)) {
            // Come back next turn, after the others: edge-triggered drivers would not report
            // the input still waiting (or the output still writable), so ask to be woken like
            // a hub delivery.
            (self.waker)();
        }
        self.update_interest(reg, limits);
    }

    /// One read into the input buffer; true if something changed.
    pub(super) fn read_some(&mut self, level_triggered: bool) -> bool {
        if self.in_pos > 0 {
            self.inbuf.drain(..self.in_pos);
            self.in_pos = 0;
        }
        let r = SCRATCH.with(|scratch| {
            let mut scratch = scratch.borrow_mut();
            let n = (&self.sock).read(&mut scratch[..READ_CHUNK])?;
            self.inbuf.extend_from_slice(&scratch[..n]);
            Ok::<usize, io::Error>(n)
        });
        match r {
            Ok(0) => {
                self.read_eof = true;
                self.read_pending = false;
                self.eof_pending = true;
                true
            }
            Ok(n) => {
                self.moved_in += n as u64;
                self.input_dirty = true;
                self.last_active = Instant::now();
                if n < READ_CHUNK && level_triggered {
                    // A short read emptied the socket: skip the read that would only say
                    // EAGAIN (one syscall per request). Only when level-triggered: an EOF that
                    // arrived with the data would not be a new edge.
                    self.read_pending = false;
                }
                true
            }
            Err(e) => match e.kind() {
                io::ErrorKind::WouldBlock => {
                    self.read_pending = false;
                    false
                }
                io::ErrorKind::Interrupted => true,
                _ => {
                    self.life = Life::Closed;
                    false
                }
            },
        }
    }

    pub(super) fn take_messages(&mut self, limits: &Limits) -> bool {
        let Some(sub) = &self.sub else { return false };
        if self.life.closing() {
            return false;
        }
        // Checked before the high-water test: a receiver that stopped reading sits above
        // high water for good, and must still be found out when its inbox overflows.
        if sub.overflowed() {
            self.evict();
            return true;
        }
        if self.out.bytes >= limits.high_water {
            return false;
        }
        self.msgs.clear();
        if sub.take(64, &mut self.msgs).is_err() {
            self.evict();
            return true;
        }
        if self.msgs.is_empty() {
            return false;
        }
        let mut msgs = std::mem::take(&mut self.msgs);
        self.cx.set_now(Instant::now());
        for m in &msgs {
            self.session.on_message(m, &mut self.cx);
        }
        msgs.clear(); // not held until the next batch
        self.msgs = msgs;
        true
    }

    /// The hub inbox overflowed: the session may queue a last word, then the connection closes
    /// once that is flushed or after the goodbye grace (the peer is not reading, so it may
    /// never be).
    pub(super) fn evict(&mut self) {
        tracing::debug!("hub subscriber overflowed; disconnecting the slow receiver");
        let now = Instant::now();
        self.cx.set_now(now);
        self.session.on_overflow(&mut self.cx);
        self.cx.close();
        self.life = self.life.goodbye(now + GOODBYE_GRACE);
    }

    /// Write what can be written, finish connects and accepts, and close when due.
    pub(super) fn flush(&mut self, reg: &mut dyn Registry, env: &Env) {
        // A queue that paused at its file budget this turn waits for the next one.
        if !self.out.is_empty() && !self.out.paused {
            let mut moved = false;
            match self.write_out(reg, &mut moved, env.level_triggered) {
                Ok(done) => {
                    if moved {
                        self.last_active = Instant::now();
                    }
                    if done {
                        self.drained_pending = true;
                    }
                }
                Err(_) => {
                    self.life = Life::Closed;
                    return;
                }
            }
        }
        self.flush_channels(reg, env.level_triggered);
        if self.life.closing() && self.out.is_empty() && self.events.is_empty() {
            let busy = self
                .channels
                .iter()
                .flatten()
                .any(|c| matches!(c.state, ChanState::Open(_)) && !c.out.is_empty());
            if !busy {
                if self.read_eof || self.hup {
                    self.life = Life::Closed;
                } else if let Life::Closing { .. } = self.life {
                    // Lingering close: send FIN, then read and discard until the peer closes
                    // (or LINGER passes). Closing with unread input would send a RST, and a
                    // RST can destroy the last response before the client has read it.
                    let _ = self.sock.shutdown(std::net::Shutdown::Write);
                    // Shutting down, the whole server waits for lingerers: keep it short.
                    let linger = if self.cx.shutting_down() {
                        LINGER / 8
                    } else {
                        LINGER
                    };
                    self.life = self.life.linger(Instant::now() + linger);
                    self.read_pending = true;
                }
            }
        }
    }

    /// While lingering: discard input until EOF (then closed) or the socket is empty.
    pub(super) fn discard_input(&mut self) {
        SCRATCH.with(|scratch| {
            let mut scratch = scratch.borrow_mut();
            for _ in 0..16 {
                match (&self.sock).read(&mut scratch[..]) {
                    Ok(0) => {
                        self.life = Life::Closed;
                        return;
                    }
                    Ok(_) => continue,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        self.read_pending = false;
                        return;
                    }
                    Err(_) => {
                        self.life = Life::Closed;
                        return;
                    }
                }
            }
            // Still more: come back next turn rather than hog the loop.
            (self.waker)();
        });
    }

    /// What the control connection's state calls for: reading when it can; while the session
    /// paused its input, only the peer's FIN (told once, as `on_hangup`).
    pub(super) fn want(&self, limits: &Limits) -> Interest {
        let read = self.can_read(limits) || matches!(self.life, Life::Lingering { .. });
        Interest {
            read,
            write: !self.out.is_empty(),
            hangup: !read && self.hangup_watch(),
        }
    }

    /// The session paused its input and has not been told of a FIN yet.
    pub(super) fn hangup_watch(&self) -> bool {
        self.input_paused
            && !self.read_eof
            && !self.fin_told
            && matches!(self.life, Life::Open | Life::Evicting { .. })
    }

    pub(super) fn update_interest(&mut self, reg: &mut dyn Registry, limits: &Limits) {
        let want = self.want(limits);
        if want != self.interest && reg.set(self.fd, CONTROL, want, false).is_ok() {
            self.interest = want;
        }
        self.update_channel_interest(reg);
    }
}
