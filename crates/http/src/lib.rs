//! bingfa-http: HTTP/1.1 written once as a sans-IO session (parser, responses, static files,
//! routes) and driven by any concurrency model from bingfa-net.

pub mod files;
pub mod fileserver;
pub mod listing;
pub mod parser;
pub mod range;
pub mod response;

pub use fileserver::FileServer;
pub use parser::{Method, Request, Version};
pub use response::{Body, Response};
