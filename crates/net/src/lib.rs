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
pub mod server;
pub mod session;
pub mod shutdown;
#[cfg(feature = "tls")]
pub mod tls;

mod admit;
mod conn;
mod context;
mod listener;
mod model;
mod poller;
mod sys;

// The paths the modules had before they were laid out by concept (the moves' commit keeps the
// files' contents; the following commits name the new paths and drop these).
use admit::exhaustion;
use conn::{outbound, passive};
use hub::{relay, uplink};
use model::{acceptor, async_tokio, fork, iterative, prefork, reactor, thread, threadpool};
use poller::{epoll, poll, select};

pub use config::{Config, Limits, Model, UnknownModel};
pub use hub::{Hub, Injector, PublishError, MAX_MESSAGE};
pub use server::{serve, Error, Server, ServerHandle};
pub use session::{
    Action, ChannelEvent, ChannelId, ConnId, ConnInfo, Context, Message, Passive, PeerCred,
    Protocol, Session, TaskId, Timer,
};
pub use shutdown::ShutdownHandle;
pub use uplink::{Downlink, Uplink};
