//! The HTTP server's behaviour under every concurrency model: one suite, run once per model
//! and transport, plain TCP and TLS (`bingfa_testkit::for_each_model!` below names the
//! models; `<model>::tls` is the TLS run). The server runs as a child process (the `http_serve`
//! example, or `$BINGFA_BIN http serve` when that is set) and is killed when its guard drops;
//! curl is the client where a user would use one, raw sockets (through [`Conn`], which speaks
//! TLS when the server does) where the input must be malformed or paced.
//!
//! No scenario is skipped over TLS: paced and malformed inputs go inside TLS records (a
//! handshake that stalls is `crates/cli/tests/tls.rs`'s). The scenarios live in `models/`:
//! `basics.rs` (everyday behaviour), `hardening.rs` and `conformance.rs` (issue 8),
//! `compress.rs`, `listing.rs` (a listing built off the loop) and `ops.rs` (access log,
//! headers); `site.rs` is the site every server serves, `transport.rs` the TCP/TLS parameter.

use bingfa_testkit::ServerProc;
use site::{make_site, site_parent, FUTURE_SECS, HUGE_ENTRIES, HUGE_NAME_LEN};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};
use transport::{Conn, Tls, Transport};

const HEAD_TIMEOUT_SECS: &str = "3";

/// A running server; SIGTERM then reaped on drop, whatever the test did, its exit 0
/// asserted (unless the test already failed) after its directory is removed.
struct Server {
    proc: ServerProc,
    addr: SocketAddr,
    model: String,
    base: PathBuf,
    /// The certificate clients trust, when the server speaks TLS.
    tls: Option<Tls>,
}

impl Drop for Server {
    fn drop(&mut self) {
        // SIGTERM first: the server shuts down gracefully and a fork/prefork parent reaps its
        // workers; SIGKILL only if it hasn't exited within the deadline.
        let status = self.proc.terminate();
        let _ = std::fs::remove_dir_all(&self.base);
        if !std::thread::panicking() {
            assert!(
                status.is_some_and(|st| st.success()),
                "[{}] server exit after SIGTERM: {status:?}",
                self.model
            );
        }
    }
}

fn server_command() -> Command {
    if let Ok(bin) = std::env::var("BINGFA_BIN") {
        let mut c = Command::new(bin);
        c.args(["http", "serve"]);
        return c;
    }
    // target/debug/deps/models-… → target/debug/examples/http_serve
    let exe = std::env::current_exe().unwrap();
    let bin = exe
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("examples")
        .join("http_serve");
    // `cargo test -p bingfa-http` builds examples, `cargo test --test models` alone does not:
    // refuse to test a stale server rather than report on old code.
    let built = std::fs::metadata(&bin)
        .and_then(|m| m.modified())
        .unwrap_or_else(|_| {
            panic!(
                "{} is missing: run `cargo test -p bingfa-http`",
                bin.display()
            )
        });
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    for dir in ["src", "examples", "../net/src"] {
        let newest = newest_mtime(&crate_dir.join(dir));
        assert!(
            newest <= built,
            "{} is older than {dir}/: run `cargo test -p bingfa-http` (it builds the example)",
            bin.display()
        );
    }
    Command::new(bin)
}

fn newest_mtime(dir: &Path) -> std::time::SystemTime {
    let mut newest = std::time::UNIX_EPOCH;
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let m = entry.metadata().unwrap();
        let t = if m.is_dir() {
            newest_mtime(&entry.path())
        } else {
            m.modified().unwrap()
        };
        newest = newest.max(t);
    }
    newest
}

/// How a test server runs beyond its model.
#[derive(Default)]
struct Opts<'a> {
    extra: &'a [&'a str],
    /// Run as `nobody` (uid/gid 65534) so permission bits apply, with an execute-only (0711)
    /// root and `sub/`.
    unprivileged: bool,
    /// Names the site (beside model and pid) when the same model runs another server at once.
    tag: Option<&'a str>,
    transport: Transport,
}

impl Server {
    fn start(model: &str, transport: Transport, extra: &[&str]) -> Server {
        Server::start_opts(
            model,
            Opts {
                extra,
                transport,
                ..Opts::default()
            },
        )
    }

    fn start_opts(model: &str, opts: Opts) -> Server {
        let extra = opts.extra;
        let et = if extra.contains(&"--edge-triggered") {
            "-et"
        } else {
            ""
        };
        let tag = match (opts.tag, opts.unprivileged) {
            (Some(t), _) => format!("-{t}{et}"),
            (None, true) => format!("-nobody{et}"),
            (None, false) => et.to_string(),
        };
        let tls_tag = match opts.transport {
            Transport::Plain => "",
            Transport::Tls => "-tls",
        };
        let base = site_parent().join(format!(
            "bingfa-http-{}-{model}{tag}{tls_tag}",
            std::process::id()
        ));
        // Find the server first: if that fails, no directory is left behind.
        let mut command = server_command();
        let root = make_site(&base);
        let (tls, tls_flags) = match opts.transport {
            Transport::Plain => (None, Vec::new()),
            Transport::Tls => {
                let (tls, flags) = Tls::make(&base);
                (Some(tls), flags)
            }
        };
        if opts.unprivileged {
            use std::os::unix::fs::PermissionsExt;
            use std::os::unix::process::CommandExt;
            for dir in [root.clone(), root.join("sub")] {
                std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o711)).unwrap();
            }
            // `nobody` may not be able to reach the build's binary (a checkout under a 0700
            // directory, as `mktemp -d` makes): run a copy from the test's own directory.
            std::fs::set_permissions(&base, std::fs::Permissions::from_mode(0o755)).unwrap();
            let copy = base.join("server-bin");
            std::fs::copy(command.get_program(), &copy).unwrap();
            std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o755)).unwrap();
            let args: Vec<_> = command.get_args().map(|a| a.to_owned()).collect();
            command = Command::new(&copy);
            command.args(args);
            command.uid(65534).gid(65534);
        }
        command
            .args(["--bind", "127.0.0.1:0", "--root"])
            .arg(&root)
            .args([
                "--model",
                model,
                "--workers",
                "2",
                "--head-timeout",
                HEAD_TIMEOUT_SECS,
                "--cache-control",
                "max-age=60",
            ])
            .args(extra)
            .args(tls_flags)
            .stdin(Stdio::null())
            .stderr(Stdio::inherit());
        // The kit keeps draining stdout for the server's whole life so it never blocks on a
        // pipe.
        let proc = ServerProc::try_spawn(command).unwrap_or_else(|e| {
            let _ = std::fs::remove_dir_all(&base);
            panic!("start the server: {e}")
        });
        let mut server = Server {
            proc,
            addr: "0.0.0.0:0".parse().unwrap(),
            model: model.into(),
            base,
            tls,
        };
        let ready = if server.tls.is_some() {
            "https"
        } else {
            "http"
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = server
                .proc
                .next_line(left)
                .unwrap_or_else(|| panic!("{model}: no ready line"));
            if let Some(a) = line.strip_prefix(&format!("{ready} listening on ")) {
                server.addr = a.trim().parse().expect("ready line address");
                return server;
            }
        }
    }

    fn url(&self, path: &str) -> String {
        match self.tls {
            None => format!("http://{}{path}", self.addr),
            Some(_) => format!("https://localhost:{}{path}", self.addr.port()),
        }
    }

    /// curl with the suite's common flags (and the certificate to trust, over TLS).
    fn curl_command(&self) -> Command {
        let mut c = Command::new("curl");
        c.args(["-sS", "--max-time", "10"]);
        if let Some(tls) = &self.tls {
            tls.curl_args(&mut c, self.addr.port());
        }
        c
    }

    fn curl(&self, args: &[&str]) -> Output {
        let out = self
            .curl_command()
            .args(args)
            .output()
            .expect("curl must be installed (apt-get install curl)");
        assert!(
            out.status.success(),
            "[{}] curl {args:?}: {}",
            self.model,
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    /// `curl -D -`: status, head and body as text.
    fn curl_text(&self, args: &[&str]) -> (u16, String, Vec<u8>) {
        let mut all = vec!["-D", "/dev/stderr", "-o", "-"];
        all.extend_from_slice(args);
        let out = self.curl_command().args(&all).output().expect("curl");
        assert!(
            out.status.success(),
            "[{}] curl {args:?} failed: {}",
            self.model,
            String::from_utf8_lossy(&out.stderr)
        );
        let head = String::from_utf8_lossy(&out.stderr).into_owned();
        let status = head
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        (status, head, out.stdout)
    }

    /// A fresh connection, past the TLS handshake when the server speaks TLS.
    fn connect(&self) -> Conn {
        let s = TcpStream::connect_timeout(&self.addr, Duration::from_secs(5)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        match &self.tls {
            None => Conn::Plain(s),
            Some(tls) => tls.connect(s),
        }
    }

    /// Sends `bytes` on a fresh connection and reads until the server closes it.
    fn raw_until_close(&self, bytes: &[u8]) -> (String, bool) {
        let mut s = self.connect();
        s.write_all(bytes).unwrap();
        let (out, closed) = self.read_until_close(&mut s);
        (String::from_utf8_lossy(&out).into_owned(), closed)
    }

    /// Everything that arrives on `c` until the server closes it (true) or the read timeout
    /// passes (false). Over TLS a close must be a close_notify: a bare TCP close would let a
    /// truncated answer pass for a whole one.
    fn read_until_close(&self, c: &mut Conn) -> (Vec<u8>, bool) {
        let mut out = Vec::new();
        let mut buf = [0u8; 8192];
        let closed = loop {
            match c.read(&mut buf) {
                Ok(0) => break true,
                Ok(n) => out.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break true,
                Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => panic!(
                    "[{}] closed without close_notify after {:?}",
                    self.model,
                    String::from_utf8_lossy(&out)
                ),
                Err(_) => break false, // timed out: still open
            }
        };
        (out, closed)
    }
}

fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().find_map(|l| {
        let (n, v) = l.split_once(':')?;
        n.eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// Reads one response off a keep-alive connection (Content-Length framing).
fn read_response(s: &mut Conn, pending: &mut Vec<u8>, head_only: bool) -> (String, Vec<u8>) {
    let mut buf = [0u8; 8192];
    loop {
        if let Some(end) = pending.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&pending[..end + 4]).into_owned();
            let len: usize = if head_only {
                0
            } else {
                header(&head, "Content-Length").map_or(0, |v| v.parse().unwrap())
            };
            while pending.len() < end + 4 + len {
                let n = s.read(&mut buf).expect("response body");
                assert!(n > 0, "closed mid-body");
                pending.extend_from_slice(&buf[..n]);
            }
            let body = pending[end + 4..end + 4 + len].to_vec();
            pending.drain(..end + 4 + len);
            return (head, body);
        }
        let n = s.read(&mut buf).expect("response head");
        assert!(
            n > 0,
            "closed before a response: {:?}",
            String::from_utf8_lossy(pending)
        );
        pending.extend_from_slice(&buf[..n]);
    }
}

// ---- the suite ----

fn suite(model: &str, transport: Transport, extra: &[&str]) {
    let s = Server::start(model, transport, extra);
    basics::get_and_head(&s);
    basics::conditional(&s);
    basics::ranges(&s);
    basics::precompressed(&s);
    basics::directories(&s);
    basics::big_file(&s);
    basics::big_file_shares_its_loop(&s);
    basics::routes(&s);
    basics::keep_alive_and_pipelining(&s);
    basics::malformed(&s);
    basics::no_escape(&s);
    basics::slow_client(&s);
    basics::stats(&s);
    basics::cached_files_stay_fresh(&s);
    // Issue 8: hardening and the last gaps beside nginx.
    hardening::unwanted_body(&s);
    hardening::bad_request_lines_are_400_at_once(&s);
    hardening::refusals_are_final_and_bodiless(&s);
    hardening::range_past_u64(&s);
    hardening::mtime_after_year_9999(&s);
    hardening::silent_connection_closed_at_head_timeout(&s);
    conformance::vary_on_every_variant(&s);
    conformance::preconditions(&s);
    conformance::multiple_ranges(&s);
    conformance::hidden_options_cache_control(&s);
    conformance::listing_beneath_the_root(&s);
    conformance::huge_listing(&s);
    // Issue 24: the operator's log and headers (items 2, 3), compression (item 1).
    ops::default_headers(&s);
    compress::siblings_by_preference(&s);
    drop(s);
    ops::access_log_and_headers(model, transport, extra);
    ops::json_within_a_second(model, transport, extra);
    compress::on_the_fly(model, transport, extra);
    hardening::execute_only_root(model, transport, extra);
    listing::built_off_the_loop(model, transport, extra);
}

#[path = "models/basics.rs"]
mod basics;
#[path = "models/compress.rs"]
mod compress;
#[path = "models/conformance.rs"]
mod conformance;
#[path = "models/hardening.rs"]
mod hardening;
#[path = "models/listing.rs"]
mod listing;
#[path = "models/ops.rs"]
mod ops;
#[path = "models/site.rs"]
mod site;
#[path = "models/transport.rs"]
mod transport;

bingfa_testkit::for_each_model! {
    #[test]
    fn plain() {
        super::suite(M.name(), Transport::Plain, super::edge_flag(E));
    }

    /// The same suite over TLS: the server runs with `--tls-cert/--tls-key`.
    #[test]
    fn tls() {
        super::suite(M.name(), Transport::Tls, super::edge_flag(E));
    }
}

/// epoll's edge-triggered option is a different readiness discipline: same suite.
fn edge_flag(edge: bool) -> &'static [&'static str] {
    if edge {
        &["--edge-triggered"]
    } else {
        &[]
    }
}
