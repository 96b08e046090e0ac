//! The chat room's other faces under every model (see `chat.rs` for the suite): a web member
//! beside a TCP member (`--web`, a WebSocket client on the crate's codec) and a member over TLS
//! (`--tls-bind`), in the same room with the same exact lines.

#[path = "support/chat_room.rs"]
mod room;

use bingfa_net::Model;
use bingfa_testkit::ws;
use room::*;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// A WebSocket member (the web face's `WebSession` around the room's session) and a TCP
/// member in the same room: the same exact lines both ways, `left` when the web member goes
/// (close handshake or a dropped connection: `on_farewell` through the wrapper), and a `! `
/// line, not a close, for a line over `--max-line`.
fn web_member(model: Model, edge: bool) {
    if !model.concurrent() {
        return;
    }
    let mut srv = Server::start(model, edge, &["--web", "127.0.0.1:0", "--max-line", "16"]);
    let web = srv.web.unwrap();
    let mut t = srv.join("tess");
    let mut w = ws::Ws::connect(web);
    w.expect("* welcome to the bingfa chat room; what is your name?");
    w.send("tess");
    w.expect("! name taken; try another name");
    w.send("wendy");
    w.expect("* you are wendy; online: tess, wendy");
    t.expect("* wendy joined");
    w.send("hi: from * web");
    t.expect("wendy: hi: from * web");
    t.send("hi from tcp ✓");
    w.expect("tess: hi from tcp ✓");
    w.send(&"x".repeat(17));
    w.expect("! line too long (at most 16 bytes), dropped");
    // Still a member, and nothing reached the room.
    w.send("/who");
    w.expect("* online (2): tess, wendy");
    w.send("still here");
    t.expect("wendy: still here");

    // A second web member whose connection just drops.
    let mut v = ws::Ws::connect(web);
    v.expect("* welcome to the bingfa chat room; what is your name?");
    v.send("vic");
    v.expect("* you are vic; online: tess, wendy, vic");
    t.expect("* vic joined");
    w.expect("* vic joined");
    drop(v);
    t.expect("* vic left");
    w.expect("* vic left");

    w.close();
    t.expect("* wendy left");
    t.send("/who");
    t.expect("* online (1): tess");
    assert!(srv.stop().success());
}

/// A member on the line protocol over TLS (`--tls-bind`, a rustls client trusting the test's
/// certificate) is in the same room as a plain TCP member: the same exact lines both ways,
/// announcements, and `left` when it quits.
fn tls_line(model: Model, edge: bool) {
    let dir = std::env::temp_dir().join(format!(
        "bingfa-chat-tls-{}-{}{}",
        std::process::id(),
        model.name(),
        if edge { "-et" } else { "" }
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let made = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    std::fs::write(dir.join("c.pem"), made.cert.pem()).unwrap();
    std::fs::write(dir.join("c.key"), made.key_pair.serialize_pem()).unwrap();
    let (cert, key) = (dir.join("c.pem"), dir.join("c.key"));
    let args = [
        "--tls-bind",
        "127.0.0.1:0",
        "--tls-cert",
        cert.to_str().unwrap(),
        "--tls-key",
        key.to_str().unwrap(),
    ];
    let mut srv = Server::start(model, edge, &args);
    let mut plain = model.concurrent().then(|| srv.join("tess"));
    let mut t = TlsClient::connect(srv.tls.unwrap(), made.cert.der().to_vec());
    t.expect("* welcome to the bingfa chat room; what is your name?");
    t.send("tina");
    match &mut plain {
        Some(p) => {
            t.expect("* you are tina; online: tess, tina");
            p.expect("* tina joined");
            t.send("hello over tls ✓");
            p.expect("tina: hello over tls ✓");
            p.send("hello back");
            t.expect("tess: hello back");
            assert!(srv.announce("both of you").status.success());
            p.expect("* admin: both of you");
            t.expect("* admin: both of you");
        }
        None => t.expect("* you are tina; online: tina"),
    }
    t.send("/quit");
    t.expect("* bye");
    if let Some(p) = &mut plain {
        p.expect("* tina left");
    }
    assert!(srv.stop().success());
    let _ = std::fs::remove_dir_all(&dir);
}

/// A line client over TLS: rustls trusting one certificate, for `localhost`.
struct TlsClient {
    tls: rustls::StreamOwned<rustls::ClientConnection, TcpStream>,
    pending: Vec<u8>,
}

impl TlsClient {
    fn connect(addr: SocketAddr, ca: Vec<u8>) -> TlsClient {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(ca.into()).unwrap();
        let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
        let cfg = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
        let conn = rustls::ClientConnection::new(std::sync::Arc::new(cfg), name).unwrap();
        let sock = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).unwrap();
        sock.set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        TlsClient {
            tls: rustls::StreamOwned::new(conn, sock),
            pending: Vec::new(),
        }
    }
    fn send(&mut self, line: &str) {
        self.tls.write_all(format!("{line}\n").as_bytes()).unwrap();
        self.tls.flush().unwrap();
    }
    fn expect(&mut self, want: &str) {
        let mut buf = [0u8; 4096];
        while !self.pending.contains(&b'\n') {
            let n = self.tls.read(&mut buf).expect("read (timed out?)");
            assert!(
                n > 0,
                "closed; had {:?}",
                String::from_utf8_lossy(&self.pending)
            );
            self.pending.extend_from_slice(&buf[..n]);
        }
        let i = self.pending.iter().position(|&b| b == b'\n').unwrap();
        let line: Vec<u8> = self.pending.drain(..=i).collect();
        assert_eq!(String::from_utf8_lossy(&line[..i]), want);
    }
}

bingfa_testkit::for_each_model! {
    #[test] fn web_member() { super::web_member(M, E) }
    #[test] fn tls_line() { super::tls_line(M, E) }
}
