//! A data channel's events, routed: a passive listener's (its address for the `227`/`229`,
//! a client connecting before its transfer command, the listener failing) are handled here;
//! a transfer's go to [`super::flight`], except the channel's failures, which end any kind of
//! transfer the same way (a refused connect, a TLS session not resumed, too many channels, an
//! error).

use crate::reply::reply;
use crate::state::{Data, State};
use bingfa_net::{ChannelEvent, ChannelId, Context};

pub(crate) fn on_channel(s: &mut State, id: ChannelId, ev: ChannelEvent<'_>, cx: &mut Context) {
    if let Data::Passive { id: pid, kind, .. } = s.data {
        if pid == id {
            match ev {
                ChannelEvent::Listening(addr) => crate::cmd::data::listening(kind, addr, cx),
                // A fresh TLS handshake where the control session must be resumed: the
                // connection is gone, and the transfer that would have used it gets 522.
                ChannelEvent::Error(std::io::ErrorKind::PermissionDenied) => {
                    s.data = Data::Refused;
                }
                // `--max-passive-per-ip`: this address already waits on that many listeners.
                ChannelEvent::Error(std::io::ErrorKind::QuotaExceeded) => {
                    s.data = Data::None;
                    crate::log::refused(s.peer.ip(), crate::log::Refusal::PassiveLimit);
                    reply(
                        cx,
                        425,
                        "Too many passive connections waiting from your address: use or close one first.",
                    );
                }
                ChannelEvent::Error(_) | ChannelEvent::TooMany => {
                    s.data = Data::None;
                    reply(cx, 425, "Cannot open a passive data connection.");
                }
                ChannelEvent::Closed => s.data = Data::None,
                // A client may connect (and even start sending) before its STOR arrives:
                // its bytes wait in the kernel until a transfer takes the channel.
                ChannelEvent::Connected(_) => cx.channel_pause(id, true),
                _ => {}
            }
            return;
        }
    }
    let Some(x) = s.xfer.as_mut().filter(|x| x.id == id) else {
        return;
    };
    match ev {
        ChannelEvent::Error(std::io::ErrorKind::PermissionDenied) => {
            // Nothing went out and nothing was stored (the sink is made at the first byte).
            crate::cmd::tls::reuse_refused(cx);
        }
        ChannelEvent::Error(std::io::ErrorKind::ConnectionRefused) | ChannelEvent::TooMany => {
            reply(cx, 425, "Cannot open data connection.");
        }
        ChannelEvent::Error(_) => {
            // A broken upload: its temporary file goes with the transfer.
            reply(cx, 426, "Connection closed; transfer aborted.");
        }
        ev => {
            if !x.on_event(ev, cx) {
                return;
            }
        }
    }
    s.transfer_ended(cx);
}
