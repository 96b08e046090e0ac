//! `--metrics` for HTTP, under every model: responses by status class and the exact bytes each
//! way, and refused connections, scraped with a real OpenMetrics parser (see `metrics.rs`).

#[path = "support/openmetrics.rs"]
mod openmetrics;
#[path = "support/procs.rs"]
mod procs;
#[path = "support/tools.rs"]
mod tools;

use bingfa_net::Model;
use openmetrics::*;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

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

bingfa_testkit::for_each_model! {
    #[test] fn http_counts() { http::counts(M, E) }
    #[test] fn http_refused() { http::refused(M, E) }
}
