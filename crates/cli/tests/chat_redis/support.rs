//! Fixtures for the backplane suite: a private `redis-server`, chat servers on it, members.
//! Everything is killed on drop; every wait has a deadline.

use bingfa_testkit::ServerProc;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_bingfa");

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A throwaway Redis (no persistence), on a free port.
pub(crate) struct Redis {
    child: Option<Child>,
    pub port: u16,
}

impl Redis {
    pub(crate) fn start() -> Redis {
        let mut r = Redis {
            child: None,
            port: free_port(),
        };
        r.restart();
        r
    }

    /// Start it (again, on the same port: the servers reconnect to it).
    pub(crate) fn restart(&mut self) {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server must be installed (apt-get install redis-server)");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self.cmd("PING").starts_with("+PONG") {
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGKILL, and reaped.
    pub(crate) fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub(crate) fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// One inline command; the raw reply ("" if Redis is not there).
    pub(crate) fn cmd(&self, line: &str) -> String {
        let Ok(mut s) = TcpStream::connect(("127.0.0.1", self.port)) else {
            return String::new();
        };
        s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        let _ = s.write_all(format!("{line}\r\n").as_bytes());
        let mut buf = [0u8; 4096];
        let n = s.read(&mut buf).unwrap_or(0);
        String::from_utf8_lossy(&buf[..n]).into_owned()
    }

    /// Wait until `n` servers are subscribed to the room's channel.
    pub(crate) fn wait_subscribers(&self, n: usize) {
        let want = format!(":{n}\r\n");
        let deadline = Instant::now() + Duration::from_secs(15);
        while !self
            .cmd("PUBSUB NUMSUB bingfa:chat:lobby:stream")
            .ends_with(&want)
        {
            assert!(Instant::now() < deadline, "{n} servers never subscribed");
            std::thread::sleep(Duration::from_millis(50));
        }
        // The server marks its link up just after Redis acknowledged the subscription.
        std::thread::sleep(Duration::from_millis(200));
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.kill();
    }
}

/// `bingfa chat serve --backplane …` under one model.
pub(crate) struct Server {
    proc: ServerProc,
    pub addr: SocketAddr,
}

impl Server {
    pub(crate) fn start(model: &str, redis: &Redis) -> Server {
        Server::start_with(model, redis, &[])
    }

    pub(crate) fn start_with(model: &str, redis: &Redis, extra: &[&str]) -> Server {
        let mut cmd = Command::new(BIN);
        cmd.args(["chat", "serve", "--bind", "127.0.0.1:0", "--model", model])
            .args(["--workers", "2", "--rate", "0", "--backplane", &redis.url()])
            .args(extra)
            .stdin(Stdio::null())
            .stderr(Stdio::null());
        let proc = ServerProc::spawn(cmd).listening_on(&["chat"], Duration::from_secs(30));
        let addr = proc.addr("chat");
        Server { proc, addr }
    }

    /// `bingfa chat announce` through the server's admin socket; its exit status.
    pub(crate) fn announce(socket: &std::path::Path, text: &str) -> bool {
        Command::new(BIN)
            .args(["chat", "announce", "--admin-socket"])
            .arg(socket)
            .arg(text)
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }

    pub(crate) fn pid(&self) -> i32 {
        self.proc.pid()
    }

    /// The server's child processes (fork/prefork workers).
    pub(crate) fn children(&self) -> Vec<i32> {
        let dir = format!("/proc/{}/task", self.pid());
        std::fs::read_dir(dir)
            .into_iter()
            .flatten()
            .flatten()
            .flat_map(|t| {
                let kids = std::fs::read_to_string(t.path().join("children")).unwrap_or_default();
                kids.split_whitespace()
                    .filter_map(|p| p.parse().ok())
                    .collect::<Vec<i32>>()
            })
            .collect()
    }

    /// SIGKILL the server's (parent) process, as a crash would.
    pub(crate) fn kill(&mut self) {
        let _ = self.proc.child_mut().kill();
        let _ = self.proc.child_mut().wait();
    }
}

/// A TCP member of the room.
pub(crate) struct Member {
    r: BufReader<TcpStream>,
    w: TcpStream,
}

impl Member {
    pub(crate) fn connect(server: &Server) -> Member {
        let s = TcpStream::connect(server.addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut m = Member {
            w: s.try_clone().unwrap(),
            r: BufReader::new(s),
        };
        assert_eq!(
            m.line(),
            "* welcome to the bingfa chat room; what is your name?"
        );
        m
    }

    /// Connect and take `name`; returns the member and its welcome line.
    pub(crate) fn join(server: &Server, name: &str) -> (Member, String) {
        let mut m = Member::connect(server);
        m.say(name);
        let w = m.line();
        (m, w)
    }

    pub(crate) fn say(&mut self, line: &str) {
        self.w.write_all(format!("{line}\n").as_bytes()).unwrap();
    }

    /// The next line (panics after the read timeout).
    pub(crate) fn line(&mut self) -> String {
        let mut l = String::new();
        self.r.read_line(&mut l).expect("a line before the timeout");
        assert!(l.ends_with('\n'), "connection closed: {l:?}");
        l.truncate(l.len() - 1);
        l
    }

    /// Lines until one equals `want` (which is returned); `max_skip` lines may come first.
    pub(crate) fn until(&mut self, want: &str, max_skip: usize) -> Vec<String> {
        let mut seen = Vec::new();
        loop {
            let l = self.line();
            if l == want {
                return seen;
            }
            seen.push(l);
            assert!(seen.len() <= max_skip, "never got {want:?}; got {seen:?}");
        }
    }
}
