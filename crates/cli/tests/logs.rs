//! Issue 25's logs, against the real binary: the FTP transfer log (`--xferlog`, vsftpd's
//! xferlog format: every field checked by parsing, under every model, a complete upload and
//! download and an aborted upload), the FTP security lines (login, failed login, refusals) and
//! the shipped fail2ban filter run over them by `fail2ban-regex`, the chat room's events (no
//! message text unless `--log-messages`), `--log-format json` (every line parses as JSON),
//! `--log-level`, and peer input that tries to forge a log line.
//!
//! A server's stderr goes to a file in the test's directory, read back when the test has done
//! what it logs (lines are written as events happen; each read waits, with a limit).

use bingfa_net::Model;
use bingfa_testkit::{model_args, workers, LineClient, ServerProc};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

#[path = "logs/chat.rs"]
mod chat;
#[path = "logs/ftp.rs"]
mod ftp;

const BIN: &str = env!("CARGO_BIN_EXE_bingfa");
const START: Duration = Duration::from_secs(30);

/// A directory for one test, removed when it ends.
struct Dir(PathBuf);

impl Dir {
    fn new(tag: &str) -> Dir {
        use std::sync::atomic::{AtomicU32, Ordering};
        static N: AtomicU32 = AtomicU32::new(0);
        let p = std::env::temp_dir().join(format!(
            "bingfa-logs-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        Dir(p)
    }
    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `bingfa ARGS` with stderr to `err`, waiting for the ready lines of `services`.
fn spawn(args: &[String], err: &Path, services: &[&str]) -> ServerProc {
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .env_remove("RUST_LOG")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stderr(std::fs::File::create(err).unwrap());
    ServerProc::spawn(cmd).listening_on(services, START)
}

/// The lines of `path` once `done` holds for them, within 15 s (panics with them past it).
fn wait_lines(path: &Path, what: &str, done: impl Fn(&[String]) -> bool) -> Vec<String> {
    let end = Instant::now() + Duration::from_secs(15);
    loop {
        let text = std::fs::read(path).unwrap_or_default();
        let lines: Vec<String> = String::from_utf8_lossy(&text)
            .lines()
            .map(str::to_string)
            .collect();
        if done(&lines) {
            return lines;
        }
        assert!(
            Instant::now() < end,
            "{what}: not in {} within 15 s:\n{}",
            path.display(),
            lines.join("\n")
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Every line of a text-format log starts with its RFC 3339 time and a level: a line that
/// does not was forged (or split) by someone.
fn assert_all_real_lines(lines: &[String]) {
    for l in lines {
        let mut w = l.split_whitespace();
        let (Some(t), Some(level)) = (w.next(), w.next()) else {
            panic!("a line without time and level: {l:?}");
        };
        assert!(
            t.len() >= 20
                && t.as_bytes()[4] == b'-'
                && t.as_bytes()[10] == b'T'
                && t.ends_with('Z'),
            "not a log line's time: {l:?}"
        );
        assert!(
            ["ERROR", "WARN", "INFO", "DEBUG", "TRACE"].contains(&level),
            "not a level: {l:?}"
        );
        assert!(
            !l.bytes().any(|b| b < 0x20 && b != b'\t'),
            "a control byte reached the log: {l:?}"
        );
    }
}
