//! Build the room's server from `bingfa chat serve`'s options: listeners, limits, protocol.
//! Shared by the CLI and the integration tests, so both run exactly the same server.

use crate::backplane::Backplane;
use crate::config::RoomConfig;
use crate::event::{Event, TOPIC};
use crate::room::ChatProtocol;
use bingfa_net::{Config, Injector, Model, PublishError, Server};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// How to serve a room: `bingfa chat serve`'s options.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// The line protocol's address.
    pub bind: SocketAddr,
    /// The web page's address (the page and the room over WebSocket), if any.
    pub web: Option<SocketAddr>,
    /// The line protocol again, over TLS (needs a certificate: [`bind_tls`]).
    pub tls_bind: Option<SocketAddr>,
    /// The admin socket's path, if any (a Unix-domain socket for announcements).
    pub admin_socket: Option<PathBuf>,
    /// The concurrency model.
    pub model: Model,
    /// Worker count for the models that have workers (`0`: see [`default_workers`]).
    pub workers: usize,
    /// Edge-triggered epoll (under `epoll` only).
    pub edge_triggered: bool,
    /// The room's own limits and rules.
    pub room: RoomConfig,
    /// Probe quiet members' TCP connections after this long (there is no idle timeout).
    pub keepalive: Duration,
    /// `redis://HOST:PORT[/DB]`: share the room with every server on this Redis.
    pub backplane: Option<String>,
    /// The room's name on the backplane (servers with the same name are one room).
    pub room_name: String,
    /// Connection counters for metrics (bingfa-net counts them under every model).
    pub tally: Option<bingfa_net::Tally>,
    /// The room's counters for metrics (members, messages), made before the server starts.
    pub stats: Option<crate::stats::ChatStats>,
}

impl ServeOptions {
    /// The defaults, with the line protocol on `bind`.
    pub fn new(bind: SocketAddr) -> Self {
        ServeOptions {
            bind,
            web: None,
            tls_bind: None,
            admin_socket: None,
            model: Model::default(),
            workers: 0,
            edge_triggered: false,
            room: RoomConfig::default(),
            keepalive: Duration::from_secs(60),
            backplane: None,
            room_name: "lobby".into(),
            tally: None,
            stats: None,
        }
    }
}

/// Why a room could not be started.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Binding or running the server failed.
    #[error(transparent)]
    Net(#[from] bingfa_net::Error),
    /// The roster or lobby (shared memory) could not be made.
    #[error("cannot create the room's member table: {0}")]
    Roster(#[from] std::io::Error),
    /// TLS asked for with no face to put it on.
    #[error("TLS needs a listener to speak it on: give --web or --tls-bind")]
    TlsWithoutWeb,
    /// A TLS line listener asked for without a certificate.
    #[error("--tls-bind needs a certificate (--tls-cert and --tls-key, or --tls-self-signed)")]
    TlsBindWithoutCertificate,
    /// The backplane could not be made.
    #[error(transparent)]
    Backplane(#[from] crate::backplane::Error),
    /// The admin socket could not be prepared.
    #[error("admin socket: {0}")]
    AdminSocket(std::io::Error),
}

/// Bind every listener (nothing is served until `run`).
pub fn bind(opts: &ServeOptions) -> Result<Server<ChatProtocol>, Error> {
    if opts.tls_bind.is_some() {
        return Err(Error::TlsBindWithoutCertificate);
    }
    let (config, protocol, _, backplane) = parts(opts)?;
    let mut server = Server::bind(config, protocol)?;
    if let Some(bp) = backplane {
        server.set_uplink(Arc::new(bp));
    }
    Ok(server)
}

/// [`bind`], with TLS on the web face (`opts.web`: `https://` and `wss://`) and on the line
/// protocol's TLS listener (`opts.tls_bind`); at least one of them is required. The plain
/// line port (`opts.bind`) stays plain.
pub fn bind_tls(
    opts: &ServeOptions,
    tls: bingfa_net::tls::TlsConfig,
) -> Result<Server<bingfa_net::tls::TlsProtocol<ChatProtocol>>, Error> {
    let (mut config, protocol, listeners, backplane) = parts(opts)?;
    if let Some(i) = listeners.web {
        config.also[i - 1].0 = "web-tls".into(); // the ready line names the scheme: https://
    }
    let on: Vec<usize> = [listeners.web, listeners.tls_line]
        .into_iter()
        .flatten()
        .collect();
    if on.is_empty() {
        return Err(Error::TlsWithoutWeb);
    }
    // The line port has TLS settings of its own: it offers no HTTP protocol, and refuses a
    // client that offers only HTTP ones (a browser sent here by another page: ALPACA).
    let line_tls = tls.not_http();
    let mut protocol = bingfa_net::tls::TlsProtocol::only_on_each(protocol, tls, on);
    if let Some(l) = listeners.tls_line {
        protocol = protocol.with_config_on(l, line_tls);
    }
    let mut server = Server::bind(config, protocol)?;
    if let Some(bp) = backplane {
        server.set_uplink(Arc::new(bp));
    }
    Ok(server)
}

/// The server's config, its protocol, the listener numbers of the optional faces, and the
/// backplane.
type Parts = (Config, ChatProtocol, Listeners, Option<Backplane>);

/// Listener numbers (announce order) of the faces beside the plain line port (0).
struct Listeners {
    web: Option<usize>,
    tls_line: Option<usize>,
}

/// Descriptors the server keeps for itself under `select` (listeners, stdio, the loop's
/// wake-up and shutdown descriptors, the shared tables, a reserve, a backplane's sockets):
/// the connections get what is left below FD_SETSIZE.
const SELECT_OWN_FDS: usize = 32;

/// The room's limits as the model can hold them: `select(2)` watches no descriptor numbered
/// FD_SETSIZE or above, so under it the connection cap is at most FD_SETSIZE less the
/// server's own descriptors, and the member limit is lowered so the members and the lobby
/// (a quarter of the cap) fit in it. Said at start: without it the room refused members as
/// "full" near 1,012 whatever `--max-members` said.
pub fn fit_to_model(model: Model, room: &RoomConfig) -> RoomConfig {
    let mut room = room.clone();
    if model == Model::Select {
        let cap = libc::FD_SETSIZE - SELECT_OWN_FDS;
        if room.max_connections() > cap {
            room.connection_cap = Some(cap);
            let members = cap - room.max_nameless();
            if room.max_members > members {
                tracing::warn!(
                    "--model select handles at most FD_SETSIZE ({}) descriptors: at most {cap} \
                     connections, so --max-members is lowered from {} to {members}",
                    libc::FD_SETSIZE,
                    room.max_members
                );
                room.max_members = members;
            }
        }
    }
    room
}

fn parts(opts: &ServeOptions) -> Result<Parts, Error> {
    let room = fit_to_model(opts.model, &opts.room);
    let opts = &ServeOptions {
        room,
        ..opts.clone()
    };
    let mut config = Config::new("chat", opts.bind);
    config.model = opts.model;
    config.workers = default_workers(opts.model, opts.workers);
    config.edge_triggered = opts.edge_triggered;
    config.tally = opts.tally.clone();
    let web = opts.web.map(|addr| {
        config.also.push(("web".into(), addr));
        config.also.len()
    });
    // Any listener that is neither the web face nor the admin socket gets the line protocol.
    let tls_line = opts.tls_bind.map(|addr| {
        config.also.push(("chat-tls".into(), addr));
        config.also.len()
    });
    if let Some(p) = &opts.admin_socket {
        crate::admin::prepare(p).map_err(Error::AdminSocket)?;
    }
    let admin = opts.admin_socket.as_ref().map(|p| {
        config.unix.push(("admin".into(), p.clone()));
        config.also.len() + config.unix.len()
    });
    let l = &mut config.limits;
    // Members of a quiet room are not idle: no idle timeout; TCP keepalive finds the dead.
    l.idle_timeout = None;
    l.tcp_keepalive = Some(opts.keepalive);
    l.max_connections = opts.room.max_connections();
    // One address may hold at most the members the room has, plus its share of the lobby:
    // a flood from one address (its refused connections linger a moment each) then always
    // leaves a place for a member from another while the room has one (see `lobby.rs`).
    l.max_per_ip = Some(
        opts.room
            .max_members
            .saturating_add(16)
            .min(l.max_connections),
    );
    // An over-long line is consumed and refused by the session, never left to fill the input.
    l.max_input = l.max_input.max(opts.room.max_line * 2 + 2);
    let mut protocol = ChatProtocol::new(opts.room.clone(), web, admin)?;
    if let Some(s) = &opts.stats {
        protocol.set_stats(s.clone());
    }
    // One backplane per server: its Redis connections and name service live in this process
    // (the parent under fork/prefork), and every session reaches them from wherever it runs.
    let backplane = match &opts.backplane {
        Some(url) => {
            let bp = Backplane::new(url, &opts.room_name, protocol.roster().clone())?;
            protocol.set_remote_names(Arc::new(bp.names_client()));
            Some(bp)
        }
        None => None,
    };
    Ok((config, protocol, Listeners { web, tls_line }, backplane))
}

/// The room's worker count: as asked, except that `0` (the default) under `epoll` is one
/// loop, as Redis runs one. A message's fan-out then never crosses threads (no other loop's
/// inbox locks, no eventfd wake-ups), which is what the tail latency is made of: at 1,000
/// members and 800 messages/s, one loop's p99 was 0.94× Redis's, two loops' 1.39–1.70×
/// (BENCHMARKS.md). More loops (`--workers N`) buy fan-out throughput instead (100 members
/// unpaced: 2.5× Redis with two, 1.7× with one). `uring` runs the same loops, so the same
/// holds. The other models keep bingfa-net's default.
pub fn default_workers(model: Model, asked: usize) -> usize {
    match (model, asked) {
        (Model::Epoll | Model::Uring, 0) => 1,
        (_, n) => n,
    }
}

/// Announce `text` to the room (the console's path; the admin socket's sessions publish the
/// same event themselves).
pub fn announce(injector: &Injector, text: &str) -> Result<(), PublishError> {
    crate::log::announcement(text);
    injector.publish(TOPIC, &Event::Announce(text.to_string()).encode())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_room_runs_one_epoll_loop_unless_asked() {
        assert_eq!(default_workers(Model::Epoll, 0), 1);
        assert_eq!(default_workers(Model::Epoll, 3), 3);
        assert_eq!(default_workers(Model::Uring, 0), 1);
        assert_eq!(default_workers(Model::Async, 0), 0, "bingfa-net's default");
        assert_eq!(default_workers(Model::Prefork, 0), 0);
        let mut opts = ServeOptions::new("127.0.0.1:0".parse().unwrap());
        assert_eq!(parts(&opts).unwrap().0.worker_count(), 1);
        opts.workers = 2;
        assert_eq!(parts(&opts).unwrap().0.worker_count(), 2);
    }
}
