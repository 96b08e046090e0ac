//! Starting a bingfa server as a child process for a measurement, and stopping it: the binary
//! is this one (`current_exe`), the address is the one its ready line announces, and the child
//! is stopped (SIGTERM, then SIGKILL after a grace period) when the handle is dropped, so no run
//! leaves a server behind. Also reads a process tree's peak memory from /proc.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// A running server.
pub struct ServerProcess {
    child: Child,
    /// `(service, address)` from each ready line, in order.
    pub listening: Vec<(String, SocketAddr)>,
}

impl ServerProcess {
    /// Run `bingfa ARGS…` and wait (up to `timeout`) for `ready` ready lines
    /// (`<service> listening on <ip>:<port>`).
    pub fn start(args: &[String], ready: usize, timeout: Duration) -> Result<Self, String> {
        let exe = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
        let mut child = Command::new(exe)
            .args(args)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("starting the server: {e}"))?;
        let stdout = child.stdout.take().expect("piped");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut server = ServerProcess {
            child,
            listening: Vec::new(),
        };
        let end = Instant::now() + timeout;
        while server.listening.len() < ready {
            let left = end.saturating_duration_since(Instant::now());
            let line = rx
                .recv_timeout(left)
                .map_err(|_| format!("no ready line from `bingfa {}`", args.join(" ")))?;
            if let Some((svc, addr)) = line.split_once(" listening on ") {
                if let Ok(a) = addr.trim().parse() {
                    server.listening.push((svc.to_string(), a));
                }
            }
        }
        Ok(server)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The first address announced for `service`.
    pub fn addr(&self, service: &str) -> Option<SocketAddr> {
        self.listening
            .iter()
            .find(|(s, _)| s == service)
            .map(|(_, a)| *a)
    }

    /// Peak resident memory (KiB) of the server and all its descendants.
    pub fn peak_rss_kib(&self) -> u64 {
        tree(self.pid()).iter().map(|&p| vm_hwm_kib(p)).sum()
    }

    /// SIGTERM, wait up to `grace`, then SIGKILL. Returns whether it exited by itself.
    pub fn stop(&mut self, grace: Duration) -> bool {
        if matches!(self.child.try_wait(), Ok(Some(_))) {
            return true;
        }
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let end = Instant::now() + grace;
        while Instant::now() < end {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        for p in tree(self.pid()) {
            unsafe { libc::kill(p as i32, libc::SIGKILL) };
        }
        let _ = self.child.wait();
        false
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.stop(Duration::from_secs(5));
    }
}

/// `pid` and every descendant, from /proc's parent links.
pub fn tree(pid: u32) -> Vec<u32> {
    let mut parent_of = Vec::new();
    if let Ok(dir) = std::fs::read_dir("/proc") {
        for e in dir.flatten() {
            let Some(p) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
                continue;
            };
            let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else {
                continue;
            };
            let ppid = stat
                .rsplit_once(')')
                .and_then(|(_, r)| r.split_whitespace().nth(1))
                .and_then(|s| s.parse::<u32>().ok());
            if let Some(pp) = ppid {
                parent_of.push((p, pp));
            }
        }
    }
    let mut out = vec![pid];
    let mut i = 0;
    while i < out.len() {
        let me = out[i];
        out.extend(
            parent_of
                .iter()
                .filter(|(_, pp)| *pp == me)
                .map(|(p, _)| *p),
        );
        i += 1;
    }
    out
}

/// VmHWM (peak resident set) of one process, in KiB; 0 if it is gone.
pub fn vm_hwm_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|n| n.parse().ok())
        })
        .unwrap_or(0)
}
