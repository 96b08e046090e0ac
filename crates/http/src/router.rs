//! The router: what every session of one server shares (routes, the file server, the stats
//! route, limits, counters, extra headers, the access log), and the answer it gives to a
//! complete request. [`crate::server`] builds it; each [`crate::HttpSession`] holds it behind
//! an `Arc` and asks it for answers, so the arrows run server → {router, session} →
//! router.

use crate::access_log::AccessLog;
use crate::answer::Answer;
use crate::fileserver::FileServer;
use crate::headers::ExtraHeaders;
use crate::parser::{self, Method, Request};
use crate::response::Response;
use crate::stats::Stats;
use bingfa_net::Model;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A dynamic route's handler.
pub type Handler = Arc<dyn Fn(&Request) -> Response + Send + Sync>;

/// HTTP-level limits (the connection-level ones are bingfa-net's `Limits`).
#[derive(Clone, Debug)]
pub struct HttpLimits {
    /// Request-line and header sizes (414, 431).
    pub head: parser::Limits,
    /// Largest request body accepted for a route (413 beyond it).
    pub max_body: u64,
    /// Time from a request's first byte to the end of its head (and body) before 408.
    pub head_timeout: Duration,
}

impl Default for HttpLimits {
    fn default() -> Self {
        HttpLimits {
            head: parser::Limits::default(),
            max_body: 1024 * 1024,
            head_timeout: Duration::from_secs(10),
        }
    }
}

/// One dynamic route: an exact method and path.
pub(crate) struct Route {
    pub(crate) method: Method,
    pub(crate) path: String,
    pub(crate) handler: Handler,
}

/// Everything sessions share: immutable after the server starts (counters are atomics).
pub(crate) struct Shared {
    pub(crate) files: Option<FileServer>,
    pub(crate) routes: Vec<Route>,
    pub(crate) stats_path: Option<String>,
    pub(crate) limits: HttpLimits,
    pub(crate) stats: Stats,
    started: Instant,
    /// Reported by the stats route only.
    pub(crate) model: Option<Model>,
    pub(crate) workers: usize,
    /// Fields added to every response (`--header`, `--hsts`, nosniff).
    pub(crate) extra: ExtraHeaders,
    pub(crate) access_log: Option<AccessLog>,
}

impl Shared {
    /// No files, no routes, default limits; the server fills it in before it starts.
    pub(crate) fn new() -> Shared {
        Shared {
            files: None,
            routes: Vec::new(),
            stats_path: None,
            limits: HttpLimits::default(),
            stats: Stats::new(),
            started: Instant::now(),
            model: None,
            workers: 0,
            extra: ExtraHeaders::default(),
            access_log: None,
        }
    }
}

impl Shared {
    /// Whether a request's body is read at all: only a route registered for exactly this
    /// method and path gets one. Everything else (files, /_stats, 404, 405) is answered from
    /// the head, and its body is dropped as it arrives.
    pub(crate) fn wants_body(&self, req: &Request) -> bool {
        let get_like = matches!(req.method, Method::Get | Method::Head);
        if get_like && self.stats_path.as_deref() == Some(req.path.as_str()) {
            return false;
        }
        self.routes
            .iter()
            .any(|r| r.path == req.path && r.method == req.method)
    }

    /// The response to a complete request (body included), made in place. Never fails:
    /// errors are statuses.
    #[cfg(test)]
    pub(crate) fn respond(&self, req: &Request) -> Response {
        self.answer(req).wait()
    }

    /// The answer to a complete request: ready now, or (a directory listing) a job for the
    /// blocking pool.
    pub(crate) fn answer(&self, req: &Request) -> Answer {
        if let Some(resp) = self.respond_now(req) {
            return resp.into();
        }
        match (&self.files, req.method) {
            (Some(files), Method::Get | Method::Head) => files.answer(req),
            (Some(files), Method::Options) => files.options(req).into(),
            (None, _) => Response::error(404).into(),
            (Some(_), _) => Response::error(405)
                .header("Allow", "GET, HEAD, OPTIONS")
                .into(),
        }
    }

    /// The cached small file that answers `req` whole (see `FileServer::hot`), when no route,
    /// the stats route or `OPTIONS *` claims the path first.
    pub(crate) fn hot(&self, req: &Request) -> Option<Arc<crate::filecache::Entry>> {
        if !matches!(req.method, Method::Get | Method::Head) {
            return None;
        }
        let files = self.files.as_ref()?;
        if self.stats_path.as_deref() == Some(req.path.as_str())
            || self.routes.iter().any(|r| r.path == req.path)
        {
            return None;
        }
        files.hot(req)
    }

    /// The answers that don't involve files: `OPTIONS *`, the stats route, the routes.
    fn respond_now(&self, req: &Request) -> Option<Response> {
        if req.path == "*" {
            // OPTIONS * (the only asterisk-form the parser lets through): what the server
            // as a whole answers.
            let mut methods = vec![Method::Get, Method::Head, Method::Options];
            for r in &self.routes {
                if !methods.contains(&r.method) {
                    methods.push(r.method);
                }
            }
            return Some(Response::new(204).header("Allow", allow(&methods)));
        }
        let get_like = matches!(req.method, Method::Get | Method::Head);
        if get_like && self.stats_path.as_deref() == Some(req.path.as_str()) {
            return Some(self.stats_response());
        }
        let mut allowed: Vec<Method> = Vec::new();
        for r in self.routes.iter().filter(|r| r.path == req.path) {
            let head_via_get = req.method == Method::Head && r.method == Method::Get;
            if r.method == req.method || head_via_get {
                return Some((r.handler)(req));
            }
            allowed.push(r.method);
        }
        if !allowed.is_empty() {
            if allowed.contains(&Method::Get) {
                allowed.push(Method::Head);
            }
            allowed.push(Method::Options);
            let status = if req.method == Method::Options {
                204
            } else {
                405
            };
            let resp = if status == 204 {
                Response::new(204)
            } else {
                Response::error(405)
            };
            return Some(resp.header("Allow", allow(&allowed)));
        }
        None
    }

    fn stats_response(&self) -> Response {
        let s = self.stats.snapshot();
        let body = serde_json::json!({
            "model": self.model.map(|m| m.name()),
            "workers": self.workers,
            "uptime_secs": self.started.elapsed().as_secs_f64(),
            "pid": std::process::id(),
            "connections": s.open,
            "connections_total": s.accepted,
            "requests": s.requests,
        });
        Response::json(200, format!("{body}\n")).header("Cache-Control", "no-store")
    }
}

fn allow(methods: &[Method]) -> String {
    let names: Vec<&str> = methods.iter().map(|m| m.as_str()).collect();
    names.join(", ")
}
