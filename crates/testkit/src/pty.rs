//! Running a command in a real pseudo-terminal (the FTP client's password prompt and shell,
//! `ftp passwd`, `chat join`): what it draws, the keys it is sent, and its terminal modes.

use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A child on a pty; killed on drop.
pub struct Pty {
    /// The command's process.
    pub child: Child,
    master: std::fs::File,
    seen: String,
    /// What `until` has already matched past.
    passed: String,
}

impl Drop for Pty {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

impl Pty {
    /// Starts `cmd` with the pty's slave as its controlling terminal and stdio.
    pub fn spawn(mut cmd: Command) -> Pty {
        let (mut m, mut s) = (0, 0);
        let ws = libc::winsize {
            ws_row: 24,
            ws_col: 100,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: out-pointers to locals; the fds are owned from here on.
        let r =
            unsafe { libc::openpty(&mut m, &mut s, std::ptr::null_mut(), std::ptr::null(), &ws) };
        assert_eq!(r, 0, "openpty");
        // SAFETY: openpty succeeded: both fds are open and ours alone.
        let (master, slave) = unsafe { (OwnedFd::from_raw_fd(m), OwnedFd::from_raw_fd(s)) };
        let stdio = |fd: &OwnedFd| Stdio::from(fd.try_clone().unwrap());
        cmd.stdin(stdio(&slave))
            .stdout(stdio(&slave))
            .stderr(stdio(&slave));
        // SAFETY: setsid and TIOCSCTTY are async-signal-safe; the pty becomes the child's
        // controlling terminal, as a shell would arrange.
        unsafe {
            cmd.pre_exec(|| {
                libc::setsid();
                libc::ioctl(0, libc::TIOCSCTTY, 0);
                Ok(())
            });
        }
        let child = cmd.spawn().expect("start bingfa");
        Pty {
            child,
            master: std::fs::File::from(master),
            seen: String::new(),
            passed: String::new(),
        }
    }

    /// Reads the screen until `want` appears (10 s at most); returns what follows it.
    pub fn until(&mut self, want: &str) -> String {
        let end = Instant::now() + Duration::from_secs(10);
        while !self.seen.contains(want) {
            assert!(
                Instant::now() < end,
                "timed out waiting for {want:?}; screen: {:?}",
                self.seen
            );
            // The end of output (EIO) is not the end here: the child may still draw.
            self.read_some();
        }
        let at = self.seen.find(want).unwrap() + want.len();
        self.passed.push_str(&self.seen[..at]);
        self.seen = self.seen[at..].to_string();
        self.seen.clone()
    }

    /// After the child exited: everything it drew that was not read yet, to the end (the
    /// master reads EIO once no process holds the terminal; 10 s at most).
    pub fn rest(&mut self) -> String {
        let end = Instant::now() + Duration::from_secs(10);
        while Instant::now() < end && self.read_some() != Some(0) {}
        std::mem::take(&mut self.seen)
    }

    /// Waits up to 100 ms for output and appends what came to `seen`: `Some(n)` bytes read,
    /// `Some(0)` at the end (EOF, or EIO once no process holds the terminal; it shows as
    /// POLLHUP/POLLERR, also ready), `None` if nothing came.
    fn read_some(&mut self) -> Option<usize> {
        let mut pfd = libc::pollfd {
            fd: self.master.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        if unsafe { libc::poll(&mut pfd, 1, 100) } <= 0 {
            return None;
        }
        let mut buf = [0u8; 4096];
        match self.master.read(&mut buf) {
            Ok(0) | Err(_) => Some(0),
            Ok(n) => {
                self.seen.push_str(&String::from_utf8_lossy(&buf[..n]));
                Some(n)
            }
        }
    }

    /// Everything the screen showed up to the end of the last `until` match.
    pub fn passed(&self) -> &str {
        &self.passed
    }

    /// The terminal's local modes now (`ICANON`, `ECHO`, …): the master shows the slave's.
    pub fn lflag(&self) -> libc::tcflag_t {
        // SAFETY: a termios out-struct for our own fd.
        let mut t: libc::termios = unsafe { std::mem::zeroed() };
        assert_eq!(
            // SAFETY: our own open fd and a termios to fill.
            unsafe { libc::tcgetattr(self.master.as_raw_fd(), &mut t) },
            0
        );
        t.c_lflag
    }

    /// Waits (10 s at most) until the terminal no longer echoes: a password prompt prints
    /// itself before it turns echo off, so keys typed at once could still be echoed.
    pub fn wait_echo_off(&mut self) {
        let end = Instant::now() + Duration::from_secs(10);
        loop {
            if self.lflag() & libc::ECHO == 0 {
                return;
            }
            assert!(
                Instant::now() < end,
                "echo never turned off: {:?}",
                self.seen
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Types `keys` (as they are: `\r` is Enter, `\x03` is Ctrl-C).
    pub fn keys(&mut self, keys: &str) {
        self.master.write_all(keys.as_bytes()).unwrap();
    }

    /// Waits (10 s at most) for the child to exit; its exit code.
    pub fn exit_code(&mut self) -> Option<i32> {
        let end = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                return st.code();
            }
            assert!(
                Instant::now() < end,
                "the client did not exit; screen: {:?}",
                self.seen
            );
            // Drain output so the child never blocks writing to a full pty.
            let _ = self.until_quiet();
        }
    }

    fn until_quiet(&mut self) -> Option<()> {
        let mut pfd = libc::pollfd {
            fd: self.master.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let mut buf = [0u8; 4096];
        // SAFETY: one valid pollfd.
        if unsafe { libc::poll(&mut pfd, 1, 20) } > 0 {
            let n = self.master.read(&mut buf).ok()?;
            self.seen.push_str(&String::from_utf8_lossy(&buf[..n]));
        }
        Some(())
    }
}
