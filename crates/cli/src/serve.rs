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

use crate::config::Flags;
use anyhow::{bail, Context as _};
use bingfa_net::Model;
use std::io::{BufRead, BufReader, IsTerminal, Write};
use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// How long a service has to print its ready line.
const START: Duration = Duration::from_secs(30);
/// How long the services have to stop after SIGTERM before they are killed.
const GRACE: Duration = Duration::from_secs(15);

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

/// The TLS flags as the services take them: the given files, or those of the self-signed
/// certificate made in `made`.
fn tls_flags(t: &crate::tls::TlsArgs, made: Option<&SelfSignedFiles>) -> Vec<String> {
    let mut v = Vec::new();
    let files = match made {
        Some(m) => Some((&m.cert, &m.key)),
        None => t.tls_cert.as_ref().zip(t.tls_key.as_ref()),
    };
    if let Some((c, k)) = files {
        v.extend(["--tls-cert".into(), c.display().to_string()]);
        v.extend(["--tls-key".into(), k.display().to_string()]);
    }
    if let (Some(o), None) = (&t.tls_ocsp, made) {
        v.extend(["--tls-ocsp".into(), o.display().to_string()]);
    }
    v
}

/// `--tls-self-signed` under `serve`: one certificate for every service (each making its own
/// would show a browser two certificates to trust), in a private directory removed at exit.
struct SelfSignedFiles {
    dir: PathBuf,
    cert: PathBuf,
    key: PathBuf,
}

impl SelfSignedFiles {
    fn make() -> anyhow::Result<Self> {
        use std::os::unix::fs::DirBuilderExt;
        let dir = std::env::temp_dir().join(format!("bingfa-tls-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&dir)
            .with_context(|| format!("creating {}", dir.display()))?;
        let (cert, key, made) =
            bingfa_net::tls::TlsConfig::write_self_signed(&["localhost", "127.0.0.1"], &dir)
                .context("cannot make a self-signed certificate")?;
        eprintln!(
            "tls: self-signed certificate for localhost, SHA-256 fingerprint {}",
            made.fingerprint
        );
        eprintln!("tls: public key pin sha256//{}", made.spki_sha256);
        eprintln!(
            "tls: trust it with `curl --cacert {}` (removed when serve stops)",
            cert.display()
        );
        Ok(SelfSignedFiles { dir, cert, key })
    }
}

impl Drop for SelfSignedFiles {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A started service.
struct Service {
    name: &'static str,
    child: Child,
}

static STOP: AtomicBool = AtomicBool::new(false);
/// SIGUSR1 came (logrotate): the HTTP service is to reopen its access log, the FTP service
/// its transfer log.
static REOPEN: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    STOP.store(true, Ordering::SeqCst);
}

extern "C" fn on_usr1(_: libc::c_int) {
    REOPEN.store(true, Ordering::SeqCst);
}

/// SIGHUP came: every service is to re-read its certificate (each reloads on its own SIGHUP).
static RELOAD: AtomicBool = AtomicBool::new(false);

extern "C" fn on_hup(_: libc::c_int) {
    RELOAD.store(true, Ordering::SeqCst);
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

/// Each service's command line: what `serve` derives from its own options `a` (`root` is the
/// directory served, `made` the self-signed certificate), each flag tagged with the options it
/// comes from (`Flags::by`) so the configuration file's service sections slot in between.
fn plan(a: &Args, root: &Path, anonymous: &str, made: Option<&SelfSignedFiles>) -> [Flags; 3] {
    let common = |svc: &'static str| -> Flags {
        let mut v = Flags::new(svc);
        v.by(&["model"])
            .extend(["--model".into(), a.model.to_string()]);
        v.by(&["workers"])
            .extend(["--workers".into(), a.workers.to_string()]);
        if a.edge_triggered {
            v.by(&["edge_triggered"]).push("--edge-triggered".into());
        }
        if a.hidden && svc != "chat" {
            v.by(&["hidden"]).push("--hidden".into());
        }
        v.by(&["log_format", "log_level"]).extend(a.log.to_flags());
        if a.metrics.is_some() {
            // Each service's own endpoint, private: this process serves the merge.
            v.by(&["metrics"])
                .extend(["--metrics".into(), "127.0.0.1:0".into()]);
        }
        v
    };
    const TLS: &[&str] = &["tls_cert", "tls_key", "tls_ocsp", "tls_self_signed"];
    let mut chat = common("chat");
    chat.by(&["chat_bind"])
        .extend(["--bind".into(), a.chat_bind.to_string()]);
    chat.by(&["web_bind"])
        .extend(["--web".into(), a.web_bind.to_string()]);
    chat.by(TLS).extend(tls_flags(&a.tls, made));
    if let Some(url) = &a.backplane {
        chat.by(&["backplane"])
            .extend(["--backplane".into(), url.clone()]);
    }
    if let Some(room) = &a.room {
        chat.by(&["room"]).extend(["--room".into(), room.clone()]);
    }
    chat.by(&["chat_max_per_ip"])
        .extend(["--max-per-ip".into(), a.chat_max_per_ip.to_string()]);
    if a.chat_log_messages {
        chat.by(&["chat_log_messages"])
            .push("--log-messages".into());
    }
    for o in &a.chat_allow_origin {
        chat.by(&["chat_allow_origin"])
            .extend(["--allow-origin".into(), o.clone()]);
    }
    if let Some(path) = &a.admin_socket {
        chat.by(&["admin_socket"])
            .extend(["--admin-socket".into(), path.display().to_string()]);
    }
    let mut ftp = common("ftp");
    ftp.by(&["ftp_bind"])
        .extend(["--bind".into(), a.ftp_bind.to_string()]);
    ftp.by(&["root"])
        .extend(["--root".into(), root.display().to_string()]);
    ftp.by(&["ftp_anonymous"])
        .extend(["--anonymous".into(), anonymous.to_string()]);
    if let Some(u) = &a.ftp_users {
        ftp.by(&["ftp_users"])
            .extend(["--users".into(), u.display().to_string()]);
    }
    if let Some(p) = &a.ftp_xferlog {
        ftp.by(&["ftp_xferlog"])
            .extend(["--xferlog".into(), p.display().to_string()]);
    }
    ftp.by(TLS).extend(tls_flags(&a.tls, made));
    let mut http = common("http");
    http.by(&["http_bind"])
        .extend(["--bind".into(), a.http_bind.to_string()]);
    http.by(&["root"])
        .extend(["--root".into(), root.display().to_string()]);
    if a.compress {
        http.by(&["compress"]).push("--compress".into());
    }
    http.by(TLS).extend(tls_flags(&a.tls, made));
    if let Some(p) = &a.http_access_log {
        http.by(&["http_access_log"])
            .extend(["--access-log".into(), p.display().to_string()]);
        http.by(&["http_access_log_format"]).extend([
            "--access-log-format".into(),
            a.http_access_log_format.clone(),
        ]);
    }
    for h in &a.http_header {
        http.by(&["http_header"])
            .extend(["--header".into(), h.clone()]);
    }
    if let Some(secs) = a.hsts {
        http.by(&["hsts"])
            .extend(["--hsts".into(), secs.to_string()]);
        if a.hsts_include_subdomains {
            http.by(&["hsts_include_subdomains"])
                .push("--hsts-include-subdomains".into());
        }
    }
    http.by(&["http_listing"])
        .extend(["--listing".into(), a.http_listing.clone()]);
    [chat, ftp, http]
}

/// Whether a service's command line gives `flag` (`--flag VALUE` or `--flag=VALUE`).
fn has_flag(argv: &[String], flag: &str) -> bool {
    argv.iter()
        .any(|w| w == flag || w.strip_prefix(flag).is_some_and(|r| r.starts_with('=')))
}

/// The address a service is given with `flag` (`--bind ADDR` or `--bind=ADDR`, the last one):
/// the configuration file's section may have replaced `serve`'s own, and an error names it.
fn last_value(argv: &[String], flag: &str, or: SocketAddr) -> SocketAddr {
    let mut found = None;
    for (i, w) in argv.iter().enumerate() {
        if w == flag {
            found = argv.get(i + 1).and_then(|v| v.parse().ok());
        } else if let Some(v) = w.strip_prefix(flag).and_then(|r| r.strip_prefix('=')) {
            found = v.parse().ok();
        }
    }
    found.unwrap_or(or)
}

/// Start `bingfa ARGS` as service `name` with `stdin`, relay its ready lines (one per
/// `services` entry, in that order) and return the announced addresses. A service started
/// with `--metrics` announces its private endpoint first: kept in `endpoints`, not relayed.
fn start(
    services: &mut Vec<Service>,
    endpoints: &mut Vec<SocketAddr>,
    name: &'static str,
    stdin: Stdio,
    args: &[String],
    expect: &[&str],
    binds: &[SocketAddr],
) -> anyhow::Result<Vec<SocketAddr>> {
    let exe = std::env::current_exe().context("finding this binary")?;
    let mut cmd = Command::new(exe);
    cmd.args(args).stdin(stdin).stdout(Stdio::piped());
    // SAFETY: prctl is async-signal-safe. The service dies with the supervisor.
    unsafe {
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM, 0, 0, 0);
            Ok(())
        });
    }
    let mut child = cmd
        .spawn()
        .with_context(|| format!("starting the {name} service"))?;
    let out = child.stdout.take().expect("piped");
    services.push(Service { name, child });
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            // Relay everything the service prints (but its private metrics endpoint: the one
            // `metrics` line is the supervisor's); the supervisor parses the ready lines.
            if !line.starts_with("metrics listening on ") {
                println!("{line}");
            }
            let _ = std::io::stdout().flush();
            let _ = tx.send(line);
        }
    });
    let where_ = binds
        .iter()
        .map(|b| b.to_string())
        .collect::<Vec<_>>()
        .join(" and ");
    let mut addrs = Vec::new();
    let end = Instant::now() + START;
    let metrics = args.iter().any(|a| a == "--metrics");
    let mut endpoint: Option<SocketAddr> = None;
    while addrs.len() < expect.len() || (metrics && endpoint.is_none()) {
        let svc = services.last_mut().expect("pushed above");
        if let Ok(Some(st)) = svc.child.try_wait() {
            bail!("the {name} service could not start on {where_} ({st}); see its error above");
        }
        if Instant::now() > end {
            bail!("the {name} service did not become ready on {where_} within {START:?}");
        }
        if STOP.load(Ordering::SeqCst) {
            bail!("interrupted while starting the {name} service");
        }
        let Ok(line) = rx.recv_timeout(Duration::from_millis(50)) else {
            continue;
        };
        if let Some(addr) = line.strip_prefix("metrics listening on ") {
            endpoint = Some(addr.trim().parse().context("a ready line's address")?);
            continue;
        }
        let Some(want) = expect.get(addrs.len()) else {
            continue;
        };
        if let Some(addr) = line.strip_prefix(&format!("{want} listening on ")) {
            addrs.push(addr.trim().parse().context("a ready line's address")?);
        }
    }
    endpoints.extend(endpoint);
    Ok(addrs)
}

/// Wait until asked to stop (Ok) or until a service ends by itself (Err naming it). SIGHUP
/// is passed on to every service when they serve TLS (each reloads its certificate files);
/// without TLS they have no SIGHUP handler, so it is only logged.
fn supervise(services: &mut [Service], tls: bool, reopen: &[&str]) -> anyhow::Result<()> {
    loop {
        if STOP.load(Ordering::SeqCst) {
            return Ok(());
        }
        if REOPEN.swap(false, Ordering::SeqCst) {
            for s in services.iter().filter(|s| reopen.contains(&s.name)) {
                // SAFETY: signalling our own child, which has not been reaped.
                unsafe { libc::kill(s.child.id() as i32, libc::SIGUSR1) };
            }
        }
        if RELOAD.swap(false, Ordering::SeqCst) {
            if !tls {
                tracing::info!("SIGHUP: no certificate to reload (serving without TLS)");
            }
            for s in services.iter().filter(|_| tls) {
                // SAFETY: signalling our own child, which has not been reaped.
                unsafe { libc::kill(s.child.id() as i32, libc::SIGHUP) };
            }
        }
        for s in services.iter_mut() {
            if let Ok(Some(st)) = s.child.try_wait() {
                bail!("the {} service stopped by itself ({st})", s.name);
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// SIGTERM every service still running, wait up to the grace period, SIGKILL what is left.
/// True if every service exited 0 (or had already been reported).
fn stop(services: &mut [Service]) -> bool {
    for s in services.iter_mut() {
        if matches!(s.child.try_wait(), Ok(None)) {
            // SAFETY: signalling our own child, which has not been reaped.
            unsafe { libc::kill(s.child.id() as i32, libc::SIGTERM) };
        }
    }
    let end = Instant::now() + GRACE;
    let mut clean = true;
    for s in services.iter_mut() {
        let st: Option<ExitStatus> = loop {
            match s.child.try_wait() {
                Ok(Some(st)) => break Some(st),
                Ok(None) if Instant::now() < end => std::thread::sleep(Duration::from_millis(20)),
                _ => break None,
            }
        };
        match st {
            Some(st) if st.success() => {}
            Some(st) => {
                tracing::warn!("the {} service ended with {st}", s.name);
                clean = false;
            }
            None => {
                tracing::warn!(
                    "the {} service did not stop within {GRACE:?}; killed",
                    s.name
                );
                let _ = s.child.kill();
                let _ = s.child.wait();
                clean = false;
            }
        }
    }
    clean
}

/// The built-in site, in a private temporary directory removed at exit.
struct Site(PathBuf);

const INDEX: &str = include_str!("site/index.html");

impl Site {
    fn new() -> anyhow::Result<Site> {
        let dir = std::env::temp_dir().join(format!("bingfa-site-{}", std::process::id()));
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        // Readable by the services whatever user they run as; nothing secret in it.
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755))?;
        std::fs::write(
            dir.join("README.txt"),
            "This is bingfa's built-in site: the landing page (index.html) and this file.\n\
             Serve your own directory with `bingfa serve --root DIR`.\n",
        )?;
        Ok(Site(dir))
    }

    fn write_index(
        &self,
        model: Model,
        tls: bool,
        chat: SocketAddr,
        web: SocketAddr,
        ftp: SocketAddr,
    ) -> anyhow::Result<()> {
        let page = INDEX
            .replace("{{MODEL}}", &model.to_string())
            .replace(
                "{{WEB_URL}}",
                &format!("{}://{web}/", if tls { "https" } else { "http" }),
            )
            .replace("{{CHAT_ADDR}}", &chat.to_string())
            .replace("{{CHAT_HOST}}", &chat.ip().to_string())
            .replace("{{CHAT_PORT}}", &chat.port().to_string())
            .replace("{{FTP_ADDR}}", &ftp.to_string())
            .replace("{{FTP_HOST}}", &ftp.ip().to_string())
            .replace("{{FTP_PORT}}", &ftp.port().to_string());
        write_atomically(&self.0.join("index.html"), page.as_bytes())
    }
}

fn write_atomically(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)?;
    Ok(())
}

impl Drop for Site {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
