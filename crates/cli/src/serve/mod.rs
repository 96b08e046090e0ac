//! `bingfa serve`: the main job. The HTTP server, the chat room (line and web faces) and the
//! FTP server, in one process tree under one `--model`.
//!
//! Each service runs in a child process of this one (`bingfa http|chat|ftp serve`, re-executed
//! from this binary) rather than as threads of one process, because `fork` and `prefork` must
//! not be started from a multi-threaded process, and each service keeps its own limits (the chat
//! room has no idle timeout, HTTP does). This process is a small supervisor: it starts the
//! chat room and the FTP server first, so the landing page it writes can show their real
//! addresses (any of them may be port 0), then the HTTP server; it relays every ready line; on
//! SIGINT/SIGTERM it stops them all and exits 0 once they have; if one dies, it stops the others
//! and says which. Children get `PR_SET_PDEATHSIG`, so killing the supervisor outright does not
//! leave services behind.
//!
//! Announcements reach the chat room the way `chat serve` takes them, because it is `chat
//! serve` that takes them: `--admin-socket` is handed to it, and when this console is a
//! terminal the chat service shares it as its stdin, so its console reader turns each line
//! typed here into `* admin: TEXT` (the other services never read stdin).
//!
//! The pieces: `plan.rs` derives each service's command line (and makes the shared self-signed
//! certificate), `supervise.rs` starts the services, relays their ready lines, passes signals
//! on and stops them, `site.rs` is the built-in landing site.

mod plan;
mod site;
mod supervise;

use anyhow::bail;
use bingfa_net::Model;
use plan::{has_flag, last_value, plan, SelfSignedFiles};
use site::Site;
use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use supervise::{on_hup, on_signal, on_usr1, start, stop, supervise, Service};

/// Arguments of `bingfa serve`.
#[derive(clap::Args, Debug)]
pub(crate) struct Args {
    /// The HTTP server's address.
    #[arg(long, visible_alias = "bind", default_value = "127.0.0.1:8080")]
    http_bind: SocketAddr,
    /// The chat room's line protocol (terminal clients, netcat).
    #[arg(long, default_value = "127.0.0.1:7000")]
    chat_bind: SocketAddr,
    /// The chat room's web page and WebSocket.
    #[arg(long, default_value = "127.0.0.1:7080")]
    web_bind: SocketAddr,
    /// The FTP server's control connection.
    #[arg(long, default_value = "127.0.0.1:2121")]
    ftp_bind: SocketAddr,
    /// Directory to serve over HTTP and FTP (default: a small built-in site).
    #[arg(long)]
    root: Option<PathBuf>,
    /// Concurrency model of every service.
    #[arg(long, default_value_t = Model::default(), value_parser = crate::model_arg::ModelParser)]
    model: Model,
    /// Edge-triggered epoll for every service (with `--model epoll`).
    #[arg(long)]
    edge_triggered: bool,
    /// Threads or processes per service, for the models that use them (0 = a default).
    #[arg(long, default_value_t = 0)]
    workers: usize,
    /// FTP users file (TOML, see `bingfa ftp passwd`).
    #[arg(long)]
    ftp_users: Option<PathBuf>,
    /// Anonymous FTP: `off`, `read`, `upload` (new files only) or `write` (default: `read` on
    /// the built-in site, `off` with `--root`).
    #[arg(long, value_parser = ["off", "read", "upload", "write"])]
    ftp_anonymous: Option<String>,
    /// Serve hidden names (`.git`, `.env`, anything starting with a dot) over HTTP and FTP
    /// alike; without it every face of the root leaves them out and answers them as missing.
    #[arg(long)]
    hidden: bool,
    /// Compress text files over HTTP on the fly (as `bingfa http serve --compress`).
    #[arg(long)]
    compress: bool,
    /// TLS for the HTTP server, the chat's web face and FTP (AUTH TLS offered, plaintext FTP
    /// still served); `--tls-self-signed` makes one certificate at start, shared by all, and
    /// says where it is for clients to trust.
    #[command(flatten)]
    tls: crate::tls::TlsArgs,
    /// The chat room's backplane, `redis://HOST:PORT[/DB]`: one room with every chat server on it.
    #[arg(long)]
    backplane: Option<String>,
    /// The chat room's name on the backplane.
    #[arg(long, requires = "backplane")]
    room: Option<String>,
    /// The chat room's connections from one address that may wait to choose a name at once.
    #[arg(long, default_value_t = 16)]
    chat_max_per_ip: usize,
    /// Let pages from this origin open the chat room's WebSocket too (repeatable).
    #[arg(long, value_name = "ORIGIN")]
    chat_allow_origin: Vec<String>,
    /// The chat room's admin socket (as `chat serve --admin-socket`): `bingfa chat announce
    /// --admin-socket PATH TEXT` announces to the room. Lines typed on this console (when it
    /// is a terminal) are announcements too.
    #[arg(long, value_name = "PATH")]
    admin_socket: Option<PathBuf>,
    /// The HTTP server's access log (as `http serve --access-log`; `-`: this console). A
    /// SIGUSR1 sent to `serve` is passed on to the HTTP service, which reopens it.
    #[arg(long, value_name = "PATH")]
    http_access_log: Option<PathBuf>,
    /// Its format: `combined` (nginx's) or `json`.
    #[arg(long, default_value = "combined", value_parser = ["combined", "json"], requires = "http_access_log")]
    http_access_log_format: String,
    /// Add `Name: value` to every HTTP response (repeatable).
    #[arg(long, value_name = "NAME: VALUE")]
    http_header: Vec<String>,
    /// `Strict-Transport-Security: max-age=SECONDS` on HTTPS responses.
    #[arg(long, value_name = "SECONDS")]
    hsts: Option<u64>,
    /// Add `includeSubDomains` to the HSTS header.
    #[arg(long, requires = "hsts")]
    hsts_include_subdomains: bool,
    /// HTTP listings of directories without `index.html`: `on` or `off` (403).
    #[arg(long, default_value = "on", value_parser = ["on", "off"])]
    http_listing: String,
    /// Serve Prometheus metrics of every service (`GET /metrics`, OpenMetrics text, each
    /// sample labelled `service`) on this address; ready line `metrics listening on IP:PORT`.
    #[arg(long, value_name = "ADDR")]
    metrics: Option<SocketAddr>,
    /// `--config FILE`, `--print-config`: read before these arguments are (see `config`).
    #[command(flatten)]
    _config: crate::config::ConfigArgs,
    /// Log the text of every chat message (as `chat serve --log-messages`).
    #[arg(long)]
    chat_log_messages: bool,
    /// The FTP server's transfer log (as `ftp serve --xferlog`, vsftpd's xferlog format). A
    /// SIGUSR1 sent to `serve` is passed on to the FTP service, which reopens it.
    #[arg(long, value_name = "PATH")]
    ftp_xferlog: Option<PathBuf>,
    /// Diagnostic log of every service: --log-format, --log-level (passed to each).
    #[command(flatten)]
    pub(crate) log: crate::logs::LogArgs,
}

pub(crate) fn run(a: Args) -> anyhow::Result<()> {
    if crate::config::printing() {
        // `--print-config`: what each service would be given, nothing started. The built-in
        // site's directory is made at start; `root` is then not printed (so never this name).
        let root = a.root.clone().unwrap_or_else(|| "<built-in site>".into());
        let on_site = a.root.is_none() && !crate::config::service_sets("ftp", "root");
        let anonymous = a
            .ftp_anonymous
            .clone()
            .unwrap_or_else(|| if on_site { "read" } else { "off" }.into());
        crate::config::print_serve(plan(&a, &root, &anonymous, None));
        return Ok(());
    }
    // SAFETY: the handler only stores to an atomic.
    unsafe {
        libc::signal(libc::SIGINT, on_signal as *const () as libc::sighandler_t);
        libc::signal(libc::SIGTERM, on_signal as *const () as libc::sighandler_t);
        libc::signal(libc::SIGUSR1, on_usr1 as *const () as libc::sighandler_t);
        libc::signal(libc::SIGHUP, on_hup as *const () as libc::sighandler_t);
    }
    let (root, site) = match &a.root {
        Some(r) => (r.clone(), None),
        None => {
            let s = Site::new()?;
            (s.0.clone(), Some(s))
        }
    };
    // Anonymous reading is the default only where FTP serves the built-in site, not a root the
    // configuration file gives the FTP service (`[ftp] root`).
    let ftp_on_site = site.is_some() && !crate::config::service_sets("ftp", "root");
    let anonymous = a
        .ftp_anonymous
        .clone()
        .unwrap_or_else(|| if ftp_on_site { "read" } else { "off" }.into());
    if ftp_on_site && anonymous != "off" {
        tracing::warn!("FTP: the built-in site is open to anonymous users ({anonymous}-only)");
    }
    let made = if a.tls.tls_self_signed {
        Some(SelfSignedFiles::make()?)
    } else {
        None
    };
    // Over TLS the HTTP server and the chat page announce `https` and `web-tls`.
    let tls = a.tls.tls_self_signed || a.tls.tls_cert.is_some();
    let [chat, ftp, http] = plan(&a, &root, &anonymous, made.as_ref());
    let mut services: Vec<Service> = Vec::new();
    // The services' own metrics endpoints, in start order.
    let mut endpoints: Vec<SocketAddr> = Vec::new();
    let result = (|| -> anyhow::Result<()> {
        // The console: the chat service reads it (as `chat serve` reads its own) when it is
        // a terminal; piped or closed stdin stays with no one, as under `chat serve`.
        let console = if std::io::stdin().is_terminal() {
            Stdio::inherit()
        } else {
            Stdio::null()
        };
        let chat = chat.argv();
        let listening = start(
            &mut services,
            &mut endpoints,
            "chat",
            console,
            &chat,
            &["chat", if tls { "web-tls" } else { "web" }],
            &[
                last_value(&chat, "--bind", a.chat_bind),
                last_value(&chat, "--web", a.web_bind),
            ],
        )?;
        let (chat_addr, web_addr) = (listening[0], listening[1]);

        let ftp = ftp.argv();
        let ftp_addr = start(
            &mut services,
            &mut endpoints,
            "ftp",
            Stdio::null(),
            &ftp,
            &["ftp"],
            &[last_value(&ftp, "--bind", a.ftp_bind)],
        )?[0];

        if let Some(site) = &site {
            site.write_index(a.model, tls, chat_addr, web_addr, ftp_addr)?;
        }
        let http_name = if tls { "https" } else { "http" };
        let http = http.argv();
        start(
            &mut services,
            &mut endpoints,
            "http",
            Stdio::null(),
            &http,
            &[http_name],
            &[last_value(&http, "--bind", a.http_bind)],
        )?;
        // The services with a log to reopen on SIGUSR1 (the others have no handler: the
        // signal's default action would end them), whether the flag came from serve's command
        // line or from the configuration file.
        let mut reopen = Vec::new();
        if has_flag(&http, "--access-log") {
            reopen.push("http");
        }
        if has_flag(&ftp, "--xferlog") {
            reopen.push("ftp");
        }
        if let Some(addr) = a.metrics {
            crate::metrics::start_merged(addr, std::mem::take(&mut endpoints))?;
        }
        supervise(&mut services, tls, &reopen)
    })();
    let clean = stop(&mut services);
    drop(site);
    drop(made);
    result?;
    if !clean {
        bail!("a service did not stop cleanly");
    }
    Ok(())
}
