//! The tests' shared kit (a dev-dependency only, never published):
//!
//! - [`for_each_model!`]: the one table of concurrency models every per-model suite runs
//!   under, and the check that a model added to bingfa-net cannot go untested;
//! - [`ServerProc`]: a `bingfa` server as a child process (its ports from its `listening on`
//!   lines, SIGTERM and exit 0 when dropped);
//! - [`LineClient`], and with the `ws` feature [`ws::Ws`] (a WebSocket client on the chat
//!   crate's codec); [`pty::Pty`], a command on a real pseudo-terminal;
//! - the sans-IO rig lives in bingfa-net itself (`bingfa_net::rig`, feature `rig`, which this
//!   crate turns on): a session driven by hand in simulated time.

pub use bingfa_net::Model;

mod line;
mod models;
mod process;
pub mod pty;
#[cfg(feature = "ws")]
pub mod ws;

pub use line::{LineClient, READ_LIMIT};
pub use models::{assert_every_model_listed, model_args, EDGE_CASES};
pub use process::{workers, ServerProc, EXIT_LIMIT};
