//! bingfa-net: the sans-IO `Session` contract, the `Hub` that lets sessions talk to each other,
//! and one driver per concurrency model (iterative, fork, thread, threadpool, prefork, select,
//! poll, epoll, async). A protocol never touches a socket; a driver never knows a protocol.
//!
//! See `docs/ARCHITECTURE.md` ("bingfa-net: the Session contract") for the big picture:
//! `session.rs` is the contract, `config.rs` the knobs, `server.rs` the entry point, `hub.rs`,
//! `relay.rs` and `uplink.rs` the message bus, `conn/` + `reactor/` the engine the models
//! share, and one file per model.

pub mod blocking;
pub mod config;
pub mod hub;
#[cfg(feature = "rig")]
pub mod rig;
pub mod server;
pub mod session;
pub mod shutdown;
#[cfg(feature = "tls")]
pub mod tls;

mod acceptor;
mod conn;
mod context;
mod exhaustion;
mod listener;
mod outbound;
mod passive;
mod poller;
mod reactor;
mod relay;
mod sys;
mod uplink;

mod async_tokio;
mod epoll;
mod fork;
mod iterative;
mod poll;
mod prefork;
mod select;
mod thread;
mod threadpool;

pub use config::{Config, Limits, Model, UnknownModel};
pub use hub::{Hub, Injector, PublishError, MAX_MESSAGE};
pub use server::{serve, Error, Server, ServerHandle};
pub use session::{
    Action, ChannelEvent, ChannelId, ConnId, ConnInfo, Context, Message, Passive, PeerCred,
    Protocol, Session,
};
pub use shutdown::ShutdownHandle;
pub use uplink::{Downlink, Uplink};
