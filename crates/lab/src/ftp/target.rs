//! The FTP servers `lab ftp` measures, each a child process on a loopback port serving the same
//! root directory to anonymous users with write access, killed with its whole process tree on
//! drop (vsftpd forks a process per session; they must not outlive the run).
//!
//! bingfa's server is this binary (`bingfa ftp serve`), or the one `BINGFA_FTP_BIN` names (to
//! measure a build of another branch). vsftpd is configured like a standalone anonymous server;
//! pyftpdlib runs a small embedded script so its connection limits can be raised.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::spawn::{self, guard, Guarded};

/// The bingfa FTP server.
pub const BINGFA: &str = "bingfa";
/// vsftpd (standalone, from its system binary).
pub const VSFTPD: &str = "vsftpd";
/// pyftpdlib (under the system Python).
pub const PYFTPDLIB: &str = "pyftpdlib";

const VSFTPD_BIN: &str = "/usr/sbin/vsftpd";

/// The bingfa server's settings.
#[derive(Debug, Clone)]
pub struct BingfaOpts {
    /// `--model`; `None` lets the server pick its default.
    pub model: Option<String>,
    /// `--workers`; `None` lets the server pick.
    pub workers: Option<usize>,
}

/// A running server, killed (with its descendants) on drop.
pub struct Target {
    /// Which server ([`BINGFA`], [`VSFTPD`], [`PYFTPDLIB`]).
    pub name: String,
    /// Where it listens.
    pub addr: SocketAddr,
    child: Guarded,
    /// A file to remove on drop (vsftpd's configuration).
    conf: Option<PathBuf>,
}

/// Memory of a server's process tree, in KiB.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Mem {
    /// Sum of VmRSS: what the processes hold now.
    pub rss_kib: u64,
    /// Sum of VmHWM: their peaks.
    pub hwm_kib: u64,
    /// Sum of Pss: shared pages counted once, which is fairer to forking servers.
    pub pss_kib: u64,
    /// How many processes the tree has.
    pub processes: usize,
}

const PY_SERVER: &str = r#"
import sys, logging, warnings
warnings.simplefilter("ignore")
from pyftpdlib.authorizers import DummyAuthorizer
from pyftpdlib.handlers import FTPHandler
from pyftpdlib.servers import FTPServer
logging.basicConfig(level=logging.ERROR)
a = DummyAuthorizer()
a.add_anonymous(sys.argv[1], perm="elradfmwMT")
FTPHandler.authorizer = a
s = FTPServer(("127.0.0.1", 0), FTPHandler, backlog=1024)
s.max_cons = int(sys.argv[2])
s.max_cons_per_ip = 0
print("ftp listening on 127.0.0.1:%d" % s.address[1], flush=True)
s.serve_forever()
"#;

impl Target {
    /// Start `name` (bingfa, vsftpd or pyftpdlib) serving `root`, allowing `clients` sessions.
    pub fn start(
        name: &str,
        root: &Path,
        clients: usize,
        bingfa: &BingfaOpts,
    ) -> Result<Target, String> {
        let max = (clients + 64).to_string();
        match name {
            BINGFA => {
                let exe = match std::env::var_os("BINGFA_FTP_BIN") {
                    Some(p) => PathBuf::from(p),
                    None => std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?,
                };
                let mut cmd = Command::new(exe);
                cmd.args(["ftp", "serve", "--bind", "127.0.0.1:0", "--root"])
                    .arg(root)
                    .args(["--anonymous", "write", "--max-clients", &max])
                    .args(["--max-per-ip", &max])
                    // The crowd is one address: its passive listeners may all wait at once.
                    .args([
                        "--max-passive-per-ip",
                        &(clients + 64).min(65535).to_string(),
                    ]);
                if let Some(m) = &bingfa.model {
                    cmd.args(["--model", m]);
                }
                if let Some(w) = bingfa.workers {
                    cmd.args(["--workers", &w.to_string()]);
                }
                // The table is the output; the server's info logs are noise.
                cmd.env("RUST_LOG", "warn");
                Target::ready(name, cmd)
            }
            PYFTPDLIB => {
                // pyftpdlib's max_cons counts every socket of its loop (control, data and
                // passive listeners), not sessions: a downloading client holds up to three.
                let mut cmd = Command::new("python3");
                cmd.args(["-c", PY_SERVER])
                    .arg(root)
                    .arg((4 * (clients + 64)).to_string());
                Target::ready(name, cmd).map_err(|e| {
                    format!("{e} (is pyftpdlib installed? python3 -m pip install pyftpdlib)")
                })
            }
            VSFTPD => Target::vsftpd(root, &max),
            other => Err(format!(
                "unknown server {other:?} (bingfa, vsftpd, pyftpdlib)"
            )),
        }
    }

    /// Spawn `cmd` and wait (bounded) for its `ftp listening on IP:PORT` line; if it exits or
    /// says nothing in time, the error carries the last lines of its stderr.
    fn ready(name: &str, mut cmd: Command) -> Result<Target, String> {
        let child = guard(&mut cmd)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot start {name}: {e}"))?;
        let mut child = Guarded::new(child, Duration::ZERO);
        let out = child.child.stdout.take().expect("piped");
        let err = child.child.stderr.take().expect("piped");
        let (tx, rx) = mpsc::channel();
        // Threads read the ready line so the wait can time out; they then keep draining both
        // pipes so the server never blocks on a full one.
        std::thread::spawn(move || {
            let mut sent = false;
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                if !sent {
                    if let Some(a) = line.strip_prefix("ftp listening on ") {
                        sent = tx.send(a.trim().to_string()).is_ok();
                    }
                }
            }
        });
        let tail = Arc::new(Mutex::new(VecDeque::new()));
        let t2 = tail.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                if line.trim().is_empty() {
                    continue;
                }
                let mut t = t2.lock().unwrap_or_else(|e| e.into_inner());
                if t.len() == 4 {
                    t.pop_front();
                }
                t.push_back(line);
            }
        });
        let mut t = Target {
            name: name.into(),
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            child,
            conf: None,
        };
        let said = |t: &mut Target| {
            // The exit closes stdout first: give the process and the stderr reader a moment.
            let end = Instant::now() + Duration::from_secs(2);
            while Instant::now() < end && !matches!(t.child.child.try_wait(), Ok(Some(_))) {
                std::thread::sleep(Duration::from_millis(20));
            }
            std::thread::sleep(Duration::from_millis(50));
            let lines = tail.lock().unwrap_or_else(|e| e.into_inner());
            let lines: Vec<&str> = lines.iter().map(|s| s.as_str()).collect();
            format!("{name} exited: {}", lines.join(" / "))
        };
        let end = Instant::now() + Duration::from_secs(20);
        let line = loop {
            match rx.recv_timeout(Duration::from_millis(100)) {
                Ok(l) => break l,
                Err(mpsc::RecvTimeoutError::Disconnected) => return Err(said(&mut t)),
                Err(_) if matches!(t.child.child.try_wait(), Ok(Some(_))) => {
                    return Err(said(&mut t))
                }
                Err(_) if Instant::now() < end => {}
                Err(_) => return Err(format!("{name}: no `ftp listening on` line within 20 s")),
            }
        };
        t.addr = line
            .parse()
            .map_err(|e| format!("{name}: bad ready line {line:?}: {e}"))?;
        Ok(t)
    }

    /// vsftpd prints no ready line: pick a free port, start it, and wait for its greeting.
    fn vsftpd(root: &Path, max: &str) -> Result<Target, String> {
        if !Path::new(VSFTPD_BIN).exists() {
            return Err(format!(
                "{VSFTPD_BIN} is missing (apt-get install -y vsftpd)"
            ));
        }
        for _attempt in 0..5 {
            let port = free_port()?;
            let conf = root.with_extension(format!("vsftpd-{port}.conf"));
            // run_as_launching_user: no chroot and no privilege drop, so it runs unprivileged
            // or as root alike and serves a writable anonymous root. no_anon_password=NO keeps
            // the login at USER + PASS, as for the other servers.
            let text = format!(
                "listen=YES\nlisten_ipv6=NO\nlisten_address=127.0.0.1\nlisten_port={port}\n\
                 background=NO\nrun_as_launching_user=YES\nanonymous_enable=YES\n\
                 no_anon_password=NO\nanon_root={}\nlocal_enable=NO\nwrite_enable=YES\n\
                 anon_upload_enable=YES\nanon_mkdir_write_enable=YES\n\
                 anon_other_write_enable=YES\nanon_umask=022\nseccomp_sandbox=NO\n\
                 isolate=NO\nisolate_network=NO\nxferlog_enable=NO\n\
                 vsftpd_log_file=/dev/null\nmax_clients={max}\nmax_per_ip=0\n\
                 pasv_enable=YES\ndirmessage_enable=NO\nuse_sendfile=YES\n",
                root.display()
            );
            std::fs::write(&conf, text).map_err(|e| format!("{}: {e}", conf.display()))?;
            let child = guard(&mut Command::new(VSFTPD_BIN))
                .arg(&conf)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .map_err(|e| format!("{VSFTPD_BIN}: {e}"))?;
            let child = Guarded::new(child, Duration::ZERO);
            let mut t = Target {
                name: VSFTPD.into(),
                addr: SocketAddr::from(([127, 0, 0, 1], port)),
                child,
                conf: Some(conf),
            };
            let end = Instant::now() + Duration::from_secs(10);
            loop {
                if let Ok(Some(_)) = t.child.child.try_wait() {
                    break; // the port was taken between the probe and its bind: try another
                }
                if greets(t.addr) {
                    return Ok(t);
                }
                if Instant::now() > end {
                    return Err("vsftpd did not greet within 10 s".into());
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        Err("vsftpd failed to start 5 times".into())
    }

    /// The server's process id (the leader of its group).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Memory of the server and all its descendants now.
    pub fn mem(&self) -> Mem {
        let pids = spawn::tree(self.pid());
        let mut m = Mem {
            processes: pids.len(),
            ..Mem::default()
        };
        for p in pids {
            m.rss_kib += status_kib(p, "VmRSS:");
            m.hwm_kib += status_kib(p, "VmHWM:");
            m.pss_kib += pss_kib(p);
        }
        m
    }
}

impl Target {
    /// CPU seconds (user + system) the server has used so far: its live processes' own, plus
    /// what each has collected from children it reaped (vsftpd's finished sessions).
    pub fn cpu_secs(&self) -> f64 {
        // SAFETY: sysconf has no preconditions.
        let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
        spawn::tree(self.pid())
            .into_iter()
            .map(|p| {
                let stat = std::fs::read_to_string(format!("/proc/{p}/stat")).unwrap_or_default();
                // utime stime cutime cstime: fields 14–17, the 12th–15th after the `)`.
                stat.rsplit_once(')').map_or(0, |(_, r)| {
                    r.split_whitespace()
                        .skip(11)
                        .take(4)
                        .filter_map(|v| v.parse::<u64>().ok())
                        .sum::<u64>()
                })
            })
            .sum::<u64>() as f64
            / hz
    }
}

impl Drop for Target {
    fn drop(&mut self) {
        // The descendants first (vsftpd's sessions, bingfa's fork/prefork children): killing
        // the parent alone would orphan them.
        for p in spawn::tree(self.pid()).into_iter().rev() {
            // SAFETY: kill(2) on a pid we just read from /proc; a stale pid gets ESRCH.
            unsafe { libc::kill(p as i32, libc::SIGKILL) };
        }
        // The group (and the parent) next: `Guarded` with no grace is a SIGKILL.
        self.child.stop_within(Duration::ZERO);
        if let Some(c) = &self.conf {
            let _ = std::fs::remove_file(c);
        }
    }
}

fn free_port() -> Result<u16, String> {
    let l = TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    Ok(l.local_addr().map_err(|e| e.to_string())?.port())
}

fn greets(addr: SocketAddr) -> bool {
    let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_secs(1)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    let mut b = [0u8; 4];
    s.read_exact(&mut b).is_ok() && &b == b"220 "
}

fn status_kib(pid: u32, key: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

fn pss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("Pss:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}
