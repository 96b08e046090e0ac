//! The chat suite's shared part: a `bingfa chat serve` started as a real process with its
//! admin socket (and its web and TLS faces when asked), joining as a member, announcing, and
//! the room's greeting. Each `chat*.rs` test file includes it.
#![allow(dead_code)] // each test binary uses its part

use bingfa_net::Model;
use bingfa_testkit::{model_args, workers, LineClient, ServerProc};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Command, ExitStatus, Stdio};
use std::time::Duration;

pub(crate) const BIN: &str = env!("CARGO_BIN_EXE_bingfa");

pub(crate) struct Server {
    pub(crate) proc: ServerProc,
    pub(crate) addr: SocketAddr,
    /// The web face's address, when started with `--web`.
    pub(crate) web: Option<SocketAddr>,
    /// The line protocol over TLS, when started with `--tls-bind`.
    pub(crate) tls: Option<SocketAddr>,
    pub(crate) admin: PathBuf,
}

impl Server {
    pub(crate) fn start(model: Model, edge: bool, extra: &[&str]) -> Server {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let admin = std::env::temp_dir().join(format!(
            "bingfa-chat-{}-{}.sock",
            std::process::id(),
            N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ));
        let mut cmd = Command::new(BIN);
        cmd.args(["chat", "serve", "--bind", "127.0.0.1:0"])
            .args(model_args(model, edge))
            .arg("--admin-socket")
            .arg(&admin)
            .args(extra)
            .stdin(Stdio::null())
            .stderr(Stdio::inherit());
        if !extra.contains(&"--workers") {
            cmd.args(["--workers", workers(model)]);
        }
        let mut proc = ServerProc::spawn(cmd);
        let mut addr = None;
        let mut web = None;
        let mut tls = None;
        let want_web = extra.contains(&"--web");
        let want_tls = extra.contains(&"--tls-bind");
        while addr.is_none() || (want_web && web.is_none()) || (want_tls && tls.is_none()) {
            match proc.next_listening(Duration::from_secs(20)) {
                (svc, a) if svc == "chat" => addr = Some(a),
                (svc, a) if svc == "web" || svc == "web-tls" => web = Some(a),
                (svc, a) if svc == "chat-tls" => tls = Some(a),
                _ => {}
            }
        }
        // The admin socket is bound before the ready lines are printed.
        Server {
            proc,
            addr: addr.unwrap(),
            web,
            tls,
            admin,
        }
    }

    pub(crate) fn connect(&self) -> Client {
        Client::connect(self.addr)
    }

    /// Connect and join as `name` (the greeting and the welcome line read).
    pub(crate) fn join(&self, name: &str) -> Client {
        let mut c = self.connect();
        c.expect_greeting();
        c.send(name);
        let l = c.line();
        assert!(
            l.starts_with(&format!("* you are {name}; online: ")),
            "{l:?}"
        );
        c
    }

    pub(crate) fn stop(&mut self) -> ExitStatus {
        self.proc.stop()
    }

    pub(crate) fn announce(&self, text: &str) -> std::process::Output {
        Command::new(BIN)
            .args(["chat", "announce", "--admin-socket"])
            .arg(&self.admin)
            .arg(text)
            .output()
            .unwrap()
    }
}

/// The room's line face: the kit's line client, and the room's first line.
pub(crate) type Client = LineClient;

pub(crate) trait Greeting {
    fn expect_greeting(&mut self);
}

impl Greeting for LineClient {
    fn expect_greeting(&mut self) {
        self.expect("* welcome to the bingfa chat room; what is your name?");
    }
}
