//! The TLS session's side of its TLS data channels: driver events on them, and the plaintext
//! they decrypted handed to the inner session (split from the session itself).

use super::TlsSession;
use crate::session::{Action, ChannelEvent, ChannelId, Context, Session};
use crate::tls::channel::TlsChannel;

impl<S: Session> TlsSession<S> {
    /// Plaintext a TLS data channel holds for the inner session (tests check the bound).
    #[cfg(test)]
    pub(in crate::tls) fn held(&self, id: ChannelId) -> Option<usize> {
        self.channels
            .iter()
            .find(|c| c.id == id)
            .map(|c| c.inbox.len())
    }

    /// Channel `id` if it speaks TLS.
    pub(super) fn channel(&mut self, id: ChannelId) -> Option<&mut TlsChannel> {
        self.channels.iter_mut().find(|c| c.id == id)
    }

    /// Give the inner session what its TLS channels decrypted (each `Data` is all of it, as a
    /// driver gives), then their end, and set each channel's reading.
    pub(super) fn pump_channels(&mut self, cx: &mut Context) {
        let mut i = 0;
        while i < self.channels.len() {
            let ch = &mut self.channels[i];
            let id = ch.id;
            if !ch.failed && !ch.inner_paused {
                if !ch.inbox.is_empty() {
                    let buf = std::mem::take(&mut ch.inbox);
                    self.call(cx, |s, icx| s.on_channel(id, ChannelEvent::Data(&buf), icx));
                    if let Some(ch) = self.channel(id) {
                        if ch.inbox.is_empty() {
                            ch.inbox = buf;
                            ch.inbox.clear();
                        }
                    }
                }
                let eof = self.channel(id).is_some_and(|c| {
                    c.eof && !c.eof_told && !c.failed && !c.inner_paused && c.inbox.is_empty()
                });
                if eof {
                    if let Some(ch) = self.channel(id) {
                        ch.eof_told = true;
                    }
                    self.call(cx, |s, icx| s.on_channel(id, ChannelEvent::Eof, icx));
                }
            }
            // The list may have changed under the calls: find this channel again.
            if let Some(j) = self.channels.iter().position(|c| c.id == id) {
                self.channels[j].sync_pause(cx);
                i = j + 1;
            }
        }
    }

    /// A driver event on a TLS data channel.
    pub(super) fn on_tls_channel(&mut self, id: ChannelId, ev: ChannelEvent<'_>, cx: &mut Context) {
        let ch = self.channel(id).expect("a TLS channel");
        match ev {
            ChannelEvent::Data(bytes) => {
                if ch.failed {
                    return;
                }
                match ch.feed(bytes, cx) {
                    Ok(()) if ch.refused_fresh() => {
                        // Someone else's handshake (or a client that cannot resume): nothing
                        // of the transfer goes to it, and the inner session is told why.
                        ch.failed = true;
                        cx.push(Action::ChannelAbort(id));
                        self.channels.retain(|c| c.id != id);
                        let ev = ChannelEvent::Error(std::io::ErrorKind::PermissionDenied);
                        self.call(cx, |s, icx| s.on_channel(id, ev, icx));
                    }
                    Ok(()) => ch.unblock(cx),
                    Err(()) => ch.fail(cx),
                }
            }
            ChannelEvent::Eof => {
                if !ch.failed {
                    ch.peer_eof(cx);
                }
            }
            ChannelEvent::Drained => {
                ch.drained(cx);
                if ch.owes_drained && ch.idle() && !ch.failed {
                    ch.owes_drained = false;
                    self.call(cx, |s, icx| s.on_channel(id, ChannelEvent::Drained, icx));
                }
            }
            ChannelEvent::Closed | ChannelEvent::Error(_) | ChannelEvent::TooMany => {
                self.channels.retain(|c| c.id != id);
                self.call(cx, |s, icx| s.on_channel(id, ev, icx));
            }
            ChannelEvent::Listening(_) | ChannelEvent::Connected(_) => {
                self.call(cx, |s, icx| s.on_channel(id, ev, icx));
            }
        }
    }
}
