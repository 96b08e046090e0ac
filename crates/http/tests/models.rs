//! The HTTP server's behaviour under every concurrency model: one suite, run once per model
//! (the `models!` list below is the only place models are named). The server runs as a child
//! process (the `http_serve` example, or `$BINGFA_BIN http serve` when that is set) and is
//! killed when its guard drops; curl is the client where a user would use one, raw sockets
//! where the input must be malformed or paced.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const HEAD_TIMEOUT_SECS: &str = "3";

/// A running server; killed and reaped on drop, whatever the test did.
struct Server {
    child: Child,
    addr: SocketAddr,
    model: String,
    base: PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        // SIGTERM first: the server shuts down gracefully and a fork/prefork parent reaps its
        // workers; SIGKILL only if it hasn't exited within the deadline.
        // SAFETY: signalling our own child by pid.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(8);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let status = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.base);
        if !std::thread::panicking() {
            let status = status.expect("wait for the server");
            assert!(
                status.success(),
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

/// Where test sites live: tmpfs when there is one (it keeps file times past year 9999, which
/// ext4 clamps to 2446), else the temporary directory.
fn site_parent() -> PathBuf {
    let shm = Path::new("/dev/shm");
    if shm.is_dir() && std::fs::metadata(shm).is_ok_and(|m| !m.permissions().readonly()) {
        shm.to_path_buf()
    } else {
        std::env::temp_dir()
    }
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
}

impl Server {
    fn start(model: &str, extra: &[&str]) -> Server {
        Server::start_opts(
            model,
            Opts {
                extra,
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
            (None, true) => "-nobody".to_string(),
            (None, false) => et.to_string(),
        };
        let base = site_parent().join(format!("bingfa-http-{}-{model}{tag}", std::process::id()));
        // Find the server first: if that fails, no directory is left behind.
        let mut command = server_command();
        let root = make_site(&base);
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
        let spawned = command
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
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn();
        let mut child = spawned.unwrap_or_else(|e| {
            let _ = std::fs::remove_dir_all(&base);
            panic!("start the server: {e}")
        });
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            // Keep draining stdout for the server's whole life so it never blocks on a pipe.
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let mut server = Server {
            child,
            addr: "0.0.0.0:0".parse().unwrap(),
            model: model.into(),
            base,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = rx
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("{model}: no ready line"));
            if let Some(a) = line.strip_prefix("http listening on ") {
                server.addr = a.trim().parse().expect("ready line address");
                return server;
            }
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn curl(&self, args: &[&str]) -> Output {
        let out = Command::new("curl")
            .args(["-sS", "--max-time", "10"])
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
        let out = Command::new("curl")
            .args(["-sS", "--max-time", "10"])
            .args(&all)
            .output()
            .expect("curl");
        assert!(
            out.status.success(),
            "[{}] curl {args:?} failed",
            self.model
        );
        let head = String::from_utf8_lossy(&out.stderr).into_owned();
        let status = head
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        (status, head, out.stdout)
    }

    fn connect(&self) -> TcpStream {
        let s = TcpStream::connect_timeout(&self.addr, Duration::from_secs(5)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s
    }

    /// Sends `bytes` on a fresh connection and reads until the server closes it.
    fn raw_until_close(&self, bytes: &[u8]) -> (String, bool) {
        let mut s = self.connect();
        s.write_all(bytes).unwrap();
        let mut out = Vec::new();
        let mut buf = [0u8; 8192];
        let closed = loop {
            match s.read(&mut buf) {
                Ok(0) => break true,
                Ok(n) => out.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break true,
                Err(_) => break false, // timed out: still open
            }
        };
        (String::from_utf8_lossy(&out).into_owned(), closed)
    }
}

fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().find_map(|l| {
        let (n, v) = l.split_once(':')?;
        n.eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// Reads one response off a keep-alive connection (Content-Length framing).
fn read_response(s: &mut TcpStream, pending: &mut Vec<u8>, head_only: bool) -> (String, Vec<u8>) {
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

fn make_site(base: &Path) -> PathBuf {
    let _ = std::fs::remove_dir_all(base);
    let root = base.join("root");
    std::fs::create_dir_all(root.join("sub")).unwrap();
    std::fs::create_dir_all(root.join("list")).unwrap();
    std::fs::write(base.join("secret.txt"), "TOP SECRET").unwrap();
    std::fs::write(root.join("hello.txt"), "hello world\n").unwrap();
    let page = "<!DOCTYPE html><p>compress me compress me compress me</p>\n".repeat(20);
    std::fs::write(root.join("page.html"), &page).unwrap();
    let gz = Command::new("gzip")
        .args(["-c", "-9"])
        .arg(root.join("page.html"))
        .output()
        .unwrap();
    std::fs::write(root.join("page.html.gz"), gz.stdout).unwrap();
    std::fs::write(root.join("sub/index.html"), "sub index\n").unwrap();
    std::fs::write(root.join("文件.txt"), "utf-8 name\n").unwrap();
    std::fs::write(root.join("a%20b.txt"), "literal percent\n").unwrap();
    std::fs::write(root.join("list/<b>&x.txt"), "x").unwrap();
    std::fs::write(root.join("list/a b.txt"), "y").unwrap();
    std::fs::create_dir(root.join("list/dir")).unwrap();
    let big: Vec<u8> = (0..3 * 1024 * 1024u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    std::fs::write(root.join("big.bin"), big).unwrap();
    std::os::unix::fs::symlink("../secret.txt", root.join("escape")).unwrap();
    std::os::unix::fs::symlink("/etc", root.join("etc")).unwrap();
    std::os::unix::fs::symlink("hello.txt", root.join("alias.txt")).unwrap();
    std::os::unix::fs::symlink("sub", root.join("sublink")).unwrap();
    // Hidden names: never served or listed unless --hidden.
    std::fs::write(root.join(".env"), "SECRET=1\n").unwrap();
    std::fs::create_dir(root.join(".git")).unwrap();
    std::fs::write(root.join(".git/config"), "[core]\n").unwrap();
    std::fs::write(root.join("list/.hidden"), "h").unwrap();
    // A file modified after year 9999 (where the file system keeps such a time).
    std::fs::write(root.join("future.txt"), "from the future\n").unwrap();
    set_mtime(&root.join("future.txt"), FUTURE_SECS);
    // A listing over 4 MiB (the connections' output bound): long names that escape badly.
    std::fs::create_dir(root.join("huge")).unwrap();
    for i in 0..HUGE_ENTRIES {
        let name = format!("{i:04}{}", "<".repeat(HUGE_NAME_LEN));
        std::fs::write(root.join("huge").join(name), "").unwrap();
    }
    root
}

/// 10000-01-02T00:00:00Z.
const FUTURE_SECS: i64 = 253_402_387_200;
const HUGE_ENTRIES: usize = 2600;
const HUGE_NAME_LEN: usize = 240;

fn set_mtime(path: &Path, secs: i64) {
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
    let t = libc::timespec {
        tv_sec: secs,
        tv_nsec: 0,
    };
    // SAFETY: valid C string and two timespecs, as utimensat takes.
    let r = unsafe { libc::utimensat(libc::AT_FDCWD, c.as_ptr(), [t, t].as_ptr(), 0) };
    assert_eq!(r, 0, "utimensat {}", path.display());
}

// ---- the suite ----

fn suite(model: &str, extra: &[&str]) {
    let s = Server::start(model, extra);
    basics::get_and_head(&s);
    basics::conditional(&s);
    basics::ranges(&s);
    basics::precompressed(&s);
    basics::directories(&s);
    basics::big_file(&s);
    basics::routes(&s);
    basics::keep_alive_and_pipelining(&s);
    basics::malformed(&s);
    basics::no_escape(&s);
    basics::slow_client(&s);
    basics::stats(&s);
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
    drop(s);
    hardening::execute_only_root(model, extra);
    listing::built_off_the_loop(model, extra);
}

#[path = "models/basics.rs"]
mod basics;
#[path = "models/conformance.rs"]
mod conformance;
#[path = "models/hardening.rs"]
mod hardening;
#[path = "models/listing.rs"]
mod listing;

macro_rules! models {
    ($($name:ident),*) => {
        $( #[test] fn $name() { suite(stringify!($name).trim_start_matches("r#"), &[]); } )*

        #[test]
        fn every_model_is_tested() {
            let listed = [$(stringify!($name).trim_start_matches("r#")),*];
            let all: Vec<&str> = bingfa_net::Model::ALL.iter().map(|m| m.name()).collect();
            assert_eq!(listed.to_vec(), all);
        }
    };
}

models!(iterative, fork, thread, threadpool, prefork, select, poll, epoll, r#async);

/// epoll's edge-triggered option is a different readiness discipline: same suite.
#[test]
fn epoll_edge_triggered() {
    suite("epoll", &["--edge-triggered"]);
}
