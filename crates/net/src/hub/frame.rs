//! The hub's wire format, shared by the three places messages cross a socket: a worker's hub
//! publishing up its link (`mod.rs`), the relay reading and fanning out (`relay.rs`), and a
//! downlink handing a backplane's stream to the relay (`uplink.rs`).
//!
//! Frame: `u32 len | u64 from | u16 topic_len | topic | body` (little-endian, `len` counts what
//! follows it).

use crate::session::Message;
use std::io;
use std::sync::Arc;

/// The largest frame, as its `len` field counts it.
pub(crate) const MAX_FRAME: usize = 16 * 1024 * 1024;

/// One message as one frame.
pub(crate) fn encode(msg: &Message) -> Vec<u8> {
    let topic = msg.topic.as_bytes();
    let len = 8 + 2 + topic.len() + msg.body.len();
    let mut out = Vec::with_capacity(4 + len);
    out.extend_from_slice(&(len as u32).to_le_bytes());
    out.extend_from_slice(&msg.from.to_le_bytes());
    out.extend_from_slice(&(topic.len() as u16).to_le_bytes());
    out.extend_from_slice(topic);
    out.extend_from_slice(&msg.body);
    out
}

/// Split complete frames off the front of `buf`; returns (frame byte ranges end, messages).
pub(crate) fn frames(buf: &[u8]) -> io::Result<(usize, Vec<(usize, usize)>)> {
    let mut pos = 0;
    let mut out = Vec::new();
    while buf.len() - pos >= 4 {
        let len = u32::from_le_bytes(buf[pos..pos + 4].try_into().unwrap()) as usize;
        if !(10..=MAX_FRAME).contains(&len) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "bad relay frame",
            ));
        }
        if buf.len() - pos - 4 < len {
            break;
        }
        out.push((pos, pos + 4 + len));
        pos += 4 + len;
    }
    Ok((pos, out))
}

/// The message of one whole frame (as [`frames`] delimits it).
pub(crate) fn decode(frame: &[u8]) -> io::Result<Message> {
    let from = u64::from_le_bytes(frame[4..12].try_into().unwrap());
    let tl = u16::from_le_bytes(frame[12..14].try_into().unwrap()) as usize;
    if 14 + tl > frame.len() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "bad relay frame",
        ));
    }
    let topic = std::str::from_utf8(&frame[14..14 + tl])
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "bad topic"))?;
    Ok(Message {
        topic: Arc::from(topic),
        from,
        body: Arc::from(&frame[14 + tl..]),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_on_a_link_is_an_error_not_a_panic() {
        assert!(frames(&[0, 0, 0, 0, 1, 2, 3]).is_err());
    }
}
