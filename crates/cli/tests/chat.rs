//! The chat room's integration suite, one scenario set run under all ten models plus
//! edge-triggered epoll (like `crates/net/tests/models.rs`). Each server is the real binary,
//! `bingfa chat serve`, in its own process, so fork/prefork put members in different processes
//! and shutdown is a real SIGTERM with a real exit status.
//!
//! Scenarios: names (each rule, exact `! ` lines, uniqueness regardless of case); messages
//! (exact bytes, no echo, `/quit` and disconnect give `* NAME left` and free the name); one order
//! (two interleaved senders, three readers, identical sequences); limits (burst and rate,
//! `--max-line`, invalid UTF-8, `--max-members`); a slow reader evicted while a reading member
//! gets all 20,000 lines in order; announcements (admin socket, `announce` exit codes, the one
//! order); shutdown (`* server shutting down`, exit 0, admin socket removed); a web member beside
//! a TCP member (`--web`, a WebSocket client on the crate's codec: name refusal, exact lines
//! both ways, an over-long web line refused with the member staying, `left` after a close
//! handshake and after a dropped connection); the name and head timeouts; a member over TLS
//! (`--tls-bind`).
//!
//! `iterative` serves one connection at a time (a second member waits, unserved, until the
//! first leaves) and `threadpool` serves `--workers` at once: multi-member scenarios are skipped
//! for `iterative`, and `iterative_one_at_a_time` / `threadpool_serves_more_members_than_workers`
//! test what those models do guarantee.

use bingfa_net::Model;
use bingfa_testkit::{model_args, workers, ws, LineClient, ServerProc};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_bingfa");

struct Server {
    proc: ServerProc,
    addr: SocketAddr,
    /// The web face's address, when started with `--web`.
    web: Option<SocketAddr>,
    /// The line protocol over TLS, when started with `--tls-bind`.
    tls: Option<SocketAddr>,
    admin: PathBuf,
}

impl Server {
    fn start(model: Model, edge: bool, extra: &[&str]) -> Server {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let admin = std::env::temp_dir().join(format!(
            "bingfa-chat-{}-{}.sock",
            std::process::id(),
            N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ));
        let mut cmd = Command::new(BIN);
        cmd.args(["chat", "serve", "--bind", "127.0.0.1:0"])
            .args(model_args(model, edge))
            .arg("--admin-socket")
            .arg(&admin)
            .args(extra)
            .stdin(Stdio::null())
            .stderr(Stdio::inherit());
        if !extra.contains(&"--workers") {
            cmd.args(["--workers", workers(model)]);
        }
        let mut proc = ServerProc::spawn(cmd);
        let mut addr = None;
        let mut web = None;
        let mut tls = None;
        let want_web = extra.contains(&"--web");
        let want_tls = extra.contains(&"--tls-bind");
        while addr.is_none() || (want_web && web.is_none()) || (want_tls && tls.is_none()) {
            match proc.next_listening(Duration::from_secs(20)) {
                (svc, a) if svc == "chat" => addr = Some(a),
                (svc, a) if svc == "web" || svc == "web-tls" => web = Some(a),
                (svc, a) if svc == "chat-tls" => tls = Some(a),
                _ => {}
            }
        }
        // The admin socket is bound before the ready lines are printed.
        Server {
            proc,
            addr: addr.unwrap(),
            web,
            tls,
            admin,
        }
    }

    fn connect(&self) -> Client {
        Client::connect(self.addr)
    }

    /// Connect and join as `name` (the greeting and the welcome line read).
    fn join(&self, name: &str) -> Client {
        let mut c = self.connect();
        c.expect_greeting();
        c.send(name);
        let l = c.line();
        assert!(
            l.starts_with(&format!("* you are {name}; online: ")),
            "{l:?}"
        );
        c
    }

    fn stop(&mut self) -> ExitStatus {
        self.proc.stop()
    }

    fn announce(&self, text: &str) -> std::process::Output {
        Command::new(BIN)
            .args(["chat", "announce", "--admin-socket"])
            .arg(&self.admin)
            .arg(text)
            .output()
            .unwrap()
    }
}

/// The room's line face: the kit's line client, and the room's first line.
type Client = LineClient;

trait Greeting {
    fn expect_greeting(&mut self);
}

impl Greeting for LineClient {
    fn expect_greeting(&mut self) {
        self.expect("* welcome to the bingfa chat room; what is your name?");
    }
}

// ---------------------------------------------------------------------------------------------
// Scenarios, each written once
// ---------------------------------------------------------------------------------------------

fn names(model: Model, edge: bool) {
    let mut srv = Server::start(model, edge, &[]);
    let chars = "! a name is letters, digits and _ - . only; try another name";
    let refused = [
        ("", "! a name is 1 to 32 characters; try another name"),
        (
            &"x".repeat(33),
            "! a name is 1 to 32 characters; try another name",
        ),
        ("a b", chars),
        ("a:b", chars),
        ("*x", chars),
        ("hey!", chars),
        ("ADMIN", "! the name admin is reserved; try another name"),
    ];
    // A few refusals in a row at most per connection (more close it: `chat_input.rs`).
    for some in refused.chunks(4) {
        let mut c = srv.connect();
        c.expect_greeting();
        for (bad, why) in some {
            c.send(bad);
            c.expect(why);
        }
    }
    let mut a = srv.connect();
    a.expect_greeting();
    a.send_raw(b"alice\r\n");
    a.expect("* you are alice; online: alice");
    a.send("/who");
    a.expect("* online (1): alice");
    a.send("/help");
    a.expect("* commands: /who (who is online), /help (this list), /quit (leave); any other line is said to the room");
    a.send("/dance now");
    a.expect("! unknown command /dance (try /help)");
    if model.concurrent() {
        let mut b = srv.connect();
        b.expect_greeting();
        b.send("ALICE");
        b.expect("! name taken; try another name");
        b.send("bob");
        b.expect("* you are bob; online: alice, bob");
        a.expect("* bob joined");
        a.send("/who");
        a.expect("* online (2): alice, bob");
        // Bob leaves before alice quits: dropping his connection at the end of this block
        // raced alice's `/quit` (both `* bob left` then `* bye` and the reverse are right).
        b.send("/quit");
        b.expect("* bye");
        a.expect("* bob left");
    }
    a.send("/quit");
    a.expect("* bye");
    a.expect_closed();
    assert!(srv.stop().success());
}

fn messages(model: Model, edge: bool) {
    if !model.concurrent() {
        return;
    }
    let mut srv = Server::start(model, edge, &[]);
    let mut a = srv.join("alice");
    let mut b = srv.join("bob");
    a.expect("* bob joined");
    let mut c = srv.join("carol");
    a.expect("* carol joined");
    b.expect("* carol joined");
    a.send("hello: there * !");
    b.expect("alice: hello: there * !");
    c.expect("alice: hello: there * !");
    b.send("hi alice");
    // No echo: alice's next line is bob's, not her own.
    a.expect("bob: hi alice");
    c.expect("bob: hi alice");
    // /quit and a plain disconnect both say `left`, exactly.
    b.send("/quit");
    b.expect("* bye");
    b.expect_closed();
    a.expect("* bob left");
    c.expect("* bob left");
    drop(c);
    a.expect("* carol left");
    // The name is free again.
    let mut b2 = srv.join("Bob");
    a.expect("* Bob joined");
    b2.send("/who");
    b2.expect("* online (2): alice, Bob");
    assert!(srv.stop().success());
}

/// Two senders interleaved, three readers: every member sees the room in one order.
fn one_order(model: Model, edge: bool) {
    if !model.concurrent() {
        return;
    }
    let mut srv = Server::start(model, edge, &["--rate", "0"]);
    let mut s1 = srv.join("s1");
    let mut s2 = srv.join("s2");
    let mut readers: Vec<Client> = ["r1", "r2", "r3"].iter().map(|n| srv.join(n)).collect();
    // Drain the join notices (the later members' joins), so all start from the same point.
    s1.expect("* s2 joined");
    for n in ["r1", "r2", "r3"] {
        s1.expect(&format!("* {n} joined"));
        s2.expect(&format!("* {n} joined"));
    }
    for (i, r) in readers.iter_mut().enumerate() {
        for n in ["r1", "r2", "r3"].iter().skip(i + 1) {
            r.expect(&format!("* {n} joined"));
        }
    }
    const N: usize = 300;
    let mut w1 = s1.stream().try_clone().unwrap();
    let mut w2 = s2.stream().try_clone().unwrap();
    let t1 = std::thread::spawn(move || {
        for i in 0..N {
            w1.write_all(format!("a{i}\n").as_bytes()).unwrap();
        }
    });
    let t2 = std::thread::spawn(move || {
        for i in 0..N {
            w2.write_all(format!("b{i}\n").as_bytes()).unwrap();
        }
    });
    t1.join().unwrap();
    t2.join().unwrap();
    let seqs: Vec<Vec<String>> = readers
        .iter_mut()
        .map(|r| (0..2 * N).map(|_| r.line()).collect())
        .collect();
    assert_eq!(seqs[0], seqs[1]);
    assert_eq!(seqs[0], seqs[2]);
    // Each sender's lines in its own order; each sender sees only the other, in room order.
    let from = |p: &str| -> Vec<String> {
        seqs[0]
            .iter()
            .filter(|l| l.starts_with(p))
            .cloned()
            .collect()
    };
    assert_eq!(
        from("s1: "),
        (0..N).map(|i| format!("s1: a{i}")).collect::<Vec<_>>()
    );
    let got2: Vec<String> = (0..N).map(|_| s1.line()).collect();
    assert_eq!(got2, from("s2: "));
    let got1: Vec<String> = (0..N).map(|_| s2.line()).collect();
    assert_eq!(got1, from("s1: "));
    assert!(srv.stop().success());
}

/// Bad input gets a `! ` line and the member stays; the member over --max-members is closed.
fn limits(model: Model, edge: bool) {
    let mut srv = Server::start(
        model,
        edge,
        &[
            "--max-line",
            "16",
            "--rate",
            "1",
            "--burst",
            "3",
            "--max-members",
            "2",
        ],
    );
    let mut a = srv.join("alice");
    let mut b = model.concurrent().then(|| srv.join("bob"));
    if b.is_some() {
        a.expect("* bob joined");
    }
    // A burst of 6 at once: the bucket holds 3, the rest are refused (1 token a second). The
    // name took a token too (every line counts): let the bucket fill first.
    std::thread::sleep(Duration::from_millis(3100));
    let burst: String = (0..6).map(|i| format!("m{i}\n")).collect();
    a.send_raw(burst.as_bytes());
    // Said once; the other two are dropped in silence (no reply per line refused).
    a.expect("! too fast (at most 1 lines a second), line dropped");
    if let Some(b) = b.as_mut() {
        for i in 0..3 {
            b.expect(&format!("alice: m{i}"));
        }
    }
    // Every line counts against the bucket: let it refill for the three below.
    std::thread::sleep(Duration::from_millis(3100));
    a.send(&"x".repeat(17));
    a.expect("! line too long (at most 16 bytes), dropped");
    // Far longer than a line may be, arriving before its newline: still one error.
    a.send_raw(&vec![b'y'; 5000]);
    a.send_raw(b"\n");
    a.expect("! line too long (at most 16 bytes), dropped");
    a.send_raw(b"\xff\xfe ok\n");
    a.expect("! invalid UTF-8, line dropped");
    // The member stayed: once the bucket refills, lines go through again.
    std::thread::sleep(Duration::from_millis(1100));
    a.send("/who");
    if model.concurrent() {
        a.expect("* online (2): alice, bob");
        // Over --max-members.
        let mut c = srv.connect();
        c.expect_greeting();
        c.send("carol");
        c.expect("! room is full");
        c.expect_closed();
    } else {
        a.expect("* online (1): alice");
    }
    assert!(srv.stop().success());
}

/// A member that stops reading is evicted once its queue is full; the others get everything.
fn slow_reader(model: Model, edge: bool) {
    if !model.concurrent() {
        return;
    }
    let mut srv = Server::start(model, edge, &["--rate", "0", "--max-line", "2000"]);
    let slow = srv.join("slow");
    let mut sender = srv.join("sender");
    let mut reader = srv.join("reader");
    sender.expect("* reader joined");
    let pad = "p".repeat(1000);
    // Paced by the reader (batches in lock-step) so only `slow` falls behind; 20 MB is more
    // than its kernel buffers, high water and hub queue hold together.
    let (batches, per) = (200, 100);
    let mut left = false;
    for b in 0..batches {
        let burst: String = (b * per..(b + 1) * per)
            .map(|i| format!("{i} {pad}\n"))
            .collect();
        sender.send_raw(burst.as_bytes());
        let mut i = b * per;
        while i < (b + 1) * per {
            let l = reader.line();
            if l == "* slow left" {
                left = true;
                continue;
            }
            assert_eq!(l, format!("sender: {i} {pad}"));
            i += 1;
        }
    }
    if !left {
        reader.expect("* slow left");
    }
    drop(slow);
    assert!(srv.stop().success());
}

fn announcements(model: Model, edge: bool) {
    let mut srv = Server::start(model, edge, &[]);
    if !model.concurrent() {
        // The admin connection waits its turn like any other: with nobody connected it is
        // served at once (and heard by nobody).
        let out = srv.announce("nobody hears this");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut a = srv.join("alice");
        a.send("/who");
        a.expect("* online (1): alice");
        drop(a);
        assert!(srv.stop().success());
        assert!(!srv.admin.exists(), "the admin socket is removed at exit");
        return;
    }
    let mut a = srv.join("alice");
    let out = srv.announce("tea at five");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    a.expect("* admin: tea at five");
    // The operator's text follows the room's control rule too: refused in words, heard by
    // nobody (the next line alice reads is the next announcement).
    let out = srv.announce("\u{1b}]0;owned\u{7}hi");
    assert!(!out.status.success());
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("control character U+001B"), "{said}");
    assert!(srv.announce("after").status.success());
    a.expect("* admin: after");
    if model.concurrent() {
        let mut b = srv.join("bob");
        a.expect("* bob joined");
        a.send("m1");
        b.expect("alice: m1");
        assert!(srv.announce("between").status.success());
        b.expect("* admin: between");
        a.send("m2");
        b.expect("alice: m2");
        a.expect("* admin: between");
    }
    assert!(srv.stop().success());
    assert!(!srv.admin.exists(), "the admin socket is removed at exit");
    // Nobody listens now: a clear error and a non-zero exit.
    let out = srv.announce("anyone?");
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no chat server listens on"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn shutdown(model: Model, edge: bool) {
    let mut srv = Server::start(model, edge, &[]);
    let mut a = srv.join("alice");
    let mut b = model.concurrent().then(|| srv.join("bob"));
    if b.is_some() {
        a.expect("* bob joined");
    }
    assert!(srv.stop().success());
    a.expect("* server shutting down");
    a.expect_closed();
    if let Some(b) = b.as_mut() {
        b.expect("* server shutting down");
        b.expect_closed();
    }
}

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

/// A connection that never chooses a name is closed after `--name-timeout` (a `! ` line says
/// why) while members, who never time out, stay; on the web face a connection that sends no
/// request, half a request head, or (over TLS) half a handshake is closed after
/// `--head-timeout`. Under `iterative` this is what frees the server from a silent client.
fn timeouts(model: Model, edge: bool) {
    let args = [
        "--web",
        "127.0.0.1:0",
        "--name-timeout",
        "1",
        "--head-timeout",
        "1",
    ];
    let mut srv = Server::start(model, edge, &args);
    let mut member = model.concurrent().then(|| srv.join("ann"));
    let mut silent = srv.connect();
    silent.expect_greeting();
    let t = Instant::now();
    silent.expect("! no name chosen within 1 s, closing");
    silent.expect_closed();
    assert!(t.elapsed() < Duration::from_secs(8), "{:?}", t.elapsed());
    if let Some(m) = &mut member {
        m.send("/who");
        m.expect("* online (1): ann");
        m.send("/quit");
        m.expect("* bye");
    }
    let web = srv.web.unwrap();
    let raw = |head: &[u8]| {
        let mut c = TcpStream::connect_timeout(&web, Duration::from_secs(5)).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        c.write_all(head).unwrap();
        let mut got = Vec::new();
        c.read_to_end(&mut got)
            .expect("the web face closes a stalled connection");
        String::from_utf8_lossy(&got).into_owned()
    };
    assert_eq!(raw(b""), "", "[{model}] no request: closed, nothing said");
    let half = raw(b"GET / HTTP/1.1\r\nHost: x\r\n");
    assert!(
        half.starts_with("HTTP/1.1 408 Request Timeout\r\n"),
        "[{model}] {half:?}"
    );
    // A page answered, then the kept-alive connection goes quiet: closed after the page.
    let page = raw(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(
        page.starts_with("HTTP/1.1 200 OK\r\n"),
        "[{model}] {:.80?}",
        page
    );
    assert!(
        page.ends_with("</html>\n"),
        "[{model}] the page, then the close"
    );
    // The room still serves.
    let mut b = srv.join("bob");
    b.send("/who");
    b.expect("* online (1): bob");
    assert!(srv.stop().success());

    // Over TLS: a handshake that stalls after 9 bytes is closed by the same timer.
    let mut srv = Server::start(model, edge, &[&args[..], &["--tls-self-signed"]].concat());
    let web = srv.web.unwrap();
    let mut c = TcpStream::connect_timeout(&web, Duration::from_secs(5)).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    c.write_all(&[0x16, 0x03, 0x01, 0x00, 0x80, 0x01, 0x00, 0x00, 0x7c])
        .unwrap();
    let mut got = Vec::new();
    c.read_to_end(&mut got).expect("closed by the head timeout");
    assert!(got.is_empty() || got[0] == 0x15, "[{model}] {got:?}");
    let mut b = srv.join("bob");
    b.send("/who");
    b.expect("* online (1): bob");
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

/// `iterative`: one member at a time; the next is served when the first leaves.
#[test]
fn iterative_one_at_a_time() {
    let mut srv = Server::start(Model::Iterative, false, &[]);
    let mut a = srv.join("alice");
    let mut b = srv.connect();
    b.expect_silence(Duration::from_millis(300));
    a.send("/quit");
    a.expect("* bye");
    b.expect_greeting();
    b.send("bob");
    b.expect("* you are bob; online: bob");
    assert!(srv.stop().success());
}

/// `threadpool`: members that are quiet hold no worker (they wait in the shared poller), so a
/// room of more members than `--workers` works; the workers bound how many are *processed* at
/// once.
#[test]
fn threadpool_serves_more_members_than_workers() {
    let mut srv = Server::start(Model::ThreadPool, false, &["--workers", "2"]);
    let mut a = srv.join("alice");
    let mut b = srv.join("bob");
    a.expect("* bob joined");
    let mut c = srv.join("carol");
    a.expect("* carol joined");
    b.expect("* carol joined");
    let mut d = srv.join("dave");
    for m in [&mut a, &mut b, &mut c] {
        m.expect("* dave joined");
    }
    d.send("hello from the fourth member");
    for m in [&mut a, &mut b, &mut c] {
        m.expect("dave: hello from the fourth member");
    }
    a.send("/quit");
    a.expect("* bye");
    for m in [&mut b, &mut c, &mut d] {
        m.expect("* alice left");
    }
    assert!(srv.stop().success());
}

bingfa_testkit::for_each_model! {
    #[test] fn names() { super::names(M, E) }
    #[test] fn messages() { super::messages(M, E) }
    #[test] fn one_order() { super::one_order(M, E) }
    #[test] fn limits() { super::limits(M, E) }
    #[test] fn slow_reader() { super::slow_reader(M, E) }
    #[test] fn announcements() { super::announcements(M, E) }
    #[test] fn shutdown() { super::shutdown(M, E) }
    #[test] fn web_member() { super::web_member(M, E) }
    #[test] fn timeouts() { super::timeouts(M, E) }
    #[test] fn tls_line() { super::tls_line(M, E) }
}
