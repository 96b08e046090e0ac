//! `--metrics`: each service's Prometheus endpoint, scraped with a real parser (Python's
//! `prometheus_client`, its OpenMetrics parser: the format the `prometheus-client` crate
//! writes), under every model, with exact counts: HTTP responses by status class and the exact
//! bytes each way, chat members and messages delivered, FTP logins by outcome and transfers by
//! direction and outcome. fork and prefork count in child processes, so these prove the
//! counters are shared across processes. Then `bingfa serve --metrics`: one endpoint, every
//! service's samples labelled `service`. And the endpoint's own HTTP: 404, 405, 400, and no
//! process left behind.
//!
//! Counts are read once the server has settled: the scrape is repeated (every 100 ms, at most
//! [`SETTLE`]) until it shows what the test did, then compared whole.

#[path = "support/procs.rs"]
mod procs;
#[path = "support/tools.rs"]
mod tools;

use bingfa_net::Model;
use bingfa_testkit::{model_args, workers, LineClient, ServerProc};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_bingfa");
const READY: Duration = Duration::from_secs(30);
/// How long the counters may take to show what a test did.
const SETTLE: Duration = Duration::from_secs(15);

/// Parses a scrape with `prometheus_client`'s OpenMetrics parser (it rejects what is not the
/// format: a missing `# EOF`, a family split in two, a bad name) and prints one line per
/// sample: `TYPE NAME {labels as JSON} VALUE`, the type being its family's.
const PARSE: &str = r#"
import json, sys
from prometheus_client.openmetrics.parser import text_string_to_metric_families
for fam in text_string_to_metric_families(sys.stdin.read()):
    for s in fam.samples:
        print(fam.type, s.name, json.dumps(s.labels, sort_keys=True), repr(s.value))
"#;

/// One scrape: `(sample name, labels) → (family type, value)`.
type Scrape = BTreeMap<(String, BTreeMap<String, String>), (String, f64)>;

fn have_parser() -> bool {
    let ok = Command::new("python3")
        .args(["-c", "import prometheus_client.openmetrics.parser"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        tools::missing(
            "metrics",
            "python3's prometheus_client",
            "scripts/deps.sh install",
        );
    }
    ok
}

/// `GET path` on `addr`: (status line, headers, body).
fn http_get(addr: SocketAddr, request: &str) -> (String, String, Vec<u8>) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(request.as_bytes()).unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a response head");
    let head = String::from_utf8(raw[..split].to_vec()).unwrap();
    let (status, headers) = head.split_once("\r\n").unwrap_or((&head, ""));
    (status.into(), headers.into(), raw[split + 4..].to_vec())
}

fn scrape(metrics: SocketAddr) -> Scrape {
    let (status, headers, body) = http_get(
        metrics,
        "GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert!(
        headers.contains("Content-Type: application/openmetrics-text; version=1.0.0"),
        "{headers}"
    );
    let mut py = Command::new("python3")
        .args(["-c", PARSE])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    py.stdin.take().unwrap().write_all(&body).unwrap();
    let out = py.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "the OpenMetrics parser refused the scrape: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&body)
    );
    let mut m = Scrape::new();
    for line in String::from_utf8(out.stdout).unwrap().lines() {
        let mut it = line.splitn(3, ' ');
        let (ty, name, rest) = (it.next().unwrap(), it.next().unwrap(), it.next().unwrap());
        let (labels, value) = rest.rsplit_once(' ').unwrap();
        let labels: BTreeMap<String, String> = serde_json::from_str(labels).unwrap();
        m.insert((name.into(), labels), (ty.into(), value.parse().unwrap()));
    }
    m
}

/// The value of sample `name` with `labels` (plus `service`), checking its family's type.
fn value(m: &Scrape, service: &str, name: &str, ty: &str, labels: &[(&str, &str)]) -> u64 {
    let mut l: BTreeMap<String, String> = labels
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    l.insert("service".into(), service.into());
    let (t, v) = m
        .get(&(name.to_string(), l.clone()))
        .unwrap_or_else(|| panic!("no sample {name} {l:?} in {m:#?}"));
    assert_eq!(t, ty, "{name}'s type");
    *v as u64
}

/// Scrape until `want(scrape)` is what `got(scrape)` says, within [`SETTLE`]; returns the last
/// scrape, having asserted equality (so a miss shows both sides).
fn settle<T: PartialEq + std::fmt::Debug>(
    metrics: SocketAddr,
    want: &T,
    got: impl Fn(&Scrape) -> T,
) -> Scrape {
    let end = Instant::now() + SETTLE;
    loop {
        let m = scrape(metrics);
        let g = got(&m);
        if &g == want || Instant::now() > end {
            assert_eq!(&g, want, "after {SETTLE:?}; last scrape: {m:#?}");
            return m;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A private temporary directory, removed on drop.
struct Dir(PathBuf);

impl Dir {
    fn new(tag: &str) -> Dir {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let p = std::env::temp_dir().join(format!(
            "bingfa-metrics-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&p).unwrap();
        Dir(p)
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn start(model: Model, edge: bool, args: &[&str], services: &[&str]) -> ServerProc {
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .args(["--metrics", "127.0.0.1:0"])
        .args(model_args(model, edge))
        .args(["--workers", workers(model)])
        .stdin(Stdio::null())
        .stderr(Stdio::inherit());
    let mut all = vec!["metrics"];
    all.extend(services);
    ServerProc::spawn(cmd).listening_on(&all, READY)
}

/// Stops `server` (exit 0) and checks that nothing that mentions `tag` runs any more (the
/// metrics endpoint's process included).
fn stop_clean(mut server: ServerProc, tag: &str) {
    assert!(server.stop().success(), "exit status");
    let end = Instant::now() + Duration::from_secs(5);
    while !procs::processes_mentioning(tag).is_empty() {
        assert!(
            Instant::now() < end,
            "left running: {:?}",
            procs::processes_mentioning(tag)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

mod http {
    use super::*;

    /// Five 200s, a 404 and a 301 (a directory without its slash), one connection each: the
    /// counts by class, connections accepted and open, and the bytes each way exactly as the
    /// client sent and received them.
    pub(crate) fn counts(model: Model, edge: bool) {
        if !have_parser() {
            return;
        }
        let root = Dir::new("http");
        std::fs::write(root.0.join("a.txt"), "hello, metrics\n".repeat(100)).unwrap();
        std::fs::create_dir(root.0.join("sub")).unwrap();
        let tag = root.0.display().to_string();
        let server = start(
            model,
            edge,
            &["http", "serve", "--bind", "127.0.0.1:0", "--root", &tag],
            &["http"],
        );
        let (http, metrics) = (server.addr("http"), server.addr("metrics"));
        let (mut sent, mut received) = (0u64, 0u64);
        let mut get = |path: &str| {
            let req = format!("GET {path} HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n");
            let mut s = TcpStream::connect(http).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            s.write_all(req.as_bytes()).unwrap();
            let mut raw = Vec::new();
            s.read_to_end(&mut raw).unwrap();
            sent += req.len() as u64;
            received += raw.len() as u64;
            String::from_utf8_lossy(&raw[..12]).into_owned()
        };
        for _ in 0..5 {
            assert_eq!(get("/a.txt"), "HTTP/1.1 200");
        }
        assert_eq!(get("/nope"), "HTTP/1.1 404");
        assert_eq!(get("/sub"), "HTTP/1.1 301");
        let counts = |m: &Scrape| {
            let class = |c| {
                value(
                    m,
                    "http",
                    "bingfa_http_responses_total",
                    "counter",
                    &[("class", c)],
                )
            };
            let c = |n| value(m, "http", n, "counter", &[]);
            (
                [
                    class("1xx"),
                    class("2xx"),
                    class("3xx"),
                    class("4xx"),
                    class("5xx"),
                ],
                c("bingfa_connections_accepted_total"),
                value(m, "http", "bingfa_connections_open", "gauge", &[]),
                c("bingfa_connections_refused_total"),
                c("bingfa_received_bytes_total"),
                c("bingfa_sent_bytes_total"),
            )
        };
        assert!(received > 5 * 1500, "the bodies came: {received}");
        settle(metrics, &([0, 5, 1, 1, 0], 7, 0, 0, sent, received), counts);
        stop_clean(server, &tag);
    }

    /// `--max-connections 1`: one connection holds the place, the next is refused (a 503):
    /// accepted 1, open 1, refused 1; once the first leaves, open is 0.
    pub(crate) fn refused(model: Model, edge: bool) {
        if !have_parser() {
            return;
        }
        let root = Dir::new("refused");
        let tag = root.0.display().to_string();
        let server = start(
            model,
            edge,
            &[
                "http",
                "serve",
                "--bind",
                "127.0.0.1:0",
                "--root",
                &tag,
                "--max-connections",
                "1",
                // The first connection holds its place while the test looks.
                "--head-timeout",
                "120",
                "--idle-timeout",
                "120",
            ],
            &["http"],
        );
        let (http, metrics) = (server.addr("http"), server.addr("metrics"));
        let conns = |m: &Scrape| {
            let c = |n| value(m, "http", n, "counter", &[]);
            (
                c("bingfa_connections_accepted_total"),
                value(m, "http", "bingfa_connections_open", "gauge", &[]),
                c("bingfa_connections_refused_total"),
            )
        };
        let first = TcpStream::connect(http).unwrap();
        settle(metrics, &(1, 1, 0), conns);
        let mut second = TcpStream::connect(http).unwrap();
        second
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut raw = Vec::new();
        let _ = second.read_to_end(&mut raw);
        assert!(
            raw.starts_with(b"HTTP/1.1 503 "),
            "{:?}",
            String::from_utf8_lossy(&raw)
        );
        settle(metrics, &(1, 1, 1), conns);
        drop(first);
        settle(metrics, &(1, 0, 1), conns);
        stop_clean(server, &tag);
    }
}

mod chat {
    use super::*;

    /// Members join (three; one under `iterative`, which serves one at a time), the first
    /// sends `K` messages: the members gauge, messages, and deliveries == K × the others; then
    /// everyone quits and the gauge is back at zero.
    pub(crate) fn counts(model: Model, edge: bool) {
        const K: u64 = 4;
        if !have_parser() {
            return;
        }
        let tag = format!("chat-metrics-{}", std::process::id());
        let admin = std::env::temp_dir().join(format!("{tag}-{model}-{edge}.sock"));
        let admin_s = admin.display().to_string();
        let server = start(
            model,
            edge,
            &[
                "chat",
                "serve",
                "--bind",
                "127.0.0.1:0",
                "--admin-socket",
                &admin_s,
            ],
            &["chat"],
        );
        let (addr, metrics) = (server.addr("chat"), server.addr("metrics"));
        let n = if model.concurrent() { 3 } else { 1 };
        let mut members: Vec<LineClient> = Vec::new();
        for i in 0..n {
            let mut c = LineClient::connect(addr);
            c.until("* welcome");
            c.send(&format!("m{i}"));
            c.until("* you are");
            members.push(c);
        }
        // Everyone has seen everyone join before the messages, so each gets all K.
        for (i, c) in members.iter_mut().enumerate() {
            for j in i + 1..n {
                c.until(&format!("* m{j} joined"));
            }
        }
        for k in 0..K {
            members[0].send(&format!("hello {k}"));
        }
        for c in members.iter_mut().skip(1) {
            for k in 0..K {
                c.expect(&format!("m0: hello {k}"));
            }
        }
        let counts = |m: &Scrape| {
            (
                value(m, "chat", "bingfa_chat_members", "gauge", &[]),
                value(m, "chat", "bingfa_chat_messages_total", "counter", &[]),
                value(
                    m,
                    "chat",
                    "bingfa_chat_messages_delivered_total",
                    "counter",
                    &[],
                ),
                value(m, "chat", "bingfa_connections_open", "gauge", &[]),
                value(
                    m,
                    "chat",
                    "bingfa_connections_accepted_total",
                    "counter",
                    &[],
                ),
            )
        };
        let n = n as u64;
        settle(metrics, &(n, K, K * (n - 1), n, n), counts);
        for mut c in members {
            c.send("/quit");
            c.until("* bye");
            c.expect_closed();
        }
        settle(metrics, &(0, K, K * (n - 1), 0, n), counts);
        stop_clean(server, &admin_s);
    }
}

mod ftp {
    use super::*;

    /// A control connection, read reply by reply.
    struct Control {
        r: BufReader<TcpStream>,
        w: TcpStream,
    }

    impl Control {
        fn connect(addr: SocketAddr) -> Control {
            let s = TcpStream::connect(addr).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
            let mut c = Control {
                r: BufReader::new(s.try_clone().unwrap()),
                w: s,
            };
            assert!(c.reply().starts_with("220"));
            c
        }

        /// One reply (a multi-line one whole); its last line.
        fn reply(&mut self) -> String {
            let mut line = String::new();
            self.r.read_line(&mut line).unwrap();
            if line.as_bytes().get(3) == Some(&b'-') {
                let end = format!("{} ", &line[..3]);
                loop {
                    line.clear();
                    self.r.read_line(&mut line).unwrap();
                    if line.starts_with(&end) || line.is_empty() {
                        break;
                    }
                }
            }
            line.trim_end().to_string()
        }

        fn cmd(&mut self, c: &str) -> String {
            self.w.write_all(format!("{c}\r\n").as_bytes()).unwrap();
            self.reply()
        }

        fn pasv(&mut self) -> TcpStream {
            let r = self.cmd("PASV");
            assert!(r.starts_with("227"), "{r}");
            let inner = &r[r.find('(').unwrap() + 1..r.find(')').unwrap()];
            let n: Vec<u16> = inner.split(',').map(|x| x.parse().unwrap()).collect();
            let ip = std::net::Ipv4Addr::new(n[0] as u8, n[1] as u8, n[2] as u8, n[3] as u8);
            let s = TcpStream::connect((ip, n[4] * 256 + n[5])).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
            s
        }
    }

    /// A failed login, a good one, an upload and a download: exact counts of each outcome,
    /// and the bytes of both transfers.
    pub(crate) fn counts(model: Model, edge: bool) {
        if !have_parser() {
            return;
        }
        let root = Dir::new("ftp");
        let tag = root.0.display().to_string();
        let server = start(
            model,
            edge,
            &[
                "ftp",
                "serve",
                "--bind",
                "127.0.0.1:0",
                "--root",
                &tag,
                "--anonymous",
                "write",
                "--login-delay-ms",
                "10",
            ],
            &["ftp"],
        );
        let (addr, metrics) = (server.addr("ftp"), server.addr("metrics"));
        let mut c = Control::connect(addr);
        assert!(c.cmd("USER nobody").starts_with("331"));
        assert!(c.cmd("PASS wrong").starts_with("530"));
        assert!(c.cmd("USER anonymous").starts_with("331"));
        assert!(c.cmd("PASS me@example.com").starts_with("230"));
        assert!(c.cmd("TYPE I").starts_with("200"));
        let body: Vec<u8> = (0..50_000u32).map(|i| (i % 251) as u8).collect();
        let mut data = c.pasv();
        assert!(c.cmd("STOR up.bin").starts_with("150"));
        data.write_all(&body).unwrap();
        drop(data);
        assert!(c.reply().starts_with("226"));
        assert_eq!(std::fs::read(root.0.join("up.bin")).unwrap(), body);
        let mut data = c.pasv();
        assert!(c.cmd("RETR up.bin").starts_with("150"));
        let mut got = Vec::new();
        data.read_to_end(&mut got).unwrap();
        assert_eq!(got, body);
        assert!(c.reply().starts_with("226"));
        let n = body.len() as u64;
        let counts = |m: &Scrape| {
            let login = |o| {
                value(
                    m,
                    "ftp",
                    "bingfa_ftp_logins_total",
                    "counter",
                    &[("outcome", o)],
                )
            };
            let xfer = |d, o| {
                value(
                    m,
                    "ftp",
                    "bingfa_ftp_transfers_total",
                    "counter",
                    &[("direction", d), ("outcome", o)],
                )
            };
            let bytes = |d| {
                value(
                    m,
                    "ftp",
                    "bingfa_ftp_transfer_bytes_total",
                    "counter",
                    &[("direction", d)],
                )
            };
            // Both data connections' bytes are in the service's bytes too.
            let more = |name| value(m, "ftp", name, "counter", &[]) > n;
            (
                [login("ok"), login("failed"), login("refused")],
                [xfer("up", "complete"), xfer("up", "aborted")],
                [xfer("down", "complete"), xfer("down", "aborted")],
                [bytes("up"), bytes("down")],
                [
                    more("bingfa_received_bytes_total"),
                    more("bingfa_sent_bytes_total"),
                ],
            )
        };
        settle(
            metrics,
            &([1, 1, 0], [1, 0], [1, 0], [n, n], [true, true]),
            counts,
        );
        assert!(c.cmd("QUIT").starts_with("221"));
        stop_clean(server, &tag);
    }
}

bingfa_testkit::for_each_model! {
    #[test] fn http_counts() { http::counts(M, E) }
    #[test] fn http_refused() { http::refused(M, E) }
    #[test] fn chat_counts() { chat::counts(M, E) }
    #[test] fn ftp_counts() { ftp::counts(M, E) }
}

/// The endpoint answers `GET /metrics` only: another path is 404, another method 405, a
/// request that is not HTTP 400; HEAD has the head alone.
#[test]
fn endpoint_answers_metrics_only() {
    let root = Dir::new("endpoint");
    let tag = root.0.display().to_string();
    let server = start(
        Model::default(),
        false,
        &["http", "serve", "--bind", "127.0.0.1:0", "--root", &tag],
        &["http"],
    );
    let m = server.addr("metrics");
    let status = |req: &str| http_get(m, req).0;
    assert_eq!(
        status("GET / HTTP/1.1\r\nHost: h\r\n\r\n"),
        "HTTP/1.1 404 Not Found"
    );
    assert_eq!(
        status("GET /metrics/x HTTP/1.1\r\nHost: h\r\n\r\n"),
        "HTTP/1.1 404 Not Found"
    );
    assert_eq!(
        status("POST /metrics HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n"),
        "HTTP/1.1 405 Method Not Allowed"
    );
    assert_eq!(status("hello there\r\n\r\n"), "HTTP/1.1 400 Bad Request");
    let (st, headers, body) = http_get(m, "HEAD /metrics HTTP/1.1\r\nHost: h\r\n\r\n");
    assert_eq!(st, "HTTP/1.1 200 OK");
    assert!(headers.contains("Content-Length: "), "{headers}");
    assert!(body.is_empty());
    // A head that never ends is cut at the limit, not read forever.
    let mut s = TcpStream::connect(m).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let _ = s.write_all(&vec![b'a'; 8192]);
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    assert!(
        raw.starts_with(b"HTTP/1.1 400 "),
        "{:?}",
        String::from_utf8_lossy(&raw)
    );
    stop_clean(server, &tag);
}

/// `bingfa serve --metrics`: one `metrics` ready line (the services' own endpoints are
/// private), and one endpoint with each service's samples under its `service` label, counted
/// under prefork (worker processes) for HTTP.
#[test]
fn serve_merges_every_service() {
    if !have_parser() {
        return;
    }
    let root = Dir::new("serve");
    std::fs::write(root.0.join("index.html"), "hi\n").unwrap();
    let tag = root.0.display().to_string();
    let mut cmd = Command::new(BIN);
    cmd.args([
        "serve",
        "--root",
        &tag,
        "--model",
        "prefork",
        "--workers",
        "2",
    ])
    .args(["--http-bind", "127.0.0.1:0", "--chat-bind", "127.0.0.1:0"])
    .args(["--web-bind", "127.0.0.1:0", "--ftp-bind", "127.0.0.1:0"])
    .args(["--metrics", "127.0.0.1:0"])
    .stdin(Stdio::null())
    .stderr(Stdio::inherit());
    let server =
        ServerProc::spawn(cmd).listening_on(&["chat", "web", "ftp", "http", "metrics"], READY);
    let count = |s: &str| server.listening().iter().filter(|(n, _)| n == s).count();
    assert_eq!(count("metrics"), 1, "{:?}", server.listening());
    let metrics = server.addr("metrics");
    for _ in 0..3 {
        let (st, _, _) = http_get(
            server.addr("http"),
            "GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n",
        );
        assert_eq!(st, "HTTP/1.1 200 OK");
    }
    let (_, _, _) = http_get(
        server.addr("http"),
        "GET /missing HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n",
    );
    let mut member = LineClient::connect(server.addr("chat"));
    member.until("* welcome");
    member.send("solo");
    member.until("* you are");
    let mut ftp = TcpStream::connect(server.addr("ftp")).unwrap();
    ftp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut greeting = [0u8; 3];
    ftp.read_exact(&mut greeting).unwrap();
    assert_eq!(&greeting, b"220");
    let counts = |m: &Scrape| {
        let acc = |s| value(m, s, "bingfa_connections_accepted_total", "counter", &[]);
        (
            value(
                m,
                "http",
                "bingfa_http_responses_total",
                "counter",
                &[("class", "2xx")],
            ),
            value(
                m,
                "http",
                "bingfa_http_responses_total",
                "counter",
                &[("class", "4xx")],
            ),
            acc("http"),
            value(m, "chat", "bingfa_chat_members", "gauge", &[]),
            acc("chat"),
            value(m, "ftp", "bingfa_connections_open", "gauge", &[]),
            value(
                m,
                "ftp",
                "bingfa_ftp_logins_total",
                "counter",
                &[("outcome", "ok")],
            ),
        )
    };
    let m = settle(metrics, &(3, 1, 4, 1, 1, 1, 0), counts);
    let services: std::collections::BTreeSet<&str> = m
        .keys()
        .filter(|(n, _)| n == "bingfa_connections_open")
        .map(|(_, l)| l["service"].as_str())
        .collect();
    assert_eq!(services, ["chat", "ftp", "http"].into_iter().collect());
    drop(member);
    drop(ftp);
    stop_clean(server, &tag);
}
