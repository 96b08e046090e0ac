//! The library API in the style of the course's `HTTPServer` class: build an [`HttpServer`] on a
//! root directory, register dynamic routes, then run it under any concurrency model. Also the
//! [`HttpProtocol`] that bingfa-net's drivers use to make one [`HttpSession`] per connection.

use crate::access_log::AccessLog;
use crate::fileserver::FileServer;
use crate::headers::HeaderError;
use crate::parser::{Method, Request};
use crate::response::Response;
use crate::router::{Route, Shared};
use crate::session::HttpSession;
use bingfa_net::{ConnInfo, Model, Protocol};
use std::path::Path;
use std::sync::Arc;

pub use crate::router::{Handler, HttpLimits};

/// A static-file HTTP server with dynamic routes.
///
/// ```no_run
/// use bingfa_http::{HttpServer, Response};
/// let mut server = HttpServer::new("/srv/www").unwrap();
/// server.get("/hello", |_req| Response::text(200, "hello\n"));
/// server.stats_route("/_stats");
/// let config = bingfa_net::Config::new("http", "127.0.0.1:8000".parse().unwrap());
/// server.run(config).unwrap();
/// ```
pub struct HttpServer {
    shared: Shared,
}

impl HttpServer {
    /// Serves the files beneath `root` (a directory handle is opened now and kept).
    pub fn new(root: impl AsRef<Path>) -> std::io::Result<HttpServer> {
        let mut s = HttpServer::routes_only();
        s.shared.files = Some(FileServer::new(root.as_ref())?);
        Ok(s)
    }

    /// A server with no static files: only the routes registered on it (404 otherwise).
    pub fn routes_only() -> HttpServer {
        HttpServer {
            shared: Shared::new(),
        }
    }

    /// Registers `handler` for `method path` (exact match on the path, query excluded). A GET
    /// route also answers HEAD, without the body. Routes take precedence over files.
    pub fn route<F>(&mut self, method: Method, path: &str, handler: F) -> &mut Self
    where
        F: Fn(&Request) -> Response + Send + Sync + 'static,
    {
        self.shared.routes.push(Route {
            method,
            path: path.to_string(),
            handler: Arc::new(handler),
        });
        self
    }

    /// Register `handler` for `GET path` (and `HEAD path`); see [`HttpServer::route`].
    pub fn get<F>(&mut self, path: &str, handler: F) -> &mut Self
    where
        F: Fn(&Request) -> Response + Send + Sync + 'static,
    {
        self.route(Method::Get, path, handler)
    }

    /// Register `handler` for `POST path`; see [`HttpServer::route`].
    pub fn post<F>(&mut self, path: &str, handler: F) -> &mut Self
    where
        F: Fn(&Request) -> Response + Send + Sync + 'static,
    {
        self.route(Method::Post, path, handler)
    }

    /// Answers `GET path` with the server's counters as JSON (model, uptime, connections,
    /// requests), counted across every worker thread and process.
    pub fn stats_route(&mut self, path: &str) -> &mut Self {
        self.shared.stats_path = Some(path.to_string());
        self
    }

    /// Serve and list hidden names (`.git`, `.env`, anything starting with a dot); off by
    /// default, when they are 404 and left out of listings.
    pub fn hidden(&mut self, serve: bool) -> &mut Self {
        if let Some(f) = &mut self.shared.files {
            f.hidden = serve;
        }
        self
    }

    /// Compress text types on the fly (gzip, brotli, zstd, as the client accepts) into a
    /// cache of `cache_bytes` (see `compress/`); precompressed siblings are served either way.
    pub fn compress(&mut self, cache_bytes: u64) -> &mut Self {
        if let Some(f) = &mut self.shared.files {
            f.compress = Some(Arc::new(crate::compress::Cache::new(cache_bytes)));
        }
        self
    }

    /// Adds `Cache-Control: value` to file responses (200, 206 and 304).
    pub fn cache_control(&mut self, value: impl Into<String>) -> &mut Self {
        if let Some(f) = &mut self.shared.files {
            f.cache_control = Some(value.into());
        }
        self
    }

    /// Answers a directory without `index.html` with its listing (the default) or with 403, as
    /// nginx's `autoindex off` does.
    pub fn listing(&mut self, on: bool) -> &mut Self {
        if let Some(f) = &mut self.shared.files {
            f.listing = on;
        }
        self
    }

    /// Adds `name: value` to every response (errors and routes included), as nginx's
    /// `add_header ... always`; refused with a reason if it isn't a valid, non-framing field.
    pub fn header(&mut self, name: &str, value: &str) -> Result<&mut Self, HeaderError> {
        self.shared.extra.add(name, value)?;
        Ok(self)
    }

    /// `X-Content-Type-Options: nosniff` on every response: on by default.
    pub fn nosniff(&mut self, on: bool) -> &mut Self {
        self.shared.extra.nosniff(on);
        self
    }

    /// `Strict-Transport-Security` on every response sent over TLS (never over plain HTTP,
    /// where it means nothing to a browser and could be injected anyway).
    pub fn hsts(&mut self, max_age_secs: u64, include_subdomains: bool) -> &mut Self {
        self.shared.extra.hsts(max_age_secs, include_subdomains);
        self
    }

    /// Logs every answered request to `log` (see [`crate::access_log`]).
    pub fn access_log(&mut self, log: AccessLog) -> &mut Self {
        self.shared.access_log = Some(log);
        self
    }

    /// The server's counters (shared with every worker and forked process), for metrics.
    pub fn stats(&self) -> crate::stats::Stats {
        self.shared.stats.clone()
    }

    /// The HTTP-level limits, to change them.
    pub fn limits_mut(&mut self) -> &mut HttpLimits {
        &mut self.shared.limits
    }

    /// The protocol value that bingfa-net drivers run; `model` and `workers` are only reported
    /// by the stats route.
    pub fn into_protocol(mut self, model: Model, workers: usize) -> HttpProtocol {
        self.shared.model = Some(model);
        self.shared.workers = workers;
        HttpProtocol {
            shared: Arc::new(self.shared),
        }
    }

    /// The course's `serve_forever()`: serve on `addr` under the default (fastest) model with
    /// default limits, until SIGINT/SIGTERM.
    pub fn serve_forever(self, addr: std::net::SocketAddr) -> Result<(), bingfa_net::Error> {
        self.run(bingfa_net::Config::new("http", addr))
    }

    /// Binds `config.bind`, prints the ready line and serves under `config.model` until
    /// SIGINT/SIGTERM (when `config.handle_signals`), then returns after a graceful shutdown.
    pub fn run(self, mut config: bingfa_net::Config) -> Result<(), bingfa_net::Error> {
        // Big files at the client's pace: a 16 KiB unsent mark keeps a file's `sendfile` from
        // queueing megabytes that the client's own receive path would then have to transmit
        // (wrk -t1 -c4 on a 64 MiB file: 1.0× → 1.4× nginx). Small answers never reach it.
        config
            .limits
            .notsent_lowat
            .get_or_insert(HTTP_NOTSENT_LOWAT);
        let workers = if config.model.uses_workers() {
            config.worker_count()
        } else {
            1
        };
        let protocol = self.into_protocol(config.model, workers);
        bingfa_net::serve(config, protocol)
    }
}

/// `Limits::notsent_lowat` unless the caller chose one.
pub const HTTP_NOTSENT_LOWAT: u32 = 16 * 1024;

/// The [`Protocol`] of HTTP: one [`HttpSession`] per connection, all sharing the routes, the
/// root handle and the counters.
#[derive(Clone)]
pub struct HttpProtocol {
    shared: Arc<Shared>,
}

impl HttpProtocol {
    /// A session not attached to any socket: for driving HTTP by hand (tests, embedding).
    pub fn session(&self) -> HttpSession {
        HttpSession::new(self.shared.clone())
    }
}

impl Protocol for HttpProtocol {
    type Session = HttpSession;

    fn new_session(&self, info: &ConnInfo) -> HttpSession {
        let mut s = self.session();
        s.peer = Some(info.peer.ip());
        s
    }

    fn refusal(&self) -> Option<Vec<u8>> {
        let mut r = Response::error(503).header("Retry-After", "1");
        // Before any handshake: a TLS listener's refusal isn't "secure" either.
        self.shared.extra.apply(&mut r, false);
        let mut bytes = r.head_bytes(false, false);
        if let crate::response::Body::Bytes(b) = &r.body {
            bytes.extend_from_slice(b);
        }
        Some(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusal_is_a_complete_503() {
        let p = HttpServer::routes_only().into_protocol(Model::Epoll, 1);
        let bytes = String::from_utf8(p.refusal().unwrap()).unwrap();
        let (head, body) = bytes.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 503 Service Unavailable\r\n"));
        assert!(head.contains("\r\nRetry-After: 1\r\n") && head.ends_with("\r\nConnection: close"));
        assert!(head.contains(&format!("\r\nContent-Length: {}", body.len())));
    }

    #[test]
    fn routes_before_files_and_405_with_allow() {
        let mut s = HttpServer::routes_only();
        s.post("/p", |_| Response::text(200, "posted"));
        s.get("/g", |_| Response::text(200, "got"));
        let shared = s.into_protocol(Model::Epoll, 1).shared;
        let req = |m: Method, path: &str| Request {
            method: m,
            path: path.into(),
            query: None,
            version: crate::Version::Http11,
            headers: vec![],
            content_length: 0,
            keep_alive: true,
            body: vec![],
        };
        assert_eq!(shared.respond(&req(Method::Post, "/p")).status, 200);
        let r = shared.respond(&req(Method::Get, "/p"));
        assert_eq!(
            (r.status, r.get_header("Allow")),
            (405, Some("POST, OPTIONS"))
        );
        assert_eq!(shared.respond(&req(Method::Head, "/g")).status, 200);
        let r = shared.respond(&req(Method::Put, "/g"));
        assert_eq!(
            (r.status, r.get_header("Allow")),
            (405, Some("GET, HEAD, OPTIONS"))
        );
        let r = shared.respond(&req(Method::Options, "/g"));
        assert_eq!(
            (r.status, r.get_header("Allow")),
            (204, Some("GET, HEAD, OPTIONS"))
        );
        assert!(r.body.is_empty());
        let r = shared.respond(&req(Method::Options, "*"));
        assert_eq!(
            (r.status, r.get_header("Allow")),
            (204, Some("GET, HEAD, OPTIONS, POST"))
        );
        assert!(shared.wants_body(&req(Method::Post, "/p")));
        assert!(!shared.wants_body(&req(Method::Get, "/p")));
        assert!(!shared.wants_body(&req(Method::Head, "/g")));
        assert!(!shared.wants_body(&req(Method::Post, "/elsewhere")));
        assert_eq!(shared.respond(&req(Method::Get, "/none")).status, 404);
        assert_eq!(shared.respond(&req(Method::Options, "*")).status, 204);
    }
}
