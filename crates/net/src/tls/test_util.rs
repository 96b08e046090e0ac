//! What the TLS layer's hand-driven tests share (`tests`, `upgrade_tests`): a connection's
//! identity, a test file, and a rustls client trusting the self-signed certificate, with the
//! step that turns the server's ciphertext into the client's plaintext.

use super::SelfSigned;
use crate::session::ConnInfo;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::ServerName;
use std::io::Read;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

pub(super) fn info() -> ConnInfo {
    ConnInfo {
        id: 1,
        peer: "127.0.0.1:1".parse().unwrap(),
        local: "127.0.0.1:2".parse().unwrap(),
        cred: None,
    }
}

/// The test file's content: `len` bytes of a pattern that is not periodic in 16 KiB records.
pub(super) fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

/// An open (already unlinked) file holding [`pattern`]`(len)`.
pub(super) fn test_file(len: usize) -> Arc<std::fs::File> {
    // Tests of one binary may run as threads of one process: one name each.
    static N: AtomicUsize = AtomicUsize::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let path = std::env::temp_dir().join(format!("bingfa-tls-file-{}-{n}", std::process::id()));
    std::fs::write(&path, pattern(len)).unwrap();
    let file = Arc::new(std::fs::File::open(&path).unwrap());
    std::fs::remove_file(&path).unwrap();
    file
}

/// A client for `localhost` trusting `made`'s certificate, offering `alpn`.
pub(super) fn client(made: &SelfSigned, alpn: &[&[u8]]) -> rustls::ClientConnection {
    client_with(&client_config(made, alpn))
}

/// A client on a configuration of its own: connections made from one share its session
/// cache, so a data channel resumes the control connection's session as an FTP client's does.
pub(super) fn client_with(cfg: &Arc<rustls::ClientConfig>) -> rustls::ClientConnection {
    let name = ServerName::try_from("localhost").unwrap();
    let mut c = rustls::ClientConnection::new(cfg.clone(), name).unwrap();
    // A test writes a whole upload at once; the harness carries it out as it goes.
    c.set_buffer_limit(None);
    c
}

/// The configuration of [`client`].
pub(super) fn client_config(made: &SelfSigned, alpn: &[&[u8]]) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    let der = rustls::pki_types::CertificateDer::from_pem_slice(made.cert_pem.as_bytes());
    roots.add(der.unwrap()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut ccfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    ccfg.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Arc::new(ccfg)
}

/// Give the client ciphertext from the server; what it decrypts is appended to `plain`.
/// True once the server's close_notify has come.
pub(super) fn receive(
    client: &mut rustls::ClientConnection,
    ct: &[u8],
    plain: &mut Vec<u8>,
) -> bool {
    let mut rd = ct;
    let mut closed = false;
    while !rd.is_empty() {
        client.read_tls(&mut rd).unwrap();
        let io = client.process_new_packets().unwrap();
        closed |= io.peer_has_closed();
        let mut buf = [0u8; 65536];
        while let Ok(n) = client.reader().read(&mut buf) {
            if n == 0 {
                break;
            }
            plain.extend_from_slice(&buf[..n]);
        }
    }
    closed
}
