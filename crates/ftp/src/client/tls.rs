//! FTP over TLS (RFC 4217), client side: the trust settings, the rustls client configuration
//! (made once per `Client`, so its in-memory session cache lets every data connection resume
//! the control connection's TLS session, which vsftpd demands by default with
//! `require_ssl_reuse`), and `Stream`, a TCP connection that is plain or TLS.
//!
//! The system roots are read from the distribution's CA bundle (`SSL_CERT_FILE`, else the
//! usual paths): one PEM file, parsed by rustls's own PEM reader, so no further crate.

use super::{Error, Result};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, ClientConnection, DigitallySignedStruct, RootCertStore, StreamOwned};
use std::io::{self, ErrorKind, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Which certificates the client trusts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trust {
    /// The system's CA bundle.
    System,
    /// Only the certificates (CAs, or a self-signed server certificate) in this PEM file.
    CaFile(PathBuf),
    /// None are checked: for testing only (anyone on the path can read and change the session).
    Insecure,
}

/// TLS for one connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsOptions {
    /// Implicit FTPS (`ftps://`): TLS from the first byte. Otherwise explicit: `AUTH TLS`
    /// after the greeting.
    pub implicit: bool,
    /// Which certificates are accepted.
    pub trust: Trust,
}

/// Where distributions keep their CA bundle (Debian/Ubuntu/Arch, Fedora/RHEL, openSUSE,
/// Alpine and the BSDs).
const BUNDLES: &[&str] = &[
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/ca-bundle.pem",
    "/etc/ssl/cert.pem",
];

/// What the TLS connections of one client share: the configuration (with its session cache)
/// and the name the server's certificate must carry.
pub(super) struct Setup {
    config: Arc<ClientConfig>,
    name: ServerName<'static>,
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn read_pem_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>> {
    let bytes = std::fs::read(path)
        .map_err(|e| Error::Tls(format!("cannot read {}: {e}", path.display())))?;
    let certs: Vec<_> = CertificateDer::pem_slice_iter(&bytes)
        .collect::<std::result::Result<_, _>>()
        .map_err(|e| Error::Tls(format!("{}: bad PEM: {e}", path.display())))?;
    if certs.is_empty() {
        return Err(Error::Tls(format!(
            "{}: no certificate in it",
            path.display()
        )));
    }
    Ok(certs)
}

/// The trust anchors, and the certificates read from a `--cacert` file (pinned: see
/// `Pinned`).
fn roots(trust: &Trust) -> Result<(RootCertStore, Vec<CertificateDer<'static>>)> {
    let path = match trust {
        Trust::CaFile(p) => p.clone(),
        _ => std::env::var_os("SSL_CERT_FILE")
            .map(PathBuf::from)
            .or_else(|| BUNDLES.iter().map(PathBuf::from).find(|p| p.is_file()))
            .ok_or_else(|| {
                Error::Tls(
                    "no system CA bundle found (set SSL_CERT_FILE, or trust a certificate \
                     with --cacert)"
                        .into(),
                )
            })?,
    };
    let certs = read_pem_certs(&path)?;
    let mut store = RootCertStore::empty();
    let (added, _ignored) = store.add_parsable_certificates(certs.iter().cloned());
    if added == 0 {
        return Err(Error::Tls(format!(
            "{}: no usable certificate in it",
            path.display()
        )));
    }
    let pinned = match trust {
        Trust::CaFile(_) => certs,
        _ => Vec::new(),
    };
    Ok((store, pinned))
}

/// The usual WebPKI check, plus: a server certificate that is byte for byte one of those in
/// the `--cacert` file is trusted as itself, its name still checked. That is what a user
/// means by handing over the server's own certificate, and it is how curl (with OpenSSL)
/// treats one; WebPKI alone refuses a self-signed certificate that is marked as a CA (as
/// `openssl req -x509` makes them by default) with CaUsedAsEndEntity.
#[derive(Debug)]
struct Pinned {
    webpki: Arc<rustls::client::WebPkiServerVerifier>,
    pinned: Vec<CertificateDer<'static>>,
}

impl Pinned {
    fn is_pinned(&self, cert: &CertificateDer<'_>) -> bool {
        self.pinned.iter().any(|p| p.as_ref() == cert.as_ref())
    }
}

impl ServerCertVerifier for Pinned {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        let checked = self.webpki.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        );
        match checked {
            Err(_) if self.is_pinned(end_entity) => {
                let parsed = rustls::server::ParsedCertificate::try_from(end_entity)?;
                rustls::client::verify_server_name(&parsed, server_name)?;
                Ok(ServerCertVerified::assertion())
            }
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.webpki.supported_verify_schemes()
    }
}

/// Accepts any certificate (`--insecure`), but still checks that the server holds the key
/// of the certificate it sent, so the handshake itself is sound.
#[derive(Debug)]
struct NoVerify(Arc<CryptoProvider>);

impl ServerCertVerifier for NoVerify {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

impl Setup {
    /// The configuration for `host` (a DNS name or an IP address, which the certificate
    /// must then name).
    pub(super) fn new(opts: &TlsOptions, host: &str) -> Result<Setup> {
        let name = ServerName::try_from(host.to_string())
            .map_err(|_| Error::Tls(format!("{host:?} is not a valid TLS server name")))?;
        let provider = provider();
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| Error::Tls(e.to_string()))?;
        let config = match &opts.trust {
            Trust::Insecure => builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(NoVerify(provider)))
                .with_no_client_auth(),
            trust => {
                let (store, pinned) = roots(trust)?;
                let webpki = rustls::client::WebPkiServerVerifier::builder_with_provider(
                    Arc::new(store),
                    provider,
                )
                .build()
                .map_err(|e| Error::Tls(e.to_string()))?;
                builder
                    .dangerous()
                    .with_custom_certificate_verifier(Arc::new(Pinned { webpki, pinned }))
                    .with_no_client_auth()
            }
        };
        Ok(Setup {
            config: Arc::new(config),
            name,
        })
    }
}

/// Why a certificate was refused, in words (rustls's, plus a hint for the usual case).
fn certificate_error(e: &rustls::CertificateError) -> Error {
    let text = e.to_string();
    let hint = match e {
        // WebPKI's own error, which reaches us only as text (rustls-webpki is not a
        // dependency of ours).
        rustls::CertificateError::Other(_) if text.contains("CaUsedAsEndEntity") => {
            " (the server's certificate is marked as a CA; give that very certificate with \
             --cacert to trust it as itself)"
        }
        rustls::CertificateError::UnknownIssuer => {
            " (not signed by a trusted CA; trust it with --cacert FILE)"
        }
        rustls::CertificateError::BadSignature => {
            " (a trusted certificate has its issuer's name but did not sign it: is --cacert \
             the server's current certificate?)"
        }
        _ => "",
    };
    Error::Certificate(format!("{text}{hint}"))
}

/// The typed error for an I/O error during a handshake.
fn handshake_error(e: io::Error) -> Error {
    if let Some(inner) = e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
        return match inner {
            rustls::Error::InvalidCertificate(c) => certificate_error(c),
            other => Error::Tls(format!("TLS handshake failed: {other}")),
        };
    }
    match e.kind() {
        ErrorKind::UnexpectedEof | ErrorKind::ConnectionReset => {
            Error::Tls("the server closed the connection during the TLS handshake".into())
        }
        ErrorKind::WouldBlock | ErrorKind::TimedOut => {
            Error::Tls("the TLS handshake timed out".into())
        }
        _ => Error::Tls(format!("TLS handshake failed: {e}")),
    }
}

/// A control or data connection: plain TCP, or TLS over it.
pub(super) enum Stream {
    Plain(TcpStream),
    Tls(Box<StreamOwned<ClientConnection, TcpStream>>),
}

impl Stream {
    /// Runs the TLS client handshake on `tcp` to its end (each read and write bounded by the
    /// socket's timeouts), so certificate and protocol failures surface here, typed.
    pub(super) fn handshake(mut tcp: TcpStream, setup: &Setup) -> Result<Stream> {
        let mut conn = ClientConnection::new(setup.config.clone(), setup.name.clone())
            .map_err(|e| Error::Tls(e.to_string()))?;
        while conn.is_handshaking() {
            conn.complete_io(&mut tcp).map_err(handshake_error)?;
        }
        Ok(Stream::Tls(Box::new(StreamOwned::new(conn, tcp))))
    }

    pub(super) fn tcp(&self) -> &TcpStream {
        match self {
            Stream::Plain(s) => s,
            Stream::Tls(t) => &t.sock,
        }
    }

    pub(super) fn is_tls(&self) -> bool {
        matches!(self, Stream::Tls(_))
    }

    /// Sends close_notify (TLS) and flushes it; errors are ignored: the peer may be gone.
    pub(super) fn close_notify(&mut self) {
        if let Stream::Tls(t) = self {
            t.conn.send_close_notify();
            while t.conn.wants_write() {
                if t.conn.write_tls(&mut t.sock).is_err() {
                    break;
                }
            }
        }
    }

    /// The end of an upload: close_notify (TLS) and a write shutdown, which in stream mode
    /// is the end of the file; then read what the server still sends (its close_notify,
    /// session tickets for the next data connection) until it closes, so nothing of ours is
    /// cut by a reset.
    pub(super) fn finish_upload(mut self) -> Result<()> {
        self.close_notify();
        self.tcp().shutdown(Shutdown::Write)?;
        if let Stream::Tls(t) = &mut self {
            let mut buf = [0u8; 4096];
            let mut left = 64 * 1024usize;
            // Bounded by the read timeout and 64 KiB (a server has nothing to send on an
            // upload); an error here changes nothing: the 226 decides.
            while let Ok(n @ 1..) = t.read(&mut buf) {
                left = left.saturating_sub(n);
                if left == 0 {
                    break;
                }
            }
        }
        Ok(())
    }

    /// The end of a download (after the server's close_notify): ours in answer.
    pub(super) fn finish_download(mut self) {
        self.close_notify();
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.read(buf),
            Stream::Tls(t) => t.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.write(buf),
            Stream::Tls(t) => t.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Plain(s) => s.flush(),
            Stream::Tls(t) => t.flush(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setup_err(trust: Trust, host: &str) -> String {
        let opts = TlsOptions {
            implicit: false,
            trust,
        };
        match Setup::new(&opts, host) {
            Ok(_) => panic!("accepted"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn bad_ca_files_and_names_are_named() {
        let dir = std::env::temp_dir().join(format!("bingfa-ftpc-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let missing = dir.join("missing.pem");
        let e = setup_err(Trust::CaFile(missing), "h");
        assert!(
            e.contains("missing.pem: No such file") || e.contains("cannot read"),
            "{e}"
        );
        let junk = dir.join("junk.pem");
        std::fs::write(&junk, "not a certificate\n").unwrap();
        let e = setup_err(Trust::CaFile(junk), "h");
        assert!(e.contains("junk.pem: no certificate in it"), "{e}");
        let e = setup_err(Trust::Insecure, "bad name!");
        assert!(
            e.contains("\"bad name!\" is not a valid TLS server name"),
            "{e}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn handshake_errors_are_typed() {
        let cert = |c| io::Error::new(ErrorKind::InvalidData, rustls::Error::InvalidCertificate(c));
        let e = handshake_error(cert(rustls::CertificateError::UnknownIssuer));
        assert!(
            matches!(&e, Error::Certificate(t) if t.starts_with("UnknownIssuer (not signed")),
            "{e}"
        );
        let e = handshake_error(cert(rustls::CertificateError::Expired));
        assert!(matches!(&e, Error::Certificate(_)), "{e}");
        let e = handshake_error(ErrorKind::UnexpectedEof.into());
        assert_eq!(
            e.to_string(),
            "TLS: the server closed the connection during the TLS handshake"
        );
        let e = handshake_error(ErrorKind::WouldBlock.into());
        assert_eq!(e.to_string(), "TLS: the TLS handshake timed out");
    }
}
