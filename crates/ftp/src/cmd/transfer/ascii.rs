//! TYPE A on the wire (RFC 959 §3.1.1.1): lines end with CRLF on the wire and LF on disk.
//!
//! Downloads add a CR before each LF that has none, so a file that already has CRLF is sent
//! as it is, never as `\r\r\n`; uploads turn CRLF into LF. Both keep one byte of state across
//! pieces (the file is converted 64 KiB at a time, an upload as it arrives).

/// LF → CRLF for a download.
#[derive(Default)]
pub(crate) struct Encoder {
    /// The byte before this piece was a CR.
    prev_cr: bool,
}

impl Encoder {
    /// Starting mid-file (`REST`): `prev` is the byte just before the start.
    pub(crate) fn after(prev: Option<u8>) -> Self {
        Encoder {
            prev_cr: prev == Some(b'\r'),
        }
    }

    pub(crate) fn encode(&mut self, piece: &[u8], out: &mut Vec<u8>) {
        out.reserve(piece.len() + piece.len() / 16);
        for &b in piece {
            if b == b'\n' && !self.prev_cr {
                out.push(b'\r');
            }
            out.push(b);
            self.prev_cr = b == b'\r';
        }
    }
}

/// CRLF → LF for an upload; a CR at the end of one piece is held until the next shows whether
/// an LF follows ([`Decoder::finish`] gives it back at the end).
#[derive(Default)]
pub(crate) struct Decoder {
    cr: bool,
}

impl Decoder {
    pub(crate) fn decode(&mut self, piece: &[u8], out: &mut Vec<u8>) {
        out.reserve(piece.len() + 1);
        for &b in piece {
            if std::mem::take(&mut self.cr) && b != b'\n' {
                out.push(b'\r');
            }
            if b == b'\r' {
                self.cr = true;
            } else {
                out.push(b);
            }
        }
    }

    /// What is still held at the end of the upload (a final lone CR).
    pub(crate) fn finish(&mut self) -> &'static [u8] {
        if std::mem::take(&mut self.cr) {
            b"\r"
        } else {
            b""
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode(pieces: &[&[u8]], prev: Option<u8>) -> Vec<u8> {
        let mut e = Encoder::after(prev);
        let mut out = Vec::new();
        for p in pieces {
            e.encode(p, &mut out);
        }
        out
    }

    #[test]
    fn download_adds_cr_only_where_missing() {
        assert_eq!(encode(&[b"a\nb\n\nc"], None), b"a\r\nb\r\n\r\nc");
        // Already CRLF (a file written on Windows): as it is, never `\r\r\n`.
        assert_eq!(encode(&[b"a\r\nb\r\n"], None), b"a\r\nb\r\n");
        assert_eq!(encode(&[b"a\r\nb\nc\r\n"], None), b"a\r\nb\r\nc\r\n");
        // A CRLF split between two pieces, and a REST that starts right after a CR.
        assert_eq!(encode(&[b"a\r", b"\nb"], None), b"a\r\nb");
        assert_eq!(encode(&[b"\nx"], Some(b'\r')), b"\nx");
        assert_eq!(encode(&[b"\nx"], Some(b'a')), b"\r\nx");
        // A lone CR stays a lone CR.
        assert_eq!(encode(&[b"a\rb"], None), b"a\rb");
    }

    #[test]
    fn upload_turns_crlf_into_lf() {
        let mut d = Decoder::default();
        let mut out = Vec::new();
        d.decode(b"x\r", &mut out);
        d.decode(b"\ny\rz\r", &mut out);
        out.extend_from_slice(d.finish());
        assert_eq!(out, b"x\ny\rz\r");
    }
}
