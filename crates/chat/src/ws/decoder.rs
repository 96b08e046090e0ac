//! A streaming frame decoder for the server side. It consumes every byte it is given (a large
//! frame is unmasked piece by piece as it arrives, so the driver's input limit never has to
//! hold a whole frame) and yields whole messages and control frames as [`Event`]s. Every rule
//! whose breach must fail the connection (RFC 6455 §5, §7.4) returns a [`WsError`] carrying the
//! close code to send.

use super::frame::{apply_mask, Opcode};
use super::WsError;

/// What a complete frame or message turned out to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A whole text message (fragments joined), valid UTF-8.
    Text(String),
    /// A whole binary message.
    Binary(Vec<u8>),
    /// Answer with a pong carrying the same payload.
    Ping(Vec<u8>),
    /// A pong (ignored).
    Pong(Vec<u8>),
    /// The peer wants to close; its status code and reason, if it sent one.
    Close(Option<(u16, String)>),
}

#[derive(Debug)]
enum State {
    Header,
    Payload {
        op: Opcode,
        fin: bool,
        mask: Option<[u8; 4]>,
        len: usize,
        done: usize,
    },
    Failed(WsError),
}

/// Decodes client frames. `max_message` bounds a whole (possibly fragmented) data message.
#[derive(Debug)]
pub struct Decoder {
    max_message: usize,
    require_mask: bool,
    state: State,
    /// The opcode of the data message being assembled from fragments, if one is open.
    msg_op: Option<Opcode>,
    msg: Vec<u8>,
    control: Vec<u8>,
}

/// Close codes a peer may send (RFC 6455 §7.4.1–2): 1004–1006 and 1015 are reserved for
/// reporting, never for the wire; 1016–2999 are unassigned.
fn valid_close_code(code: u16) -> bool {
    matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999)
}

impl Decoder {
    /// A server-side decoder: unmasked frames fail with 1002.
    pub fn new(max_message: usize) -> Decoder {
        Decoder {
            max_message,
            require_mask: true,
            state: State::Header,
            msg_op: None,
            msg: Vec::new(),
            control: Vec::new(),
        }
    }

    /// A client-side decoder (server frames are unmasked; a masked one is still accepted).
    pub fn client(max_message: usize) -> Decoder {
        Decoder {
            require_mask: false,
            ..Decoder::new(max_message)
        }
    }

    /// Decode from `input`. Returns how many bytes were consumed and the next event, if a frame
    /// or message completed; call again with the rest while it consumes something. After an
    /// error the decoder stays failed: send a close frame with [`WsError::code`] and close.
    pub fn decode(&mut self, input: &[u8]) -> (usize, Result<Option<Event>, WsError>) {
        let mut used = 0;
        loop {
            match self.state {
                State::Failed(ref e) => return (input.len(), Err(e.clone())),
                State::Header => match self.header(&input[used..]) {
                    Ok(Some(n)) => used += n,
                    Ok(None) => return (used, Ok(None)),
                    Err(e) => {
                        self.state = State::Failed(e.clone());
                        return (input.len(), Err(e));
                    }
                },
                State::Payload {
                    op,
                    fin,
                    mask,
                    len,
                    ref mut done,
                } => {
                    let n = (len - *done).min(input.len() - used);
                    let buf = if op.is_control() {
                        &mut self.control
                    } else {
                        &mut self.msg
                    };
                    let start = buf.len();
                    buf.extend_from_slice(&input[used..used + n]);
                    if let Some(mask) = mask {
                        apply_mask(&mut buf[start..], mask, *done);
                    }
                    *done += n;
                    used += n;
                    if *done < len {
                        return (used, Ok(None));
                    }
                    self.state = State::Header;
                    match self.complete(op, fin) {
                        Ok(None) => {}
                        Ok(Some(ev)) => return (used, Ok(Some(ev))),
                        Err(e) => {
                            self.state = State::Failed(e.clone());
                            return (input.len(), Err(e));
                        }
                    }
                }
            }
        }
    }

    /// Parse one frame header if all of it is there; returns its size.
    fn header(&mut self, b: &[u8]) -> Result<Option<usize>, WsError> {
        if b.len() < 2 {
            return Ok(None);
        }
        let fin = b[0] & 0x80 != 0;
        if b[0] & 0x70 != 0 {
            return Err(WsError::Protocol(
                "reserved bits set (no extension was agreed)",
            ));
        }
        let op = Opcode::from_u8(b[0] & 0x0f).ok_or(WsError::Protocol("reserved opcode"))?;
        let masked = b[1] & 0x80 != 0;
        if self.require_mask && !masked {
            return Err(WsError::Protocol("client frames must be masked"));
        }
        let (len, mut size) = match b[1] & 0x7f {
            126 if b.len() >= 4 => (u16::from_be_bytes([b[2], b[3]]) as u64, 4),
            127 if b.len() >= 10 => (u64::from_be_bytes(b[2..10].try_into().unwrap()), 10),
            126 | 127 => return Ok(None),
            n => (n as u64, 2),
        };
        if len >> 63 != 0 {
            return Err(WsError::Protocol("64-bit length with the top bit set"));
        }
        if op.is_control() {
            if !fin {
                return Err(WsError::Protocol("fragmented control frame"));
            }
            if len > 125 {
                return Err(WsError::Protocol("control frame over 125 bytes"));
            }
        } else {
            match (op, self.msg_op) {
                (Opcode::Continuation, None) => {
                    return Err(WsError::Protocol(
                        "continuation frame with no message to continue",
                    ))
                }
                (Opcode::Text | Opcode::Binary, Some(_)) => {
                    return Err(WsError::Protocol("new message inside a fragmented one"))
                }
                _ => {}
            }
            // Refused from the header, before buffering anything of it.
            let total = self.msg.len() as u64 + len;
            if total > self.max_message as u64 {
                return Err(WsError::TooBig(total));
            }
        }
        let mask = if masked {
            if b.len() < size + 4 {
                return Ok(None);
            }
            let m = [b[size], b[size + 1], b[size + 2], b[size + 3]];
            size += 4;
            Some(m)
        } else {
            None
        };
        if op == Opcode::Text || op == Opcode::Binary {
            self.msg_op = Some(op);
        }
        self.state = State::Payload {
            op,
            fin,
            mask,
            len: len as usize,
            done: 0,
        };
        Ok(Some(size))
    }

    /// A frame's payload is complete: produce its event, or nothing for a non-final fragment.
    fn complete(&mut self, op: Opcode, fin: bool) -> Result<Option<Event>, WsError> {
        if op.is_control() {
            let payload = std::mem::take(&mut self.control);
            return Ok(Some(match op {
                Opcode::Ping => Event::Ping(payload),
                Opcode::Pong => Event::Pong(payload),
                _ => Event::Close(parse_close(&payload)?),
            }));
        }
        if !fin {
            return Ok(None);
        }
        let msg = std::mem::take(&mut self.msg);
        Ok(Some(match self.msg_op.take() {
            Some(Opcode::Text) => {
                Event::Text(String::from_utf8(msg).map_err(|_| WsError::InvalidUtf8)?)
            }
            _ => Event::Binary(msg),
        }))
    }
}

fn parse_close(p: &[u8]) -> Result<Option<(u16, String)>, WsError> {
    match p.len() {
        0 => Ok(None),
        1 => Err(WsError::Protocol("close payload of one byte")),
        _ => {
            let code = u16::from_be_bytes([p[0], p[1]]);
            if !valid_close_code(code) {
                return Err(WsError::Protocol("invalid close code"));
            }
            let reason = std::str::from_utf8(&p[2..]).map_err(|_| WsError::InvalidUtf8)?;
            Ok(Some((code, reason.to_string())))
        }
    }
}

#[cfg(test)]
#[path = "decoder_tests.rs"]
mod tests;
