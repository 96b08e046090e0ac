//! The `--metrics` tests' shared part: starting a server with its endpoint, scraping it
//! through Python's OpenMetrics parser, reading one sample, waiting for the counters to settle,
//! and stopping with nothing left running. Each `metrics*.rs` test file includes it.
#![allow(dead_code)] // each test binary uses its part

use crate::{procs, tools};
use bingfa_net::Model;
use bingfa_testkit::{model_args, workers, ServerProc};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

pub(crate) const BIN: &str = env!("CARGO_BIN_EXE_bingfa");
pub(crate) const READY: Duration = Duration::from_secs(30);
/// How long the counters may take to show what a test did.
pub(crate) const SETTLE: Duration = Duration::from_secs(15);

/// Parses a scrape with `prometheus_client`'s OpenMetrics parser (it rejects what is not the
/// format: a missing `# EOF`, a family split in two, a bad name) and prints one line per
/// sample: `TYPE NAME {labels as JSON} VALUE`, the type being its family's.
pub(crate) const PARSE: &str = r#"
import json, sys
from prometheus_client.openmetrics.parser import text_string_to_metric_families
for fam in text_string_to_metric_families(sys.stdin.read()):
    for s in fam.samples:
        print(fam.type, s.name, json.dumps(s.labels, sort_keys=True), repr(s.value))
"#;

/// One scrape: `(sample name, labels) → (family type, value)`.
pub(crate) type Scrape = BTreeMap<(String, BTreeMap<String, String>), (String, f64)>;

pub(crate) fn have_parser() -> bool {
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
pub(crate) fn http_get(addr: SocketAddr, request: &str) -> (String, String, Vec<u8>) {
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

pub(crate) fn scrape(metrics: SocketAddr) -> Scrape {
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
pub(crate) fn value(
    m: &Scrape,
    service: &str,
    name: &str,
    ty: &str,
    labels: &[(&str, &str)],
) -> u64 {
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
pub(crate) fn settle<T: PartialEq + std::fmt::Debug>(
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
pub(crate) struct Dir(pub(crate) PathBuf);

impl Dir {
    pub(crate) fn new(tag: &str) -> Dir {
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

pub(crate) fn start(model: Model, edge: bool, args: &[&str], services: &[&str]) -> ServerProc {
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
pub(crate) fn stop_clean(mut server: ServerProc, tag: &str) {
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
