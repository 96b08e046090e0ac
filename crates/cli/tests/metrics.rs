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
//!
//! This file: the endpoint's own HTTP and `bingfa serve --metrics`; each service's counts under
//! every model are in `metrics_http.rs`, `metrics_chat.rs` and `metrics_ftp.rs`, the shared
//! scraping in `support/openmetrics.rs`.

#[path = "support/openmetrics.rs"]
mod openmetrics;
#[path = "support/procs.rs"]
mod procs;
#[path = "support/tools.rs"]
mod tools;

use bingfa_net::Model;
use bingfa_testkit::{LineClient, ServerProc};
use openmetrics::*;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::Duration;

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
