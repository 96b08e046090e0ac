//! `bingfa chat serve|announce`: the group chat room and its admin tool. Only argument
//! parsing, the console and the admin client live here; the room is `bingfa_chat`.

use anyhow::{bail, Context as _};
use bingfa_chat::server::{self, ServeOptions};
use bingfa_chat::RoomConfig;
use bingfa_net::Model;
use std::io::{BufRead, BufReader, IsTerminal, Write};
use std::net::SocketAddr;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::time::Duration;

/// Arguments of `bingfa chat`.
#[derive(clap::Args)]
pub(crate) struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Subcommand)]
enum Command {
    /// Run the chat room (line protocol on --bind, web page on --web).
    Serve(Box<ServeArgs>),
    /// Send one announcement through a running server's admin socket.
    Announce(AnnounceArgs),
    /// Join a room from the terminal.
    Join(crate::chat_join::Args),
}

#[derive(clap::Args, Debug)]
pub(crate) struct ServeArgs {
    /// Address of the line protocol (`127.0.0.1:0` picks a free port; the ready line tells which).
    #[arg(long, default_value = "127.0.0.1:7000")]
    bind: SocketAddr,
    /// Also serve the web page and its WebSocket on this address.
    #[arg(long)]
    web: Option<SocketAddr>,
    /// Also serve the line protocol over TLS on this address (with --tls-cert/--tls-key or
    /// --tls-self-signed; e.g. `openssl s_client -quiet -connect ADDR` is a member).
    #[arg(long)]
    tls_bind: Option<SocketAddr>,
    /// Concurrency model: iterative, fork, thread, threadpool, prefork, select, poll, epoll, async.
    #[arg(long, default_value_t = Model::default())]
    model: Model,
    /// Threads or processes for the models that use them (0 = a default).
    #[arg(long, default_value_t = 0)]
    workers: usize,
    /// Edge-triggered epoll (with `--model epoll`).
    #[arg(long)]
    edge_triggered: bool,
    /// A Unix-domain socket (mode 0600) that accepts `announce TEXT` lines from this user
    /// or root; without a value, `$XDG_RUNTIME_DIR/bingfa/chat.sock` (or a private
    /// `$TMPDIR/bingfa-UID/` directory), which `chat announce` uses by default.
    #[arg(long, value_name = "PATH")]
    #[allow(clippy::option_option)]
    admin_socket: Option<Option<PathBuf>>,
    /// Lines per second per member; 0 = unlimited.
    #[arg(long, default_value_t = 5)]
    rate: u32,
    /// Lines a member may send at once before --rate applies (default 2 × rate).
    #[arg(long)]
    burst: Option<u32>,
    /// Longest line in bytes.
    #[arg(long, default_value_t = 1024)]
    max_line: usize,
    /// Members at once.
    #[arg(long, default_value_t = 1000)]
    max_members: usize,
    /// Seconds of silence before a member's TCP connection is probed (keepalive).
    #[arg(long, default_value_t = 60)]
    keepalive: u64,
    /// Seconds a new connection has to choose a name before it is closed (members themselves
    /// never time out).
    #[arg(long, default_value_t = 20.0)]
    name_timeout: f64,
    /// Connections from one address that may wait to choose a name at once (all of them
    /// together are held to a quarter of the connection cap).
    #[arg(long, default_value_t = 16)]
    max_per_ip: usize,
    /// Let pages from this origin (`https://host[:port]`) open the room's WebSocket too;
    /// repeatable. The page's own origin is always allowed.
    #[arg(long, value_name = "ORIGIN")]
    allow_origin: Vec<String>,
    /// Seconds the web face waits for a request head (and, with TLS, the handshake before it),
    /// and for the next request on a kept-alive page connection.
    #[arg(long, default_value_t = 10.0)]
    head_timeout: f64,
    /// TLS for the --web face (https:// and wss://) and the --tls-bind line port; --bind
    /// stays plain.
    #[command(flatten)]
    tls: crate::tls::TlsArgs,
    /// Serve Prometheus metrics (`GET /metrics`, OpenMetrics text) on this address; the ready
    /// line `metrics listening on IP:PORT` tells which port `:0` got.
    #[arg(long, value_name = "ADDR")]
    metrics: Option<SocketAddr>,
    /// Share the room with every server on this Redis: `redis://HOST:PORT[/DB]`.
    #[arg(long)]
    backplane: Option<String>,
    /// The room's name on the backplane (servers with the same name are one room).
    #[arg(long, default_value = "lobby", requires = "backplane")]
    room: String,
    /// `--config FILE`, `--print-config`: read before these arguments are (see `config`).
    #[command(flatten)]
    _config: crate::config::ConfigArgs,
    /// Log the text of every message (by default only joins, leaves, evictions, refusals
    /// and announcements are logged, never what members say).
    #[arg(long)]
    log_messages: bool,
    /// Diagnostic log: --log-format, --log-level.
    #[command(flatten)]
    pub(crate) log: crate::logs::LogArgs,
}

#[derive(clap::Args, Debug)]
pub(crate) struct AnnounceArgs {
    /// The server's admin socket (default: the one `chat serve --admin-socket` makes without
    /// a path).
    #[arg(long)]
    admin_socket: Option<PathBuf>,
    /// What to announce (the words are joined with spaces).
    #[arg(required = true)]
    text: Vec<String>,
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
        Command::Announce(a) => announce(a),
        Command::Join(a) => crate::chat_join::run(a),
    }
}

fn serve(a: ServeArgs) -> anyhow::Result<()> {
    if a.max_line == 0 || a.max_members == 0 || a.max_per_ip == 0 {
        bail!("--max-line, --max-members and --max-per-ip must be at least 1");
    }
    if let Some(bad) = a
        .allow_origin
        .iter()
        .find(|o| !bingfa_chat::web::origin::valid_origin(o))
    {
        bail!("--allow-origin {bad:?}: expected an origin, http(s)://HOST[:PORT]");
    }
    let secs = |flag: &str, s: f64| -> anyhow::Result<Duration> {
        if !(s > 0.0 && s.is_finite()) {
            bail!("{flag} must be a positive number of seconds");
        }
        Ok(Duration::from_secs_f64(s))
    };
    let mut opts = ServeOptions::new(a.bind);
    opts.web = a.web;
    opts.tls_bind = a.tls_bind;
    opts.admin_socket = a
        .admin_socket
        .map(|p| p.unwrap_or_else(bingfa_chat::admin::default_socket));
    opts.model = a.model;
    opts.workers = a.workers;
    opts.edge_triggered = a.edge_triggered;
    opts.keepalive = Duration::from_secs(a.keepalive.max(1));
    opts.backplane = a.backplane;
    opts.room_name = a.room;
    opts.room = RoomConfig {
        max_line: a.max_line,
        rate: a.rate,
        burst: a.burst.unwrap_or(a.rate.saturating_mul(2)),
        max_members: a.max_members,
        name_timeout: secs("--name-timeout", a.name_timeout)?,
        head_timeout: secs("--head-timeout", a.head_timeout)?,
        max_per_ip: a.max_per_ip,
        allow_origins: a.allow_origin.into(),
        log_messages: a.log_messages,
        ..RoomConfig::default()
    };
    // Before the server binds or starts a thread (see `metrics`).
    let _exporter = crate::metrics::start_service(a.metrics, "chat", &mut opts.tally, || {
        let stats = bingfa_chat::ChatStats::new().context("--metrics: shared memory")?;
        opts.stats = Some(stats.clone());
        Ok(crate::metrics::Protocol::Chat(stats))
    })?;
    // The web face answers plain HTTP with a readable 400; the line port (`not_http`) doesn't.
    match a
        .tls
        .config(&[b"http/1.1"])?
        .map(|t| t.answer_plain_http(true))
    {
        None => run_room(
            server::bind(&opts).context("cannot start the chat room")?,
            &opts,
        ),
        Some(tls) => run_room(
            server::bind_tls(&opts, tls).context("cannot start the chat room")?,
            &opts,
        ),
    }
}

fn run_room<P: bingfa_net::Protocol>(
    server: bingfa_net::Server<P>,
    opts: &ServeOptions,
) -> anyhow::Result<()> {
    if std::io::stdin().is_terminal() {
        // The console: each line typed is an announcement. Under fork/prefork this thread
        // lives in the forking parent; it only reads stdin and publishes (a socket write).
        let injector = server.injector();
        std::thread::Builder::new()
            .name("console".into())
            .spawn(move || {
                for line in std::io::stdin().lock().lines() {
                    let Ok(line) = line else { break };
                    let text = line.trim();
                    if !text.is_empty() {
                        // The room's control rule holds for the operator too.
                        if let Err(e) = bingfa_chat::input::check_controls(text) {
                            eprintln!("announce: refused: {e}");
                        } else if let Err(e) = server::announce(&injector, text) {
                            eprintln!("announce: {e}");
                        }
                    }
                }
            })?;
    }
    tracing::info!(model = %opts.model, "starting chat room");
    server.run().context("chat server failed")?;
    Ok(())
}

fn announce(a: AnnounceArgs) -> anyhow::Result<()> {
    use bingfa_chat::admin;
    let text = a.text.join(" ");
    if text.contains('\n') {
        bail!("an announcement is one line");
    }
    let path = match a.admin_socket {
        Some(p) => p,
        None => {
            let p = admin::default_socket();
            // The default directory must be ours, or someone else may be listening in it.
            if let Some(dir) = p.parent() {
                match admin::private_dir(dir, false) {
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => bail!(
                        "no chat server listens on the default admin socket {} (its directory \
                         does not exist): is `bingfa chat serve --admin-socket` running as \
                         this user?",
                        p.display()
                    ),
                    r => r.context("the default admin socket's directory")?,
                }
            }
            p
        }
    };
    let s = UnixStream::connect(&path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused => anyhow::anyhow!(
            "cannot connect to the admin socket ({e}): no chat server listens on {} (is \
             `bingfa chat serve --admin-socket` running?)",
            path.display()
        ),
        std::io::ErrorKind::PermissionDenied => anyhow::anyhow!(
            "cannot connect to the admin socket {} ({e}): it or its directory belongs to \
             another user; run as the server's user",
            path.display()
        ),
        _ => anyhow::anyhow!(
            "cannot connect to the admin socket {} ({e})",
            path.display()
        ),
    })?;
    // Before a byte goes out: is the listener the server's user (or root), or a squatter?
    if let Err(why) = admin::check_server(&s) {
        bail!(
            "refusing to announce through {}: {why}; another user may have taken the path",
            path.display()
        );
    }
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    let sent = (&s).write_all(format!("announce {text}\n").as_bytes());
    // Read the answer even if the write failed: a server that refused us said why first.
    let mut reply = String::new();
    let read = BufReader::new(&s).read_line(&mut reply);
    match (reply.trim_end(), sent, read) {
        ("* announced", Ok(()), _) => Ok(()),
        ("", Err(e), _) => bail!(
            "the chat server closed the admin connection before taking the announcement ({e})"
        ),
        ("", Ok(()), Err(e)) => bail!("no answer from the chat server: {e}"),
        ("", Ok(()), Ok(_)) => {
            bail!("the chat server closed the admin connection without an answer")
        }
        (other, _, _) => bail!(
            "the chat server refused: {}",
            other.trim_start_matches("! ").escape_debug()
        ),
    }
}
