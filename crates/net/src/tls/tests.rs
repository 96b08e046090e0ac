//! The TLS layer driven by hand against a rustls client, no sockets: handshake, greeting, echo
//! and close_notify; a 1.5 MiB file range going out in chunks and followed in order by a write;
//! two ranges back to back then a close; garbage instead of a ClientHello; plain HTTP answered
//! with a readable 400 only where asked; plain listeners staying plain; the not-HTTP
//! configuration offering no ALPN and refusing clients that speak only HTTP (ALPACA).

use super::test_util::{client, info, pattern, receive, test_file};
use super::*;
use crate::session::Action;
use std::io::{Read, Write};
use std::sync::Arc;

/// Echoes lines; `file` sends the test file then `done\n`; `bye` closes.
struct Echo {
    file: Arc<std::fs::File>,
}

impl Session for Echo {
    fn on_open(&mut self, cx: &mut Context) {
        cx.write(b"hello\n");
    }
    fn on_data(&mut self, input: &[u8], cx: &mut Context) -> usize {
        let Some(i) = input.iter().position(|&b| b == b'\n') else {
            return 0;
        };
        match &input[..i] {
            b"file" => {
                let len = self.file.metadata().unwrap().len();
                cx.send_file(self.file.clone(), 0, len);
                cx.write(b"done\n");
            }
            b"bye" => cx.close(),
            line => {
                cx.write(line);
                cx.write(b"\n");
            }
        }
        i + 1
    }
}

struct Pair {
    server: MaybeTls<Echo>,
    cx: Context,
    client: rustls::ClientConnection,
    plain: Vec<u8>,
    closed: bool,
}

impl Pair {
    fn new(file_len: usize) -> Pair {
        let (cfg, made) = TlsConfig::self_signed(&["localhost"], &[b"http/1.1"]).unwrap();
        let proto = TlsProtocol::new(EchoProto(test_file(file_len)), cfg);
        let client = client(&made, &[b"http/1.1"]);
        let mut server = proto.new_session(&info());
        let mut cx = Context::new(info());
        server.on_open(&mut cx);
        let mut p = Pair {
            server,
            cx,
            client,
            plain: Vec::new(),
            closed: false,
        };
        p.run();
        p
    }

    /// Carry bytes both ways until nothing moves; the server's writes are "drained" at once.
    fn run(&mut self) {
        for _ in 0..10_000 {
            let mut moved = false;
            let mut up = Vec::new();
            while self.client.wants_write() {
                self.client.write_tls(&mut up).unwrap();
            }
            if !up.is_empty() && !self.closed {
                moved = true;
                let n = self.server.on_data(&up, &mut self.cx);
                assert_eq!(n, up.len());
            }
            let acts: Vec<Action> = self.cx.take_actions().collect();
            let mut wrote = false;
            for a in acts {
                match a {
                    Action::Write(b) => {
                        wrote = true;
                        receive(&mut self.client, &b, &mut self.plain);
                    }
                    Action::Close | Action::Abort => self.closed = true,
                    Action::PauseInput(_) | Action::SetTimer(..) => {}
                    other => panic!("unexpected {other:?}"),
                }
            }
            if wrote && !self.closed {
                moved = true;
                self.server.on_drained(&mut self.cx);
            }
            if !moved && !self.cx.has_actions() {
                return;
            }
        }
        panic!("no quiescence");
    }

    fn send(&mut self, s: &[u8]) {
        self.client.writer().write_all(s).unwrap();
        self.run();
    }
}

struct EchoProto(Arc<std::fs::File>);

impl Protocol for EchoProto {
    type Session = Echo;
    fn new_session(&self, _: &ConnInfo) -> Echo {
        Echo {
            file: self.0.clone(),
        }
    }
}

#[test]
fn handshake_greeting_echo_and_close_notify() {
    let mut p = Pair::new(10);
    assert!(!p.client.is_handshaking());
    assert_eq!(p.client.alpn_protocol(), Some(&b"http/1.1"[..]));
    assert_eq!(p.plain, b"hello\n", "the greeting waited for the handshake");
    p.send(b"one\ntwo\n");
    assert_eq!(p.plain, b"hello\none\ntwo\n");
    p.send(b"bye\n");
    assert!(p.closed);
    let mut buf = [0u8; 16];
    assert_eq!(p.client.reader().read(&mut buf).unwrap(), 0, "close_notify");
}

#[test]
fn a_file_range_goes_out_in_chunks_and_in_order() {
    let len = 3 * 512 * 1024 + 77;
    let mut p = Pair::new(len);
    p.plain.clear();
    p.send(b"file\nafter\n");
    assert_eq!(p.plain.len(), len + b"done\nafter\n".len());
    let expect = pattern(len);
    assert!(p.plain[..len] == expect[..], "file bytes intact");
    assert_eq!(&p.plain[len..], b"done\nafter\n");
}

#[test]
fn back_to_back_ranges_then_close_stay_in_order() {
    // The second range starts from the backlog while the first ends mid-step (a nested chunk),
    // and the close waits for both: every byte in order, then close_notify.
    let len = 512 * 1024 + 64 * 1024 + 5;
    let mut p = Pair::new(len);
    p.plain.clear();
    p.send(b"file\nfile\nbye\n");
    let file = pattern(len);
    let mut expect = Vec::new();
    for _ in 0..2 {
        expect.extend_from_slice(&file);
        expect.extend_from_slice(b"done\n");
    }
    assert_eq!(p.plain.len(), expect.len());
    assert!(p.plain == expect, "both ranges and their trailers in order");
    assert!(p.closed);
    let mut buf = [0u8; 16];
    assert_eq!(p.client.reader().read(&mut buf).unwrap(), 0, "close_notify");
}

#[test]
fn garbage_instead_of_a_client_hello_closes() {
    let (cfg, _) = TlsConfig::self_signed(&["localhost"], &[]).unwrap();
    let proto = TlsProtocol::new(
        EchoProto(Arc::new(std::fs::File::open("/dev/null").unwrap())),
        cfg,
    );
    let mut s = proto.new_session(&info());
    let mut cx = Context::new(info());
    s.on_open(&mut cx);
    let junk = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    assert_eq!(s.on_data(junk, &mut cx), junk.len());
    let acts: Vec<Action> = cx.take_actions().collect();
    assert!(acts.iter().any(|a| matches!(a, Action::Close)), "{acts:?}");
    assert_eq!(
        s.on_data(b"more", &mut cx),
        4,
        "input after failure is dropped"
    );
}

/// What a TLS session writes in the clear for a first flight of `input`.
fn first_answer(cfg: TlsConfig, input: &[u8]) -> (Vec<u8>, bool) {
    let proto = TlsProtocol::new(
        EchoProto(Arc::new(std::fs::File::open("/dev/null").unwrap())),
        cfg,
    );
    let mut s = proto.new_session(&info());
    let mut cx = Context::new(info());
    s.on_open(&mut cx);
    let _ = cx.take_actions().count();
    assert_eq!(s.on_data(input, &mut cx), input.len());
    let mut out = Vec::new();
    let mut closed = false;
    for a in cx.take_actions() {
        match a {
            Action::Write(b) => out.extend_from_slice(&b),
            Action::Close => closed = true,
            _ => {}
        }
    }
    (out, closed)
}

#[test]
fn plain_http_gets_a_readable_400_only_where_asked() {
    let (cfg, _) = TlsConfig::self_signed(&["localhost"], &[b"http/1.1"]).unwrap();
    let get = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    let (out, closed) = first_answer(cfg.clone().answer_plain_http(true), get);
    let text = String::from_utf8(out).unwrap();
    assert!(text.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{text}");
    assert!(text.contains("Use an https:// URL"), "{text}");
    assert!(closed);
    // Off by default (FTP's implicit port) and for `not_http` (chat's line port): whatever
    // goes out is a TLS alert, never plaintext.
    for c in [cfg.clone(), cfg.clone().answer_plain_http(true).not_http()] {
        let (out, closed) = first_answer(c, get);
        assert!(out.is_empty() || out[0] == 0x15, "{out:?}");
        assert!(closed);
    }
    // The start of a TLS record on an HTTP listener is a handshake as ever: rustls waits.
    let (out, closed) = first_answer(cfg.answer_plain_http(true), &[0x16, 3, 1, 0, 4, 1]);
    assert!(out.is_empty() && !closed, "{out:?}");
}

#[test]
fn plain_listeners_stay_plain() {
    let (cfg, _) = TlsConfig::self_signed(&["localhost"], &[]).unwrap();
    let proto = TlsProtocol::only_on(
        EchoProto(Arc::new(std::fs::File::open("/dev/null").unwrap())),
        cfg,
        1,
    );
    assert!(matches!(
        proto.new_session_on(0, &info()),
        MaybeTls::Plain(_)
    ));
    assert!(matches!(proto.new_session_on(1, &info()), MaybeTls::Tls(_)));
}

/// A handshake between `client` and a server connection of `cfg`, in memory: the protocol
/// agreed on, or the server's error.
fn shake(cfg: &TlsConfig, mut client: rustls::ClientConnection) -> Result<Option<Vec<u8>>, String> {
    let mut server = cfg.connection().unwrap();
    for _ in 0..10 {
        let mut buf = Vec::new();
        client.write_tls(&mut buf).unwrap();
        if !buf.is_empty() {
            server.read_tls(&mut &buf[..]).unwrap();
            server.process_new_packets().map_err(|e| e.to_string())?;
        }
        let mut buf = Vec::new();
        server.write_tls(&mut buf).unwrap();
        if !buf.is_empty() {
            client.read_tls(&mut &buf[..]).unwrap();
            client.process_new_packets().map_err(|e| e.to_string())?;
        }
        if !client.is_handshaking() && !server.is_handshaking() {
            return Ok(server.alpn_protocol().map(|p| p.to_vec()));
        }
    }
    panic!("no handshake");
}

#[test]
fn not_http_offers_no_alpn_and_refuses_clients_that_speak_only_http() {
    let (web, made) = TlsConfig::self_signed(&["localhost"], &[b"http/1.1"]).unwrap();
    assert_eq!(
        shake(&web, client(&made, &[b"http/1.1"])),
        Ok(Some(b"http/1.1".to_vec()))
    );
    let line = web.not_http();
    for http in [
        &[&b"http/1.1"[..]][..],
        &[b"h2", b"http/1.1"],
        &[b"http/1.0"],
        &[b"h3"],
    ] {
        assert!(shake(&line, client(&made, http)).is_err(), "{http:?}");
    }
    assert_eq!(
        shake(&line, client(&made, &[])),
        Ok(None),
        "no ALPN: openssl s_client"
    );
    assert_eq!(
        shake(&line, client(&made, &[b"http/1.1", b"irc"])),
        Ok(None),
        "a client that also speaks something else gets no protocol"
    );
    // The shared settings are unchanged.
    assert_eq!(
        shake(&web, client(&made, &[b"h2", b"http/1.1"])),
        Ok(Some(b"http/1.1".to_vec()))
    );
}
