//! `bingfa serve`, the main job: the HTTP server, the chat room (line and web faces) and the FTP
//! server under one command, each announcing itself; the built-in site points at the real
//! addresses; SIGTERM stops everything with exit 0; a port in use names the service and port.

#[path = "support/procs.rs"]
mod procs;
use bingfa_testkit::pty;
use bingfa_testkit::ServerProc;
use procs::processes_mentioning;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_bingfa");

fn all_local(extra: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = [
        "serve",
        "--http-bind",
        "127.0.0.1:0",
        "--chat-bind",
        "127.0.0.1:0",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    v.extend(
        ["--web-bind", "127.0.0.1:0", "--ftp-bind", "127.0.0.1:0"]
            .iter()
            .map(|s| s.to_string()),
    );
    v.extend(extra.iter().map(|s| s.to_string()));
    v
}

fn start(args: &[String]) -> ServerProc {
    let mut cmd = Command::new(BIN);
    cmd.args(args).stderr(Stdio::piped());
    ServerProc::spawn(cmd)
}

/// The four ready lines, by service.
fn ready(s: &mut ServerProc) -> Vec<(String, SocketAddr)> {
    (0..4)
        .map(|_| s.next_listening(Duration::from_secs(30)))
        .collect()
}

fn http_get(addr: SocketAddr, path: &str) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

fn wait_exit(s: &mut ServerProc, limit: Duration) -> std::process::ExitStatus {
    s.wait(limit)
        .unwrap_or_else(|| panic!("bingfa serve did not exit within {limit:?}"))
}

// Every service under one `--model` (and `--edge-triggered`): the same scenario for each.
bingfa_testkit::for_each_model! {
    #[test]
    fn every_service_answers_and_sigterm_stops_them_all() {
        super::every_service_answers_and_sigterm_stops_them_all(M, E);
    }
}

fn every_service_answers_and_sigterm_stops_them_all(model: bingfa_net::Model, edge: bool) {
    let mut s = start(&all_local(
        &bingfa_testkit::model_args(model, edge)
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    ));
    let addrs = ready(&mut s);
    let names: Vec<&str> = addrs.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["chat", "web", "ftp", "http"]);
    let at = |svc: &str| addrs.iter().find(|(n, _)| n == svc).unwrap().1;

    // The landing page links the chat page and shows the real chat and FTP addresses.
    let page = http_get(at("http"), "/");
    assert!(page.starts_with("HTTP/1.1 200"), "{page}");
    assert!(page.contains(&format!("href=\"http://{}/\"", at("web"))));
    assert!(page.contains(&format!("bingfa chat join {}", at("chat"))));
    assert!(page.contains(&format!("ftp://{}/", at("ftp"))));
    assert!(page.contains(&format!("<code>{model}</code>")));
    // Its commands say `bingfa`: the page tells how to get it on PATH, and 并发 is said in
    // words too, for a browser without a CJK font.
    assert!(page.contains("cargo install --locked --path crates/cli"));
    assert!(page.contains("并发</span> <span class=\"gloss\">(bìngfā: “concurrency”)"));
    let stats = http_get(at("http"), "/_stats");
    assert!(
        stats.starts_with("HTTP/1.1 200") && stats.contains("\"model\""),
        "{stats}"
    );

    // The chat room asks for a name; the web face serves its page.
    let chat = TcpStream::connect(at("chat")).unwrap();
    chat.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut first = String::new();
    BufReader::new(&chat).read_line(&mut first).unwrap();
    assert!(first.starts_with("* "), "{first:?}");
    // (Under `iterative` the room serves one connection at a time, across both faces.)
    drop(chat);
    let web = http_get(at("web"), "/");
    assert!(
        web.starts_with("HTTP/1.1 200") && web.contains("<html"),
        "{web}"
    );

    // FTP: anonymous, read-only, on the same site.
    let mut ftp = TcpStream::connect(at("ftp")).unwrap();
    ftp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut r = BufReader::new(ftp.try_clone().unwrap());
    let mut line = String::new();
    let mut reply = |ftp: &mut TcpStream, cmd: &str| {
        if !cmd.is_empty() {
            write!(ftp, "{cmd}\r\n").unwrap();
        }
        line.clear();
        r.read_line(&mut line).unwrap();
        line.clone()
    };
    assert!(reply(&mut ftp, "").starts_with("220"));
    assert!(reply(&mut ftp, "USER anonymous").starts_with("331"));
    assert!(reply(&mut ftp, "PASS guest@").starts_with("230"));
    assert!(reply(&mut ftp, "SIZE index.html").starts_with("213"));
    assert!(reply(&mut ftp, "MKD newdir").starts_with("550"));
    drop(ftp);

    let pid = s.pid();
    s.signal(libc::SIGTERM);
    let st = wait_exit(&mut s, Duration::from_secs(30));
    assert_eq!(st.code(), Some(0), "exit status {st}");
    let left = processes_mentioning(&format!("bingfa-site-{pid}"));
    assert!(left.is_empty(), "services left running: {left:?}");
    assert!(!std::env::temp_dir()
        .join(format!("bingfa-site-{pid}"))
        .exists());
}

#[test]
fn a_port_in_use_names_the_service_and_the_port() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let mut args = all_local(&[]);
    let i = args.iter().position(|a| a == "--ftp-bind").unwrap();
    args[i + 1] = format!("127.0.0.1:{port}");
    let mut s = start(&args);
    let st = wait_exit(&mut s, Duration::from_secs(30));
    assert!(!st.success());
    let mut err = String::new();
    s.child_mut()
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(
        err.contains("ftp") && err.contains(&port.to_string()),
        "stderr does not name the service and port: {err}"
    );
    assert!(processes_mentioning(&format!("bingfa-site-{}", s.pid())).is_empty());
}

#[test]
fn a_bad_flag_is_a_clap_error() {
    let out = Command::new(BIN)
        .args(["serve", "--model", "telepathy"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("telepathy"));
}

/// `--tls-self-signed`: one certificate made by the supervisor and shown by every TLS face
/// (the HTTP server, the chat's web page, FTP after AUTH TLS), so trusting the one file it
/// names is enough; SIGHUP reaches every service; the file is removed when serve stops.
#[test]
fn one_self_signed_certificate_for_every_service() {
    let mut s = start(&all_local(&["--tls-self-signed"]));
    let err = s.child_mut().stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for l in BufReader::new(err).lines().map_while(Result::ok) {
            let _ = tx.send(l);
        }
    });
    let addrs = ready(&mut s);
    let at = |svc: &str| addrs.iter().find(|(n, _)| n == svc).unwrap().1;
    let mut said = Vec::new();
    let cert = loop {
        let l = rx
            .recv_timeout(Duration::from_secs(10))
            .expect("serve names the certificate");
        if let Some(rest) = l.strip_prefix("tls: trust it with `curl --cacert ") {
            break std::path::PathBuf::from(rest.split('`').next().unwrap());
        }
        said.push(l);
    };
    assert!(cert.is_file(), "{}", cert.display());
    // Only the supervisor made a certificate: the services were given its files.
    let fingerprints = said.iter().filter(|l| l.contains("fingerprint")).count();
    assert_eq!(fingerprints, 1, "{said:?}");
    // Each TLS face names its scheme in its ready line.
    let names: Vec<&str> = addrs.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["chat", "web-tls", "ftp", "https"]);
    for svc in ["https", "web-tls"] {
        let (code, err) = https_status(at(svc).port(), &cert);
        assert_eq!(code, "200", "{svc}: {err}");
    }
    // FTP offers AUTH TLS with the same certificate (and still serves plaintext).
    let port = at("ftp").port();
    for tls in [true, false] {
        let mut curl = Command::new("curl");
        curl.args(["-sS", "--max-time", "20", "-l"]);
        if tls {
            curl.arg("--ssl-reqd").arg("--cacert").arg(&cert);
        }
        let out = curl
            .args(["--resolve", &format!("localhost:{port}:127.0.0.1")])
            .arg(format!("ftp://localhost:{port}/"))
            .output()
            .unwrap();
        assert!(
            out.status.success() && String::from_utf8_lossy(&out.stdout).contains("index.html"),
            "ftp (TLS {tls}): {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // SIGHUP to serve, as an operator reloads certificates: each of the three services
    // re-reads the files (and says so), and serve and its services go on serving.
    s.signal(libc::SIGHUP);
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let mut reloaded = 0;
    while reloaded < 3 {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let l = rx
            .recv_timeout(left)
            .unwrap_or_else(|_| panic!("{reloaded} of 3 services reloaded after SIGHUP"));
        if l.contains("TLS certificate reloaded") {
            reloaded += 1;
        }
    }
    let (code, err) = https_status(at("https").port(), &cert);
    assert_eq!(code, "200", "after SIGHUP: {err}");
    s.signal(libc::SIGTERM);
    let st = wait_exit(&mut s, Duration::from_secs(30));
    assert_eq!(st.code(), Some(0), "exit status {st}");
    assert!(!cert.exists(), "the certificate outlived serve");
}

/// `GET /` over HTTPS on `port`, trusting `cert` for `localhost`: (status code, curl's stderr).
fn https_status(port: u16, cert: &std::path::Path) -> (String, String) {
    let out = Command::new("curl")
        .args([
            "-sS",
            "--max-time",
            "20",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
        ])
        .arg("--cacert")
        .arg(cert)
        .args(["--resolve", &format!("localhost:{port}:127.0.0.1")])
        .arg(format!("https://localhost:{port}/"))
        .output()
        .unwrap();
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Lines from a chat member until `want` (20 s at most); panics with what came instead.
fn member_until(r: &mut BufReader<TcpStream>, want: &str) {
    let mut seen = Vec::new();
    loop {
        let mut l = String::new();
        match r.read_line(&mut l) {
            Ok(n) if n > 0 => {}
            other => panic!("no {want:?} for the member ({other:?}); got {seen:?}"),
        }
        if l.trim_end() == want {
            return;
        }
        seen.push(l);
    }
}

/// `serve --admin-socket PATH` gives its chat room that admin socket (`bingfa chat announce`
/// reaches the members), and lines typed on serve's console are announcements, as under
/// `chat serve`.
#[test]
fn console_lines_and_the_admin_socket_announce_to_the_room() {
    let dir = std::env::temp_dir().join(format!("bingfa-serve-admin-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let sock = dir.join("room.sock");
    let mut cmd = Command::new(BIN);
    cmd.args(all_local(&["--admin-socket", sock.to_str().unwrap()]));
    let mut p = pty::Pty::spawn(cmd);
    p.until("http listening on ");
    let chat: SocketAddr = p
        .passed()
        .lines()
        .find_map(|l| l.trim().strip_prefix("chat listening on "))
        .expect("chat's ready line")
        .parse()
        .unwrap();
    let m = TcpStream::connect(chat).unwrap();
    m.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    (&m).write_all(b"ann\n").unwrap();
    let mut r = BufReader::new(m.try_clone().unwrap());
    member_until(&mut r, "* you are ann; online: ann");

    p.keys("hello from the console\n");
    member_until(&mut r, "* admin: hello from the console");

    let out = Command::new(BIN)
        .args(["chat", "announce", "--admin-socket"])
        .arg(&sock)
        .arg("via the socket")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    member_until(&mut r, "* admin: via the socket");

    // SAFETY: signalling our own child, which has not been reaped.
    unsafe { libc::kill(p.child.id() as i32, libc::SIGTERM) };
    assert_eq!(p.exit_code(), Some(0));
    let _ = std::fs::remove_dir_all(&dir);
}

/// `--help` says what a reader needs: the models `--model` takes, and every chat subcommand
/// in the top-level summary.
#[test]
fn help_lists_the_models_and_every_chat_command() {
    let help = |args: &[&str]| {
        let out = Command::new(BIN).args(args).output().unwrap();
        assert!(out.status.success());
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let serve = help(&["serve", "--help"]);
    assert!(
        serve.contains(
            "[possible values: iterative, fork, thread, threadpool, prefork, select, poll, epoll, async, uring]"
        ),
        "{serve}"
    );
    let top = help(&["--help"]);
    let chat = top
        .lines()
        .find(|l| l.trim_start().starts_with("chat "))
        .unwrap();
    for sub in ["serve", "join", "announce"] {
        assert!(chat.contains(sub), "{chat}");
    }
}

/// The HTTP server's operator flags pass through `serve`: its access log, an added header,
/// listings off; and logrotate's SIGUSR1, sent to `serve`, reaches the HTTP service, which
/// reopens the log. SIGTERM then leaves every line written.
#[test]
fn the_http_access_log_and_headers_through_serve() {
    let dir = std::env::temp_dir().join(format!("bingfa-serve-log-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("root/empty")).unwrap();
    let log = dir.join("access.log");
    let (root, log_arg) = (
        dir.join("root").display().to_string(),
        log.display().to_string(),
    );
    let mut s = start(&all_local(&[
        "--root",
        &root,
        "--http-access-log",
        &log_arg,
        "--http-header",
        "X-Frame-Options: DENY",
        "--http-listing",
        "off",
        "--model",
        "prefork",
        "--workers",
        "2",
    ]));
    let http = ready(&mut s)
        .into_iter()
        .find(|(n, _)| n == "http")
        .unwrap()
        .1;
    let reply = http_get(http, "/empty/");
    assert!(reply.starts_with("HTTP/1.1 403 "), "{reply}");
    assert!(reply.contains("\r\nX-Frame-Options: DENY\r\n"), "{reply}");
    assert!(
        reply.contains("\r\nX-Content-Type-Options: nosniff\r\n"),
        "{reply}"
    );
    // Rotation: what the service buffered goes to the renamed file, the next line to a new one.
    let rotated = dir.join("access.log.1");
    std::fs::rename(&log, &rotated).unwrap();
    s.signal(libc::SIGUSR1);
    // The supervisor looks every 50 ms; the service's parent then bumps the generation.
    std::thread::sleep(Duration::from_millis(800));
    let reply = http_get(http, "/after");
    assert!(reply.starts_with("HTTP/1.1 404 "), "{reply}");
    s.signal(libc::SIGTERM);
    assert!(wait_exit(&mut s, Duration::from_secs(30)).success());
    let old = std::fs::read_to_string(&rotated).unwrap();
    let new = std::fs::read_to_string(&log).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(old.lines().count(), 1, "{old}");
    assert!(old.contains("] \"GET /empty/ HTTP/1.1\" 403 "), "{old}");
    assert_eq!(new.lines().count(), 1, "{new}");
    assert!(new.starts_with("127.0.0.1 - - ["), "{new}");
    assert!(new.contains("] \"GET /after HTTP/1.1\" 404 "), "{new}");
}

/// `bingfa serve --compress` hands `--compress` to its HTTP server: a text file is compressed
/// on the fly for a client that accepts gzip.
#[test]
fn compress_reaches_the_http_server() {
    let root = std::env::temp_dir().join(format!("bingfa-serve-compress-{}", std::process::id()));
    std::fs::create_dir_all(&root).unwrap();
    std::fs::write(root.join("a.txt"), "compress me, ".repeat(200)).unwrap();
    let root_arg = root.display().to_string();
    let mut s = start(&all_local(&["--compress", "--root", &root_arg]));
    let http = ready(&mut s)
        .into_iter()
        .find(|(n, _)| n == "http")
        .unwrap()
        .1;
    let mut c = TcpStream::connect(http).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    c.write_all(
        b"HEAD /a.txt HTTP/1.1\r\nHost: x\r\nAccept-Encoding: gzip\r\nConnection: close\r\n\r\n",
    )
    .unwrap();
    let mut head = String::new();
    c.read_to_string(&mut head).unwrap();
    drop(s);
    let _ = std::fs::remove_dir_all(&root);
    assert!(head.starts_with("HTTP/1.1 200 "), "{head}");
    assert!(head.contains("\r\nContent-Encoding: gzip\r\n"), "{head}");
    assert!(head.contains("\r\nVary: Accept-Encoding\r\n"), "{head}");
}
