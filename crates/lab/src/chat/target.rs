//! The servers `lab chat` measures, each a child process it starts, reads the ready line
//! from, and stops with its process group when dropped (so no run leaves a server behind, even
//! on a panic or error; see `spawn::guard`).

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use crate::spawn::{guard, Guarded};

/// What a member speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wire {
    /// The room's line protocol (bingfa chat, the tokio-chat baseline).
    Room,
    /// RESP: SUBSCRIBE on each member, PUBLISH on a connection of its own per sender.
    Redis,
}

/// A running server, stopped on drop (SIGTERM to its group, SIGKILL after a grace period).
pub struct Target {
    /// The target's name (a model or pseudo-model).
    pub name: String,
    /// How members talk to it.
    pub wire: Wire,
    /// Where members connect.
    pub addr: SocketAddr,
    child: Guarded,
    /// What a compound target also runs (`MODEL+redis2`: the Redis, the second server);
    /// killed after the main child.
    extra: Vec<Target>,
}

/// Name of the pseudo-model that runs Redis.
pub const REDIS: &str = "redis";
/// Name of the pseudo-model that runs the tokio `examples/chat.rs`-style baseline.
pub const BASELINE: &str = "tokio-chat";
/// Suffix of the pseudo-models that run two servers of a model on one Redis backplane.
pub const REDIS2: &str = "+redis2";

impl Target {
    /// Start the server for `model`: `redis`, `tokio-chat`, or a bingfa model name.
    pub fn start(model: &str, members: usize, workers: Option<usize>) -> Result<Target, String> {
        let exe = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
        match model {
            REDIS => {
                // redis-server prints no parseable ready line, so pick a free port and poll it.
                let port = free_port()?;
                let child = guard(&mut Command::new("redis-server"))
                    .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
                    .args(["--save", "", "--appendonly", "no"])
                    .args(["--maxclients", &(members + 64).to_string()])
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()
                    .map_err(|e| {
                        format!("cannot start redis-server ({e}); apt-get install redis-server")
                    })?;
                let child = Guarded::new(child, STOP_GRACE);
                let addr = SocketAddr::from(([127, 0, 0, 1], port));
                let t = Target {
                    name: model.into(),
                    wire: Wire::Redis,
                    addr,
                    child,
                    extra: Vec::new(),
                };
                for _ in 0..200 {
                    if std::net::TcpStream::connect(addr).is_ok() {
                        return Ok(t);
                    }
                    std::thread::sleep(Duration::from_millis(25));
                }
                Err("redis-server did not start listening within 5 s".into())
            }
            BASELINE => {
                let cmd = Command::new(exe);
                let mut cmd = cmd;
                cmd.args(["lab", "chat-baseline", "--bind", "127.0.0.1:0"]);
                Target::ready(model, Wire::Room, cmd)
            }
            m if m.ends_with(REDIS2) => {
                let redis = Target::start(REDIS, members * 2, None)?;
                let url = format!("redis://{}", redis.addr);
                let server = |n: usize| {
                    let mut cmd = Command::new(&exe);
                    cmd.args(["chat", "serve", "--bind", "127.0.0.1:0", "--rate", "0"]);
                    cmd.args(["--model", &m[..m.len() - REDIS2.len()], "--backplane", &url]);
                    cmd.args(room_limits(members));
                    if let Some(w) = workers {
                        cmd.args(["--workers", &w.to_string()]);
                    }
                    Target::ready(&format!("{model} #{n}"), Wire::Room, cmd)
                };
                let mut t = server(1)?;
                let second = server(2)?;
                wait_subscribed(redis.addr, 2)?;
                t.name = model.into();
                t.extra = vec![second, redis];
                Ok(t)
            }
            m => {
                let mut cmd = Command::new(exe);
                cmd.args(["chat", "serve", "--bind", "127.0.0.1:0", "--rate", "0"]);
                cmd.args(["--model", m]);
                cmd.args(room_limits(members));
                if let Some(w) = workers {
                    cmd.args(["--workers", &w.to_string()]);
                }
                Target::ready(model, Wire::Room, cmd)
            }
        }
    }

    /// Where members connect: every chat server of the target.
    pub fn addrs(&self) -> Vec<SocketAddr> {
        std::iter::once(self.addr)
            .chain(
                self.extra
                    .iter()
                    .filter(|t| t.wire == Wire::Room)
                    .map(|t| t.addr),
            )
            .collect()
    }

    /// Spawn `cmd` and wait (bounded) for its `chat listening on IP:PORT` line.
    fn ready(name: &str, wire: Wire, mut cmd: Command) -> Result<Target, String> {
        let child = guard(&mut cmd)
            .env("RUST_LOG", "warn") // the table is the output; the server's info logs are noise
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("cannot start {name}: {e}"))?;
        let mut child = Guarded::new(child, STOP_GRACE);
        let out = child.child.stdout.take().expect("piped");
        let (tx, rx) = mpsc::channel();
        // A thread reads the ready line so the wait can time out; it then keeps draining
        // stdout so the server never blocks on a full pipe.
        std::thread::spawn(move || {
            let mut sent = false;
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                if !sent {
                    if let Some(a) = line.strip_prefix("chat listening on ") {
                        sent = tx.send(a.trim().to_string()).is_ok();
                    }
                }
            }
        });
        let mut t = Target {
            name: name.into(),
            wire,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            child,
            extra: Vec::new(),
        };
        let line = rx
            .recv_timeout(Duration::from_secs(10))
            .map_err(|_| format!("{name}: no `chat listening on` line within 10 s"))?;
        t.addr = line
            .parse()
            .map_err(|e| format!("{name}: bad ready line {line:?}: {e}"))?;
        Ok(t)
    }

    /// Resident memory of the server and its descendants (fork/prefork), in KiB.
    pub fn rss_kib(&self) -> u64 {
        let mine: u64 = tree(self.child.id())
            .into_iter()
            .map(|p| status_kib(p, "VmRSS:"))
            .sum();
        mine + self.extra.iter().map(Target::rss_kib).sum::<u64>()
    }

    /// The servers' peak RSS so far (KiB; `VmHWM`). The settled figures above show what a
    /// server keeps; this shows what a burst (the join storm) cost at its height. With several
    /// processes it is the sum of each one's own peak, an upper bound.
    pub fn rss_peak_kib(&self) -> u64 {
        let mine: u64 = tree(self.child.id())
            .into_iter()
            .map(|p| status_kib(p, "VmHWM:"))
            .sum();
        mine + self.extra.iter().map(Target::rss_peak_kib).sum::<u64>()
    }
}

/// How long a server may take to stop after SIGTERM (its members are gone by then) before it
/// is killed: a graceful stop lets fork/prefork workers leave their relay links in order.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// Wait (bounded) until `n` servers subscribed to the lab's room channel on the Redis at `addr`:
/// before that, their members' lines would stay local.
fn wait_subscribed(addr: SocketAddr, n: usize) -> Result<(), String> {
    use std::io::{Read, Write};
    let want = format!(":{n}\r\n");
    for _ in 0..400 {
        if let Ok(mut s) = std::net::TcpStream::connect(addr) {
            let _ = s.set_read_timeout(Some(Duration::from_secs(1)));
            let _ = s.write_all(b"PUBSUB NUMSUB bingfa:chat:lobby:stream\r\n");
            let mut buf = [0u8; 256];
            let got = s.read(&mut buf).unwrap_or(0);
            if buf[..got].ends_with(want.as_bytes()) {
                std::thread::sleep(Duration::from_millis(200));
                return Ok(());
            }
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    Err("the servers never subscribed to the backplane within 10 s".into())
}

fn free_port() -> Result<u16, String> {
    let l = TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    Ok(l.local_addr().map_err(|e| e.to_string())?.port())
}

/// `pid` and all its descendants, from /proc/PID/task/*/children.
fn tree(pid: u32) -> Vec<u32> {
    let mut out = vec![pid];
    let mut i = 0;
    while i < out.len() {
        let p = out[i];
        if let Ok(tasks) = std::fs::read_dir(format!("/proc/{p}/task")) {
            for t in tasks.flatten() {
                let kids = std::fs::read_to_string(t.path().join("children")).unwrap_or_default();
                out.extend(
                    kids.split_whitespace()
                        .filter_map(|s| s.parse::<u32>().ok()),
                );
            }
        }
        i += 1;
    }
    out
}

fn status_kib(pid: u32, field: &str) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    s.lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// The room's limits for a load generator: room for every member, and the lobby's raised.
/// Every simulated member comes from 127.0.0.1, and up to 128 of them connect before they
/// have their names (`load.rs`'s gate) where a real room lets 16 from one address wait, and
/// all addresses together a quarter of the connection cap (so the member limit is at least
/// 300 here, whose quarter-cap is 154); a join storm on a loaded machine may take a while.
fn room_limits(members: usize) -> [String; 6] {
    [
        "--max-members".into(),
        (members + 16).max(300).to_string(),
        "--max-per-ip".into(),
        (members + 16).to_string(),
        "--name-timeout".into(),
        "120".into(),
    ]
}
