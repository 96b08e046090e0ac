//! A small WebSocket client for the chat suite, on bingfa-chat's own codec: masked frames out,
//! every frame in decoded and checked, one room line per text frame. Blocking, with the
//! socket's read timeout bounding every wait.

use bingfa_chat::ws::{close_payload, encode_masked, Decoder, Event, Opcode};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// A WebSocket connection to the chat room's web face.
pub struct Ws {
    s: TcpStream,
    d: Decoder,
    buf: Vec<u8>,
}

const MASK: [u8; 4] = [0x1f, 0x2e, 0x3d, 0x4c];

impl Ws {
    /// Upgrade at `/ws`; panics unless the server switches protocols.
    pub fn connect(addr: SocketAddr) -> Ws {
        let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        write!(
            s,
            "GET /ws HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        .unwrap();
        let mut ws = Ws {
            s,
            d: Decoder::client(1 << 20),
            buf: Vec::new(),
        };
        let i = loop {
            if let Some(i) = ws.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i;
            }
            assert!(ws.fill(), "closed during the handshake");
        };
        let head = String::from_utf8(ws.buf.drain(..i + 4).collect()).unwrap();
        assert!(head.starts_with("HTTP/1.1 101 "), "{head}");
        ws
    }

    /// Read more; false at EOF.
    fn fill(&mut self) -> bool {
        let mut chunk = [0u8; 16 * 1024];
        match self.s.read(&mut chunk) {
            Ok(0) => false,
            Ok(n) => {
                self.buf.extend_from_slice(&chunk[..n]);
                true
            }
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => false,
            Err(e) => panic!("read (timed out?): {e}"),
        }
    }

    /// Sends `text` as one masked text frame.
    pub fn send(&mut self, text: &str) {
        let f = encode_masked(Opcode::Text, true, text.as_bytes(), MASK);
        self.s.write_all(&f).unwrap();
    }

    /// The next frame; `None` at EOF.
    pub fn next_event(&mut self) -> Option<Event> {
        loop {
            let (n, r) = self.d.decode(&self.buf);
            self.buf.drain(..n);
            if let Some(ev) = r.expect("the server sent a bad frame") {
                return Some(ev);
            }
            if !self.fill() {
                assert!(self.buf.is_empty(), "EOF inside a frame");
                return None;
            }
        }
    }

    /// The next room line (one text frame), exactly.
    pub fn expect(&mut self, line: &str) {
        assert_eq!(self.next_event(), Some(Event::Text(line.into())));
    }

    /// Close normally: our close frame, the server's close frame (1000), then EOF.
    pub fn close(mut self) {
        let f = encode_masked(Opcode::Close, true, &close_payload(1000, ""), MASK);
        self.s.write_all(&f).unwrap();
        match self.next_event() {
            Some(Event::Close(Some((code, _)))) => assert_eq!(code, 1000),
            other => panic!("expected a close frame, got {other:?}"),
        }
        assert_eq!(self.next_event(), None, "EOF after the close frame");
    }
}
