//! What a TLS listener serves: the certificate (from PEM files, or made at start for trying
//! things out) behind a resolver that re-reads the files after SIGHUP, and the rustls
//! `ServerConfig` every connection's handshake uses.
//!
//! The `ServerConfig` itself never changes; the resolver hands each new handshake the current
//! certificate, so a reload needs no swap of the config and cannot touch established
//! connections.

use super::reload;
use rustls::crypto::ring as provider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

/// A certificate or key that could not be used, naming the file.
#[derive(Debug, thiserror::Error)]
#[error("{}: {what}", file.display())]
pub struct TlsError {
    pub file: PathBuf,
    pub what: String,
}

fn err(file: &Path, what: impl Into<String>) -> TlsError {
    TlsError {
        file: file.to_path_buf(),
        what: what.into(),
    }
}

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

/// The certificate store behind every handshake.
#[derive(Debug)]
struct Store {
    /// Where the certificate came from; `None` for a self-signed one (nothing to reload).
    files: Option<(PathBuf, PathBuf)>,
    current: RwLock<Arc<CertifiedKey>>,
    /// The SIGHUP generation `current` was loaded at.
    generation: AtomicU64,
}

impl Store {
    fn reload_if_signalled(&self) {
        let g = reload::generation();
        let seen = self.generation.load(Ordering::Relaxed);
        // One handshake per generation does the reload; the others use the current key.
        if g == seen
            || self
                .generation
                .compare_exchange(seen, g, Ordering::AcqRel, Ordering::Relaxed)
                .is_err()
        {
            return;
        }
        if let Some((cert, key)) = &self.files {
            match load(cert, key) {
                Ok(k) => {
                    *self.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(k);
                    tracing::info!(cert = %cert.display(), "TLS certificate reloaded");
                }
                // A broken file mid-life keeps the old certificate: better stale than down.
                Err(e) => tracing::error!("TLS certificate not reloaded, keeping the old one: {e}"),
            }
        }
    }

    fn current(&self) -> Arc<CertifiedKey> {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

impl ResolvesServerCert for Store {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.reload_if_signalled();
        Some(self.current())
    }
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
}

impl TlsConfig {
    /// Serve the certificate chain in `cert` (PEM, leaf first) with the private key in `key`
    /// (PEM: PKCS#8, PKCS#1 or SEC1), offering the ALPN protocols `alpn` (e.g. `http/1.1`).
    /// After [`reload::install_sighup`](super::install_sighup), a SIGHUP makes new handshakes
    /// use the files' new contents.
    pub fn from_pem_files(cert: &Path, key: &Path, alpn: &[&[u8]]) -> Result<Self, TlsError> {
        let k = load(cert, key)?;
        Ok(Self::build(
            k,
            Some((cert.to_path_buf(), key.to_path_buf())),
            alpn,
        ))
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

    fn build(key: CertifiedKey, files: Option<(PathBuf, PathBuf)>, alpn: &[&[u8]]) -> Self {
        let store = Arc::new(Store {
            files,
            current: RwLock::new(Arc::new(key)),
            generation: AtomicU64::new(reload::generation()),
        });
        let mut server =
            rustls::ServerConfig::builder_with_provider(Arc::new(provider::default_provider()))
                .with_safe_default_protocol_versions()
                .expect("the ring provider supports the default versions")
                .with_no_client_auth()
                .with_cert_resolver(store.clone());
        server.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        // TLS 1.3 resumption tickets: a returning client skips the certificate signature.
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
        TlsConfig {
            server: Arc::new(server),
            channel: Arc::new(channel),
            store,
            require_reuse: true,
            sessions: None,
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

    /// This configuration with a session store for one connection (an upgradable one, FTP):
    /// its control handshake's sessions go there and its data channels resume only from there.
    pub(crate) fn bound_to_connection(&self) -> TlsConfig {
        let sessions = Arc::new(super::reuse::ControlSessions::default());
        let mut server = (*self.server).clone();
        server.session_storage = sessions.clone();
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

fn load(cert: &Path, key: &Path) -> Result<CertifiedKey, TlsError> {
    let bytes = std::fs::read(cert).map_err(|e| err(cert, format!("cannot read: {e}")))?;
    let chain = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| err(cert, format!("not a PEM certificate file: {e}")))?;
    if chain.is_empty() {
        return Err(err(cert, "no certificate in it (expected PEM CERTIFICATE)"));
    }
    let bytes = std::fs::read(key).map_err(|e| err(key, format!("cannot read: {e}")))?;
    let der = PrivateKeyDer::from_pem_slice(&bytes)
        .map_err(|e| err(key, format!("no private key in it (expected PEM): {e}")))?;
    let signer = provider::sign::any_supported_type(&der)
        .map_err(|e| err(key, format!("unsupported private key: {e}")))?;
    let k = CertifiedKey::new(chain, signer);
    k.keys_match().map_err(|e| {
        err(
            key,
            format!("does not match the certificate {}: {e}", cert.display()),
        )
    })?;
    Ok(k)
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

fn sha256(bytes: &[u8]) -> ring::digest::Digest {
    ring::digest::digest(&ring::digest::SHA256, bytes)
}

fn fingerprint(der: &[u8]) -> String {
    let mut s = String::new();
    for (i, b) in sha256(der).as_ref().iter().enumerate() {
        if i > 0 {
            s.push(':');
        }
        let _ = write!(s, "{b:02X}");
    }
    s
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
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
