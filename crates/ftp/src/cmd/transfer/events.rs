//! A data channel's events: a passive listener's address, and the transfer's progress (an
//! upload's bytes into its sink, made at the first of them; an ASCII download's next piece;
//! the end, whichever way it comes).

use super::{ascii_piece, Kind, Transfer};
use crate::reply::{io_error, reply};
use crate::session::{Data, FtpSession};
use bingfa_net::{ChannelEvent, ChannelId, Context};

pub fn on_channel(s: &mut FtpSession, id: ChannelId, ev: ChannelEvent<'_>, cx: &mut Context) {
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
    match (&mut x.kind, ev) {
        (Kind::Recv { plan, sink, ascii }, ChannelEvent::Data(b)) => {
            let r = open_sink(plan, sink).and_then(|(sink, durable)| {
                let n = sink.write(b, ascii.as_mut())?;
                if let Some(d) = durable {
                    d.wrote(sink.file(), n);
                }
                Ok(())
            });
            if let Err(e) = r {
                cx.channel_abort(id);
                io_error(cx, &e);
                s.transfer_ended(cx);
            }
        }
        (Kind::Recv { .. }, ChannelEvent::Eof) => {
            let Some(Transfer {
                kind:
                    Kind::Recv {
                        plan,
                        mut sink,
                        mut ascii,
                    },
                ..
            }) = s.xfer.take()
            else {
                unreachable!()
            };
            let done = open_sink(&plan, &mut sink).map(|_| ()).and_then(|()| {
                let (mut sink, durable) = sink.take().expect("opened");
                if let Some(d) = ascii.as_mut() {
                    sink.write(d.finish(), None)?;
                }
                if durable.is_some() {
                    sink.file().sync_data()?;
                }
                plan.finish(sink)
            });
            cx.channel_close(id);
            match done {
                Ok(None) => reply(cx, 226, "Transfer complete."),
                Ok(Some(name)) => reply(
                    cx,
                    226,
                    &format!("Transfer complete; the name was taken meanwhile: FILE: {name}"),
                ),
                Err(e) => io_error(cx, &e),
            }
            s.transfer_ended(cx);
        }
        (Kind::Ascii { .. }, ChannelEvent::Drained) => ascii_piece(id, &mut x.kind, cx),
        (Kind::Send | Kind::Ascii { .. }, ChannelEvent::Closed) => {
            reply(cx, 226, "Transfer complete.");
            s.transfer_ended(cx);
        }
        (_, ChannelEvent::Error(std::io::ErrorKind::PermissionDenied)) => {
            // Nothing went out and nothing was stored (the sink is made at the first byte).
            crate::cmd::tls::reuse_refused(cx);
            s.transfer_ended(cx);
        }
        (_, ChannelEvent::Error(std::io::ErrorKind::ConnectionRefused)) => {
            reply(cx, 425, "Cannot open data connection.");
            s.transfer_ended(cx);
        }
        (_, ChannelEvent::TooMany) => {
            reply(cx, 425, "Cannot open data connection.");
            s.transfer_ended(cx);
        }
        (_, ChannelEvent::Closed | ChannelEvent::Error(_)) => {
            // A broken upload: its temporary file goes with the transfer.
            reply(cx, 426, "Connection closed; transfer aborted.");
            s.transfer_ended(cx);
        }
        _ => {}
    }
}

/// The upload's sink, made now if this is its first byte (or its EOF).
fn open_sink<'a>(
    plan: &super::sink::Plan,
    sink: &'a mut Option<(super::sink::Sink, Option<super::sink::Durable>)>,
) -> std::io::Result<&'a mut (super::sink::Sink, Option<super::sink::Durable>)> {
    if sink.is_none() {
        *sink = Some(plan.open()?);
    }
    Ok(sink.as_mut().expect("just made"))
}
