//! One suite, every model: small test protocols that exercise each part of the Session contract
//! (echo, hub broadcast, a passive/active data channel streaming a file, the connection limit,
//! the idle timeout, graceful shutdown), run under all nine models plus edge-triggered epoll.
//!
//! Each server runs in its own process: this test binary re-executes itself with
//! `BINGFA_NET_TEST_SERVER` set, running only `server_main`, which serves until SIGTERM. So
//! `fork` and `prefork` never fork the multi-threaded test harness, and the shutdown test can
//! send a real signal and check the exit status.

#[path = "models/relay.rs"]
mod relay;

use bingfa_net::{
    ChannelEvent, ChannelId, Config, ConnInfo, Context, Message, Model, Protocol, Session,
};
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

// ---------------------------------------------------------------------------------------------
// Test protocols
// ---------------------------------------------------------------------------------------------

/// Echo, line by line; also says goodbye on idle and is the refusal/shutdown subject.
struct Echo;
/// `listener` is which of the server's listeners accepted it (1 = the extra "web" one).
struct EchoSession {
    listener: usize,
    paused: bool,
    /// The peer's credentials, on the Unix-domain listener.
    cred: Option<bingfa_net::PeerCred>,
}

impl Session for EchoSession {
    fn on_open(&mut self, cx: &mut Context) {
        match (self.listener, self.cred) {
            (0, _) => {}
            (n, None) => cx.write(format!("listener {n}\n").as_bytes()),
            (n, Some(c)) => {
                cx.write(format!("listener {n} pid {} uid {}\n", c.pid, c.uid).as_bytes())
            }
        }
    }
    fn on_data(&mut self, input: &[u8], cx: &mut Context) -> usize {
        match input.iter().position(|&b| b == b'\n') {
            Some(i) => {
                if &input[..i] == b"PANIC" {
                    panic!("test panic: a buggy session");
                }
                if &input[..i] == b"CLOSE" {
                    // A big last reply, so it is still in flight when the session closes.
                    cx.write_vec([vec![b'r'; 512 * 1024], b"\nclosing\n".to_vec()].concat());
                    cx.close();
                    return i + 1;
                }
                if let Some(ms) = input[..i].strip_prefix(b"PAUSE ") {
                    // Stop taking input for a while; what follows waits in the kernel.
                    let ms: u64 = String::from_utf8_lossy(ms).parse().unwrap_or(0);
                    self.paused = true;
                    cx.pause_input(true);
                    cx.set_timer(Duration::from_millis(ms));
                    return i + 1;
                }
                if let Some(ms) = input[..i].strip_prefix(b"TIMER ") {
                    let ms: u64 = String::from_utf8_lossy(ms).parse().unwrap_or(0);
                    cx.set_timer(Duration::from_millis(ms));
                } else {
                    cx.write(&input[..=i]);
                }
                i + 1
            }
            None => 0,
        }
    }
    fn on_timer(&mut self, cx: &mut Context) {
        if std::mem::take(&mut self.paused) {
            cx.write(b"resumed\n");
            cx.pause_input(false);
        } else {
            cx.write(b"tick\n");
        }
    }
    fn on_idle(&mut self, cx: &mut Context) {
        cx.write(b"bye idle\n");
    }
    fn on_shutdown(&mut self, cx: &mut Context) {
        cx.write(b"bye shutdown\n");
        cx.close();
    }
}

impl Protocol for Echo {
    type Session = EchoSession;
    fn new_session(&self, _: &ConnInfo) -> EchoSession {
        EchoSession {
            listener: 0,
            paused: false,
            cred: None,
        }
    }
    fn new_session_on(&self, listener: usize, info: &ConnInfo) -> EchoSession {
        EchoSession {
            listener,
            paused: false,
            cred: info.cred,
        }
    }
    fn refusal(&self) -> Option<Vec<u8>> {
        Some(b"busy\n".to_vec())
    }
    fn refusal_on(&self, listener: usize) -> Option<Vec<u8>> {
        match listener {
            1 => Some(b"busy (web)\n".to_vec()),
            _ => self.refusal(),
        }
    }
}

/// Every line a client sends goes to every other client, through the hub.
struct Chat;
struct ChatSession;

impl Session for ChatSession {
    fn on_open(&mut self, cx: &mut Context) {
        // Subscribe first: actions run in order, so the client seeing "welcome" means it is in.
        cx.subscribe("room");
        // The pid is in the id's high bits: the test can tell which process serves whom.
        cx.write(format!("welcome {}\n", cx.info().id >> 32).as_bytes());
    }
    fn on_data(&mut self, input: &[u8], cx: &mut Context) -> usize {
        match input.iter().position(|&b| b == b'\n') {
            Some(i) => {
                if &input[..i] == b"WATCH" {
                    // An observer of evictions only (it does not want the room's traffic).
                    cx.subscribe("evictions");
                    cx.unsubscribe("room");
                    cx.write(b"watching\n");
                } else {
                    cx.publish("room", &input[..=i]);
                }
                i + 1
            }
            None => 0,
        }
    }
    fn on_message(&mut self, msg: &Message, cx: &mut Context) {
        if msg.from != cx.info().id {
            cx.write(&msg.body);
        }
    }
    fn on_overflow(&mut self, cx: &mut Context) {
        cx.publish("evictions", b"evicted\n");
        cx.write(b"! too slow, disconnected\n");
    }
    fn on_shutdown(&mut self, cx: &mut Context) {
        cx.write(b"bye shutdown\n");
        cx.close();
    }
}

impl Protocol for Chat {
    type Session = ChatSession;
    fn new_session(&self, _: &ConnInfo) -> ChatSession {
        ChatSession
    }
}

/// The FTP data-connection shape: `PASV` opens a passive listener and streams the file to
/// whoever connects; `PORT n` connects to 127.0.0.1:n and streams it there. Then `226`.
struct Files {
    file: Arc<File>,
    len: u64,
}
struct FilesSession {
    file: Arc<File>,
    len: u64,
    /// Set while a `STOR` upload runs: bytes received and a running checksum.
    upload: Option<(u64, u64)>,
    sending: bool,
    /// The last channel opened, for `ABOR`.
    last: Option<ChannelId>,
    aborting: bool,
}

impl Session for FilesSession {
    fn on_data(&mut self, input: &[u8], cx: &mut Context) -> usize {
        let Some(i) = input.iter().position(|&b| b == b'\n') else {
            return 0;
        };
        let line = String::from_utf8_lossy(&input[..i]).trim().to_string();
        if line == "PASV" {
            self.last = Some(cx.listen());
        } else if line == "ABOR" {
            if let Some(id) = self.last.take() {
                self.aborting = true;
                cx.channel_abort(id);
            }
        } else if line == "STOR" {
            self.upload = Some((0, 0));
            cx.listen();
        } else if let Some(port) = line.strip_prefix("PORT ") {
            let port: u16 = port.parse().unwrap_or(0);
            cx.connect(SocketAddr::from(([127, 0, 0, 1], port)));
        } else {
            cx.write(b"500 what\n");
        }
        i + 1
    }
    fn on_channel(&mut self, id: ChannelId, ev: ChannelEvent<'_>, cx: &mut Context) {
        match ev {
            ChannelEvent::Listening(addr) => cx.write(format!("227 {}\n", addr.port()).as_bytes()),
            ChannelEvent::Connected(_) if self.upload.is_some() => {}
            ChannelEvent::Data(bytes) => {
                let (n, sum) = self.upload.as_mut().expect("upload running");
                *n += bytes.len() as u64;
                *sum = bytes
                    .iter()
                    .fold(*sum, |s, &b| s.wrapping_mul(31).wrapping_add(b as u64));
            }
            ChannelEvent::Eof => {
                let (n, sum) = self.upload.take().expect("upload running");
                cx.write(format!("226 got {n} {sum}\n").as_bytes());
                cx.channel_close(id);
            }
            ChannelEvent::Closed if self.aborting => {
                self.aborting = false;
                self.sending = false;
                cx.write(b"226 aborted\n");
            }
            ChannelEvent::Closed if self.sending => {
                self.sending = false;
                cx.write(b"226 done\n");
            }
            ChannelEvent::Connected(_) => {
                self.sending = true;
                cx.channel_write(id, b"BEGIN\n");
                cx.channel_send_file(id, self.file.clone(), 0, self.len);
                cx.channel_close(id);
            }
            ChannelEvent::Error(k) => cx.write(format!("425 {k:?}\n").as_bytes()),
            _ => {}
        }
    }
}

impl Protocol for Files {
    type Session = FilesSession;
    fn new_session(&self, _: &ConnInfo) -> FilesSession {
        FilesSession {
            upload: None,
            sending: false,
            last: None,
            aborting: false,
            file: self.file.clone(),
            len: self.len,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The server process
// ---------------------------------------------------------------------------------------------

const SPEC_VAR: &str = "BINGFA_NET_TEST_SERVER";

#[derive(Clone, Debug)]
struct Spec {
    model: Model,
    edge: bool,
    proto: &'static str,
    idle_ms: u64,
    max: usize,
    workers: usize,
    file: String,
    /// A small high-water mark, so the slow-receiver test overflows sooner.
    tight: bool,
    /// A second listener, announced as "web".
    web: bool,
    /// `max_per_ip` (0 = none).
    per_ip: usize,
    /// Publish each line of the server's stdin through an `Injector`.
    inject: bool,
    /// A Unix-domain listener, announced as "admin" ("" = none).
    unix: String,
}

impl Spec {
    fn new(model: Model, edge: bool, proto: &'static str) -> Self {
        // A thread pool serves `workers` connections at once (the rest wait): give it room for
        // the scenarios' concurrent clients.
        let workers = if model == Model::ThreadPool { 6 } else { 2 };
        Spec {
            model,
            edge,
            proto,
            idle_ms: 0,
            max: 1000,
            workers,
            file: String::new(),
            tight: false,
            web: false,
            per_ip: 0,
            inject: false,
            unix: String::new(),
        }
    }
    fn encode(&self) -> String {
        format!(
            "{};{};{};{};{};{};{};{};{};{};{};{}",
            self.model,
            self.edge,
            self.proto,
            self.idle_ms,
            self.max,
            self.workers,
            self.file,
            self.tight,
            self.web,
            self.per_ip,
            self.inject,
            self.unix
        )
    }
}

/// Runs only in the re-executed child (`SPEC_VAR` set): serve until SIGTERM.
#[test]
fn server_main() {
    let Ok(spec) = std::env::var(SPEC_VAR) else {
        return;
    };
    // The echo test makes a session panic on purpose; keep that one out of the output.
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if !info.to_string().contains("test panic") {
            default_hook(info);
        }
    }));
    let f: Vec<&str> = spec.split(';').collect();
    let mut config = Config::new(f[2], "127.0.0.1:0".parse().unwrap());
    config.model = f[0].parse().unwrap();
    config.edge_triggered = f[1] == "true";
    let idle: u64 = f[3].parse().unwrap();
    config.limits.idle_timeout = (idle > 0).then(|| Duration::from_millis(idle));
    config.limits.max_connections = f[4].parse().unwrap();
    config.workers = f[5].parse().unwrap();
    config.limits.shutdown_grace = Duration::from_secs(2);
    let per_ip: usize = f[9].parse().unwrap();
    config.limits.max_per_ip = (per_ip > 0).then_some(per_ip);
    if f[8] == "true" {
        config
            .also
            .push(("web".into(), "127.0.0.1:0".parse().unwrap()));
    }
    if f[7] == "true" {
        config.limits.high_water = 16 * 1024;
    }
    if !f[11].is_empty() {
        config.unix.push(("admin".into(), f[11].into()));
    }
    let inject = f[10] == "true";
    let r = match f[2] {
        "echo" => bingfa_net::serve(config, Echo),
        "chat" if inject => {
            let server = bingfa_net::Server::bind(config, Chat).unwrap();
            let injector = server.injector();
            // Outside any session: each stdin line is published on the room.
            std::thread::spawn(move || {
                for line in std::io::stdin().lines() {
                    let Ok(line) = line else { break };
                    injector
                        .publish("room", format!("{line}\n").as_bytes())
                        .unwrap();
                }
            });
            server.run()
        }
        "chat" => bingfa_net::serve(config, Chat),
        "chans" => {
            let (lo, hi) = f[6].split_once('-').unwrap();
            let ports = lo.parse().unwrap()..=hi.parse().unwrap();
            bingfa_net::serve(config, channels::Chans { ports })
        }
        "files" => {
            let file = File::open(f[6]).unwrap();
            let len = file.metadata().unwrap().len();
            bingfa_net::serve(
                config,
                Files {
                    file: Arc::new(file),
                    len,
                },
            )
        }
        p => panic!("unknown protocol {p}"),
    };
    r.unwrap();
}

/// A server child process; killed (and waited for) on drop whatever happens.
struct TestServer {
    child: Child,
    addr: SocketAddr,
    /// The second listener, when the spec asked for one.
    web: Option<SocketAddr>,
    /// The server's stdin (what an `inject` server publishes).
    stdin: Option<std::process::ChildStdin>,
}

impl TestServer {
    fn start(spec: &Spec) -> TestServer {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "server_main",
                "--nocapture",
                "-q",
                "--test-threads=1",
            ])
            .env(SPEC_VAR, spec.encode())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn server");
        let stdout = child.stdout.take().unwrap();
        let stdin = child.stdin.take();
        let (tx, rx) = std::sync::mpsc::channel();
        let needles = [
            format!("{} listening on ", spec.proto),
            "web listening on ".to_string(),
            "admin listening on ".to_string(),
        ];
        std::thread::spawn(move || {
            // Keep draining so the server never blocks on a full pipe.
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                for (k, needle) in needles.iter().enumerate() {
                    if let Some(pos) = line.find(needle.as_str()) {
                        let _ = tx.send((k, line[pos + needle.len()..].trim().to_string()));
                    }
                }
            }
        });
        let mut server = TestServer {
            child,
            addr: "0.0.0.0:0".parse().unwrap(),
            web: None,
            stdin,
        };
        for _ in 0..1 + spec.web as usize + !spec.unix.is_empty() as usize {
            let (k, addr) = rx
                .recv_timeout(Duration::from_secs(20))
                .expect("server did not announce itself");
            if k == 2 {
                assert_eq!(addr, spec.unix, "the admin socket's path is announced");
                continue;
            }
            let addr = addr.parse().expect("address in the ready line");
            if k == 0 {
                server.addr = addr;
            } else {
                server.web = Some(addr);
            }
        }
        server
    }

    fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    fn connect(&self) -> Client {
        Client::connect(self.addr)
    }

    /// SIGTERM, then wait (bounded) for the exit status.
    fn stop(&mut self) -> ExitStatus {
        // SAFETY: signalling our own child process.
        unsafe { libc::kill(self.pid(), libc::SIGTERM) };
        self.wait(Duration::from_secs(10))
            .expect("server did not exit after SIGTERM")
    }

    fn wait(&mut self, limit: Duration) -> Option<ExitStatus> {
        let end = Instant::now() + limit;
        while Instant::now() < end {
            if let Some(st) = self.child.try_wait().unwrap() {
                return Some(st);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            // SAFETY: signalling our own child process.
            unsafe { libc::kill(self.pid(), libc::SIGTERM) };
            if self.wait(Duration::from_secs(5)).is_none() {
                let _ = self.child.kill();
                let _ = self.child.wait();
            }
        }
    }
}

/// Children of `pid` as (pid, state letter), from /proc.
fn children_of(pid: i32) -> Vec<(i32, char)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(p) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{p}/stat")) else {
            continue;
        };
        let Some(rp) = stat.rfind(')') else { continue };
        let rest: Vec<&str> = stat[rp + 2..].split(' ').collect();
        if rest.len() > 1 && rest[1].parse::<i32>() == Ok(pid) {
            out.push((p, rest[0].chars().next().unwrap_or('?')));
        }
    }
    out
}

struct Client {
    r: BufReader<TcpStream>,
    w: TcpStream,
}

impl Client {
    fn connect(addr: SocketAddr) -> Client {
        let s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        Client {
            w: s.try_clone().unwrap(),
            r: BufReader::new(s),
        }
    }
    fn send(&mut self, line: &str) {
        self.w.write_all(line.as_bytes()).unwrap();
        self.w.write_all(b"\n").unwrap();
    }
    /// The next line, without its newline; "" at EOF.
    fn line(&mut self) -> String {
        let mut s = String::new();
        self.r.read_line(&mut s).expect("read (timed out?)");
        s.trim_end_matches('\n').to_string()
    }
    fn expect(&mut self, want: &str) {
        assert_eq!(self.line(), want);
    }
    /// The server closed the connection (EOF or reset), within the read timeout.
    fn expect_closed(&mut self) {
        let mut buf = Vec::new();
        match self.r.read_to_end(&mut buf) {
            Ok(_) => assert!(
                buf.is_empty(),
                "unexpected bytes before close: {:?}",
                String::from_utf8_lossy(&buf)
            ),
            Err(e) => assert!(
                matches!(e.kind(), std::io::ErrorKind::ConnectionReset),
                "expected close, got {e}"
            ),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The scenarios, each written once
// ---------------------------------------------------------------------------------------------

fn echo(model: Model, edge: bool) {
    let mut srv = TestServer::start(&Spec::new(model, edge, "echo"));
    for round in 0..2 {
        let mut c = srv.connect();
        for i in 0..50 {
            c.send(&format!("hello {round} {i}"));
            c.expect(&format!("hello {round} {i}"));
        }
        // Pipelined: many lines in one write come back in order.
        let batch: String = (0..200).map(|i| format!("p{i}\n")).collect();
        c.w.write_all(batch.as_bytes()).unwrap();
        for i in 0..200 {
            c.expect(&format!("p{i}"));
        }
    }
    // Session timers.
    let mut c = srv.connect();
    c.send("TIMER 100");
    c.send("after");
    c.expect("after");
    c.expect("tick");
    // Paused input waits (in the same write as the pause) until the session resumes it.
    c.w.write_all(b"PAUSE 150\nwaited\n").unwrap();
    c.expect("resumed");
    c.expect("waited");
    // Input that never completes a line is bounded: past max_input the connection is closed.
    let _ = c.w.write_all(&vec![b'z'; 200 * 1024]);
    c.expect_closed();
    drop(c);
    // Closing with unread input still delivers the last reply (lingering close: FIN, not RST).
    for _ in 0..5 {
        let mut c = srv.connect();
        let mut burst = b"CLOSE\n".to_vec();
        burst.resize(burst.len() + 64 * 1024, b'j');
        let _ = c.w.write_all(&burst);
        assert_eq!(c.line().len(), 512 * 1024, "the whole last reply arrives");
        c.expect("closing");
        c.expect_closed();
    }
    // A session that panics loses its connection; the server goes on.
    let mut p = srv.connect();
    p.send("PANIC");
    p.expect_closed();
    drop(p);
    if model.concurrent() {
        let mut a = srv.connect();
        let mut b = srv.connect();
        a.send("a");
        b.send("b");
        b.expect("b");
        a.expect("a");
    }
    assert!(srv.stop().success());
}

fn broadcast(model: Model, edge: bool) {
    if !model.concurrent() {
        // One client at a time: there is never an "other" client to broadcast to. The session
        // still works alone (publishing with no other subscriber).
        let mut srv = TestServer::start(&Spec::new(model, edge, "chat"));
        let mut c = srv.connect();
        assert!(c.line().starts_with("welcome "));
        c.send("alone");
        drop(c);
        assert!(srv.stop().success());
        return;
    }
    let mut spec = Spec::new(model, edge, "chat");
    spec.workers = spec.workers.max(3);
    let mut srv = TestServer::start(&spec);
    let mut clients: Vec<Client> = (0..4).map(|_| srv.connect()).collect();
    let mut pids = std::collections::HashSet::new();
    for c in &mut clients {
        let l = c.line();
        pids.insert(
            l.strip_prefix("welcome ")
                .expect("welcome line")
                .to_string(),
        );
    }
    if model == Model::Fork {
        assert_eq!(pids.len(), 4, "fork: each client has its own process");
    }
    eprintln!(
        "{model}: 4 chat clients served by {} process(es)",
        pids.len()
    );
    // Two senders interleave; every other client sees each sender's lines in order.
    let n = 100;
    for i in 0..n {
        clients[0].send(&format!("A{i}"));
        clients[1].send(&format!("B{i}"));
    }
    for (k, c) in clients.iter_mut().enumerate() {
        let (mut na, mut nb) = (0, 0);
        let expect_a = if k == 0 { 0 } else { n };
        let expect_b = if k == 1 { 0 } else { n };
        while na < expect_a || nb < expect_b {
            let l = c.line();
            assert!(
                !l.is_empty(),
                "client {k}: connection closed early ({na} A, {nb} B)"
            );
            if let Some(x) = l.strip_prefix('A') {
                assert_eq!(
                    x.parse::<usize>().unwrap(),
                    na,
                    "client {k}: A out of order"
                );
                na += 1;
            } else if let Some(x) = l.strip_prefix('B') {
                assert_eq!(
                    x.parse::<usize>().unwrap(),
                    nb,
                    "client {k}: B out of order"
                );
                nb += 1;
            } else {
                panic!("client {k}: unexpected line {l:?}");
            }
        }
    }
    drop(clients);
    assert!(srv.stop().success());
}

/// A client that never reads must not stall the others: it is disconnected when its bounded
/// queue overflows, while a reading client gets every message, in order.
fn slow_receiver(model: Model, edge: bool) {
    if !model.concurrent() {
        return; // one client at a time: nobody to be slow towards
    }
    let mut spec = Spec::new(model, edge, "chat");
    spec.tight = true;
    spec.workers = spec.workers.max(3);
    let mut srv = TestServer::start(&spec);
    let mut slow = srv.connect();
    let mut fast = srv.connect();
    let mut sender = srv.connect();
    for c in [&mut slow, &mut fast, &mut sender] {
        assert!(c.line().starts_with("welcome "));
    }
    slow.r
        .get_ref()
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    // The sender is paced by the fast reader (batches in lock-step), so only `slow` falls
    // behind; it must be cut off once its kernel buffers and its bounded queues are full.
    let (batches, per) = (120, 100);
    let n = batches * per;
    let pad = "x".repeat(1000);
    let mut next = 0;
    for _ in 0..batches {
        let burst: String = (next..next + per)
            .map(|i| format!("M{i} {pad}\n"))
            .collect();
        sender.w.write_all(burst.as_bytes()).unwrap();
        for i in next..next + per {
            let l = fast.line();
            assert!(
                l.starts_with(&format!("M{i} ")),
                "fast client: expected M{i}, got {:?}",
                &l[..l.len().min(20)]
            );
        }
        next += per;
    }
    // The slow client was cut off: it finds its connection closed after what it was sent.
    let mut sink = Vec::new();
    let r = slow.r.read_to_end(&mut sink);
    assert!(r.is_ok() || r.unwrap_err().kind() == std::io::ErrorKind::ConnectionReset);
    assert!(
        sink.len() < n * 1000,
        "the slow client cannot have been sent everything"
    );
    drop((slow, fast, sender));
    assert!(srv.stop().success());
}

fn data_channel(model: Model, edge: bool) {
    let path = std::env::temp_dir().join(format!(
        "bingfa-net-test-{}-{}-{}",
        std::process::id(),
        model,
        edge
    ));
    let content: Vec<u8> = (0..3 * 1024 * 1024 + 17)
        .map(|i: u32| (i.wrapping_mul(2654435761) >> 24) as u8)
        .collect();
    std::fs::write(&path, &content).unwrap();
    let mut spec = Spec::new(model, edge, "files");
    spec.file = path.to_string_lossy().into_owned();
    let mut srv = TestServer::start(&spec);
    let mut c = srv.connect();
    let check = |mut data: TcpStream| {
        data.set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut got = Vec::new();
        data.read_to_end(&mut got).unwrap();
        assert!(
            got.starts_with(b"BEGIN\n"),
            "channel output starts with its bytes"
        );
        assert!(
            got[6..] == content[..],
            "file arrived intact ({} of {} bytes)",
            got.len() - 6,
            content.len()
        );
    };
    for _ in 0..2 {
        // Passive: the session opens a second listening socket and streams to whoever connects.
        c.send("PASV");
        let l = c.line();
        let port: u16 = l.strip_prefix("227 ").expect("227 reply").parse().unwrap();
        check(TcpStream::connect(("127.0.0.1", port)).unwrap());
        c.expect("226 done");
        // Active: the session connects to us.
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        c.send(&format!("PORT {}", listener.local_addr().unwrap().port()));
        listener.set_nonblocking(false).unwrap();
        let (s, _) = accept_timeout(&listener, Duration::from_secs(10));
        check(s);
        c.expect("226 done");
        // Upload: the session receives the channel's bytes and learns of EOF.
        c.send("STOR");
        let port: u16 = c
            .line()
            .strip_prefix("227 ")
            .expect("227 reply")
            .parse()
            .unwrap();
        let mut up = TcpStream::connect(("127.0.0.1", port)).unwrap();
        up.write_all(&content).unwrap();
        up.shutdown(std::net::Shutdown::Write).unwrap();
        let sum = content
            .iter()
            .fold(0u64, |s, &b| s.wrapping_mul(31).wrapping_add(b as u64));
        c.expect(&format!("226 got {} {sum}", content.len()));
    }
    // ABOR: a passive listener dropped before anyone connected.
    c.send("PASV");
    let port: u16 = c
        .line()
        .strip_prefix("227 ")
        .expect("227 reply")
        .parse()
        .unwrap();
    c.send("ABOR");
    c.expect("226 aborted");
    assert!(
        TcpStream::connect(("127.0.0.1", port)).is_err(),
        "the aborted listener is closed"
    );
    // An active connection that cannot be made is reported, and the session goes on.
    let closed_port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    c.send(&format!("PORT {closed_port}"));
    c.expect("425 ConnectionRefused");
    drop(c);
    assert!(srv.stop().success());
    let _ = std::fs::remove_file(&path);
}

fn accept_timeout(l: &TcpListener, limit: Duration) -> (TcpStream, SocketAddr) {
    l.set_nonblocking(true).unwrap();
    let end = Instant::now() + limit;
    loop {
        match l.accept() {
            Ok((s, a)) => {
                s.set_nonblocking(false).unwrap();
                return (s, a);
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock && Instant::now() < end => {
                std::thread::sleep(Duration::from_millis(10))
            }
            Err(e) => panic!("accept: {e}"),
        }
    }
}

fn max_connections(model: Model, edge: bool) {
    let mut spec = Spec::new(model, edge, "echo");
    spec.max = 2;
    let mut srv = TestServer::start(&spec);
    let mut a = srv.connect();
    a.send("a");
    a.expect("a");
    let mut b = srv.connect();
    if model.concurrent() {
        b.send("b");
        b.expect("b");
    } else {
        // Iterative: b waits its turn, but it holds a place; give the loop time to accept it.
        // (generous, for a loaded machine: an idle loop accepts it at once).
        std::thread::sleep(Duration::from_millis(1000));
    }
    let mut c = srv.connect();
    c.expect("busy");
    c.expect_closed();
    // The two admitted clients are unaffected; once one leaves, a newcomer gets in.
    a.send("still");
    a.expect("still");
    drop(a);
    if !model.concurrent() {
        b.send("b");
        b.expect("b");
        // Serving one at a time, a waiting newcomer would wait for `b`: let it go too.
        drop(b);
        b = srv.connect();
        b.w.shutdown(std::net::Shutdown::Both).unwrap();
    }
    // A place was freed when `a` left: a newcomer is admitted. Until the server has noticed,
    // newcomers get "busy" (or a reset, if the refusal raced with our line).
    let start = Instant::now();
    loop {
        let mut d = srv.connect();
        let _ = d.w.write_all(b"d\n");
        let mut l = String::new();
        match d.r.read_line(&mut l) {
            Ok(_) if l == "d\n" => break,
            Ok(_) => assert!(l == "busy\n" || l.is_empty(), "unexpected {l:?}"),
            Err(e) => assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset),
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "a freed place was never reused"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    drop(b);
    assert!(srv.stop().success());
}

/// `max_per_ip`: one address at its limit is refused while another address still gets in.
fn per_ip_limit(model: Model, edge: bool) {
    if !model.concurrent() {
        return; // one at a time: the others wait anyway (max_connections covers refusal)
    }
    let mut spec = Spec::new(model, edge, "echo");
    spec.per_ip = 2;
    let mut srv = TestServer::start(&spec);
    let from = |ip: [u8; 4]| {
        use socket2::{Domain, Socket, Type};
        let s = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
        s.bind(&SocketAddr::from((ip, 0)).into()).unwrap();
        s.connect_timeout(&srv.addr.into(), Duration::from_secs(5))
            .unwrap();
        let s: TcpStream = s.into();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        Client {
            w: s.try_clone().unwrap(),
            r: BufReader::new(s),
        }
    };
    let mut held = Vec::new();
    for i in 0..2 {
        let mut c = from([127, 0, 0, 1]);
        c.send(&format!("one {i}"));
        c.expect(&format!("one {i}"));
        held.push(c);
    }
    let mut third = from([127, 0, 0, 1]);
    third.expect("busy");
    third.expect_closed();
    let mut other = from([127, 0, 0, 2]);
    other.send("two");
    other.expect("two");
    drop((held, other));
    assert!(srv.stop().success());
}

fn idle_timeout(model: Model, edge: bool) {
    let mut spec = Spec::new(model, edge, "echo");
    spec.idle_ms = 300;
    let mut srv = TestServer::start(&spec);
    let mut c = srv.connect();
    c.send("x");
    c.expect("x");
    let t = Instant::now();
    c.expect("bye idle");
    c.expect_closed();
    assert!(
        t.elapsed() >= Duration::from_millis(250),
        "closed too early: {:?}",
        t.elapsed()
    );
    // The server is still fine for the next client.
    let mut d = srv.connect();
    d.send("y");
    d.expect("y");
    drop(d);
    assert!(srv.stop().success());
}

fn shutdown(model: Model, edge: bool) {
    let mut srv = TestServer::start(&Spec::new(model, edge, "echo"));
    let pid = srv.pid();
    let mut clients = Vec::new();
    for i in 0..3 {
        let mut c = srv.connect();
        if model.concurrent() || i == 0 {
            c.send("hi");
            c.expect("hi");
        }
        clients.push(c);
        if !model.concurrent() {
            break;
        }
    }
    if model.multi_process() {
        // Finished connections leave no zombie behind.
        drop(clients.pop());
        let end = Instant::now() + Duration::from_secs(5);
        loop {
            let zombies = children_of(pid).iter().filter(|(_, s)| *s == 'Z').count();
            if zombies == 0 {
                break;
            }
            assert!(Instant::now() < end, "{zombies} zombie children");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    let kids: Vec<i32> = children_of(pid).into_iter().map(|(p, _)| p).collect();
    let t = Instant::now();
    let status = srv.stop();
    assert!(status.success(), "exit status {status:?}");
    assert!(
        t.elapsed() < Duration::from_secs(8),
        "shutdown took {:?} (the grace period is 2 s)",
        t.elapsed()
    );
    // In-flight sessions were told (on_shutdown) and closed after flushing.
    for c in &mut clients {
        c.expect("bye shutdown");
        c.expect_closed();
    }
    for k in kids {
        let stat = std::fs::read_to_string(format!("/proc/{k}/stat")).unwrap_or_default();
        assert!(
            stat.is_empty(),
            "child {k} of the server outlived it: {stat}"
        );
    }
    // Nothing listens any more.
    assert!(TcpStream::connect_timeout(&srv.addr, Duration::from_secs(2)).is_err());
}

/// A child killed outright (SIGKILL) is reaped, its place is freed, and under `prefork` a new
/// worker replaces it: the server keeps serving, with no zombie.
fn child_killed(model: Model, edge: bool) {
    if !model.multi_process() {
        return;
    }
    let mut spec = Spec::new(model, edge, "echo");
    spec.max = 1;
    let mut srv = TestServer::start(&spec);
    let pid = srv.pid();
    let mut c = srv.connect();
    c.send("hi");
    c.expect("hi");
    let before: Vec<i32> = children_of(pid).into_iter().map(|(p, _)| p).collect();
    // Under fork the only child serves `c`; under prefork, kill every worker (one serves `c`).
    for &k in &before {
        // SAFETY: signalling processes this test started.
        unsafe { libc::kill(k, libc::SIGKILL) };
    }
    c.expect_closed();
    let end = Instant::now() + Duration::from_secs(10);
    loop {
        let kids = children_of(pid);
        let zombies = kids.iter().filter(|(_, s)| *s == 'Z').count();
        let fresh = kids
            .iter()
            .filter(|(p, s)| *s != 'Z' && !before.contains(p))
            .count();
        let want = if model == Model::Prefork {
            spec.workers
        } else {
            0
        };
        if zombies == 0 && fresh == want {
            break;
        }
        assert!(
            Instant::now() < end,
            "children now {kids:?} (killed {before:?})"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // The killed connection's place (max = 1) is free again, and the server serves.
    let mut d = srv.connect();
    d.send("again");
    d.expect("again");
    drop(d);
    assert!(srv.stop().success());
}

/// Two listeners with their own service names; the session learns which one it came from.
fn two_listeners(model: Model, edge: bool) {
    let mut spec = Spec::new(model, edge, "echo");
    spec.web = true;
    let mut srv = TestServer::start(&spec);
    let web = srv.web.expect("a web listener was announced");
    assert_ne!(web, srv.addr);
    for _ in 0..2 {
        let mut w = Client::connect(web);
        w.expect("listener 1");
        w.send("via web");
        w.expect("via web");
        drop(w);
        let mut c = srv.connect();
        c.send("via main");
        c.expect("via main");
    }
    assert!(srv.stop().success());
}

/// Publishing from outside any session (`Server::injector`) joins the room's one order: under
/// fork/prefork through the relay, elsewhere through the shared hub.
fn injector(model: Model, edge: bool) {
    let mut spec = Spec::new(model, edge, "chat");
    spec.inject = true;
    let mut srv = TestServer::start(&spec);
    let mut inject = |line: &str| {
        let stdin = srv.stdin.as_mut().unwrap();
        stdin.write_all(format!("{line}\n").as_bytes()).unwrap();
        stdin.flush().unwrap();
    };
    if !model.concurrent() {
        let mut a = Client::connect(srv.addr);
        assert!(a.line().starts_with("welcome "));
        inject("from outside");
        a.expect("from outside");
        drop(a);
        assert!(srv.stop().success());
        return;
    }
    let mut cs: Vec<Client> = (0..3).map(|_| Client::connect(srv.addr)).collect();
    for c in &mut cs {
        assert!(c.line().starts_with("welcome "));
    }
    cs[0].send("a1");
    cs[1].expect("a1");
    inject("announce 1");
    cs[1].expect("announce 1");
    cs[0].send("a2");
    cs[1].expect("a2");
    cs[2].expect("a1");
    cs[2].expect("announce 1");
    cs[2].expect("a2");
    cs[0].expect("announce 1");
    drop(cs);
    assert!(srv.stop().success());
}

/// Each listener's refusal is its own (`Protocol::refusal_on`): chat's line port and web page.
fn refusal_per_listener(model: Model, edge: bool) {
    let mut spec = Spec::new(model, edge, "echo");
    spec.web = true;
    spec.max = 1;
    let mut srv = TestServer::start(&spec);
    let mut c = srv.connect();
    c.send("in");
    c.expect("in");
    let mut w = Client::connect(srv.web.unwrap());
    w.expect("busy (web)");
    w.expect_closed();
    let mut d = srv.connect();
    d.expect("busy");
    d.expect_closed();
    drop(c);
    assert!(srv.stop().success());
}

/// A Unix-domain listener: 0600, the peer's credentials in `ConnInfo`, a stale file replaced,
/// a live one refused, the file removed when the server stops.
fn unix_listener(model: Model, edge: bool) {
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::net::{UnixListener, UnixStream};
    let path = std::env::temp_dir().join(format!(
        "bingfa-net-unix-{}-{model}-{edge}.sock",
        std::process::id()
    ));
    let _ = std::fs::remove_file(&path);
    drop(UnixListener::bind(&path).unwrap()); // a stale socket file: nobody listens
    let mut spec = Spec::new(model, edge, "echo");
    spec.unix = path.to_string_lossy().into_owned();
    let mut srv = TestServer::start(&spec);
    let mode = std::fs::metadata(&path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    for _ in 0..2 {
        let s = UnixStream::connect(&path).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut r = BufReader::new(s.try_clone().unwrap());
        let mut line = String::new();
        r.read_line(&mut line).unwrap();
        // SAFETY: getuid has no preconditions.
        let uid = unsafe { libc::getuid() };
        assert_eq!(
            line,
            format!("listener 1 pid {} uid {uid}\n", std::process::id())
        );
        (&s).write_all(b"over unix\n").unwrap();
        line.clear();
        r.read_line(&mut line).unwrap();
        assert_eq!(line, "over unix\n");
    }
    // TCP still works beside it.
    let mut c = srv.connect();
    c.send("tcp");
    c.expect("tcp");
    // A second server cannot take a live socket's path.
    let mut config = Config::new("echo", "127.0.0.1:0".parse().unwrap());
    config.model = Model::Poll;
    config.unix.push(("admin".into(), path.clone()));
    assert!(matches!(
        bingfa_net::Server::bind(config, Echo),
        Err(bingfa_net::Error::BindUnix { .. })
    ));
    drop(c);
    assert!(srv.stop().success());
    assert!(!path.exists(), "the socket file is removed on exit");
}

/// A subscriber that stops reading is evicted when its inbox overflows, even though its
/// output sits above high water (it never reads again), and is told so where it fits.
fn slow_receiver_evicted(model: Model, edge: bool) {
    if !model.concurrent() {
        return;
    }
    let mut spec = Spec::new(model, edge, "chat");
    spec.tight = true;
    spec.workers = spec.workers.max(3);
    let mut srv = TestServer::start(&spec);
    let mut slow = srv.connect();
    let mut watch = srv.connect();
    let mut sender = srv.connect();
    for c in [&mut slow, &mut watch, &mut sender] {
        assert!(c.line().starts_with("welcome "));
    }
    watch.send("WATCH");
    watch.expect("watching");
    // Publish far more than the slow client's kernel buffers, high water and 1 MiB inbox
    // hold; it reads nothing meanwhile. Stop as soon as the watcher sees the eviction.
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let d2 = done.clone();
    let mut w = sender.w.try_clone().unwrap();
    let flood = std::thread::spawn(move || {
        let line = format!("{}\n", "y".repeat(999));
        for _ in 0..40_000 {
            if d2.load(std::sync::atomic::Ordering::Relaxed)
                || w.write_all(line.as_bytes()).is_err()
            {
                break;
            }
        }
    });
    watch
        .r
        .get_ref()
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    watch.expect("evicted");
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    flood.join().unwrap();
    // The slow client now finds its connection closed after what it was sent.
    let mut sink = Vec::new();
    let r = slow.r.read_to_end(&mut sink);
    assert!(r.is_ok() || r.unwrap_err().kind() == std::io::ErrorKind::ConnectionReset);
    drop((slow, watch, sender));
    assert!(srv.stop().success());
}

/// A `fork`/`prefork` parent killed outright (SIGKILL, no chance to clean up) does not leave
/// its children serving: they get SIGTERM from the kernel and shut down.
fn parent_killed(model: Model, edge: bool) {
    if !model.multi_process() {
        return;
    }
    let mut srv = TestServer::start(&Spec::new(model, edge, "echo"));
    let mut c = srv.connect();
    c.send("hi");
    c.expect("hi");
    let kids: Vec<i32> = children_of(srv.pid()).into_iter().map(|(p, _)| p).collect();
    assert!(!kids.is_empty());
    srv.child.kill().unwrap();
    srv.child.wait().unwrap();
    let end = Instant::now() + Duration::from_secs(10);
    let alive = |k: i32| {
        let stat = std::fs::read_to_string(format!("/proc/{k}/stat")).unwrap_or_default();
        let state = stat.rfind(')').and_then(|i| stat[i + 2..].chars().next());
        !stat.is_empty() && state != Some('Z')
    };
    while kids.iter().any(|&k| alive(k)) && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(20));
    }
    let survivors: Vec<i32> = kids.into_iter().filter(|&k| alive(k)).collect();
    for &k in &survivors {
        // Leave nothing behind even when failing.
        // SAFETY: signalling processes this test started.
        unsafe { libc::kill(k, libc::SIGKILL) };
    }
    assert!(
        survivors.is_empty(),
        "children {survivors:?} outlived their killed parent"
    );
}

#[path = "models/channels.rs"]
mod channels;

macro_rules! every_model {
    ($($name:ident => $model:expr, $edge:expr;)*) => {
        $(
            mod $name {
                use super::*;
                const M: Model = $model;
                const E: bool = $edge;
                #[test] fn echo() { super::echo(M, E) }
                #[test] fn broadcast() { super::broadcast(M, E) }
                #[test] fn slow_receiver() { super::slow_receiver(M, E) }
                #[test] fn data_channel() { super::data_channel(M, E) }
                #[test] fn passive_range() { super::channels::passive_range(M, E) }
                #[test] fn passive_peer_only() { super::channels::passive_peer_only(M, E) }
                #[test] fn channel_pause() { super::channels::channel_pause(M, E) }
                #[test] fn max_connections() { super::max_connections(M, E) }
                #[test] fn idle_timeout() { super::idle_timeout(M, E) }
                #[test] fn shutdown() { super::shutdown(M, E) }
                #[test] fn parent_killed() { super::parent_killed(M, E) }
                #[test] fn two_listeners() { super::two_listeners(M, E) }
                #[test] fn per_ip_limit() { super::per_ip_limit(M, E) }
                #[test] fn child_killed() { super::child_killed(M, E) }
                #[test] fn injector() { super::injector(M, E) }
                #[test] fn refusal_per_listener() { super::refusal_per_listener(M, E) }
                #[test] fn unix_listener() { super::unix_listener(M, E) }
                #[test] fn slow_receiver_evicted() { super::slow_receiver_evicted(M, E) }
                #[test] fn relay_link_lost() { super::relay::relay_link_lost(M, E) }
                #[test] fn link_burst() { super::relay::link_burst(M, E) }
            }
        )*
        /// The list above covers `Model::ALL`: a new model cannot be added without its tests.
        #[test]
        fn every_model_is_tested() {
            let listed = [$($model),*];
            for m in Model::ALL {
                assert!(listed.contains(&m), "{m} has no tests");
            }
        }
    };
}

every_model! {
    iterative => Model::Iterative, false;
    fork => Model::Fork, false;
    thread => Model::Thread, false;
    threadpool => Model::ThreadPool, false;
    prefork => Model::Prefork, false;
    select => Model::Select, false;
    poll => Model::Poll, false;
    epoll => Model::Epoll, false;
    epoll_edge => Model::Epoll, true;
    r#async => Model::Async, false;
}

#[test]
fn model_names_parse() {
    for m in Model::ALL {
        assert_eq!(m.name().parse::<Model>().unwrap(), m);
        assert_eq!(m.to_string(), m.name());
    }
    assert!("nope".parse::<Model>().is_err());
    assert_eq!(Model::default(), Model::Epoll);
}

/// The in-process API: start on a thread, serve, stop.
#[test]
fn in_process_handle() {
    let mut config = Config::new("echo", "127.0.0.1:0".parse().unwrap());
    config.model = Model::Poll;
    config.handle_signals = false;
    config.announce = false;
    let handle = bingfa_net::Server::bind(config, Echo)
        .unwrap()
        .start()
        .unwrap();
    let mut c = Client::connect(handle.local_addrs()[0]);
    c.send("in-process");
    c.expect("in-process");
    handle.stop().unwrap();
    c.expect("bye shutdown");
}

/// SO_REUSEPORT must not let a second server silently share a port someone already holds.
#[test]
fn epoll_refuses_a_port_in_use() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let mut config = Config::new("echo", taken.local_addr().unwrap());
    config.model = Model::Epoll;
    config.handle_signals = false;
    assert!(matches!(
        bingfa_net::Server::bind(config, Echo),
        Err(bingfa_net::Error::Bind { .. })
    ));
}
