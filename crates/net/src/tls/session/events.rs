//! The driver's events on a TLS connection, turned into the inner session's (split from the
//! session itself): input is decrypted (or, on an HTTP listener, a plain-HTTP request answered
//! with a 400), EOF and hangup are passed on in order, and everything else is relayed.

use super::{State, TlsSession};
use crate::session::{ChannelEvent, ChannelId, Context, Message, Session};

impl<S: Session> Session for TlsSession<S> {
    fn on_open(&mut self, cx: &mut Context) {
        self.call(cx, |s, icx| s.on_open(icx));
        self.flush(cx);
        self.sync_pause(cx);
    }

    fn on_data(&mut self, input: &[u8], cx: &mut Context) -> usize {
        if self.state == State::Closed {
            return input.len();
        }
        if let Some(&first) = input.first().filter(|_| self.sniff) {
            self.sniff = false;
            if crate::tls::plain_http::looks_like_http(first) {
                return self.answer_plain_http(input.len(), cx);
            }
        }
        let mut used = 0;
        if self.tls.is_none() {
            // In the clear: the inner session reads as under a driver, until it starts TLS.
            used = self
                .call(cx, |s, icx| s.on_data(input, icx))
                .min(input.len());
            if self.tls.is_none() || self.state == State::Closed {
                self.settle(cx);
                return used;
            }
            // start_tls: whatever follows the line that asked for it is the handshake, never a
            // command (no plaintext injected into the secure session).
        }
        used += self.decrypt(&input[used..], cx);
        if self.state == State::Open {
            self.settle(cx);
        }
        used
    }

    fn on_hangup(&mut self, cx: &mut Context) {
        // Only a pause of the inner session's own is its business; one of this layer's
        // (output waiting behind a file) ends in order, with `on_eof`.
        if self.inner_paused && self.state == State::Open {
            self.call(cx, |s, icx| s.on_hangup(icx));
            self.settle(cx);
        }
    }

    fn on_eof(&mut self, cx: &mut Context) {
        if self.tls.is_none() && self.state == State::Open {
            self.call(cx, |s, icx| s.on_eof(icx));
            self.settle(cx);
            return;
        }
        // TCP EOF, with or without close_notify before it: the inner session's end of input.
        self.peer_closed = true;
        if self.state == State::Open {
            self.settle(cx);
        } else {
            cx.close();
        }
    }

    fn on_message(&mut self, msg: &Message, cx: &mut Context) {
        self.call(cx, |s, icx| s.on_message(msg, icx));
        self.settle(cx);
    }

    fn on_timer(&mut self, timer: crate::Timer, cx: &mut Context) {
        self.call(cx, |s, icx| s.on_timer(timer, icx));
        self.settle(cx);
    }

    fn on_task_done(&mut self, task: crate::TaskId, cx: &mut Context) {
        self.call(cx, |s, icx| s.on_task_done(task, icx));
        self.settle(cx);
    }

    fn on_drained(&mut self, cx: &mut Context) {
        if self.file.is_some() {
            self.next_chunk(cx);
            self.sync_pause(cx);
            let waiting = self.tls.as_ref().is_some_and(|t| t.wants_write());
            if self.file.is_some() || waiting || cx.has_actions() {
                return; // the inner session's "drained" is when its own output is all out
            }
        }
        if self.state == State::Open {
            self.call(cx, |s, icx| s.on_drained(icx));
            self.settle(cx);
        }
    }

    fn on_channel(&mut self, id: ChannelId, ev: ChannelEvent<'_>, cx: &mut Context) {
        if self.channel(id).is_some() {
            self.on_tls_channel(id, ev, cx);
        } else {
            if let ChannelEvent::Closed | ChannelEvent::Error(_) | ChannelEvent::TooMany = ev {
                self.paused_plain.retain(|&c| c != id);
            }
            self.call(cx, |s, icx| s.on_channel(id, ev, icx));
        }
        self.settle(cx);
    }

    fn on_idle(&mut self, cx: &mut Context) {
        self.call(cx, |s, icx| s.on_idle(icx));
        // The driver closes after this; end the TLS stream properly first.
        if self.state == State::Open && self.file.is_none() && self.backlog.is_empty() {
            if let Some(tls) = &mut self.tls {
                tls.send_close_notify();
            }
            self.state = State::Closed;
        }
        self.flush(cx);
    }

    fn on_overflow(&mut self, cx: &mut Context) {
        self.call(cx, |s, icx| s.on_overflow(icx));
        self.settle(cx);
    }

    fn on_shutdown(&mut self, cx: &mut Context) {
        self.call(cx, |s, icx| s.on_shutdown(icx));
        self.settle(cx);
    }

    fn on_farewell(&mut self, cx: &mut Context) {
        // Only hub publications are carried out here; pass them straight on.
        let mut icx = Context::new(*cx.info());
        self.inner.on_farewell(&mut icx);
        for a in icx.take_actions() {
            cx.push(a);
        }
    }

    fn on_close(&mut self) {
        self.inner.on_close();
    }
}
