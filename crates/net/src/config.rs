//! What a server is started with: the concurrency [`Model`], the worker count, and the
//! [`Limits`] every model enforces.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// A concurrency model: how connections are spread over processes, threads and event loops.
/// Parsed from `--model NAME`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Model {
    /// One connection at a time; others wait their turn.
    Iterative,
    /// A child process per connection, reaped without zombies.
    Fork,
    /// A thread per connection.
    Thread,
    /// `workers` threads serve connections that have work; a poller thread holds idle ones.
    ThreadPool,
    /// `workers` processes accept on a shared listener, each running an event loop.
    Prefork,
    /// One thread, `select(2)`, level-triggered.
    Select,
    /// One thread, `poll(2)`.
    Poll,
    /// One epoll loop per worker thread, each with its own SO_REUSEPORT listener.
    #[default]
    Epoll,
    /// Tokio tasks on a `workers`-thread runtime.
    Async,
    /// One io_uring per worker thread (completions instead of readiness calls), each with its
    /// own SO_REUSEPORT listener like `Epoll`.
    Uring,
}

impl Model {
    /// Every model, in the order the documentation lists them.
    pub const ALL: [Model; 10] = [
        Model::Iterative,
        Model::Fork,
        Model::Thread,
        Model::ThreadPool,
        Model::Prefork,
        Model::Select,
        Model::Poll,
        Model::Epoll,
        Model::Async,
        Model::Uring,
    ];

    /// The model's name on the command line (`--model NAME`) and in logs.
    pub fn name(self) -> &'static str {
        match self {
            Model::Iterative => "iterative",
            Model::Fork => "fork",
            Model::Thread => "thread",
            Model::ThreadPool => "threadpool",
            Model::Prefork => "prefork",
            Model::Select => "select",
            Model::Poll => "poll",
            Model::Epoll => "epoll",
            Model::Async => "async",
            Model::Uring => "uring",
        }
    }

    /// Whether `workers` means something for this model.
    pub fn uses_workers(self) -> bool {
        matches!(
            self,
            Model::ThreadPool | Model::Prefork | Model::Epoll | Model::Async | Model::Uring
        )
    }

    /// Whether it serves more than one connection at a time (`iterative` does not: a second
    /// client waits until the first leaves).
    pub fn concurrent(self) -> bool {
        self != Model::Iterative
    }

    /// Whether connections live in several processes (the hub then goes through the relay).
    pub fn multi_process(self) -> bool {
        matches!(self, Model::Fork | Model::Prefork)
    }
}

impl fmt::Display for Model {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A `--model` name that is none of [`Model::ALL`] (the name given).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown model {0:?}; expected one of: iterative, fork, thread, threadpool, prefork, select, poll, epoll, async, uring")]
pub struct UnknownModel(pub String);

impl FromStr for Model {
    type Err = UnknownModel;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let lower = s.trim().to_ascii_lowercase();
        Model::ALL
            .into_iter()
            .find(|m| m.name() == lower)
            .or(match lower.as_str() {
                "thread-pool" | "pool" => Some(Model::ThreadPool),
                "tokio" => Some(Model::Async),
                "io_uring" | "io-uring" => Some(Model::Uring),
                _ => None,
            })
            .ok_or(UnknownModel(s.to_string()))
    }
}

/// Limits every model enforces. All are per server unless said otherwise.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Connections admitted at once (all workers, all processes together), whether being
    /// served or, under `iterative` and `threadpool`, waiting their turn. One more is accepted,
    /// sent [`Protocol::refusal`](crate::Protocol::refusal) and closed: never left hanging.
    /// At start the server raises its soft `RLIMIT_NOFILE` towards what this needs (never past
    /// the hard limit) and warns if it is still short; out of descriptors, clients are refused
    /// the same way (see `docs/ARCHITECTURE.md`, "Out of descriptors").
    pub max_connections: usize,
    /// Connections admitted at once from one IP address (all workers and processes together);
    /// the excess is refused like `max_connections`'. `None` = no per-address limit.
    pub max_per_ip: Option<usize>,
    /// Unix-domain connections (an admin socket) admitted at once. They have this budget of
    /// their own and never count against `max_connections` or `max_per_ip`, so a flood of
    /// network clients cannot lock the operator out (the socket file's mode and the
    /// protocol's credential check keep strangers off it).
    pub max_local: usize,
    /// Close a connection when nothing was read or written for this long
    /// ([`Session::on_idle`](crate::Session::on_idle) is called first). `None` = never.
    pub idle_timeout: Option<Duration>,
    /// TCP keepalive on accepted connections: probe after this long without traffic (then
    /// every third of it, 3 tries), so a peer that vanished is found even with no idle
    /// timeout. `None` = off (the kernel default).
    pub tcp_keepalive: Option<Duration>,
    /// `TCP_NOTSENT_LOWAT` on accepted TCP connections: the socket takes more only while less
    /// than this many bytes wait unsent in the kernel. Without it one big `sendfile` queues
    /// megabytes, and on loopback the *client's* receive path transmits them (the ACK it
    /// processes in `recv` runs the sender's `tcp_write_xmit`), which costs a single-threaded
    /// client the core it needs to read (see docs/ARCHITECTURE.md). `None` = the kernel's
    /// default (no mark); bingfa-http sets 16 KiB.
    pub notsent_lowat: Option<u32>,
    /// Unconsumed input kept per connection; a session that lets it fill is closed.
    pub max_input: usize,
    /// Stop reading a connection while more than this many bytes wait to go out to it.
    pub high_water: usize,
    /// Bytes (not counting file ranges) queued for one connection; past it the connection is
    /// closed as a slow consumer. Only hub traffic can reach it, since reading stops at
    /// `high_water`.
    pub max_outbound: usize,
    /// Bytes of hub messages waiting per subscriber (beyond `high_water` already handed to its
    /// connection); past it the subscriber is a slow receiver and is disconnected.
    pub hub_queue_bytes: usize,
    /// Data channels open at once per session.
    pub max_channels: usize,
    /// Passive listeners waiting for their peer at once, per client address (all sessions,
    /// workers and processes together), so one address cannot hold a whole passive port
    /// range. Past it, `listen` gets `ChannelEvent::Error(QuotaExceeded)`. `None` = no cap.
    pub max_passive_per_ip: Option<usize>,
    /// After SIGINT/SIGTERM, how long in-flight connections get to finish.
    pub shutdown_grace: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: 10_240,
            max_per_ip: None,
            max_local: 16,
            idle_timeout: Some(Duration::from_secs(60)),
            tcp_keepalive: None,
            notsent_lowat: None,
            max_input: 64 * 1024,
            high_water: 256 * 1024,
            max_outbound: 4 * 1024 * 1024,
            hub_queue_bytes: 1024 * 1024,
            max_channels: 4,
            max_passive_per_ip: None,
            shutdown_grace: Duration::from_secs(5),
        }
    }
}

/// How to run a server: where, under which model, with which limits.
#[derive(Debug, Clone)]
pub struct Config {
    /// Printed in the ready line: `<service> listening on <ip>:<port>`.
    pub service: String,
    /// Addresses to listen on (`127.0.0.1:0` picks a free port).
    pub bind: Vec<std::net::SocketAddr>,
    /// More listeners, each announced with its own service name (e.g. chat's `web` page next
    /// to its `chat` port); their connections come to [`Protocol::new_session_on`](crate::Protocol::new_session_on)
    /// with listener numbers after those of `bind`.
    pub also: Vec<(String, std::net::SocketAddr)>,
    /// Unix-domain listeners (an admin socket), each announced as `<name> listening on
    /// <path>`; listener numbers after those of `also`. Mode 0600, removed when the server
    /// stops; a stale file is replaced only when nothing listens on it.
    pub unix: Vec<(String, std::path::PathBuf)>,
    /// The concurrency model that serves the connections.
    pub model: Model,
    /// Threads or processes for models that use them; 0 = a default (see `worker_count`).
    pub workers: usize,
    /// Use edge-triggered epoll (`Model::Epoll` only).
    pub edge_triggered: bool,
    /// The bounds every connection and the whole server keep (see [`Limits`]).
    pub limits: Limits,
    /// Install SIGINT/SIGTERM handlers that start a graceful shutdown (the CLI wants this;
    /// an embedding program may prefer [`ServerHandle::shutdown`](crate::ServerHandle::shutdown)).
    pub handle_signals: bool,
    /// Print the ready line on stdout.
    pub announce: bool,
    /// Connection counters for metrics (open, accepted, refused, bytes), counted by every
    /// model into this shared [`Tally`](crate::Tally); `None` counts nothing.
    pub tally: Option<crate::Tally>,
}

impl Config {
    /// `service` on `bind`, with the default model and limits, signal handlers installed and
    /// the ready line printed.
    pub fn new(service: &str, bind: std::net::SocketAddr) -> Self {
        Config {
            service: service.to_string(),
            bind: vec![bind],
            also: Vec::new(),
            unix: Vec::new(),
            model: Model::default(),
            workers: 0,
            edge_triggered: false,
            limits: Limits::default(),
            handle_signals: true,
            announce: true,
            tally: None,
        }
    }

    /// The effective worker count: `workers`, or by default one event loop per CPU (epoll,
    /// uring, prefork, async), and 64 threads for `threadpool`, whose threads each serve one
    /// connection with work at a time (idle ones wait in its poller, holding no thread).
    pub fn worker_count(&self) -> usize {
        if self.workers > 0 {
            return self.workers;
        }
        let cpus = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1);
        match self.model {
            Model::ThreadPool => 64.max(cpus),
            _ => cpus,
        }
    }
}
