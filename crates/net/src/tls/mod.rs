//! TLS for any protocol, as a session layer (feature `tls`): [`TlsProtocol`] wraps a
//! [`Protocol`] so that each connection's session is a [`TlsSession`] running the protocol's own
//! session over rustls. No protocol knows about TLS and every model drives it unchanged.
//!
//! - `config`: the certificate (PEM files or self-signed) and rustls settings;
//! - `store`: the certificate, key and OCSP staple from files, re-read after SIGHUP;
//! - `reload`: SIGHUP makes new handshakes pick up the certificate files' new contents;
//! - `snapshot`: the files' last good contents, shared with worker processes;
//! - `ticketer`: stateless resumption tickets, keys shared by every worker process, rotated;
//! - `session`: the wrapper session itself (`session::events`: the driver's events on it;
//!   `session::channels`: its TLS data channels' events);
//! - `plain_http`: the readable `400` for a plain-HTTP request on an HTTPS port;
//! - `channel`: TLS on one data channel (FTP's `PROT P`);
//! - `range`: file ranges read and encrypted in user space, for both.
//!
//! File ranges are encrypted in user space (read and encrypt in 64 KiB steps, one 512 KiB write
//! per drain): kTLS, which would keep `sendfile(2)`, needs the kernel's `tls` module, absent
//! where this was built (see docs/ARCHITECTURE.md).

mod channel;
mod config;
mod error;
mod plain_http;
mod range;
mod reload;
mod reuse;
mod session;
mod snapshot;
mod store;
mod ticketer;

pub use config::{SelfSigned, TlsConfig};
pub use error::TlsError;
pub use reload::install_sighup;
pub use session::TlsSession;

#[cfg(test)]
use crate::session::{ChannelEvent, ChannelId};
use crate::session::{ConnInfo, Context, Protocol, Session};

/// Wraps `P`: connections on the chosen listeners speak TLS, the others stay plain.
pub struct TlsProtocol<P> {
    inner: P,
    tls: TlsConfig,
    /// Listener numbers (announce order) that speak TLS; `None` = all of them.
    listeners: Option<Vec<usize>>,
    /// Connections on the other listeners may switch to TLS (`start_tls`) and run TLS data
    /// channels (`channel_tls`).
    upgradable: bool,
    /// Listeners whose TLS settings are their own (e.g. chat's line port: no HTTP ALPN).
    own: Vec<(usize, TlsConfig)>,
}

impl<P: Protocol> TlsProtocol<P> {
    /// TLS on every listener.
    pub fn new(inner: P, tls: TlsConfig) -> Self {
        TlsProtocol {
            inner,
            tls,
            listeners: None,
            upgradable: false,
            own: Vec::new(),
        }
    }

    /// Listener number `listener` speaks TLS with `tls` instead of the shared settings.
    pub fn with_config_on(mut self, listener: usize, tls: TlsConfig) -> Self {
        self.own.push((listener, tls));
        self
    }

    /// TLS only on listener number `listener` (chat: its web face is listener 1).
    pub fn only_on(inner: P, tls: TlsConfig, listener: usize) -> Self {
        Self::only_on_each(inner, tls, vec![listener])
    }

    /// TLS only on the listeners numbered in `listeners` (announce order).
    pub fn only_on_each(inner: P, tls: TlsConfig, listeners: Vec<usize>) -> Self {
        TlsProtocol {
            inner,
            tls,
            listeners: Some(listeners),
            upgradable: false,
            own: Vec::new(),
        }
    }

    /// FTP's two ways (RFC 4217 and "implicit" FTPS): connections on the listeners numbered in
    /// `implicit` speak TLS from their first byte; the others start in the clear and switch
    /// when their session calls [`Context::start_tls`]. Sessions on every listener may make
    /// data channels TLS ([`Context::channel_tls`]).
    pub fn upgradable(inner: P, tls: TlsConfig, implicit: Vec<usize>) -> Self {
        TlsProtocol {
            inner,
            tls,
            listeners: Some(implicit),
            upgradable: true,
            own: Vec::new(),
        }
    }

    /// The wrapped protocol, for callers that need its own state (its config, its counters).
    pub fn inner(&self) -> &P {
        &self.inner
    }

    fn is_tls(&self, listener: usize) -> bool {
        match &self.listeners {
            None => true,
            Some(l) => l.contains(&listener),
        }
    }
}

impl<P: Protocol> Protocol for TlsProtocol<P> {
    type Session = MaybeTls<P::Session>;

    fn new_session(&self, info: &ConnInfo) -> Self::Session {
        self.new_session_on(0, info)
    }

    fn new_session_on(&self, listener: usize, info: &ConnInfo) -> Self::Session {
        let inner = self.inner.new_session_on(listener, info);
        // An upgradable connection (FTP) has data channels, which resume its own sessions only.
        // A listener with a TLS configuration of its own (the chat's line port: no HTTP ALPN).
        let base = self
            .own
            .iter()
            .find(|(l, _)| *l == listener)
            .map_or(&self.tls, |(_, t)| t);
        let tls = if self.upgradable {
            base.bound_to_connection()
        } else {
            base.clone()
        };
        if !self.is_tls(listener) {
            return if self.upgradable {
                MaybeTls::Tls(Box::new(TlsSession::upgradable(inner, tls, *info)))
            } else {
                MaybeTls::Plain(inner)
            };
        }
        match tls.connection() {
            Ok(c) => MaybeTls::Tls(Box::new(TlsSession::new(inner, tls, c, *info))),
            Err(e) => {
                tracing::error!("cannot start a TLS connection: {e}");
                MaybeTls::Refused
            }
        }
    }

    fn refusal(&self) -> Option<Vec<u8>> {
        self.refusal_on(0)
    }

    fn refusal_on(&self, listener: usize) -> Option<Vec<u8>> {
        // A plaintext refusal means nothing to a TLS client: just close.
        if self.is_tls(listener) {
            None
        } else {
            self.inner.refusal_on(listener)
        }
    }

    fn on_process_exit(&self, pid: u32) -> Vec<crate::Message> {
        self.inner.on_process_exit(pid)
    }
}

/// A session on a listener that may or may not speak TLS.
pub enum MaybeTls<S> {
    /// A listener without TLS: the protocol's own session, unwrapped.
    Plain(S),
    /// The session run over rustls: from the first byte, or (upgradable listeners) in the
    /// clear until the session asks for TLS.
    Tls(Box<TlsSession<S>>),
    /// rustls would not start a connection (it never fails with a valid config): close.
    Refused,
}

/// Every callback goes to the session the listener chose; a refused connection has none, so
/// the [`Wrapper`](crate::session::Wrapper) defaults close it (and `on_open` aborts it).
impl<S: Session> crate::session::Wrapper for MaybeTls<S> {
    type Inner = dyn Session;

    fn inner_mut(&mut self) -> Option<&mut dyn Session> {
        match self {
            MaybeTls::Plain(s) => Some(s),
            MaybeTls::Tls(s) => Some(&mut **s),
            MaybeTls::Refused => None,
        }
    }

    fn on_open(&mut self, cx: &mut Context) {
        if crate::session::Wrapper::forward(self, cx, |s, cx| s.on_open(cx)).is_none() {
            cx.abort();
        }
    }
}

#[cfg(test)]
mod test_util;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod upgrade_tests;
