//! bingfa-net: the sans-IO `Session` contract, the `Hub` that lets sessions talk to each other,
//! and one driver per concurrency model (iterative, fork, thread, threadpool, prefork, select,
//! poll, epoll, async). A protocol never touches a socket; a driver never knows a protocol.
//!
//! The modules, from the contract down to the system calls (each uses only what is below it,
//! and a module's children only their parent and siblings):
//!
//! - **The contract** (what a protocol sees): `session.rs` (the `Session` and `Protocol`
//!   traits), `context.rs` (a session's window on its connection), `blocking.rs` (work a
//!   session must not do on its loop), `tls/` (TLS as a session around a session).
//! - **The entry point**: `config.rs` (the knobs: model, limits), `server.rs` (bind, announce,
//!   run the chosen model until shutdown), `shutdown.rs` (the shutdown pipe and signals).
//! - **The models** (`model/`): one file per model, built from the two loops that live there,
//!   `reactor/` (the readiness loop) and `acceptor.rs` (the blocking accept loop).
//! - **Admission** (`admit/`): what every worker shares, how a connection is taken in, tuned
//!   and counted, how one over a limit is refused, and running out of descriptors.
//! - **A connection** (`conn/`): one connection as every model drives it: readiness and time
//!   in, session callbacks and their actions out; its outbound queue and data channels.
//! - **The hub** (`hub/`): publish/subscribe between sessions; across processes the relay and
//!   its frames, beyond the server an uplink (a backplane).
//! - **The ground**: `wake.rs` (waking a loop from other threads), `poller/` (the readiness
//!   interface and its select, poll and epoll implementations), `listener.rs` (listening
//!   sockets), `sys.rs` (the libc calls std does not offer).
//!
//! See `docs/ARCHITECTURE.md` ("bingfa-net: the Session contract") for the big picture.

pub mod blocking;
pub mod config;
pub mod hub;
pub mod linelog;
#[cfg(feature = "rig")]
pub mod rig;
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
mod tally;
mod wake;

/// Lock-free counters in shared memory, for a protocol's own metrics (see [`Tally`]).
pub use bingfa_mp::Counters;
pub use config::{Config, Limits, Model, UnknownModel};
pub use hub::uplink::{Downlink, Uplink};
pub use hub::{Hub, Injector, PublishError, MAX_MESSAGE};
pub use server::{serve, Error, Server, ServerHandle};
pub use session::{
    Action, ChannelEvent, ChannelId, ConnId, ConnInfo, Context, LayerContext, Message, Passive,
    PeerCred, Protocol, Session, TaskId, Timer,
};
pub use shutdown::ShutdownHandle;
pub use tally::{Tally, TallySnapshot};
