//! The entry point: bind the listeners, announce them, run the chosen model until shutdown.
//!
//! ```no_run
//! # use bingfa_net::*;
//! # struct Echo; struct EchoSession;
//! # impl Session for EchoSession { fn on_data(&mut self, i: &[u8], cx: &mut Context) -> usize { cx.write(i); i.len() } }
//! # impl Protocol for Echo { type Session = EchoSession; fn new_session(&self, _: &ConnInfo) -> EchoSession { EchoSession } }
//! let mut config = Config::new("echo", "127.0.0.1:0".parse().unwrap());
//! config.model = "poll".parse().unwrap();
//! serve(config, Echo).unwrap(); // prints "echo listening on 127.0.0.1:PORT", runs until SIGTERM
//! ```

use crate::admit::exhaustion::{check_rlimit, Episode};
use crate::admit::Shared;
use crate::config::{Config, Model};
use crate::hub::uplink::{Downlink, SharedUplink, Uplink};
use crate::hub::{Hub, Injector};
use crate::listener::{self, Listener, UnixPath};
use crate::session::Protocol;
use crate::shutdown::{self, ShutdownHandle};
use crate::sys::{self, SharedCounter};
use std::io::{self, Write};
use std::net::SocketAddr;
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::sync::Mutex;
use std::thread::JoinHandle;

/// Why a server could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A TCP listener could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// What `bind`/`listen` said.
        source: io::Error,
    },
    /// A Unix-domain listener could not be bound.
    #[error("cannot listen on {path}: {source}")]
    BindUnix {
        /// The socket's path.
        path: std::path::PathBuf,
        /// What `bind`/`listen` said.
        source: io::Error,
    },
    /// The configuration has no address at all to listen on.
    #[error("no address to listen on")]
    NoAddress,
    /// The chosen model cannot run on this kernel (io_uring refused by the kernel or a sandbox).
    #[error("--model {model} cannot run here: {reason}")]
    ModelUnavailable {
        /// The model asked for.
        model: Model,
        /// Why not (the system call's error and what it means).
        reason: String,
    },
    /// Any other I/O failure while starting or serving.
    #[error(transparent)]
    Io(#[from] io::Error),
}

/// A bound server, not yet running: its addresses are known (port 0 resolved).
pub struct Server<P: Protocol> {
    config: Config,
    protocol: P,
    listeners: Vec<Listener>,
    shutdown: ShutdownHandle,
    hub: Hub,
    /// Fork/prefork: the relay's end and the injector's end of the injector link.
    inject: Option<(UnixStream, UnixStream)>,
    /// Unix socket files to remove when the server stops.
    unix_paths: Vec<UnixPath>,
    /// The backplane, if any ([`Server::set_uplink`]).
    uplink: Option<SharedUplink>,
}

impl<P: Protocol> Server<P> {
    /// Bind every address in `config.bind` and `config.also`, and every path in
    /// `config.unix`. Nothing is printed or accepted yet, but the kernel already queues
    /// connections.
    pub fn bind(config: Config, protocol: P) -> Result<Self, Error> {
        if config.bind.is_empty() && config.also.is_empty() {
            return Err(Error::NoAddress);
        }
        // epoll and uring workers each bind the port again with SO_REUSEPORT; the first must
        // allow it.
        let reuse_port = matches!(config.model, Model::Epoll | Model::Uring);
        let mut listeners = config
            .bind
            .iter()
            .chain(config.also.iter().map(|(_, a)| a))
            .map(|a| {
                sys::listen(*a, reuse_port)
                    .map(Listener::Tcp)
                    .map_err(|source| Error::Bind { addr: *a, source })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let mut unix_paths = Vec::new();
        for (_, path) in &config.unix {
            let (l, guard) = listener::bind_unix(path).map_err(|source| Error::BindUnix {
                path: path.clone(),
                source,
            })?;
            listeners.push(l);
            unix_paths.push(guard);
        }
        let inject = if config.model.multi_process() {
            Some(UnixStream::pair()?)
        } else {
            None
        };
        Ok(Server {
            config,
            protocol,
            listeners,
            shutdown: ShutdownHandle::new()?,
            hub: Hub::new(),
            inject,
            unix_paths,
            uplink: None,
        })
    }

    /// Order the hub through `up` (a backplane shared with other servers) instead of this
    /// server's own hub or relay; see [`Uplink`](crate::Uplink). It is started by `run`.
    pub fn set_uplink(&mut self, up: std::sync::Arc<dyn Uplink>) {
        self.uplink = Some(up);
    }

    /// A handle that publishes into this server's hub from outside any session (a console,
    /// a test), in the same one order as the sessions, under every model. See [`Injector`].
    pub fn injector(&self) -> Injector {
        match &self.inject {
            Some((_, theirs)) => Injector {
                hub: theirs
                    .try_clone()
                    .map(Hub::with_link)
                    .unwrap_or_else(|_| self.hub.clone()),
            },
            None => Injector {
                hub: self.hub.clone(),
            },
        }
    }

    /// The TCP listeners' addresses (`bind`, then `also`).
    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        self.listeners
            .iter()
            .filter_map(|l| l.local_addr())
            .collect()
    }

    /// A handle that starts a graceful shutdown from anywhere (another thread, a test).
    pub fn shutdown_handle(&self) -> ShutdownHandle {
        self.shutdown.clone()
    }

    /// Announce (`<service> listening on <ip>:<port>`, once per listener), then serve until
    /// shutdown has completed. Returns `Ok(())` after a graceful shutdown.
    pub fn run(self) -> Result<(), Error> {
        let Server {
            config,
            protocol,
            listeners,
            shutdown,
            hub,
            inject,
            unix_paths,
            uplink,
        } = self;
        // Dropped (files removed) when this returns, whatever the model did.
        let _unix_paths = unix_paths;
        // Before the ready line: a model the kernel refuses is an error at start, not a
        // server that announces itself and then has no loop.
        crate::model::check(config.model).map_err(|reason| Error::ModelUnavailable {
            model: config.model,
            reason,
        })?;
        shutdown::ignore_sigpipe();
        if config.handle_signals {
            shutdown::install_signals(&shutdown);
        }
        if config.announce {
            let mut out = io::stdout().lock();
            let names = config
                .bind
                .iter()
                .map(|_| &config.service)
                .chain(config.also.iter().map(|(s, _)| s))
                .chain(config.unix.iter().map(|(s, _)| s));
            for (name, l) in names.zip(&listeners) {
                writeln!(out, "{} listening on {}", name, l.describe()?)?;
            }
            out.flush()?;
        }
        // One uplink per server: beside the relay in the parent (fork/prefork), else at the hub.
        let mut relay_uplink = None;
        if let Some(up) = uplink {
            if config.model.multi_process() {
                let (mine, theirs) = UnixStream::pair()?;
                up.start(Downlink::relay(theirs))?;
                relay_uplink = Some((up, mine));
            } else {
                hub.set_uplink(up.clone());
                up.start(Downlink::hub(hub.clone()))?;
            }
        }
        let workers = config.worker_count();
        let shared = Arc::new(Shared {
            protocol,
            limits: config.limits.clone(),
            // Prefork workers keep ledgers so a killed worker's places can be given back.
            counter: SharedCounter::new(
                config.limits.max_connections,
                config.limits.max_per_ip,
                config.limits.max_local,
                if config.model == Model::Prefork {
                    workers
                } else {
                    0
                },
            )?,
            // Passive listeners per client address: no total, no local budget, no ledgers.
            passive: Arc::new(SharedCounter::new(
                usize::MAX,
                config.limits.max_passive_per_ip,
                0,
                0,
            )?),
            shutdown,
            hub,
            inject: Mutex::new(inject.map(|(mine, _)| mine)),
            episode: Episode::new(if config.model == Model::Prefork {
                workers
            } else {
                0
            })?,
            uplink: Mutex::new(relay_uplink),
            tally: config.tally.clone(),
        });
        check_rlimit(&config, workers);
        tracing::info!(model = %config.model, workers, "serving");
        let r = crate::model::run(
            config.model,
            shared,
            listeners,
            workers,
            config.edge_triggered,
        );
        Ok(r?)
    }

    /// Run on a background thread; for embedding and in-process tests. Not for `fork` or
    /// `prefork` in a program that has other threads (forking a multi-threaded process is
    /// unsafe); run those in their own process.
    pub fn start(self) -> Result<ServerHandle, Error> {
        let addrs = self.local_addrs();
        let shutdown = self.shutdown_handle();
        let thread = std::thread::Builder::new()
            .name("server".into())
            .spawn(move || self.run())?;
        Ok(ServerHandle {
            addrs,
            shutdown,
            thread: Some(thread),
        })
    }
}

/// Bind and run: the whole server in one call.
pub fn serve<P: Protocol>(config: Config, protocol: P) -> Result<(), Error> {
    Server::bind(config, protocol)?.run()
}

/// A server running on a background thread ([`Server::start`]).
pub struct ServerHandle {
    addrs: Vec<SocketAddr>,
    shutdown: ShutdownHandle,
    thread: Option<JoinHandle<Result<(), Error>>>,
}

impl ServerHandle {
    /// The addresses the server listens on, in announce order.
    pub fn local_addrs(&self) -> &[SocketAddr] {
        &self.addrs
    }

    /// Begin a graceful shutdown without waiting for it (see [`ServerHandle::stop`]).
    pub fn shutdown(&self) {
        self.shutdown.shutdown();
    }

    /// Shut down and wait for the server to finish.
    pub fn stop(mut self) -> Result<(), Error> {
        self.shutdown.shutdown();
        match self.thread.take().map(JoinHandle::join) {
            Some(Ok(r)) => r,
            Some(Err(_)) => Err(Error::Io(io::Error::other("server thread panicked"))),
            None => Ok(()),
        }
    }
}

impl Drop for ServerHandle {
    fn drop(&mut self) {
        if let Some(t) = self.thread.take() {
            self.shutdown.shutdown();
            let _ = t.join();
        }
    }
}
