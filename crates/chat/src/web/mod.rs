//! The chat's web face: [`WebSession`] wraps any line-speaking [`Session`](bingfa_net::Session)
//! (the room) and serves it to browsers. Before the upgrade it is a tiny HTTP/1.1 responder
//! ([`http`]) for the embedded page (`page.html`, served at `/` and `/index.html`) and the
//! WebSocket endpoint `/ws`; after it, each text message becomes one line for the inner
//! session and each line the inner session writes becomes one text frame.

pub mod http;
pub mod origin;
mod session;

pub use session::{WebLimits, WebSession};

/// The page: one self-contained file (inline CSS and JS, no CDN), embedded in the binary.
pub const PAGE: &str = include_str!("page.html");

/// What a web connection over the server's connection limit gets before it is closed
/// (for `Protocol::refusal` on the web listener).
pub fn refusal() -> Vec<u8> {
    http::error(
        503,
        "Retry-After: 5\r\n",
        "the room is full, try again later",
    )
}
