//! What a TLS listener serves: the certificate (from PEM files, or made at start for trying
//! things out) behind a resolver that re-reads the files after SIGHUP, and the rustls
//! `ServerConfig` every connection's handshake uses.
//!
//! The `ServerConfig` itself never changes; the resolver hands each new handshake the current
//! certificate, so a reload needs no swap of the config and cannot touch established
//! connections.

use super::error::{err, TlsError};
use super::store::{fingerprint, load, sha256, Files, Store};
use rustls::crypto::ring as provider;
use rustls::pki_types::PrivateKeyDer;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A certificate made at start by [`TlsConfig::self_signed`], with what a client needs to
/// trust it.
#[derive(Debug, Clone)]
pub struct SelfSigned {
    /// The certificate, PEM (`curl --cacert`).
    pub cert_pem: String,
    /// SHA-256 of the certificate, `AA:BB:…` as `openssl x509 -fingerprint -sha256` shows it.
    pub fingerprint: String,
    /// Base64 SHA-256 of the public key (curl `--pinnedpubkey sha256//…`, Chromium
    /// `--ignore-certificate-errors-spki-list`).
    pub spki_sha256: String,
}

/// The TLS side of a listener: certificate and protocol settings. Cheap to clone (shared).
#[derive(Clone, Debug)]
pub struct TlsConfig {
    server: Arc<rustls::ServerConfig>,
    /// The same, for data channels (no tickets issued; see `build`).
    channel: Arc<rustls::ServerConfig>,
    store: Arc<Store>,
    /// Data channels must resume the control connection's session (see `reuse.rs`); only
    /// meaningful once [`TlsConfig::bound_to_connection`] gave it a store of its own.
    require_reuse: bool,
    /// The sessions of the one connection this configuration is bound to.
    sessions: Option<Arc<super::reuse::ControlSessions>>,
    /// A connection whose first byte starts an HTTP method gets a plaintext `400` (see
    /// `plain_http.rs`); HTTP listeners only.
    answer_plain_http: bool,
}

impl TlsConfig {
    /// Serve the certificate chain in `cert` (PEM, leaf first) with the private key in `key`
    /// (PEM: PKCS#8, PKCS#1 or SEC1), offering the ALPN protocols `alpn` (e.g. `http/1.1`).
    /// After [`install_sighup`](super::install_sighup), a SIGHUP makes new handshakes
    /// use the files' new contents.
    pub fn from_pem_files(cert: &Path, key: &Path, alpn: &[&[u8]]) -> Result<Self, TlsError> {
        Self::from_files(cert, key, None, alpn)
    }

    /// [`Self::from_pem_files`], stapling the DER OCSP response in `ocsp` to every handshake
    /// (as nginx's `ssl_stapling_file`; a SIGHUP re-reads it with the certificate).
    pub fn from_files(
        cert: &Path,
        key: &Path,
        ocsp: Option<&Path>,
        alpn: &[&[u8]],
    ) -> Result<Self, TlsError> {
        let files = Files {
            cert: cert.to_path_buf(),
            key: key.to_path_buf(),
            ocsp: ocsp.map(Path::to_path_buf),
        };
        let k = load(&files)?;
        Ok(Self::build(k, Some(files), alpn))
    }

    /// Make a certificate for `names` (e.g. `localhost`) now, signed by itself: for trying TLS
    /// out. Clients must be told to trust it (see [`SelfSigned`]).
    pub fn self_signed(names: &[&str], alpn: &[&[u8]]) -> Result<(Self, SelfSigned), TlsError> {
        let (made, info) = generate(names)?;
        let der = made.cert.der().clone();
        let key = PrivateKeyDer::try_from(made.key_pair.serialize_der())
            .map_err(|e| err(Path::new("(self-signed)"), e))?;
        let signer = provider::sign::any_supported_type(&key)
            .map_err(|e| err(Path::new("(self-signed)"), e.to_string()))?;
        let k = CertifiedKey::new(vec![der], signer);
        Ok((Self::build(k, None, alpn), info))
    }

    /// [`Self::self_signed`] written to files: `cert.pem` and `key.pem` (mode 0600) in `dir`,
    /// for a process that hands one certificate to several servers (`bingfa serve` starts one
    /// per service, and each should show the same certificate). Returns the two paths.
    pub fn write_self_signed(
        names: &[&str],
        dir: &Path,
    ) -> Result<(PathBuf, PathBuf, SelfSigned), TlsError> {
        use std::io::Write as _;
        use std::os::unix::fs::OpenOptionsExt;
        let (made, info) = generate(names)?;
        let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
        let write = |path: &Path, text: &str, mode: u32| {
            std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(mode)
                .open(path)
                .and_then(|mut f| f.write_all(text.as_bytes()))
                .map_err(|e| err(path, format!("cannot write: {e}")))
        };
        write(&cert, &made.cert.pem(), 0o644)?;
        write(&key, &made.key_pair.serialize_pem(), 0o600)?;
        Ok((cert, key, info))
    }

    fn build(key: CertifiedKey, files: Option<Files>, alpn: &[&[u8]]) -> Self {
        let store = Store::new(key, files);
        let mut server =
            rustls::ServerConfig::builder_with_provider(Arc::new(provider::default_provider()))
                .with_safe_default_protocol_versions()
                .expect("the ring provider supports the default versions")
                .with_no_client_auth()
                .with_cert_resolver(store.clone());
        server.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        // Resumption tickets (TLS 1.3, and TLS 1.2's RFC 5077): a returning client skips the
        // certificate signature. Stateless, with keys every worker process shares
        // (`ticketer.rs`), so any number of clients resume, with any process.
        server.ticketer = match super::ticketer::SharedTicketer::new() {
            Ok(t) => Arc::new(t),
            Err(e) => {
                tracing::warn!("no shared ticket keys ({e}): sessions resume from the cache only");
                Arc::new(super::ticketer::NoTickets)
            }
        };
        server.send_tls13_tickets = 2;
        // Data channels (FTP) resume the control connection's session (`reuse.rs`) and issue
        // one ticket each, for clients that use a ticket once. It is held back until the
        // channel sends something or closes (`channel.rs`): a ticket is the server's only
        // output after the handshake of an upload, and a client that closes the channel
        // without reading it (ftplib's own STOU path, lftp, curl: none reads an upload
        // channel) makes its kernel answer with RST instead of FIN, which can destroy the
        // upload's tail and its end.
        let mut channel = server.clone();
        channel.send_tls13_tickets = 1;
        channel.alpn_protocols.clear();
        // Their sessions stay in the connection's own store (see `bound_to_connection`).
        channel.ticketer = Arc::new(super::ticketer::NoTickets);
        TlsConfig {
            server: Arc::new(server),
            channel: Arc::new(channel),
            store,
            require_reuse: true,
            sessions: None,
            answer_plain_http: false,
        }
    }

    /// The same certificate (SIGHUP reloads included) for a protocol that is not HTTP, such
    /// as a line protocol: no ALPN protocol offered, and a client whose ALPN list names only
    /// HTTP protocols is refused at the handshake. That is the ALPACA defence: a browser sent
    /// to this port by another page (its HTTPS request, its form) never gets a TLS session.
    pub fn not_http(&self) -> TlsConfig {
        let mut server = (*self.server).clone();
        server.alpn_protocols.clear();
        server.cert_resolver = Arc::new(RefuseHttp(self.store.clone()));
        let mut channel = server.clone();
        channel.send_tls13_tickets = 0;
        TlsConfig {
            server: Arc::new(server),
            channel: Arc::new(channel),
            store: self.store.clone(),
            require_reuse: self.require_reuse,
            sessions: None,
            // Not HTTP: a plain-HTTP request is not this port's client's mistake to explain.
            answer_plain_http: false,
        }
    }

    /// Whether a TLS data channel ([`Context::channel_tls`](crate::Context::channel_tls))
    /// must resume its control connection's TLS session (default: required, as vsftpd's
    /// `require_ssl_reuse`). A channel whose handshake was a fresh one is then closed and the
    /// inner session gets `ChannelEvent::Error(PermissionDenied)` (FTP answers `522`).
    /// `false` accepts any handshake, for clients that cannot resume.
    pub fn require_data_session_reuse(mut self, required: bool) -> Self {
        self.require_reuse = required;
        self
    }

    /// For an HTTP listener: a client that speaks plain HTTP to it (its first byte starts a
    /// request line, not a TLS record) gets a readable `400` in the clear saying to use
    /// `https://`, as nginx's 497, instead of a bare TLS alert. Off by default (FTP's implicit
    /// TLS port, a chat line port: not HTTP); [`Self::not_http`] turns it off.
    pub fn answer_plain_http(mut self, on: bool) -> Self {
        self.answer_plain_http = on;
        self
    }

    pub(crate) fn answers_plain_http(&self) -> bool {
        self.answer_plain_http
    }

    /// This configuration with a session store for one connection (an upgradable one, FTP):
    /// its control handshake's sessions go there and its data channels resume only from there.
    pub(crate) fn bound_to_connection(&self) -> TlsConfig {
        let sessions = Arc::new(super::reuse::ControlSessions::default());
        let mut server = (*self.server).clone();
        server.session_storage = sessions.clone();
        // No stateless tickets: one would resume on any connection's data channel, where
        // only this connection's sessions may (`reuse.rs`).
        server.ticketer = Arc::new(super::ticketer::NoTickets);
        // A client that uses each ticket once (rustls's cache) loses one with each data
        // connection that ends before the channel's own ticket went out (an abort, a reset):
        // a few more to start with.
        server.send_tls13_tickets = 4;
        TlsConfig {
            server: Arc::new(server),
            channel: self.channel.clone(),
            store: self.store.clone(),
            require_reuse: self.require_reuse,
            sessions: Some(sessions),
            answer_plain_http: false,
        }
    }

    /// Data channels made from this configuration must have resumed the control session.
    pub(crate) fn channels_must_resume(&self) -> bool {
        self.require_reuse && self.sessions.is_some()
    }

    /// SHA-256 fingerprint of the certificate new handshakes get (`AA:BB:…`).
    pub fn fingerprint(&self) -> String {
        fingerprint(&self.store.current().cert[0])
    }

    pub(crate) fn connection(&self) -> Result<rustls::ServerConnection, rustls::Error> {
        Self::start(&self.server)
    }

    /// A connection for a data channel (`Context::channel_tls`), and, when bound to a
    /// connection, the channel's view of its sessions (to commit once the channel is checked).
    pub(crate) fn channel_connection(
        &self,
    ) -> Result<
        (
            rustls::ServerConnection,
            Option<Arc<super::reuse::ChannelView>>,
        ),
        rustls::Error,
    > {
        let Some(sessions) = &self.sessions else {
            return Ok((Self::start(&self.channel)?, None));
        };
        let view = Arc::new(super::reuse::ChannelView::new(sessions.clone()));
        let mut channel = (*self.channel).clone();
        channel.session_storage = view.clone();
        Ok((Self::start(&Arc::new(channel))?, Some(view)))
    }

    fn start(cfg: &Arc<rustls::ServerConfig>) -> Result<rustls::ServerConnection, rustls::Error> {
        let mut c = rustls::ServerConnection::new(cfg.clone())?;
        // The session bounds its output itself (files go out a chunk per drain).
        c.set_buffer_limit(None);
        Ok(c)
    }
}

/// [`TlsConfig::not_http`]'s resolver: no certificate (rustls then ends the handshake with
/// an alert) for a client that offers ALPN and only HTTP protocols in it.
#[derive(Debug)]
struct RefuseHttp(Arc<Store>);

impl ResolvesServerCert for RefuseHttp {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        if let Some(mut alpn) = hello.alpn() {
            if alpn.all(is_http_alpn) {
                tracing::debug!("tls: refused a client that offers only HTTP protocols");
                return None;
            }
        }
        self.0.resolve(hello)
    }
}

/// An ALPN protocol ID of HTTP (IANA's registry: `http/0.9`, `http/1.0`, `http/1.1`, `h2`,
/// `h2c`, `h3` and its drafts, `spdy/*`).
fn is_http_alpn(id: &[u8]) -> bool {
    id.starts_with(b"http/")
        || id == b"h2"
        || id == b"h2c"
        || id.starts_with(b"h3")
        || id.starts_with(b"spdy/")
}

/// A certificate for `names`, signed by itself, and what a client needs to trust it.
fn generate(names: &[&str]) -> Result<(rcgen::CertifiedKey, SelfSigned), TlsError> {
    let names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
    let made = rcgen::generate_simple_self_signed(names)
        .map_err(|e| err(Path::new("(self-signed)"), e.to_string()))?;
    let info = SelfSigned {
        cert_pem: made.cert.pem(),
        fingerprint: fingerprint(made.cert.der()),
        spki_sha256: base64(sha256(&made.key_pair.public_key_der()).as_ref()),
    };
    Ok((made, info))
}

/// Standard base64 with padding (all this crate needs; not worth a dependency).
fn base64(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for c in bytes.chunks(3) {
        let n = (c[0] as u32) << 16
            | (*c.get(1).unwrap_or(&0) as u32) << 8
            | *c.get(2).unwrap_or(&0) as u32;
        for i in 0..4 {
            if i <= c.len() {
                out.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_the_standard() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
    }

    #[test]
    fn bad_files_are_named() {
        let dir = std::env::temp_dir().join(format!("bingfa-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let missing = dir.join("missing.pem");
        let e = TlsConfig::from_pem_files(&missing, &missing, &[]).unwrap_err();
        assert!(e.to_string().contains("missing.pem: cannot read"), "{e}");
        let junk = dir.join("junk.pem");
        std::fs::write(&junk, "hello\n").unwrap();
        let e = TlsConfig::from_pem_files(&junk, &junk, &[]).unwrap_err();
        assert!(e.to_string().contains("junk.pem: no certificate"), "{e}");
        let (_, made) = TlsConfig::self_signed(&["localhost"], &[]).unwrap();
        let cert = dir.join("cert.pem");
        std::fs::write(&cert, &made.cert_pem).unwrap();
        let e = TlsConfig::from_pem_files(&cert, &junk, &[]).unwrap_err();
        assert!(e.to_string().contains("junk.pem: no private key"), "{e}");
        // Encrypted keys as `openssl pkcs8 -topk8 -v2 aes256` and `openssl genrsa -aes256`
        // write them: the error says so.
        let enc = dir.join("enc.key");
        for text in [
            "-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIFHDBOBgkqhkiG9w0BBQ0wQTApBgkqhkiG9w0BBQwwHAQI\n-----END ENCRYPTED PRIVATE KEY-----\n",
            "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-256-CBC,00\n\nAAAA\n-----END RSA PRIVATE KEY-----\n",
        ] {
            std::fs::write(&enc, text).unwrap();
            let e = TlsConfig::from_pem_files(&cert, &enc, &[]).unwrap_err();
            assert!(e.to_string().contains("enc.key: the private key is encrypted"), "{e}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
