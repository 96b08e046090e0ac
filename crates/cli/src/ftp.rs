//! `bingfa ftp serve|passwd`: the FTP server under any concurrency model, and the hash maker
//! for its users file; the client subcommands (`ls`, `get`, `put`, `shell`) live in
//! `ftp_client.rs`. Only argument parsing lives here; the protocol is `bingfa_ftp`.

use anyhow::{bail, Context as _};
use bingfa_ftp::{Anonymous, FtpConfig, FtpProtocol, TlsPolicy};
use bingfa_net::tls::TlsProtocol;
use bingfa_net::{Config, Model};
use std::io::{BufRead, IsTerminal};
use std::net::{IpAddr, SocketAddr};
use std::ops::RangeInclusive;
use std::path::PathBuf;
use std::time::Duration;

/// Arguments of `bingfa ftp`.
#[derive(clap::Args)]
pub(crate) struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Subcommand)]
enum Command {
    /// Run the FTP server.
    Serve(Box<ServeArgs>),
    /// Print the argon2id hash of a password for the users file (read from the terminal twice,
    /// or one line from stdin when it is not a terminal).
    Passwd,
    /// The client: `ls`, `get`, `put`, `shell` (see `bingfa ftp ls --help`).
    #[command(flatten)]
    Client(crate::ftp_client::ClientCommand),
}

#[derive(clap::Args, Debug)]
pub(crate) struct ServeArgs {
    /// Control connection address (`127.0.0.1:0` picks a free port; the ready line tells which).
    #[arg(long, default_value = "127.0.0.1:2121")]
    bind: SocketAddr,
    /// What anonymous users see.
    #[arg(long, default_value = ".")]
    root: PathBuf,
    /// Concurrency model: iterative, fork, thread, threadpool, prefork, select, poll, epoll, async.
    #[arg(long, default_value_t = Model::default())]
    model: Model,
    /// Threads or processes for the models that use them (0 = a default).
    #[arg(long, default_value_t = 0)]
    workers: usize,
    /// Edge-triggered epoll (with `--model epoll`).
    #[arg(long)]
    edge_triggered: bool,
    /// The users file (TOML: `[[user]]` name, password = "$argon2id$…", home, write).
    #[arg(long)]
    users: Option<PathBuf>,
    /// Anonymous access (`anonymous` or `ftp`, any password): off, read, upload (read, and
    /// store new files only: no replacing, appending, deleting, renaming or mkdir), or write.
    #[arg(long, default_value = "off")]
    anonymous: Anonymous,
    /// Serve hidden names (starting with `.`, e.g. `.git`, `.env`); without it they are left
    /// out of listings (even `LIST -a`) and answered as missing, as `bingfa http serve` does.
    #[arg(long)]
    hidden: bool,
    /// Passive data ports, `A-B` (a random free one per transfer).
    #[arg(long, value_parser = parse_range)]
    passive_ports: Option<RangeInclusive<u16>>,
    /// The address passive replies announce (a server behind NAT).
    #[arg(long)]
    passive_address: Option<IpAddr>,
    /// Clients at once; more get 421.
    #[arg(long)]
    max_clients: Option<usize>,
    /// Clients at once from one IP address; more get 421 (0 = no limit).
    #[arg(long, default_value_t = 32)]
    max_per_ip: usize,
    /// Failed logins from one address within --ban-window that ban it (its logins and new
    /// connections get 421); 0 = never.
    #[arg(long, default_value_t = 10)]
    ban_after: u32,
    /// Seconds over which --ban-after failures are counted.
    #[arg(long, default_value_t = 60.0)]
    ban_window: f64,
    /// Seconds of the first ban; each repeat doubles it (up to a day).
    #[arg(long, default_value_t = 60.0)]
    ban_time: f64,
    /// Password checks one address may have queued or running at once (1-8); more wait, so a
    /// flood from one address cannot starve everyone else's logins. A process runs one check
    /// more than this at once, each keeping its argon2 memory (19 MiB by default).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=8))]
    checks_per_ip: u32,
    /// Passive data ports waiting for their client at once, per client address (all sessions
    /// together), so one address cannot hold the whole --passive-ports range; more get 425.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..))]
    max_passive_per_ip: u16,
    /// Seconds of silence before a session is closed with 421 (more than 0).
    #[arg(long, default_value_t = 300.0, value_parser = parse_idle)]
    idle_timeout: f64,
    /// Sync every upload to disk before its 226 (a 226 then survives a crash); by default the
    /// 226 means the file is complete and in place, as in vsftpd and ProFTPD.
    #[arg(long)]
    fsync_uploads: bool,
    /// Milliseconds a failed login waits before its 530 (the last one given counts).
    #[arg(
        long,
        default_value_t = 1000,
        hide = true,
        overrides_with = "login_delay_ms"
    )]
    login_delay_ms: u64,
    /// FTP over TLS (RFC 4217: AUTH TLS, PBSZ, PROT) with this certificate or a self-signed
    /// one; plaintext sessions still work unless --tls-required.
    #[command(flatten)]
    tls: crate::tls::TlsArgs,
    /// Serve Prometheus metrics (`GET /metrics`, OpenMetrics text) on this address; the ready
    /// line `metrics listening on IP:PORT` tells which port `:0` got.
    #[arg(long, value_name = "ADDR")]
    metrics: Option<SocketAddr>,
    /// Refuse logins before AUTH TLS (530) and clear data connections (PROT C, 534; a transfer
    /// without PROT P, 521).
    #[arg(long)]
    tls_required: bool,
    /// Also listen here for implicit FTPS: TLS from the first byte (`ftps://` in curl and
    /// lftp; port 990 by convention). Needs a certificate.
    #[arg(long, value_name = "ADDR")]
    tls_bind: Option<SocketAddr>,
    /// Whether a protected data connection must resume the control connection's TLS session
    /// (else 522), so that nobody else on the client's address can take it: `required` (as
    /// vsftpd's require_ssl_reuse) or `optional`, for clients that cannot resume.
    #[arg(long, default_value = "required", value_parser = ["required", "optional"])]
    tls_session_reuse: String,
    /// `--config FILE`, `--print-config`: read before these arguments are (see `config`).
    #[command(flatten)]
    _config: crate::config::ConfigArgs,
    /// Log every download and upload to this file when it ends, in vsftpd's xferlog format
    /// (`man 5 xferlog`); appended by every process, reopened on SIGUSR1.
    #[arg(long, value_name = "PATH")]
    xferlog: Option<PathBuf>,
    /// Diagnostic log: --log-format, --log-level.
    #[command(flatten)]
    pub(crate) log: crate::logs::LogArgs,
}

/// A positive number of seconds: 0 would close every session at its first command, and
/// "never" is not offered (an abandoned session would hold its slot for good).
fn parse_idle(s: &str) -> Result<f64, String> {
    let v: f64 = s.trim().parse().map_err(|e| format!("{s}: {e}"))?;
    if !(v > 0.0 && Duration::try_from_secs_f64(v).is_ok()) {
        return Err(format!(
            "{s}: the idle timeout must be a number of seconds above 0 (the default is 300)"
        ));
    }
    Ok(v)
}

fn parse_range(s: &str) -> Result<RangeInclusive<u16>, String> {
    let (a, b) = s.split_once('-').ok_or("expected A-B")?;
    let (a, b): (u16, u16) = (
        a.trim().parse().map_err(|e| format!("{a}: {e}"))?,
        b.trim().parse().map_err(|e| format!("{b}: {e}"))?,
    );
    if a == 0 || a > b {
        return Err(format!("{s}: not a port range (1 ≤ A ≤ B)"));
    }
    Ok(a..=b)
}

impl Args {
    /// The log flags of the serve subcommand (the others log with the defaults).
    pub(crate) fn log_args(&self) -> Option<&crate::logs::LogArgs> {
        match &self.command {
            Command::Serve(a) => Some(&a.log),
            _ => None,
        }
    }
}

pub(crate) fn run(args: Args) -> anyhow::Result<()> {
    match args.command {
        Command::Serve(a) => serve(*a),
        Command::Passwd => passwd(),
        Command::Client(c) => crate::ftp_client::run(c),
    }
}

fn serve(a: ServeArgs) -> anyhow::Result<()> {
    let mut cfg = FtpConfig::new(&a.root);
    cfg.users = a.users.clone();
    cfg.anonymous = a.anonymous;
    cfg.passive_ports = a.passive_ports.clone();
    cfg.passive_address = a.passive_address;
    cfg.login_delay = Duration::from_millis(a.login_delay_ms);
    cfg.fsync_uploads = a.fsync_uploads;
    cfg.hidden = a.hidden;
    cfg.xferlog = a.xferlog.clone();
    cfg.guard = bingfa_ftp::guard::GuardConfig {
        ban_after: a.ban_after,
        ban_window: secs(a.ban_window, "--ban-window")?,
        ban_time: secs(a.ban_time, "--ban-time")?,
        checks_per_ip: a.checks_per_ip,
    };
    if cfg.users.is_none() && cfg.anonymous == Anonymous::Off {
        tracing::warn!("no --users and --anonymous off: nobody can log in");
    }
    // No ALPN: FTP clients offer none, and one that offers something else still gets FTP.
    let tls = a.tls.config(&[])?;
    cfg.tls = match (&tls, a.tls_required) {
        (None, true) => bail!("--tls-required needs --tls-cert/--tls-key or --tls-self-signed"),
        (None, false) => TlsPolicy::Off,
        (Some(_), false) => TlsPolicy::Offered,
        (Some(_), true) => TlsPolicy::Required,
    };
    if a.tls_bind.is_some() && tls.is_none() {
        bail!("--tls-bind needs --tls-cert/--tls-key or --tls-self-signed");
    }
    let proto = FtpProtocol::new(cfg).context("cannot start the FTP server")?;
    let mut config = Config::new("ftp", a.bind);
    if let Some(addr) = a.tls_bind {
        // Listener 1: implicit FTPS.
        config.also.push(("ftps".into(), addr));
    }
    config.model = a.model;
    config.workers = a.workers;
    config.edge_triggered = a.edge_triggered;
    config.limits.idle_timeout = Some(
        Duration::try_from_secs_f64(a.idle_timeout)
            .with_context(|| format!("--idle-timeout: not a duration: {}", a.idle_timeout))?,
    );
    if let Some(n) = a.max_clients {
        config.limits.max_connections = n;
    }
    config.limits.max_per_ip = (a.max_per_ip > 0).then_some(a.max_per_ip);
    config.limits.max_passive_per_ip = Some(a.max_passive_per_ip.into());
    // Before the server binds or starts a thread (see `metrics`).
    let _exporter = crate::metrics::start_service(a.metrics, "ftp", &mut config.tally, || {
        Ok(crate::metrics::Protocol::Ftp(proto.stats()))
    })?;
    tracing::info!(root = %a.root.display(), model = %a.model, tls = ?tls.is_some(), "starting ftp server");
    match tls {
        None => bingfa_net::serve(config, proto),
        Some(tls) => {
            let implicit = if a.tls_bind.is_some() {
                vec![1]
            } else {
                vec![]
            };
            let tls = tls.require_data_session_reuse(a.tls_session_reuse == "required");
            bingfa_net::serve(config, TlsProtocol::upgradable(proto, tls, implicit))
        }
    }
    .context("ftp server failed")?;
    Ok(())
}

fn secs(v: f64, flag: &str) -> anyhow::Result<Duration> {
    Duration::try_from_secs_f64(v).with_context(|| format!("{flag}: not a duration: {v}"))
}

fn passwd() -> anyhow::Result<()> {
    let pw = if std::io::stdin().is_terminal() {
        let a = rpassword::prompt_password("Password: ")?;
        let b = rpassword::prompt_password("Again: ")?;
        if a != b {
            bail!("the passwords differ");
        }
        a
    } else {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)?;
        line.trim_end_matches(['\r', '\n']).to_string()
    };
    if pw.is_empty() {
        bail!("empty password");
    }
    println!("{}", bingfa_ftp::users::hash(&pw));
    Ok(())
}
