//! bingfa-net: the sans-IO `Session` contract, the `Hub` that lets sessions talk to each other,
//! and one driver per concurrency model (iterative, fork, thread, threadpool, prefork, select,
//! poll, epoll, async). A protocol never touches a socket; a driver never knows a protocol.
//!
//! See `docs/ARCHITECTURE.md` ("bingfa-net: the Session contract") for the big picture.

pub mod config;
pub mod session;

pub use config::{Config, Limits, Model, UnknownModel};
pub use session::{
    Action, ChannelEvent, ChannelId, ConnId, ConnInfo, Context, Message, Protocol, Session,
};
