//! [`ServerProc`]: a bingfa server running as a child process, the way the end-to-end suites
//! start one. It learns its ports from the `SERVICE listening on ADDR` lines the server prints
//! on stdout, and it never outlives the test: dropped while running, it is sent SIGTERM and
//! must exit 0 (a graceful shutdown is part of every test that does not stop it itself).
//! Every wait has a timeout.

use crate::Model;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

/// How long a server has to exit after SIGTERM before the test fails.
pub const EXIT_LIMIT: Duration = Duration::from_secs(10);

/// The `--workers` a suite runs a model with, unless it says otherwise: 8 for `threadpool`
/// (its workers bound how many connections are served at once: the multi-member scenarios need
/// more than two), 2 for the others (two threads or processes show the sharing).
pub fn workers(model: Model) -> &'static str {
    if model == Model::ThreadPool {
        "8"
    } else {
        "2"
    }
}

/// A server process. See the module documentation.
pub struct ServerProc {
    child: Child,
    /// Lines of stdout not read yet (a thread reads them as they come).
    lines: Receiver<String>,
    /// `(service, address)` from the `listening on` lines read so far, in order.
    listening: Vec<(String, SocketAddr)>,
}

impl ServerProc {
    /// Spawns `cmd` with its stdout piped to the kit; stdin and stderr are left as the command
    /// has them. Panics if it cannot be started.
    pub fn spawn(cmd: Command) -> ServerProc {
        Self::try_spawn(cmd).expect("spawn the server")
    }

    /// [`ServerProc::spawn`], with the error for a test that cleans up first.
    pub fn try_spawn(mut cmd: Command) -> std::io::Result<ServerProc> {
        cmd.stdout(Stdio::piped());
        let mut child = cmd.spawn()?;
        let stdout = child.stdout.take().expect("stdout is piped");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Ok(ServerProc {
            child,
            lines,
            listening: Vec::new(),
        })
    }

    /// Reads stdout until every service of `services` has announced `SERVICE listening on
    /// ADDR`, within `limit` (panics past it, or if the server exits first). Other lines are
    /// skipped. Returns `self`, so a spawn reads `ServerProc::spawn(cmd).listening_on(..)`.
    pub fn listening_on(mut self, services: &[&str], limit: Duration) -> ServerProc {
        self.wait_listening(services, limit);
        self
    }

    /// [`ServerProc::listening_on`] on a borrowed server.
    pub fn wait_listening(&mut self, services: &[&str], limit: Duration) {
        let end = Instant::now() + limit;
        while services.iter().any(|s| self.addr_of(s).is_none()) {
            let line = self
                .next_line(end.saturating_duration_since(Instant::now()))
                .unwrap_or_else(|| {
                    panic!(
                        "no `listening on` line for each of {services:?} within {limit:?} \
                         (got {:?})",
                        self.listening
                    )
                });
            if let Some((service, addr)) = parse_listening(&line) {
                self.listening.push((service, addr));
            }
        }
    }

    /// Reads stdout up to the next `SERVICE listening on ADDR` line, within `limit` (panics
    /// past it), and returns it (it is also recorded for [`ServerProc::addr`]).
    pub fn next_listening(&mut self, limit: Duration) -> (String, SocketAddr) {
        let end = Instant::now() + limit;
        loop {
            let line = self
                .next_line(end.saturating_duration_since(Instant::now()))
                .unwrap_or_else(|| panic!("no `listening on` line within {limit:?}"));
            if let Some(got) = parse_listening(&line) {
                self.listening.push(got.clone());
                return got;
            }
        }
    }

    /// The next line of stdout, within `limit`; `None` on timeout or once stdout is closed.
    pub fn next_line(&mut self, limit: Duration) -> Option<String> {
        self.lines.recv_timeout(limit).ok()
    }

    /// The address `service` announced; panics if it did not (yet).
    pub fn addr(&self, service: &str) -> SocketAddr {
        self.addr_of(service)
            .unwrap_or_else(|| panic!("{service} is not listening: {:?}", self.listening))
    }

    /// The address `service` announced, if it did.
    pub fn addr_of(&self, service: &str) -> Option<SocketAddr> {
        self.listening
            .iter()
            .find(|(s, _)| s == service)
            .map(|(_, a)| *a)
    }

    /// Every `(service, address)` announced, in the order printed.
    pub fn listening(&self) -> &[(String, SocketAddr)] {
        &self.listening
    }

    /// The server's process id.
    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// The child, for what the kit does not wrap (its stderr, say).
    pub fn child_mut(&mut self) -> &mut Child {
        &mut self.child
    }

    /// Sends `sig` to the server.
    pub fn signal(&self, sig: i32) {
        // SAFETY: kill(2) with our own child's pid; it is not reaped before `self` drops (only
        // `wait` reaps it), so the pid cannot name another process.
        unsafe { libc::kill(self.pid(), sig) };
    }

    /// Waits up to `limit` for the server to exit; its status, or `None` if it still runs.
    pub fn wait(&mut self, limit: Duration) -> Option<ExitStatus> {
        let end = Instant::now() + limit;
        loop {
            if let Some(st) = self.child.try_wait().expect("try_wait") {
                return Some(st);
            }
            if Instant::now() >= end {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGTERM, then the exit status within [`EXIT_LIMIT`] (panics past it).
    pub fn stop(&mut self) -> ExitStatus {
        self.signal(libc::SIGTERM);
        self.wait(EXIT_LIMIT).expect("no exit after SIGTERM")
    }
}

impl ServerProc {
    /// What dropping does, for a wrapper that must stop the server before its own cleanup:
    /// unless it already exited, SIGTERM, and (when the test is not already failing) assert
    /// an exit 0 within [`EXIT_LIMIT`]; killed past it. Does nothing the second time.
    pub fn finish(&mut self) {
        if self.child.try_wait().ok().flatten().is_some() {
            return; // the test stopped it (or watched it die): its status was its business.
        }
        let status = self.terminate();
        if !std::thread::panicking() {
            match status {
                Some(st) => assert!(st.success(), "exit status after SIGTERM: {st}"),
                None => panic!("no exit within {EXIT_LIMIT:?} after SIGTERM (killed)"),
            }
        }
    }

    /// SIGTERM (unless it already exited), and its exit status within [`EXIT_LIMIT`]; past
    /// it, killed and `None`. Asserts nothing: for a wrapper that reports the status its way.
    pub fn terminate(&mut self) -> Option<ExitStatus> {
        if let Some(st) = self.child.try_wait().ok().flatten() {
            return Some(st);
        }
        self.signal(libc::SIGTERM);
        let status = self.wait(EXIT_LIMIT);
        if status.is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        status
    }

    /// Hands over the stdout lines not read yet (the kit reads no more of them): for a test
    /// that reads stdout its own way.
    pub fn take_stdout(&mut self) -> Receiver<String> {
        let (_, empty) = mpsc::channel();
        std::mem::replace(&mut self.lines, empty)
    }
}

impl Drop for ServerProc {
    fn drop(&mut self) {
        self.finish();
    }
}

/// `SERVICE listening on ADDR` → `(SERVICE, ADDR)`.
fn parse_listening(line: &str) -> Option<(String, SocketAddr)> {
    let (service, addr) = line.split_once(" listening on ")?;
    Some((service.to_string(), addr.trim().parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str) -> Command {
        let mut c = Command::new("sh");
        c.args(["-c", script]);
        c
    }

    #[test]
    fn ports_from_the_listening_lines() {
        // The trap comes first: a SIGTERM that arrived between the ready lines and a later
        // trap would kill the shell by the signal, which the drop rightly calls a bad exit.
        let s = ServerProc::spawn(sh(
            "trap 'exit 0' TERM; echo starting; echo 'http listening on 127.0.0.1:8080'; \
             echo 'chat listening on [::1]:7000'; while :; do sleep 0.05; done",
        ))
        .listening_on(&["chat", "http"], Duration::from_secs(10));
        assert_eq!(s.addr("http"), "127.0.0.1:8080".parse().unwrap());
        assert_eq!(s.addr("chat"), "[::1]:7000".parse().unwrap());
        assert_eq!(s.listening().len(), 2);
        // Dropped while running: SIGTERM, exit 0.
    }

    #[test]
    fn a_server_that_exits_badly_on_sigterm_fails_the_test() {
        let r = std::panic::catch_unwind(|| {
            let s = ServerProc::spawn(sh(
                "trap 'exit 3' TERM; echo 'x listening on 127.0.0.1:1'; while :; do sleep 0.05; done",
            ))
            .listening_on(&["x"], Duration::from_secs(10));
            drop(s);
        });
        assert!(r.is_err());
    }

    #[test]
    fn stop_reports_the_status() {
        let mut s = ServerProc::spawn(sh("trap 'exit 0' TERM; while :; do sleep 0.05; done"));
        std::thread::sleep(Duration::from_millis(100));
        assert!(s.stop().success());
    }

    #[test]
    fn worker_policy() {
        assert_eq!(workers(Model::ThreadPool), "8");
        assert_eq!(workers(Model::Epoll), "2");
    }
}
