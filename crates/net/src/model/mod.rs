//! The concurrency models: one file per model, and the machinery several share.

pub(crate) mod acceptor;
pub(crate) mod async_tokio;
pub(crate) mod fork;
pub(crate) mod iterative;
pub(crate) mod prefork;
pub(crate) mod reactor;
pub(crate) mod thread;
pub(crate) mod threadpool;
