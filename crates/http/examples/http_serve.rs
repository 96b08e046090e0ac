//! A stand-alone copy of `bingfa http serve` for the integration tests: Cargo builds examples
//! before running a package's tests, so the tests always run a fresh server without needing
//! the `bingfa` binary of another package. Arguments: `--bind ADDR --root DIR --model M
//! --workers N --edge-triggered --head-timeout SECS --idle-timeout SECS --max-connections N
//! --hidden --cache-control VALUE --compress --compress-cache BYTES --tls-cert PEM --tls-key PEM` (the last two as `bingfa http
//! serve` has them, through bingfa-net's `tls` feature, a dev-dependency: the tests run the same
//! suite over TLS), `--access-log PATH|- --access-log-format combined|json --access-log-flush SECS --header 'N: v'
//! --hsts SECS --hsts-include-subdomains --listing on|off`.

use bingfa_http::access_log::{AccessLog, Format};
use bingfa_http::{HttpServer, Response};
use bingfa_net::tls::{self, TlsConfig, TlsProtocol};
use bingfa_net::Config;
use std::path::Path;
use std::time::Duration;

fn main() {
    // A child started by re-exec (bingfa-mp's spawn) enters here and never returns.
    let _mp = bingfa_mp::init();
    let mut args = std::env::args().skip(1);
    let mut bind = "127.0.0.1:0".to_string();
    let mut root = ".".to_string();
    let mut model = String::from("epoll");
    let mut workers = 0usize;
    let mut head_timeout = 10.0f64;
    let mut idle_timeout = 60.0f64;
    let mut max_connections = None;
    let mut edge_triggered = false;
    let mut hidden = false;
    let mut compress = false;
    let mut compress_cache = bingfa_http::compress::DEFAULT_CACHE_BYTES;
    let mut cache_control = None;
    let (mut tls_cert, mut tls_key) = (None, None);
    let (mut access_log, mut log_format) = (None, Format::Combined);
    let mut log_flush = bingfa_http::access_log::FLUSH;
    let (mut headers, mut hsts, mut hsts_sub, mut listing) = (Vec::new(), None, false, true);
    while let Some(flag) = args.next() {
        if flag == "--edge-triggered" {
            edge_triggered = true;
            continue;
        }
        if flag == "--hsts-include-subdomains" {
            hsts_sub = true;
            continue;
        }
        if flag == "--hidden" {
            hidden = true;
            continue;
        }
        if flag == "--compress" {
            compress = true;
            continue;
        }
        let value = args
            .next()
            .unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--bind" => bind = value,
            "--root" => root = value,
            "--model" => model = value,
            "--workers" => workers = value.parse().expect("--workers"),
            "--head-timeout" => head_timeout = value.parse().expect("--head-timeout"),
            "--idle-timeout" => idle_timeout = value.parse().expect("--idle-timeout"),
            "--cache-control" => cache_control = Some(value),
            "--compress-cache" => compress_cache = value.parse().expect("--compress-cache"),
            "--tls-cert" => tls_cert = Some(value),
            "--tls-key" => tls_key = Some(value),
            "--access-log" => access_log = Some(value),
            "--access-log-format" => {
                log_format = value.parse().unwrap_or_else(|e: String| fail(&e))
            }
            "--access-log-flush" => {
                log_flush = Duration::from_secs_f64(value.parse().expect("--access-log-flush"))
            }
            "--header" => headers.push(value),
            "--hsts" => hsts = Some(value.parse::<u64>().expect("--hsts")),
            "--listing" => listing = value == "on",
            "--max-connections" => {
                max_connections = Some(value.parse().expect("--max-connections"))
            }
            _ => panic!("unknown flag {flag}"),
        }
    }
    let mut server = HttpServer::new(&root).expect("root");
    server.stats_route("/_stats");
    server.hidden(hidden);
    if compress {
        server.compress(compress_cache);
    }
    if let Some(cc) = cache_control {
        server.cache_control(cc);
    }
    server.listing(listing);
    for h in &headers {
        let (n, v) = h
            .split_once(':')
            .unwrap_or_else(|| fail("--header: Name: value"));
        server
            .header(n, v)
            .unwrap_or_else(|e| fail(&format!("--header: {e}")));
    }
    if let Some(secs) = hsts {
        server.hsts(secs, hsts_sub);
    }
    let log = access_log.map(|p| {
        AccessLog::open(Path::new(&p), log_format, log_flush)
            .unwrap_or_else(|e| fail(&format!("{p}: {e}")))
    });
    if let Some(log) = &log {
        server.access_log(log.clone());
    }
    server.get("/hello", |_| Response::text(200, "hello from a route\n"));
    server.post("/echo", |req| {
        Response::with_body(200, "application/octet-stream", req.body.clone())
    });
    server.limits_mut().head_timeout = Duration::from_secs_f64(head_timeout);
    let mut config = Config::new("http", bind.parse().expect("--bind"));
    config.model = model.parse().expect("--model");
    config.workers = workers;
    config.edge_triggered = edge_triggered;
    config.limits.idle_timeout = Some(Duration::from_secs_f64(idle_timeout));
    if let Some(n) = max_connections {
        config.limits.max_connections = n;
    }
    let result = match (tls_cert, tls_key) {
        (None, None) => server.run(config),
        (Some(cert), Some(key)) => {
            let tls = TlsConfig::from_pem_files(Path::new(&cert), Path::new(&key), &[b"http/1.1"])
                .unwrap_or_else(|e| fail(&e.to_string()));
            tls::install_sighup().unwrap_or_else(|e| fail(&e.to_string()));
            let workers = if config.model.uses_workers() {
                config.worker_count()
            } else {
                1
            };
            let protocol = server.into_protocol(config.model, workers);
            config.service = "https".into(); // announced as `https listening on …`
            bingfa_net::serve(config, TlsProtocol::new(protocol, tls))
        }
        _ => fail("--tls-cert and --tls-key go together"),
    };
    // Everything buffered is written before the process ends (a worker process does it at
    // its own exit).
    if let Some(log) = log {
        log.flush();
    }
    if let Err(e) = result {
        fail(&e.to_string());
    }
}

fn fail(why: &str) -> ! {
    eprintln!("http_serve: {why}");
    std::process::exit(1);
}
