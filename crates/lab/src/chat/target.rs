//! The servers `lab chat` measures, each a child process it starts, reads the ready line
//! from, and kills when dropped (so no run leaves a server behind, even on a panic or error).

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// What a member speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wire {
    /// The room's line protocol (bingfa chat, the tokio-chat baseline).
    Room,
    /// RESP: SUBSCRIBE on each member, PUBLISH on a connection of its own per sender.
    Redis,
}

/// A running server, killed on drop.
pub struct Target {
    pub name: String,
    pub wire: Wire,
    pub addr: SocketAddr,
    child: Child,
}

/// Name of the pseudo-model that runs Redis.
pub const REDIS: &str = "redis";
/// Name of the pseudo-model that runs the tokio `examples/chat.rs`-style baseline.
pub const BASELINE: &str = "tokio-chat";

impl Target {
    /// Start the server for `model`: `redis`, `tokio-chat`, or a bingfa model name.
    pub fn start(model: &str, members: usize) -> Result<Target, String> {
        let exe = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
        match model {
            REDIS => {
                // redis-server prints no parseable ready line, so pick a free port and poll it.
                let port = free_port()?;
                let child = Command::new("redis-server")
                    .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
                    .args(["--save", "", "--appendonly", "no"])
                    .args(["--maxclients", &(members + 64).to_string()])
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()
                    .map_err(|e| {
                        format!("cannot start redis-server ({e}); apt-get install redis-server")
                    })?;
                let addr = SocketAddr::from(([127, 0, 0, 1], port));
                let t = Target {
                    name: model.into(),
                    wire: Wire::Redis,
                    addr,
                    child,
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
            m => {
                let mut cmd = Command::new(exe);
                cmd.args(["chat", "serve", "--bind", "127.0.0.1:0", "--rate", "0"]);
                cmd.args(["--model", m, "--max-members", &(members + 16).to_string()]);
                Target::ready(model, Wire::Room, cmd)
            }
        }
    }

    /// Spawn `cmd` and wait (bounded) for its `chat listening on IP:PORT` line.
    fn ready(name: &str, wire: Wire, mut cmd: Command) -> Result<Target, String> {
        let mut child = cmd
            .env("RUST_LOG", "warn") // the table is the output; the server's info logs are noise
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("cannot start {name}: {e}"))?;
        let out = child.stdout.take().expect("piped");
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
        tree(self.child.id()).into_iter().map(rss_of).sum()
    }
}

impl Drop for Target {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
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

fn rss_of(pid: u32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    s.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}
