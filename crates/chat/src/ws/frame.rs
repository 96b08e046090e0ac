//! Frame layout (RFC 6455 §5.2) and the encoder. Servers send unmasked frames; the masked
//! encoder is here for clients (the tests' client, and anyone writing one against this crate).

/// A frame's opcode. Values 3–7 and 0xB–0xF are reserved and fail the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Opcode {
    /// A later fragment of a message.
    Continuation,
    /// A text message (or its first fragment).
    Text,
    /// A binary message (or its first fragment).
    Binary,
    /// Close.
    Close,
    /// Ping.
    Ping,
    /// Pong.
    Pong,
}

impl Opcode {
    /// The opcode of a frame header's low 4 bits (`None`: reserved).
    pub fn from_u8(b: u8) -> Option<Opcode> {
        Some(match b {
            0x0 => Opcode::Continuation,
            0x1 => Opcode::Text,
            0x2 => Opcode::Binary,
            0x8 => Opcode::Close,
            0x9 => Opcode::Ping,
            0xA => Opcode::Pong,
            _ => return None,
        })
    }

    /// The opcode's 4 bits.
    pub fn as_u8(self) -> u8 {
        match self {
            Opcode::Continuation => 0x0,
            Opcode::Text => 0x1,
            Opcode::Binary => 0x2,
            Opcode::Close => 0x8,
            Opcode::Ping => 0x9,
            Opcode::Pong => 0xA,
        }
    }

    /// Close, ping and pong: at most 125 bytes, never fragmented, allowed between fragments.
    pub fn is_control(self) -> bool {
        matches!(self, Opcode::Close | Opcode::Ping | Opcode::Pong)
    }
}

/// XOR `buf` with the 4-byte `mask`, where `buf[0]` is byte number `offset` of the payload
/// (payloads arrive in pieces, so the mask's phase is carried across calls).
pub fn apply_mask(buf: &mut [u8], mask: [u8; 4], offset: usize) {
    for (i, b) in buf.iter_mut().enumerate() {
        *b ^= mask[(offset + i) & 3];
    }
}

fn header(op: Opcode, fin: bool, len: usize, masked: bool, out: &mut Vec<u8>) {
    out.push(if fin { 0x80 } else { 0 } | op.as_u8());
    let m = if masked { 0x80 } else { 0 };
    if len < 126 {
        out.push(m | len as u8);
    } else if len <= u16::MAX as usize {
        out.push(m | 126);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(m | 127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
}

/// One unmasked frame (what a server sends).
pub fn encode(op: Opcode, fin: bool, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 10);
    header(op, fin, payload.len(), false, &mut out);
    out.extend_from_slice(payload);
    out
}

/// One frame masked with `mask` (what a client sends).
pub fn encode_masked(op: Opcode, fin: bool, payload: &[u8], mask: [u8; 4]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 14);
    header(op, fin, payload.len(), true, &mut out);
    out.extend_from_slice(&mask);
    let start = out.len();
    out.extend_from_slice(payload);
    apply_mask(&mut out[start..], mask, 0);
    out
}

/// A close frame's payload: the code, then a reason cut to fit the 125-byte control limit
/// (on a character boundary, so it stays valid UTF-8).
pub fn close_payload(code: u16, reason: &str) -> Vec<u8> {
    let mut end = reason.len().min(123);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    let mut out = code.to_be_bytes().to_vec();
    out.extend_from_slice(&reason.as_bytes()[..end]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_examples_encode_exactly() {
        // RFC 6455 §5.7: an unmasked "Hello" and a masked one.
        assert_eq!(
            encode(Opcode::Text, true, b"Hello"),
            [0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f]
        );
        assert_eq!(
            encode_masked(Opcode::Text, true, b"Hello", [0x37, 0xfa, 0x21, 0x3d]),
            [0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58]
        );
        // Fragmented unmasked "Hel" + "lo", and an unmasked ping "Hello".
        assert_eq!(
            encode(Opcode::Text, false, b"Hel"),
            [0x01, 0x03, 0x48, 0x65, 0x6c]
        );
        assert_eq!(
            encode(Opcode::Continuation, true, b"lo"),
            [0x80, 0x02, 0x6c, 0x6f]
        );
        assert_eq!(
            encode(Opcode::Ping, true, b"Hello"),
            [0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f]
        );
    }

    #[test]
    fn lengths_use_7_16_and_64_bits() {
        let f = encode(Opcode::Binary, true, &[0; 125]);
        assert_eq!(&f[..2], [0x82, 125]);
        // RFC 6455 §5.7: 256 bytes in one unmasked binary frame.
        let f = encode(Opcode::Binary, true, &[0; 256]);
        assert_eq!(&f[..4], [0x82, 0x7E, 0x01, 0x00]);
        assert_eq!(f.len(), 4 + 256);
        let f = encode(Opcode::Binary, true, &[0; 65535]);
        assert_eq!(&f[..4], [0x82, 0x7E, 0xff, 0xff]);
        // RFC 6455 §5.7: 64 KiB in one unmasked binary frame.
        let f = encode(Opcode::Binary, true, &[0; 65536]);
        assert_eq!(&f[..10], [0x82, 0x7F, 0, 0, 0, 0, 0, 0x01, 0x00, 0x00]);
    }

    #[test]
    fn close_reasons_are_cut_on_a_char_boundary() {
        assert_eq!(close_payload(1000, "bye"), [0x03, 0xe8, b'b', b'y', b'e']);
        let long = "é".repeat(100); // 200 bytes
        let p = close_payload(1001, &long);
        assert!(p.len() <= 125);
        assert!(std::str::from_utf8(&p[2..]).is_ok());
    }

    #[test]
    fn masking_keeps_its_phase_across_pieces() {
        let mask = [1, 2, 3, 4];
        let mut whole = *b"abcdefg";
        apply_mask(&mut whole, mask, 0);
        let mut a = *b"abc";
        let mut b = *b"defg";
        apply_mask(&mut a, mask, 0);
        apply_mask(&mut b, mask, 3);
        assert_eq!([&a[..], &b[..]].concat(), whole);
    }
}
