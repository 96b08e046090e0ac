//! Build the room's server from `bingfa chat serve`'s options: listeners, limits, protocol.
//! Shared by the CLI and the integration tests, so both run exactly the same server.

use crate::config::RoomConfig;
use crate::event::{Event, TOPIC};
use crate::room::ChatProtocol;
use bingfa_net::{Config, Injector, Model, PublishError, Server};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct ServeOptions {
    pub bind: SocketAddr,
    pub web: Option<SocketAddr>,
    pub admin_socket: Option<PathBuf>,
    pub model: Model,
    pub workers: usize,
    pub edge_triggered: bool,
    pub room: RoomConfig,
    /// Probe quiet members' TCP connections after this long (there is no idle timeout).
    pub keepalive: Duration,
}

impl ServeOptions {
    pub fn new(bind: SocketAddr) -> Self {
        ServeOptions {
            bind,
            web: None,
            admin_socket: None,
            model: Model::default(),
            workers: 0,
            edge_triggered: false,
            room: RoomConfig::default(),
            keepalive: Duration::from_secs(60),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Net(#[from] bingfa_net::Error),
    #[error("cannot create the room's member table: {0}")]
    Roster(#[from] std::io::Error),
    #[error("TLS is for the web face: give --web too")]
    TlsWithoutWeb,
}

/// Bind every listener (nothing is served until `run`).
pub fn bind(opts: &ServeOptions) -> Result<Server<ChatProtocol>, Error> {
    let (config, protocol, _) = parts(opts)?;
    Ok(Server::bind(config, protocol)?)
}

/// [`bind`], with the web face (`opts.web`, required) over TLS: `https://` and `wss://`.
/// The line protocol stays plain.
pub fn bind_tls(
    opts: &ServeOptions,
    tls: bingfa_net::tls::TlsConfig,
) -> Result<Server<bingfa_net::tls::TlsProtocol<ChatProtocol>>, Error> {
    let (config, protocol, web) = parts(opts)?;
    let web = web.ok_or(Error::TlsWithoutWeb)?;
    let protocol = bingfa_net::tls::TlsProtocol::only_on(protocol, tls, web);
    Ok(Server::bind(config, protocol)?)
}

/// The server's config, its protocol and the web face's listener number.
fn parts(opts: &ServeOptions) -> Result<(Config, ChatProtocol, Option<usize>), Error> {
    let mut config = Config::new("chat", opts.bind);
    config.model = opts.model;
    config.workers = opts.workers;
    config.edge_triggered = opts.edge_triggered;
    let web = opts.web.map(|addr| {
        config.also.push(("web".into(), addr));
        1
    });
    let admin = opts.admin_socket.as_ref().map(|p| {
        config.unix.push(("admin".into(), p.clone()));
        1 + web.is_some() as usize
    });
    let l = &mut config.limits;
    // Members of a quiet room are not idle: no idle timeout; TCP keepalive finds the dead.
    l.idle_timeout = None;
    l.tcp_keepalive = Some(opts.keepalive);
    l.max_connections = opts.room.max_connections();
    // An over-long line is consumed and refused by the session, never left to fill the input.
    l.max_input = l.max_input.max(opts.room.max_line * 2 + 2);
    let protocol = ChatProtocol::new(opts.room.clone(), web, admin)?;
    Ok((config, protocol, web))
}

/// Announce `text` to the room (the console's path; the admin socket's sessions publish the
/// same event themselves).
pub fn announce(injector: &Injector, text: &str) -> Result<(), PublishError> {
    injector.publish(TOPIC, &Event::Announce(text.to_string()).encode())
}
