//! The room's operational limits, as an attacker and an operator meet them (issue 18, items 2,
//! 3, 8, 9, 10 and 11): the lobby of nameless connections bounded per address and in total,
//! the admin socket outside the public budget and checking credentials both ways, the
//! WebSocket's Origin rule and the page's policy, a killed process's members reported `left`,
//! and `select`'s honest limit. Each server is the real binary in its own process, under every
//! model where the path is per model (the table at the end).
//!
//! A second client address is `127.0.0.2` (all of 127/8 is loopback). The credential tests
//! run a client or a squatter as `nobody` with `setpriv`, so they need root: run as another
//! user they fail unless `BINGFA_SKIP_ROOT_TESTS` is set.

use bingfa_net::Model;
use bingfa_testkit::{model_args, workers, ws, LineClient, ServerProc};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_bingfa");
const GREETING: &str = "* welcome to the bingfa chat room; what is your name?";

/// A private directory of the test's own (mode 0700), removed on drop.
struct Dir(PathBuf);

impl Dir {
    fn new() -> Dir {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let d = std::env::temp_dir().join(format!(
            "bingfa-ops-{}-{}",
            std::process::id(),
            N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir(&d).unwrap();
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o700)).unwrap();
        Dir(d)
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

struct Server {
    proc: ServerProc,
    addr: SocketAddr,
    web: Option<SocketAddr>,
    admin: PathBuf,
    stderr: Arc<Mutex<String>>,
    _dir: Dir,
}

impl Server {
    fn start(model: Model, edge: bool, extra: &[&str]) -> Server {
        Server::start_env(model, edge, extra, &[])
    }

    fn start_env(model: Model, edge: bool, extra: &[&str], env: &[(&str, &Path)]) -> Server {
        let dir = Dir::new();
        let admin = dir.0.join("admin.sock");
        let mut cmd = Command::new(BIN);
        cmd.args(["chat", "serve", "--bind", "127.0.0.1:0"])
            .args(model_args(model, edge));
        if !extra.contains(&"--admin-socket") {
            cmd.arg("--admin-socket").arg(&admin);
        }
        cmd.args(extra).stdin(Stdio::null()).stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        if !extra.contains(&"--workers") {
            cmd.args(["--workers", workers(model)]);
        }
        let mut proc = ServerProc::spawn(cmd);
        let stderr = Arc::new(Mutex::new(String::new()));
        let (err, log) = (proc.child_mut().stderr.take().unwrap(), stderr.clone());
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines() {
                let Ok(line) = line else { break };
                eprintln!("server: {line}");
                log.lock().unwrap().push_str(&(line + "\n"));
            }
        });
        let (mut addr, mut web) = (None, None);
        let want_web = extra.contains(&"--web");
        let end = Instant::now() + Duration::from_secs(20);
        while addr.is_none() || (want_web && web.is_none()) {
            let Some(line) = proc.next_line(end.saturating_duration_since(Instant::now())) else {
                panic!("no ready line; stderr:\n{}", stderr.lock().unwrap())
            };
            if let Some(a) = line.strip_prefix("chat listening on ") {
                addr = Some(a.parse::<SocketAddr>().unwrap());
            } else if let Some(a) = line.strip_prefix("web listening on ") {
                web = Some(a.parse::<SocketAddr>().unwrap());
            }
        }
        Server {
            proc,
            addr: addr.unwrap(),
            web,
            admin,
            stderr,
            _dir: dir,
        }
    }

    fn join_from(&self, src: &str, name: &str) -> Client {
        let mut c = connect_from(src, self.addr);
        c.expect(GREETING);
        c.send(name);
        let l = c.line();
        assert!(
            l.starts_with(&format!("* you are {name}; online: ")),
            "{l:?}"
        );
        c
    }

    fn join(&self, name: &str) -> Client {
        self.join_from("127.0.0.1", name)
    }

    fn announce(&self, text: &str) -> std::process::Output {
        Command::new(BIN)
            .args(["chat", "announce", "--admin-socket"])
            .arg(&self.admin)
            .arg(text)
            .output()
            .unwrap()
    }

    fn pid(&self) -> u32 {
        self.proc.pid() as u32
    }
}

/// The room's line face: the kit's line client.
type Client = LineClient;

/// Connect to `addr` from the loopback address `src` (e.g. `127.0.0.2`).
fn connect_from(src: &str, addr: SocketAddr) -> Client {
    LineClient::from_stream(connect_raw(src, addr))
}

/// [`connect_from`]'s socket, with reads bounded as the client's are.
fn connect_raw(src: &str, addr: SocketAddr) -> TcpStream {
    let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    let from: SocketAddr = format!("{src}:0").parse().unwrap();
    s.bind(&from.into()).unwrap();
    s.connect_timeout(&addr.into(), Duration::from_secs(5))
        .unwrap();
    let s: TcpStream = s.into();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s
}

/// One raw HTTP exchange on a fresh connection; the response head (and for a non-101, the
/// whole response up to the server's close).
fn http(addr: SocketAddr, src: &str, request: &str) -> String {
    let mut c = connect_raw(src, addr);
    c.write_all(request.as_bytes()).unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match c.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
            Err(e) => panic!("read: {e}"),
        }
        if out.starts_with(b"HTTP/1.1 101 ") && out.windows(4).any(|w| w == b"\r\n\r\n") {
            break; // a member now: hang up
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn upgrade(addr: SocketAddr, origin: Option<&str>) -> String {
    let origin = origin
        .map(|o| format!("Origin: {o}\r\n"))
        .unwrap_or_default();
    http(
        addr,
        "127.0.0.1",
        &format!(
            "GET /ws HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
             {origin}\r\n"
        ),
    )
}

fn is_root() -> bool {
    // SAFETY: geteuid cannot fail.
    let root = unsafe { libc::geteuid() } == 0;
    if !root && std::env::var_os("BINGFA_SKIP_ROOT_TESTS").is_none() {
        panic!("this test switches to the user nobody with setpriv: run it as root (or set BINGFA_SKIP_ROOT_TESTS)");
    }
    root
}

/// `BIN args…` as the user `nobody` (uid 65534).
fn as_nobody(args: &[&str]) -> std::process::Output {
    Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", BIN])
        .args(args)
        .output()
        .expect("setpriv (util-linux) is needed")
}

// ---------------------------------------------------------------------------------------------
// Scenarios, each written once
// ---------------------------------------------------------------------------------------------

/// Item 2: one address holds at most `--max-per-ip` nameless connections, on the line port and
/// the page alike; the next is told why in words and closed; another address still gets in;
/// a place frees when a waiting connection chooses its name.
fn lobby(model: Model, edge: bool) {
    if !model.concurrent() {
        return; // one connection at a time: there is no crowd to bound
    }
    let srv = Server::start(
        model,
        edge,
        &[
            "--max-per-ip",
            "3",
            "--max-members",
            "8",
            "--web",
            "127.0.0.1:0",
        ],
    );
    let mut waiting: Vec<Client> = (0..3)
        .map(|_| {
            let mut c = connect_from("127.0.0.1", srv.addr);
            c.expect(GREETING);
            c
        })
        .collect();
    let mut c = connect_from("127.0.0.1", srv.addr);
    c.expect(
        "! too many connections from your address are waiting to choose a name (at most 3); \
         try again later",
    );
    c.expect_closed();
    let page = http(
        srv.web.unwrap(),
        "127.0.0.1",
        "GET / HTTP/1.1\r\nHost: x\r\n\r\n",
    );
    assert!(page.starts_with("HTTP/1.1 503 "), "{page}");
    assert!(
        page.contains("too many connections from your address"),
        "{page}"
    );
    let mut bob = srv.join_from("127.0.0.2", "bob");
    waiting[0].send("ann");
    waiting[0].expect("* you are ann; online: bob, ann");
    bob.expect("* ann joined");
    let mut d = connect_from("127.0.0.1", srv.addr);
    d.expect(GREETING);
}

/// Connects from `src` to `addr` until told to stop, never reading nor closing (each refused
/// connection lingers on the server for a while); hands back what it holds.
struct Flood {
    stop: Arc<std::sync::atomic::AtomicBool>,
    thread: std::thread::JoinHandle<Vec<TcpStream>>,
}

impl Flood {
    fn start(src: &'static str, addr: SocketAddr) -> Flood {
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stop2 = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut held = Vec::new();
            while !stop2.load(std::sync::atomic::Ordering::Relaxed) && held.len() < 2000 {
                held.push(connect_raw(src, addr));
                std::thread::sleep(Duration::from_millis(2));
            }
            held
        });
        Flood { stop, thread }
    }

    /// Stop; how many of its connections the server refused as over its cap.
    fn stop(self) -> usize {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let held = self.thread.join().unwrap();
        held.iter()
            .filter(|s| {
                s.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
                let mut b = [0u8; 64];
                matches!((&**s).read(&mut b), Ok(n) if b[..n].starts_with(b"! room is full"))
            })
            .count()
    }
}

/// Item 2: while two addresses flood the server to its connection cap, the operator's `chat
/// announce` still gets through (the admin socket has a budget of its own); while one address
/// floods, a member from another still joins (one address holds at most the members plus its
/// share of the lobby).
fn flood(model: Model, edge: bool) {
    if !model.concurrent() {
        return;
    }
    // Cap 96 connections; one address at most 56 of them.
    let srv = Server::start(model, edge, &["--max-members", "40"]);
    let mut bob = srv.join_from("127.0.0.2", "bob");
    let (one, two) = (
        Flood::start("127.0.0.1", srv.addr),
        Flood::start("127.0.0.4", srv.addr),
    );
    std::thread::sleep(Duration::from_millis(500));
    for i in 0..3 {
        let out = srv.announce(&format!("still in charge {i}"));
        assert!(
            out.status.success(),
            "announce during a flood: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        bob.until(&format!("* admin: still in charge {i}"));
    }
    assert!(two.stop() > 0, "the flood never reached the connection cap");
    // What the second flood held is gone once its refused connections stop lingering.
    std::thread::sleep(Duration::from_millis(2500));
    let mut carol = srv.join_from("127.0.0.3", "carol");
    bob.until("* carol joined");
    carol.send("made it");
    bob.until("carol: made it");
    assert!(
        one.stop() > 0,
        "one address alone was not held to its share"
    );
}

/// Item 3: the WebSocket upgrade is refused (403) for another origin (another port, `null`),
/// accepted without an Origin, from the page's own origin, and from `--allow-origin`; the page
/// carries its policy.
fn origin(model: Model, edge: bool) {
    let srv = Server::start(
        model,
        edge,
        &[
            "--web",
            "127.0.0.1:0",
            "--allow-origin",
            "https://friend.example:8443",
        ],
    );
    let web = srv.web.unwrap();
    let own = format!("http://{web}");
    let other_port = format!("http://127.0.0.1:{}", web.port() ^ 1);
    for (origin, ok) in [
        (None, true),
        (Some(own.as_str()), true),
        (Some("https://friend.example:8443"), true),
        (Some(other_port.as_str()), false),
        (Some("null"), false),
        (Some("https://evil.example"), false),
        (Some(&*format!("https://{web}")), false),
    ] {
        let head = upgrade(web, origin);
        if ok {
            assert!(head.starts_with("HTTP/1.1 101 "), "{origin:?}: {head}");
        } else {
            assert!(
                head.starts_with("HTTP/1.1 403 Forbidden\r\n"),
                "{origin:?}: {head}"
            );
            assert!(head.contains("cross-origin WebSocket refused"), "{head}");
        }
    }
    let page = http(
        web,
        "127.0.0.1",
        "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    let head = &page[..page.find("\r\n\r\n").unwrap()];
    assert!(
        head.contains("\r\nX-Content-Type-Options: nosniff"),
        "{head}"
    );
    let csp = head
        .lines()
        .find_map(|l| l.strip_prefix("Content-Security-Policy: "))
        .unwrap_or_else(|| panic!("no CSP: {head}"));
    for part in [
        "default-src 'none'",
        "script-src 'self' 'sha256-",
        "connect-src 'self'",
        "frame-ancestors 'none'",
    ] {
        assert!(csp.contains(part), "{csp}");
    }
    assert!(!csp.contains("unsafe-inline"), "{csp}");
}

/// Which of `server`'s child processes holds the server side of the client connection whose
/// local port is `client_port` (matched through /proc/net/tcp's socket inodes).
fn serving_process(server: u32, server_port: u16, client_port: u16) -> Option<u32> {
    let tcp = std::fs::read_to_string("/proc/net/tcp").unwrap();
    let port = |hexaddr: &str| u16::from_str_radix(hexaddr.rsplit(':').next()?, 16).ok();
    let inode = tcp.lines().skip(1).find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        (port(f[1]) == Some(server_port) && port(f[2]) == Some(client_port))
            .then(|| f[9].to_string())
    })?;
    let want = format!("socket:[{inode}]");
    let children = std::fs::read_to_string(format!("/proc/{server}/task/{server}/children"))
        .unwrap_or_default();
    children
        .split_whitespace()
        .filter_map(|p| p.parse::<u32>().ok())
        .find(|pid| {
            std::fs::read_dir(format!("/proc/{pid}/fd"))
                .map(|fds| {
                    fds.flatten().any(|e| {
                        std::fs::read_link(e.path()).is_ok_and(|l| l.as_os_str() == &*want)
                    })
                })
                .unwrap_or(false)
        })
}

/// Item 8: a `fork` child or `prefork` worker SIGKILLed: within 2 s everyone else sees each of
/// its members `left`, `/who` no longer lists them, and their names are free. (In-process
/// models have no process to lose: nothing to check.)
fn killed_process(model: Model, edge: bool) {
    if !model.multi_process() {
        return;
    }
    let srv = Server::start(model, edge, &[]);
    // Members until at least one lives in another process than the first one's.
    let mut members: Vec<(String, Client, u32)> = Vec::new();
    for i in 0..24 {
        let name = format!("m{i}");
        let c = srv.join(&name);
        let pid = serving_process(srv.pid(), srv.addr.port(), c.local_port())
            .expect("no process serves the member");
        members.push((name, c, pid));
        let first = members[0].2;
        if members.len() >= 3 && members.iter().any(|m| m.2 != first) {
            break;
        }
    }
    let victim = members[0].2;
    let (dead, mut alive): (Vec<_>, Vec<_>) = members.into_iter().partition(|m| m.2 == victim);
    assert!(!alive.is_empty(), "every member landed in one process");
    // Let every join notice arrive first.
    let last = &alive.last().unwrap().0.clone();
    for (n, c, _) in alive.iter_mut() {
        if n != last {
            c.until(&format!("* {last} joined"));
        }
    }
    let t0 = Instant::now();
    // SAFETY: killing the server's own child, found above.
    unsafe { libc::kill(victim as i32, libc::SIGKILL) };
    for (_, c, _) in alive.iter_mut() {
        for (n, _, _) in &dead {
            c.until(&format!("* {n} left"));
        }
    }
    let took = t0.elapsed();
    eprintln!("{} left notices after {took:?}", dead.len());
    // The bound is 2 s; the parent reaps on SIGCHLD at once, the margin is for a
    // loaded machine.
    assert!(took < Duration::from_secs(4), "{took:?}");
    let c = &mut alive[0].1;
    c.send("/who");
    let who = c.until("* online (");
    for (n, _, _) in &dead {
        assert!(
            !who.split([' ', ',']).any(|w| w == n),
            "{n} still listed: {who}"
        );
    }
    let mut again = srv.join(&dead[0].0);
    again.send("/who");
    again.until("* online (");
}

/// Items 9 and 11: the server serves only its own user (and root) on the admin socket, whatever
/// the file's mode; a stranger who cannot reach it is told the real cause.
fn admin_credentials(model: Model, edge: bool) {
    if !is_root() || !model.concurrent() {
        return;
    }
    let srv = Server::start(model, edge, &[]);
    let mut bob = srv.join("bob");
    // A careless operator opened the socket to everyone: the credentials still say no.
    std::fs::set_permissions(
        srv.admin.parent().unwrap(),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    std::fs::set_permissions(&srv.admin, std::fs::Permissions::from_mode(0o666)).unwrap();
    let admin = srv.admin.to_str().unwrap();
    let out = as_nobody(&["chat", "announce", "--admin-socket", admin, "sneaky"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains("the chat server refused: permission denied: uid 65534"),
        "{err}"
    );
    bob.expect_silence(Duration::from_millis(500));
    // The socket as it should be (0600): the cause is named, not guessed.
    std::fs::set_permissions(&srv.admin, std::fs::Permissions::from_mode(0o600)).unwrap();
    let out = as_nobody(&["chat", "announce", "--admin-socket", admin, "sneaky"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("Permission denied"), "{err}");
    assert!(!err.contains("no chat server listens"), "{err}");
    let out = srv.announce("from root");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    bob.expect("* admin: from root");
}

// ---------------------------------------------------------------------------------------------
// Once: not per model
// ---------------------------------------------------------------------------------------------

/// Item 9: another user bound the admin socket's path first: `chat announce` (as root) sends
/// it nothing and says why, and `chat serve` refuses the path in words.
#[test]
fn a_squatted_admin_socket_gets_nothing() {
    if !is_root() {
        return;
    }
    let dir = Dir::new();
    std::fs::set_permissions(&dir.0, std::fs::Permissions::from_mode(0o1777)).unwrap();
    let path = dir.0.join("room.sock");
    let script = "import socket,sys\n\
        s=socket.socket(socket.AF_UNIX); s.bind(sys.argv[1]); s.listen(1)\n\
        print('ready', flush=True)\n\
        c,_=s.accept(); c.settimeout(3)\n\
        try: print(repr(c.recv(1000)), flush=True)\n\
        except Exception as e: print('nothing', flush=True)\n";
    // The system's Python: a per-user one (pyenv under /root) is out of nobody's reach.
    let python = ["/usr/bin/python3", "python3"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .unwrap();
    let mut squatter = Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            python,
            "-c",
            script,
        ])
        .arg(&path)
        .stdout(Stdio::piped())
        .spawn()
        .expect("setpriv and python3");
    let mut out = BufReader::new(squatter.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert_eq!(line, "ready\n");
    let a = Command::new(BIN)
        .args(["chat", "announce", "--admin-socket"])
        .arg(&path)
        .arg("the root password is hunter2")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&a.stderr);
    assert!(!a.status.success(), "{err}");
    assert!(
        err.contains("uid 65534") && err.contains("refusing to announce"),
        "{err}"
    );
    let mut got = String::new();
    out.read_to_string(&mut got).unwrap();
    let _ = squatter.wait();
    assert!(!got.contains("hunter2"), "the squatter read {got}");
    // The server will not use a path another user holds.
    let s = Command::new(BIN)
        .args(["chat", "serve", "--bind", "127.0.0.1:0", "--admin-socket"])
        .arg(&path)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&s.stderr);
    assert!(!s.status.success());
    assert!(err.contains("belongs to uid 65534"), "{err}");
}

/// Item 9: the default admin socket lives in a private directory made for it, and `chat
/// announce` finds it there without being told.
#[test]
fn the_default_admin_socket_is_private() {
    let runtime = Dir::new();
    let env = [("XDG_RUNTIME_DIR", runtime.0.as_path())];
    let srv = Server::start_env(Model::Epoll, false, &["--admin-socket"], &env);
    let dir = runtime.0.join("bingfa");
    let meta = std::fs::symlink_metadata(&dir).unwrap();
    assert!(meta.is_dir());
    assert_eq!(meta.permissions().mode() & 0o777, 0o700);
    assert!(dir.join("chat.sock").exists());
    let mut bob = srv.join("bob");
    let out = Command::new(BIN)
        .args(["chat", "announce", "hello", "room"])
        .env("XDG_RUNTIME_DIR", &runtime.0)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    bob.expect("* admin: hello room");
    drop(srv);
    // No server: the cause, and what to do.
    let out = Command::new(BIN)
        .args(["chat", "announce", "anyone?"])
        .env("XDG_RUNTIME_DIR", &runtime.0)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("No such file or directory") && err.contains("no chat server listens"),
        "{err}"
    );
}

/// Item 10: under `select` the server says at start what FD_SETSIZE lets it hold and lowers
/// `--max-members` to that; the room then fills at exactly that many, with `/who`, the line
/// port and the page agreeing.
#[test]
fn select_says_how_many_members_it_holds() {
    let srv = Server::start(
        Model::Select,
        false,
        &[
            "--max-members",
            "2000",
            "--max-per-ip",
            "4000",
            "--web",
            "127.0.0.1:0",
            "--rate",
            "0",
        ],
    );
    let limit = 744; // (1024 - 32) descriptors, less the lobby's quarter
    let said = format!(
        "--model select handles at most FD_SETSIZE (1024) descriptors: at most 992 \
         connections, so --max-members is lowered from 2000 to {limit}"
    );
    // Said before the ready line, but on stderr, which its own thread reads.
    let end = Instant::now() + Duration::from_secs(10);
    while !srv.stderr.lock().unwrap().contains(&said) {
        assert!(Instant::now() < end, "{}", srv.stderr.lock().unwrap());
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut members = Vec::new();
    while members.len() < limit {
        // In batches within the lobby's bound: connect, name, then read the welcomes.
        let batch: Vec<Client> = (0..(limit - members.len()).min(100))
            .map(|i| {
                let mut c = connect_from("127.0.0.1", srv.addr);
                c.send(&format!("m{}", members.len() + i));
                c
            })
            .collect();
        for mut c in batch {
            c.expect(GREETING);
            let l = c.line();
            assert!(l.starts_with("* you are m"), "{l}");
            // Nobody reads the join notices of the ones after: keep the kernel's buffers small.
            members.push(c);
        }
    }
    let mut late = connect_from("127.0.0.1", srv.addr);
    late.expect(GREETING);
    late.send("late");
    late.expect("! room is full");
    let mut w = ws::Ws::connect(srv.web.unwrap());
    w.expect(GREETING);
    w.send("web");
    w.expect("! room is full");
    let last = &mut members[limit - 1];
    last.send("/who");
    let who = last.until("* online (");
    assert!(
        who.starts_with(&format!("* online ({limit}): m0, m1, ")),
        "{}",
        &who[..40]
    );
}

bingfa_testkit::for_each_model! {
    #[test] fn lobby() { super::lobby(M, E) }
    #[test] fn flood() { super::flood(M, E) }
    #[test] fn origin() { super::origin(M, E) }
    #[test] fn killed_process() { super::killed_process(M, E) }
    #[test] fn admin_credentials() { super::admin_credentials(M, E) }
}
