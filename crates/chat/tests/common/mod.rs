//! Shared by the web face's integration tests: a tiny room speaking the line protocol (it only
//! has to exercise the wrapper), a server child process running it behind `WebSession` under
//! any model, or running the real room ([`TestServer::start_room`], what `bingfa chat serve
//! --web` runs), and a hand-written WebSocket client built on the crate's own codec (so every
//! frame is checked exactly).
//!
//! Each server runs in its own process: the test binary re-executes itself with
//! `BINGFA_CHAT_TEST_SERVER` set, running only its `server_main` test, which serves until
//! SIGTERM. So `fork` and `prefork` never fork the multi-threaded test harness.

#![allow(dead_code)] // each test binary uses a different part

use bingfa_chat::server::{self, ServeOptions};
use bingfa_chat::web::WebSession;
use bingfa_chat::ws::{encode_masked, Decoder, Event, Opcode};
use bingfa_net::{Config, ConnInfo, Context, Message, Model, Protocol, Session};
use bingfa_testkit::ServerProc;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// The room's rules in miniature: the first line is the name; then each line reaches the
/// others as `NAME: TEXT` through the hub; joins and leaves are `* ` notices; `/quit` ends.
pub(crate) struct MiniRoom {
    name: Option<String>,
}

impl Session for MiniRoom {
    fn on_open(&mut self, cx: &mut Context) {
        cx.subscribe("room");
        cx.write(b"* welcome! what is your name?\n");
    }
    fn on_data(&mut self, input: &[u8], cx: &mut Context) -> usize {
        let Some(i) = input.iter().position(|&b| b == b'\n') else {
            return 0;
        };
        let line = String::from_utf8_lossy(&input[..i]).to_string();
        match &self.name {
            None if line.is_empty() || line.contains([' ', ':', '*', '!']) => {
                cx.write(b"! invalid name, try another\n");
            }
            None => {
                cx.write(format!("* you are {line}; online: {line}\n").as_bytes());
                cx.publish("room", format!("* {line} joined\n").as_bytes());
                self.name = Some(line);
            }
            Some(_) if line == "/quit" => {
                cx.write(b"* bye\n");
                self.leave(cx);
            }
            // Stands in for the real room's console announcements.
            Some(_) if line.starts_with("/announce ") => {
                cx.publish("room", format!("* admin: {}\n", &line[10..]).as_bytes());
            }
            Some(_) if line.starts_with('/') => {
                cx.write(format!("! unknown command {line}\n").as_bytes());
            }
            Some(name) => cx.publish("room", format!("{name}: {line}\n").as_bytes()),
        }
        i + 1
    }
    fn on_message(&mut self, msg: &Message, cx: &mut Context) {
        if msg.from != cx.info().id {
            cx.write(&msg.body);
        }
    }
    fn on_eof(&mut self, cx: &mut Context) {
        self.leave(cx);
    }
}

impl MiniRoom {
    fn leave(&mut self, cx: &mut Context) {
        if let Some(name) = self.name.take() {
            cx.publish("room", format!("* {name} left\n").as_bytes());
        }
        cx.close();
    }
}

/// Listener 0 is the web face, listener 1 (if configured) the same room as plain lines.
pub(crate) struct WebRoom;

impl Protocol for WebRoom {
    type Session = Face;
    fn new_session(&self, info: &ConnInfo) -> Face {
        self.new_session_on(0, info)
    }
    fn new_session_on(&self, listener: usize, info: &ConnInfo) -> Face {
        let room = MiniRoom { name: None };
        if listener == 0 {
            Face::Web(Box::new(WebSession::new(room, *info)))
        } else {
            Face::Line(room)
        }
    }
    fn refusal(&self) -> Option<Vec<u8>> {
        Some(bingfa_chat::web::refusal())
    }
}

/// One protocol, two faces: what a chat server with `--web` does.
pub(crate) enum Face {
    Web(Box<WebSession<MiniRoom>>),
    Line(MiniRoom),
}

macro_rules! both {
    ($self:ident, $s:ident => $e:expr) => {
        match $self {
            Face::Web($s) => $e,
            Face::Line($s) => $e,
        }
    };
}

impl Session for Face {
    fn on_open(&mut self, cx: &mut Context) {
        both!(self, s => s.on_open(cx))
    }
    fn on_data(&mut self, input: &[u8], cx: &mut Context) -> usize {
        both!(self, s => s.on_data(input, cx))
    }
    fn on_eof(&mut self, cx: &mut Context) {
        both!(self, s => s.on_eof(cx))
    }
    fn on_message(&mut self, msg: &Message, cx: &mut Context) {
        both!(self, s => s.on_message(msg, cx))
    }
    fn on_close(&mut self) {
        both!(self, s => s.on_close())
    }
}

const SPEC_VAR: &str = "BINGFA_CHAT_TEST_SERVER";

/// The body of each test binary's `server_main` test: serve until SIGTERM when asked to.
pub(crate) fn server_main() {
    let Ok(spec) = std::env::var(SPEC_VAR) else {
        return;
    };
    if let Some(rest) = spec.strip_prefix("room;") {
        return room_main(rest, false);
    }
    if let Some(rest) = spec.strip_prefix("roomtls;") {
        return room_main(rest, true);
    }
    let (model, edge) = spec.split_once(';').unwrap();
    let mut config = Config::new("web", "127.0.0.1:0".parse().unwrap());
    config.model = model.parse().unwrap();
    config.edge_triggered = edge == "true";
    // A thread pool serves `workers` connections at once: room for the scenarios' clients.
    config.workers = if config.model == Model::ThreadPool {
        6
    } else {
        2
    };
    config.limits.shutdown_grace = Duration::from_secs(2);
    config
        .also
        .push(("chat".into(), "127.0.0.1:0".parse().unwrap()));
    bingfa_net::serve(config, WebRoom).unwrap();
}

/// The real room, exactly as `bingfa chat serve --web ... --admin-socket ...` builds it.
/// With `tls`, the web face speaks https/wss with a self-signed certificate whose public key
/// pin is printed as `tls pin BASE64` before the ready lines.
fn room_main(spec: &str, tls: bool) {
    let (model, admin) = spec.split_once(';').unwrap();
    let mut opts = ServeOptions::new("127.0.0.1:0".parse().unwrap());
    opts.web = Some("127.0.0.1:0".parse().unwrap());
    opts.admin_socket = Some(admin.into());
    opts.model = model.parse().unwrap();
    opts.workers = if opts.model == Model::ThreadPool {
        8
    } else {
        2
    };
    if tls {
        let (config, made) =
            bingfa_net::tls::TlsConfig::self_signed(&["localhost", "127.0.0.1"], &[b"http/1.1"])
                .unwrap();
        println!("tls pin {}", made.spki_sha256);
        server::bind_tls(&opts, config).unwrap().run().unwrap();
    } else {
        server::bind(&opts).unwrap().run().unwrap();
    }
}

/// A server child process; stopped (and waited for) on drop whatever happens.
pub(crate) struct TestServer {
    proc: ServerProc,
    pub web: SocketAddr,
    pub chat: SocketAddr,
    /// The admin socket (real room only).
    pub admin: Option<PathBuf>,
    /// The web face's certificate pin (base64 SHA-256 of its public key) when it speaks TLS.
    pub tls_pin: Option<String>,
}

impl TestServer {
    /// The mini room behind `WebSession`. The test binary must have a `server_main` test
    /// calling [`server_main`].
    pub(crate) fn start(model: Model, edge: bool) -> TestServer {
        TestServer::spawn(format!("{model};{edge}"), None)
    }

    /// The real room (line port, web face, admin socket) under `model`.
    pub(crate) fn start_room(model: Model) -> TestServer {
        Self::room(model, "room")
    }

    /// The real room with its web face over TLS (self-signed; see [`TestServer::tls_pin`]).
    pub(crate) fn start_room_tls(model: Model) -> TestServer {
        Self::room(model, "roomtls")
    }

    fn room(model: Model, kind: &str) -> TestServer {
        static N: AtomicUsize = AtomicUsize::new(0);
        let admin = std::env::temp_dir().join(format!(
            "bingfa-chat-web-{}-{}.sock",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        TestServer::spawn(format!("{kind};{model};{}", admin.display()), Some(admin))
    }

    /// Announce through the admin socket (the path `bingfa chat announce` takes).
    pub(crate) fn announce(&self, text: &str) {
        let path = self
            .admin
            .as_ref()
            .expect("the real room has an admin socket");
        let s = UnixStream::connect(path).expect("connect to the admin socket");
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        (&s).write_all(format!("announce {text}\n").as_bytes())
            .unwrap();
        let mut reply = String::new();
        BufReader::new(&s).read_line(&mut reply).unwrap();
        assert_eq!(reply, "* announced\n");
    }

    fn spawn(spec: String, admin: Option<PathBuf>) -> TestServer {
        let mut cmd = Command::new(std::env::current_exe().unwrap());
        cmd.args([
            "--exact",
            "server_main",
            "--nocapture",
            "-q",
            "--test-threads=1",
        ])
        .env(SPEC_VAR, spec)
        .stderr(Stdio::inherit());
        // The kit keeps draining stdout so the server never blocks on a full pipe.
        let proc = ServerProc::spawn(cmd);
        let mut srv = TestServer {
            proc,
            web: "0.0.0.0:0".parse().unwrap(),
            chat: "0.0.0.0:0".parse().unwrap(),
            admin,
            tls_pin: None,
        };
        let end = Instant::now() + Duration::from_secs(20);
        let mut listeners = 0;
        while listeners < 2 {
            let line = srv
                .proc
                .next_line(end.saturating_duration_since(Instant::now()))
                .expect("server did not announce itself");
            if let Some(pin) = line.strip_prefix("tls pin ") {
                srv.tls_pin = Some(pin.to_string());
            }
            for svc in ["web", "web-tls", "chat"] {
                if let Some(rest) = line.strip_prefix(&format!("{svc} listening on ")) {
                    let addr = rest.trim().parse().unwrap();
                    match svc {
                        "chat" => srv.chat = addr,
                        _ => srv.web = addr,
                    }
                    listeners += 1;
                }
            }
        }
        srv
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.proc.finish();
        // The server removes it at exit; not if it had to be killed.
        if let Some(a) = &self.admin {
            let _ = std::fs::remove_file(a);
        }
    }
}

pub(crate) fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s
}

/// Send a raw request and read the whole answer until the server closes.
pub(crate) fn http(addr: SocketAddr, request: &str) -> String {
    let mut s = connect(addr);
    s.write_all(request.as_bytes()).unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).expect("read answer (timed out?)");
    String::from_utf8_lossy(&out).into_owned()
}

/// A WebSocket client on the crate's own codec: masked frames out, every frame in checked.
pub(crate) struct Ws {
    s: TcpStream,
    d: Decoder,
    buf: Vec<u8>,
}

pub(crate) const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";
pub(crate) const MASK: [u8; 4] = [0xa1, 0xb2, 0xc3, 0xd4];

impl Ws {
    pub(crate) fn connect(addr: SocketAddr) -> Ws {
        let (ws, head) = Ws::connect_to(addr, "/ws");
        assert_eq!(
            head,
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n"
        );
        ws
    }

    /// Upgrade at `path`; returns the client and the server's response head.
    pub(crate) fn connect_to(addr: SocketAddr, path: &str) -> (Ws, String) {
        let mut s = connect(addr);
        write!(
            s,
            "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        .unwrap();
        let mut ws = Ws {
            s,
            d: Decoder::client(1 << 20),
            buf: Vec::new(),
        };
        let head = loop {
            if let Some(i) = ws.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8(ws.buf[..i + 4].to_vec()).unwrap();
                ws.buf.drain(..i + 4);
                break head;
            }
            assert!(ws.fill(), "closed during the handshake");
        };
        (ws, head)
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

    pub(crate) fn raw(&mut self, bytes: &[u8]) {
        self.s.write_all(bytes).unwrap();
    }

    pub(crate) fn frame(&mut self, op: Opcode, fin: bool, payload: &[u8]) {
        self.raw(&encode_masked(op, fin, payload, MASK));
    }

    pub(crate) fn send(&mut self, text: &str) {
        self.frame(Opcode::Text, true, text.as_bytes());
    }

    /// The next frame; `None` at EOF.
    pub(crate) fn next(&mut self) -> Option<Event> {
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

    pub(crate) fn expect(&mut self, text: &str) {
        assert_eq!(self.next(), Some(Event::Text(text.into())));
    }

    /// Like [`Ws::expect`], but first skip `* NAME joined` notices for members who joined
    /// before this one: under `fork`/`prefork` the hub relay may deliver such a notice after
    /// the newcomer's own subscription took effect, which is correct (it is still in order).
    pub(crate) fn expect_after_joins(&mut self, text: &str, earlier: &[&str]) {
        loop {
            match self.next() {
                Some(Event::Text(t)) if earlier.iter().any(|n| t == format!("* {n} joined")) => {}
                other => {
                    assert_eq!(other, Some(Event::Text(text.into())));
                    return;
                }
            }
        }
    }

    /// A close frame with `code`, then EOF.
    pub(crate) fn expect_close(&mut self, code: u16) {
        match self.next() {
            Some(Event::Close(Some((c, _)))) => assert_eq!(c, code),
            other => panic!("expected close {code}, got {other:?}"),
        }
        assert_eq!(self.next(), None, "EOF after the close frame");
    }
}
