//! The harness: a server runs in its own process (this test binary re-executed with
//! `BINGFA_NET_TEST_SERVER` set, running only `server_main`), described by a [`Spec`];
//! [`TestServer`] starts and always stops it, [`Client`] is a line client with timeouts.

use crate::protocols::{Chat, Echo, Files};
use bingfa_net::{Config, Model};
use bingfa_testkit::ServerProc;
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub(crate) const SPEC_VAR: &str = "BINGFA_NET_TEST_SERVER";

#[derive(Clone, Debug)]
pub(crate) struct Spec {
    pub(crate) model: Model,
    pub(crate) edge: bool,
    pub(crate) proto: &'static str,
    pub(crate) idle_ms: u64,
    pub(crate) max: usize,
    pub(crate) workers: usize,
    pub(crate) file: String,
    /// A small high-water mark, so the slow-receiver test overflows sooner.
    pub(crate) tight: bool,
    /// A second listener, announced as "web".
    pub(crate) web: bool,
    /// `max_per_ip` (0 = none).
    pub(crate) per_ip: usize,
    /// `RLIMIT_NOFILE` (soft and hard) the server process sets for itself (0 = unchanged).
    pub(crate) nofile: u64,
    /// Publish each line of the server's stdin through an `Injector`.
    pub(crate) inject: bool,
    /// A Unix-domain listener, announced as "admin" ("" = none).
    pub(crate) unix: String,
}

impl Spec {
    pub(crate) fn new(model: Model, edge: bool, proto: &'static str) -> Self {
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
            nofile: 0,
            inject: false,
            unix: String::new(),
        }
    }
    pub(crate) fn encode(&self) -> String {
        format!(
            "{};{};{};{};{};{};{};{};{};{};{};{};{}",
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
            self.nofile,
            self.inject,
            self.unix
        )
    }
}

/// Runs only in the re-executed child (`SPEC_VAR` set): serve until SIGTERM.
/// The body of `server_main`: only in the re-executed child (`SPEC_VAR` set).
pub(crate) fn run_server() {
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
    let nofile: u64 = f[10].parse().unwrap();
    // Logs go to stderr, where the harness collects them (see `TestServer::log`).
    let level = if nofile > 0 {
        tracing::Level::INFO
    } else {
        tracing::Level::WARN
    };
    let _ = tracing_subscriber::fmt()
        .with_max_level(level)
        .with_ansi(false)
        .with_writer(std::io::stderr)
        .try_init();
    if nofile > 0 {
        let lim = libc::rlimit {
            rlim_cur: nofile,
            rlim_max: nofile,
        };
        // SAFETY: valid rlimit pointer; this process is the server alone.
        assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) }, 0);
    }
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
    if !f[12].is_empty() {
        config.unix.push(("admin".into(), f[12].into()));
    }
    let inject = f[11] == "true";
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
        "tasks" => bingfa_net::serve(config, crate::timers::Tasks { log: f[6].into() }),
        "chans" => {
            let (lo, hi) = f[6].split_once('-').unwrap();
            let ports = lo.parse().unwrap()..=hi.parse().unwrap();
            bingfa_net::serve(config, crate::channels::Chans { ports })
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

/// A server child process; on drop, SIGTERM and exit 0 (unless the test ended it first).
pub(crate) struct TestServer {
    pub(crate) proc: ServerProc,
    pub(crate) addr: SocketAddr,
    /// The second listener, when the spec asked for one.
    pub(crate) web: Option<SocketAddr>,
    /// The server's stdin (what an `inject` server publishes).
    pub(crate) stdin: Option<std::process::ChildStdin>,
    log: Arc<std::sync::Mutex<Vec<String>>>,
    log_thread: Option<std::thread::JoinHandle<()>>,
}

impl TestServer {
    pub(crate) fn start(spec: &Spec) -> TestServer {
        let mut cmd = Command::new(std::env::current_exe().unwrap());
        cmd.args([
            "--exact",
            "server_main",
            "--nocapture",
            "-q",
            "--test-threads=1",
        ])
        .env(SPEC_VAR, spec.encode())
        .stdin(Stdio::piped())
        .stderr(Stdio::piped());
        // The kit keeps draining stdout so the server never blocks on a full pipe.
        let mut proc = ServerProc::spawn(cmd);
        let stdin = proc.child_mut().stdin.take();
        let stderr = proc.child_mut().stderr.take().unwrap();
        let log = Arc::new(std::sync::Mutex::new(Vec::new()));
        let log2 = log.clone();
        let log_thread = std::thread::spawn(move || {
            // Pass it on (it is the server's stderr) and keep it for the test to read.
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                eprintln!("{line}");
                log2.lock().unwrap().push(line);
            }
        });
        let needles = [
            format!("{} listening on ", spec.proto),
            "web listening on ".to_string(),
            "admin listening on ".to_string(),
        ];
        let mut server = TestServer {
            proc,
            addr: "0.0.0.0:0".parse().unwrap(),
            web: None,
            stdin,
            log,
            log_thread: Some(log_thread),
        };
        let end = Instant::now() + Duration::from_secs(20);
        let mut ready = Vec::new();
        while ready.len() < 1 + spec.web as usize + !spec.unix.is_empty() as usize {
            let line = server
                .proc
                .next_line(end.saturating_duration_since(Instant::now()))
                .expect("server did not announce itself");
            for (k, needle) in needles.iter().enumerate() {
                if let Some(pos) = line.find(needle.as_str()) {
                    ready.push((k, line[pos + needle.len()..].trim().to_string()));
                }
            }
        }
        for (k, addr) in ready {
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

    /// Everything the server wrote to stderr; complete once it has exited.
    pub(crate) fn log(&mut self) -> Vec<String> {
        if self.proc.child_mut().try_wait().ok().flatten().is_some() {
            if let Some(t) = self.log_thread.take() {
                let _ = t.join();
            }
        }
        self.log.lock().unwrap().clone()
    }

    pub(crate) fn pid(&self) -> i32 {
        self.proc.pid()
    }

    pub(crate) fn connect(&self) -> Client {
        Client::connect(self.addr)
    }

    /// SIGTERM, then wait (bounded) for the exit status.
    pub(crate) fn stop(&mut self) -> ExitStatus {
        self.proc.signal(libc::SIGTERM);
        self.wait(Duration::from_secs(10))
            .expect("server did not exit after SIGTERM")
    }

    pub(crate) fn wait(&mut self, limit: Duration) -> Option<ExitStatus> {
        self.proc.wait(limit)
    }
}

/// Children of `pid` as (pid, state letter), from /proc.
pub(crate) fn children_of(pid: i32) -> Vec<(i32, char)> {
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

pub(crate) struct Client {
    pub(crate) r: BufReader<TcpStream>,
    pub(crate) w: TcpStream,
}

impl Client {
    pub(crate) fn connect(addr: SocketAddr) -> Client {
        let s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        Client {
            w: s.try_clone().unwrap(),
            r: BufReader::new(s),
        }
    }
    pub(crate) fn send(&mut self, line: &str) {
        self.w.write_all(line.as_bytes()).unwrap();
        self.w.write_all(b"\n").unwrap();
    }
    /// The next line, without its newline; "" at EOF.
    pub(crate) fn line(&mut self) -> String {
        let mut s = String::new();
        self.r.read_line(&mut s).expect("read (timed out?)");
        s.trim_end_matches('\n').to_string()
    }
    pub(crate) fn expect(&mut self, want: &str) {
        assert_eq!(self.line(), want);
    }
    /// The server closed the connection (EOF or reset), within the read timeout.
    pub(crate) fn expect_closed(&mut self) {
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
