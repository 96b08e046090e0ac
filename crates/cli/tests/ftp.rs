//! The FTP server's integration suite, one scenario set under all ten models plus
//! edge-triggered epoll (like the chat and net suites). Each server is the real binary,
//! `bingfa ftp serve`, in its own process. Clients are the ones users use — Python's ftplib
//! (`ftp/ftplib_client.py`), curl, lftp and rclone (`ftp/rclone.rs`) — plus a raw control connection where the exact
//! bytes on the wire are the point (`ftp/transport.rs`). Scenarios whose rules are the
//! session's own run here over explicit TLS with `PROT P` (the `_tls` tests): their clear twins,
//! and every behaviour test that needs no real client, no socket, no process and no model, run
//! on bingfa-net's rig in `crates/ftp/tests/` (replies, permissions, listings, uploads, in
//! simulated time). What stays here needs the real thing: clients, TLS on the wire, signals,
//! per-model socket work (passive ports, theft, limits, urgent data, floods, slow clients).
//!
//! `iterative` serves one control connection at a time: scenarios that need two at once skip
//! it (a second client would wait, unserved, for the first to leave).

use bingfa_net::Model;
use bingfa_testkit::{model_args, workers, ServerProc};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

#[path = "ftp/auth.rs"]
mod auth;
#[path = "ftp/clients.rs"]
mod clients;
#[path = "ftp/data.rs"]
mod data;
#[path = "ftp/durability.rs"]
mod durability;
#[path = "ftp/names.rs"]
mod names;
#[path = "ftp/rclone.rs"]
mod rclone;
#[path = "ftp/security.rs"]
mod security;
#[path = "ftp/tls.rs"]
mod tls;
#[path = "support/tools.rs"]
mod tools;
#[path = "ftp/transport.rs"]
mod transport;

use transport::{Control, Plain, Tls};

const BIN: &str = env!("CARGO_BIN_EXE_bingfa");
pub(crate) const PASSWORD: &str = "s3cret pass";

/// `bingfa ftp passwd` of [`PASSWORD`], made once per test process (argon2 is slow on purpose).
fn hash() -> &'static str {
    static H: OnceLock<String> = OnceLock::new();
    H.get_or_init(|| {
        let mut child = Command::new(BIN)
            .args(["ftp", "passwd"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(format!("{PASSWORD}\n").as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success());
        let h = String::from_utf8(out.stdout).unwrap().trim().to_string();
        assert!(h.starts_with("$argon2id$"), "{h}");
        h
    })
}

/// A fresh tree: `base/secret` outside every root; `base/pub` (anonymous, read-only, with
/// `hello.txt`, `sub/`, `out -> ../secret`); `base/ann` (ann's home, writable); `base/bob`
/// (bob's, read-only).
pub(crate) struct Tree {
    pub(crate) base: PathBuf,
}

impl Tree {
    pub(crate) fn new(tag: &str) -> Tree {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let base = std::env::temp_dir().join(format!(
            "bingfa-ftp-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&base);
        for d in ["pub/sub", "ann", "bob"] {
            std::fs::create_dir_all(base.join(d)).unwrap();
        }
        std::fs::write(base.join("secret"), "top secret\n").unwrap();
        std::fs::write(base.join("pub/hello.txt"), "hello\nworld\n").unwrap();
        std::fs::write(base.join("pub/sub/inner.txt"), "inner").unwrap();
        std::os::unix::fs::symlink("../secret", base.join("pub/out")).unwrap();
        std::os::unix::fs::symlink("../secret", base.join("ann/out")).unwrap();
        std::fs::write(base.join("bob/bob.txt"), "bob").unwrap();
        let users = format!(
            "[[user]]\nname = \"ann\"\npassword = \"{h}\"\nhome = \"{}\"\nwrite = true\n\n\
             [[user]]\nname = \"bob\"\npassword = \"{h}\"\nhome = \"{}\"\n",
            base.join("ann").display(),
            base.join("bob").display(),
            h = hash()
        );
        std::fs::write(base.join("users.toml"), users).unwrap();
        // As an administrator should keep it (a readable one is warned about).
        std::fs::set_permissions(
            base.join("users.toml"),
            std::os::unix::fs::PermissionsExt::from_mode(0o600),
        )
        .unwrap();
        Tree { base }
    }
    pub(crate) fn path(&self, rel: &str) -> PathBuf {
        self.base.join(rel)
    }
    /// The names in a directory, sorted (hidden ones included: a leftover must show).
    pub(crate) fn names(&self, rel: &str) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(self.path(rel))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }
}

impl Drop for Tree {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.base);
    }
}

pub(crate) struct Server {
    proc: ServerProc,
    pub(crate) addr: SocketAddr,
    /// The implicit-FTPS listener (`--tls-bind`), if asked for.
    pub(crate) tls_addr: Option<SocketAddr>,
    pub(crate) model: Model,
    /// The certificate it serves, when started by [`transport::Transport::Tls`].
    pub(crate) pem: Option<PathBuf>,
}

impl Server {
    /// `bingfa ftp serve` on the tree: anonymous read on `pub`, the users file, 300 ms login
    /// delay; `extra` adds or overrides options.
    pub(crate) fn start(model: Model, edge: bool, tree: &Tree, extra: &[&str]) -> Server {
        Self::start_with(model, edge, tree, extra, |_| {})
    }

    pub(crate) fn start_with(
        model: Model,
        edge: bool,
        tree: &Tree,
        extra: &[&str],
        tweak: impl FnOnce(&mut Command),
    ) -> Server {
        let mut cmd = Command::new(BIN);
        cmd.args(["ftp", "serve"]).args(model_args(model, edge));
        if !extra.contains(&"--bind") {
            cmd.args(["--bind", "127.0.0.1:0"]);
        }
        cmd.arg("--root")
            .arg(tree.path("pub"))
            .arg("--users")
            .arg(tree.path("users.toml"))
            .args(["--login-delay-ms", "300"])
            .args(extra)
            .stdin(Stdio::null())
            .stderr(Stdio::inherit());
        if !extra.contains(&"--anonymous") {
            cmd.args(["--anonymous", "read"]);
        }
        if !extra.contains(&"--workers") {
            cmd.args(["--workers", workers(model)]);
        }
        tweak(&mut cmd);
        let mut proc = ServerProc::spawn(cmd);
        let want = if extra.contains(&"--tls-bind") { 2 } else { 1 };
        let (mut addr, mut tls_addr) = (None, None);
        for _ in 0..want {
            let (service, a) = proc.next_listening(Duration::from_secs(20));
            match service.as_str() {
                "ftp" => addr = Some(a),
                "ftps" => tls_addr = Some(a),
                other => panic!("unexpected ready line for {other}"),
            }
        }
        Server {
            proc,
            addr: addr.expect("the ftp ready line"),
            tls_addr,
            model,
            pem: None,
        }
    }

    pub(crate) fn pid(&self) -> i32 {
        self.proc.pid()
    }

    pub(crate) fn stop(&mut self) -> ExitStatus {
        self.proc.signal(libc::SIGTERM);
        self.wait(Duration::from_secs(15))
            .expect("no exit after SIGTERM")
    }

    pub(crate) fn wait(&mut self, limit: Duration) -> Option<ExitStatus> {
        self.proc.wait(limit)
    }

    pub(crate) fn control(&self) -> Control {
        Control::connect(self.addr)
    }

    /// Runs `ftp/ftplib_client.py SCENARIO` against this server; panics with its output unless
    /// it exits 0.
    pub(crate) fn ftplib(&self, scenario: &str, tree: &Tree) {
        self.ftplib_with(scenario, tree, None)
    }

    /// [`Server::ftplib`], over TLS (FTP_TLS, PROT P) trusting `cafile` when given.
    pub(crate) fn ftplib_with(&self, scenario: &str, tree: &Tree, cafile: Option<&Path>) {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/ftp/ftplib_client.py");
        let mut cmd = Command::new("python3");
        if let Some(ca) = cafile {
            cmd.env("FTPLIB_CAFILE", ca);
        }
        let out = run_timeout(
            cmd.arg(script)
                .arg(scenario)
                .arg(self.addr.ip().to_string())
                .arg(self.addr.port().to_string())
                .arg(&tree.base)
                .arg(PASSWORD),
            Duration::from_secs(120),
        );
        assert!(
            out.status.success(),
            "ftplib {scenario} (TLS: {}) under {}: {}\n{}",
            cafile.is_some(),
            self.model,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// Runs a command to completion, killing it after `limit`.
pub(crate) fn run_timeout(cmd: &mut Command, limit: Duration) -> std::process::Output {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn client");
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let o = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = out.read_to_end(&mut v);
        v
    });
    let e = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = err.read_to_end(&mut v);
        v
    });
    let end = Instant::now() + limit;
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if Instant::now() > end {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "client timed out after {limit:?}: {:?} {}",
                cmd.get_program(),
                String::from_utf8_lossy(&o.join().unwrap())
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    std::process::Output {
        status,
        stdout: o.join().unwrap(),
        stderr: e.join().unwrap(),
    }
}

#[test]
fn passwd_reads_one_line_from_stdin() {
    let h = hash();
    assert!(h.starts_with("$argon2id$v=19$"), "{h}");
    // An empty password is refused, with a message and exit status 1.
    let mut child = Command::new(BIN)
        .args(["ftp", "passwd"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"\n").unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    assert!(String::from_utf8_lossy(&out.stderr).contains("empty password"));
}

#[test]
fn serve_refuses_a_bad_users_file() {
    let tree = Tree::new("badusers");
    std::fs::write(
        tree.path("users.toml"),
        "[[user]]\nname = \"x\"\npassword = \"plain\"\nhome = \"/tmp\"\n",
    )
    .unwrap();
    let out = run_timeout(
        Command::new(BIN)
            .args(["ftp", "serve", "--bind", "127.0.0.1:0", "--users"])
            .arg(tree.path("users.toml"))
            .arg("--root")
            .arg(tree.path("pub")),
        Duration::from_secs(20),
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty(), "no ready line");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("line 3: user \"x\": the password is not a usable argon2 hash"),
        "{err}"
    );
}

#[test]
fn tls_options_need_a_certificate() {
    for flag in [&["--tls-required"][..], &["--tls-bind", "127.0.0.1:0"][..]] {
        let out = run_timeout(
            Command::new(BIN)
                .args(["ftp", "serve", "--bind", "127.0.0.1:0"])
                .args(flag),
            Duration::from_secs(20),
        );
        assert_eq!(out.status.code(), Some(1), "{flag:?}");
        assert!(out.stdout.is_empty(), "no ready line");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(&format!(
                "{} needs --tls-cert/--tls-key or --tls-self-signed",
                flag[0]
            )),
            "{err}"
        );
    }
}

bingfa_testkit::for_each_model! {
    #[test] fn ftplib_session() { clients::ftplib_session(M, E) }
    #[test] fn ftplib_transfers() { clients::ftplib_transfers(M, E) }
    #[test] fn curl() { clients::curl(M, E) }
    #[test] fn lftp() { clients::lftp(M, E) }
    #[test] fn rclone() { rclone::round_trip(M, E, Plain) }
    #[test] fn rclone_tls() { rclone::round_trip(M, E, Tls) }
    #[test] fn ipv6() { clients::ipv6(M, E) }
    #[test] fn no_bounce_and_no_theft_tls() { security::data_connections(M, E, Tls) }
    #[test] fn long_lines_and_idle_tls() { security::long_lines_and_idle(M, E, Tls) }
    #[test] fn client_limits() { security::client_limits(M, E, Plain) }
    #[test] fn client_limits_tls() { security::client_limits(M, E, Tls) }
    #[test] fn uploads_all_or_nothing() { durability::uploads_all_or_nothing(M, E, Plain) }
    #[test] fn uploads_all_or_nothing_tls() { durability::uploads_all_or_nothing(M, E, Tls) }
    #[test] fn full_disk_tls() { durability::full_disk(M, E, Tls) }
    #[test] fn synced_uploads_tls() { durability::synced_uploads(M, E, Tls) }
    #[test] fn shutdown_finishes_transfers() { durability::shutdown(M, E, Plain) }
    #[test] fn shutdown_finishes_transfers_tls() { durability::shutdown(M, E, Tls) }
    #[test] fn ftps_ftplib() { tls::ftplib(M, E) }
    #[test] fn ftps_curl_lftp_and_ours() { tls::curl_lftp_and_ours(M, E) }
    #[test] fn ftps_rules() { tls::rules(M, E) }
    #[test] fn ftps_required() { tls::required(M, E) }
    #[test] fn ftps_broken_data_handshakes() { tls::broken_data(M, E) }
    #[test] fn big_listings() { names::big_listings(M, E) }
    #[test] fn hostile_names_tls() { names::hostile(M, E, Tls) }
    #[test] fn wildcard_clients() { names::glob_clients(M, E) }
    #[test] fn login_memory_stays_bounded() { if M != Model::Fork { auth::memory_stays_bounded(M, E) } }
    #[test] fn login_bans() { auth::bans(M, E) }
    #[test] fn login_flood_does_not_starve_others() { if M != Model::Iterative { auth::a_flood_does_not_starve_others(M, E) } }
    #[test] fn ftps_session_reuse() { tls::session_reuse(M, E) }
    #[test] fn stou_never_replaces_tls() { data::stou_never_replaces(M, E, Tls) }
    #[test] fn ascii_mode_tls() { data::ascii_mode(M, E, Tls) }
    #[test] fn abandoned_sessions_free_their_slot() { data::abandoned_sessions_free_their_slot(M, E, Plain) }
    #[test] fn abandoned_sessions_free_their_slot_tls() { data::abandoned_sessions_free_their_slot(M, E, Tls) }
    #[test] fn passive_cap_per_address() { data::passive_cap_per_address(M, E) }
}
