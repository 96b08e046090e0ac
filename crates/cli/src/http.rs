//! `bingfa http serve` (and the top-level `bingfa serve`): the static HTTP server with the
//! `/_stats` route, under any concurrency model, over TLS with `--tls-cert/--tls-key` or
//! `--tls-self-signed`. Only argument parsing lives here.

use anyhow::Context as _;
use bingfa_http::access_log::{AccessLog, Format};
use bingfa_http::HttpServer;
use bingfa_net::tls::TlsProtocol;
use bingfa_net::{Config, Model};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Arguments of `bingfa http`.
#[derive(clap::Args)]
pub(crate) struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Subcommand)]
enum Command {
    /// Serve a directory over HTTP/1.1.
    Serve(ServeArgs),
}

/// How to serve: where, what, under which model.
#[derive(clap::Args, Debug)]
pub(crate) struct ServeArgs {
    /// Address to listen on (`127.0.0.1:0` picks a free port; the ready line tells which).
    #[arg(long, default_value = "127.0.0.1:8000")]
    bind: SocketAddr,
    /// Directory to serve.
    #[arg(long, default_value = ".")]
    root: PathBuf,
    /// Concurrency model.
    #[arg(long, default_value_t = Model::default(), value_parser = crate::model_arg::ModelParser)]
    model: Model,
    /// Threads or processes for the models that use them (0 = number of CPUs).
    #[arg(long, default_value_t = 0)]
    workers: usize,
    /// Edge-triggered epoll (with `--model epoll`).
    #[arg(long)]
    edge_triggered: bool,
    /// Seconds a client has to send a request's head and body before it gets 408.
    #[arg(long, default_value_t = 10.0)]
    head_timeout: f64,
    /// Seconds an idle keep-alive connection is kept.
    #[arg(long, default_value_t = 60.0)]
    idle_timeout: f64,
    /// Connections served at once; more get 503.
    #[arg(long)]
    max_connections: Option<usize>,
    /// Serve and list hidden files and directories (names starting with `.`, e.g. `.git`);
    /// without it they are 404 and left out of listings.
    #[arg(long)]
    hidden: bool,
    /// A `Cache-Control` value added to file responses, e.g. `max-age=3600`.
    #[arg(long, value_name = "VALUE")]
    cache_control: Option<String>,
    /// Log every request to this file (`-`: standard output), as nginx's `access_log`;
    /// buffered per process, written at least once a second and at exit, reopened on SIGUSR1.
    #[arg(long, value_name = "PATH")]
    access_log: Option<PathBuf>,
    /// The access log's format: `combined` (nginx's) or `json` (one object per line).
    #[arg(long, default_value = "combined", value_parser = ["combined", "json"], requires = "access_log")]
    access_log_format: String,
    /// Seconds a line may wait in a process's buffer before it is written (nginx's `flush=`).
    #[arg(
        long,
        value_name = "SECONDS",
        default_value_t = 1.0,
        requires = "access_log"
    )]
    access_log_flush: f64,
    /// Add `Name: value` to every response (repeatable), as nginx's `add_header ... always`.
    #[arg(long, value_name = "NAME: VALUE")]
    header: Vec<String>,
    /// Send `Strict-Transport-Security: max-age=SECONDS` over TLS (never over plain HTTP).
    #[arg(long, value_name = "SECONDS")]
    hsts: Option<u64>,
    /// Add `includeSubDomains` to the HSTS header.
    #[arg(long, requires = "hsts")]
    hsts_include_subdomains: bool,
    /// Directory listings for directories without `index.html`: `on`, or `off` (then 403, as
    /// nginx's `autoindex off`).
    #[arg(long, default_value = "on", value_parser = ["on", "off"])]
    listing: String,
    /// Compress text files (HTML, CSS, JS, JSON, SVG, plain text...) of 1 KiB and more on the
    /// fly with brotli, zstd or gzip, as the client accepts, into a cache in memory. `.br`,
    /// `.zst` and `.gz` siblings are served with or without it.
    #[arg(long)]
    compress: bool,
    /// The compressed bodies kept (per process), in MiB; least recently used go first.
    #[arg(long, value_name = "MIB", default_value_t = 64, requires = "compress")]
    compress_cache_mib: u64,
    #[command(flatten)]
    tls: crate::tls::TlsArgs,
    /// Serve Prometheus metrics (`GET /metrics`, OpenMetrics text) on this address; the ready
    /// line `metrics listening on IP:PORT` tells which port `:0` got.
    #[arg(long, value_name = "ADDR")]
    metrics: Option<SocketAddr>,
    /// `--config FILE`, `--print-config`: read before these arguments are (see `config`).
    #[command(flatten)]
    _config: crate::config::ConfigArgs,
    /// Diagnostic log: --log-format, --log-level.
    #[command(flatten)]
    pub(crate) log: crate::logs::LogArgs,
}

impl Args {
    /// The log flags of the serve subcommand (the others log with the defaults).
    pub(crate) fn log_args(&self) -> Option<&crate::logs::LogArgs> {
        let Command::Serve(a) = &self.command;
        Some(&a.log)
    }
}

pub(crate) fn run(args: Args) -> anyhow::Result<()> {
    match args.command {
        Command::Serve(a) => serve(a),
    }
}

pub(crate) fn serve(a: ServeArgs) -> anyhow::Result<()> {
    let mut server =
        HttpServer::new(&a.root).with_context(|| format!("cannot serve {}", a.root.display()))?;
    server.stats_route("/_stats");
    server.limits_mut().head_timeout = secs(a.head_timeout, "--head-timeout")?;
    server.hidden(a.hidden);
    if let Some(cc) = a.cache_control {
        anyhow::ensure!(
            !cc.is_empty() && cc.bytes().all(|b| b == b'\t' || (b' '..=b'~').contains(&b)),
            "--cache-control: not a header value: {cc:?}"
        );
        server.cache_control(cc);
    }
    server.listing(a.listing == "on");
    for h in &a.header {
        let (n, v) = h
            .split_once(':')
            .with_context(|| format!("--header {h:?}: expected `Name: value`"))?;
        server
            .header(n, v)
            .with_context(|| format!("--header {h:?}"))?;
    }
    if let Some(secs) = a.hsts {
        server.hsts(secs, a.hsts_include_subdomains);
    }
    let log = match &a.access_log {
        Some(p) => {
            let format: Format = a
                .access_log_format
                .parse()
                .map_err(|e: String| anyhow::anyhow!(e))?;
            let log = AccessLog::open(p, format, secs(a.access_log_flush, "--access-log-flush")?)
                .with_context(|| format!("cannot open the access log {}", p.display()))?;
            server.access_log(log.clone());
            Some(log)
        }
        None => None,
    };

    if a.compress {
        anyhow::ensure!(
            (1..=1 << 20).contains(&a.compress_cache_mib),
            "--compress-cache-mib: between 1 and 1048576, not {}",
            a.compress_cache_mib
        );
        server.compress(a.compress_cache_mib << 20);
    }

    let mut config = Config::new("http", a.bind);
    config.model = a.model;
    config.workers = a.workers;
    config.edge_triggered = a.edge_triggered;
    config.limits.idle_timeout = Some(secs(a.idle_timeout, "--idle-timeout")?);
    if let Some(n) = a.max_connections {
        config.limits.max_connections = n;
    }
    // A plain-HTTP request to the HTTPS port gets a readable 400 (nginx's 497).
    let tls = a
        .tls
        .config(&[b"http/1.1"])?
        .map(|t| t.answer_plain_http(true));
    if a.hsts.is_some() && tls.is_none() {
        tracing::warn!("--hsts without TLS: the header is only ever sent over TLS");
    }
    // Before the server binds or starts a thread (see `metrics`).
    let _exporter = crate::metrics::start_service(a.metrics, "http", &mut config.tally, || {
        Ok(crate::metrics::Protocol::Http(server.stats()))
    })?;
    tracing::info!(root = %a.root.display(), model = %a.model, tls = tls.is_some(), "starting http server");
    let result = match tls {
        None => server.run(config),
        Some(tls) => {
            let workers = if config.model.uses_workers() {
                config.worker_count()
            } else {
                1
            };
            let protocol = server.into_protocol(config.model, workers);
            // Announced as `https listening on …`: the scheme a client needs.
            config.service = "https".into();
            bingfa_net::serve(config, TlsProtocol::new(protocol, tls))
        }
    };
    // What this process buffered (worker processes write theirs as they exit).
    if let Some(log) = log {
        log.flush();
    }
    result.context("http server failed")?;
    Ok(())
}

fn secs(v: f64, name: &str) -> anyhow::Result<Duration> {
    Duration::try_from_secs_f64(v).with_context(|| format!("{name}: not a duration: {v}"))
}
