//! bingfa-http: HTTP/1.1 written once as a sans-IO session (parser, responses, static files,
//! routes) and driven by any concurrency model from bingfa-net.
//!
//! Reading order: [`parser`] turns bytes into a [`Request`]; [`server::HttpServer`] builds the
//! router (`router.rs`: the routes and the [`FileServer`], shared by every session);
//! [`session::HttpSession`] is one connection, asking the router for each request's
//! [`Response`], whose file bodies go out as ranges for sendfile.

pub mod access_log;
pub mod answer;
pub mod compress;
pub mod conditional;
pub mod filecache;
pub mod files;
pub mod fileserver;
pub mod headers;
pub mod listing;
pub mod parser;
pub mod range;
mod ranged;
pub mod request;
pub mod response;
mod router;
pub mod server;
pub mod session;
mod siblings;
pub mod stats;

pub use access_log::AccessLog;
pub use filecache::{CacheLimits, FileCache};
pub use fileserver::FileServer;
pub use parser::{Method, Request, Version};
pub use response::{Body, Response};
pub use server::{Handler, HttpLimits, HttpProtocol, HttpServer};
pub use session::HttpSession;
