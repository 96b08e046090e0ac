//! How the suite reaches a server: plain TCP or TLS, the one parameter beside the model. A TLS
//! server gets a certificate for localhost made with rcgen when it starts; curl trusts it with
//! `--cacert` and reaches it as `https://localhost:PORT` (`--resolve` pins the name to
//! 127.0.0.1), and raw-socket scenarios speak through [`Conn`]: a `TcpStream`, or a rustls
//! client stream over one, with the socket calls (timeouts, blocking mode) passed to the socket.

use rustls::pki_types::{pem::PemObject, CertificateDer, ServerName};
use std::ffi::OsString;
use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub(crate) enum Transport {
    #[default]
    Plain,
    Tls,
}

/// What clients of a TLS server need: the certificate to trust, as a file and as rustls
/// settings.
pub(crate) struct Tls {
    ca: PathBuf,
    client: Arc<rustls::ClientConfig>,
}

impl Tls {
    /// Makes a certificate for localhost in `dir` (`tls-cert.pem`, `tls-key.pem`, readable by
    /// the unprivileged server too); returns it with the server flags that use it.
    pub(crate) fn make(dir: &Path) -> (Tls, Vec<OsString>) {
        let made = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        let (ca, key) = (dir.join("tls-cert.pem"), dir.join("tls-key.pem"));
        std::fs::write(&ca, made.cert.pem()).unwrap();
        std::fs::write(&key, made.key_pair.serialize_pem()).unwrap();
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(CertificateDer::from_pem_file(&ca).unwrap())
            .unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let client = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        let flags = vec![
            "--tls-cert".into(),
            ca.clone().into(),
            "--tls-key".into(),
            key.into(),
        ];
        let tls = Tls {
            ca,
            client: Arc::new(client),
        };
        (tls, flags)
    }

    /// curl's arguments to trust this certificate for `localhost:port` at 127.0.0.1.
    pub(crate) fn curl_args(&self, cmd: &mut Command, port: u16) {
        cmd.arg("--cacert")
            .arg(&self.ca)
            .args(["--resolve", &format!("localhost:{port}:127.0.0.1")]);
    }

    /// Completes a handshake on `sock`, as any client does before it sends a request.
    pub(crate) fn connect(&self, mut sock: TcpStream) -> Conn {
        let name = ServerName::try_from("localhost").unwrap();
        let mut tls = rustls::ClientConnection::new(self.client.clone(), name).unwrap();
        while tls.is_handshaking() {
            tls.complete_io(&mut sock).expect("TLS handshake");
        }
        Conn::Tls(Box::new(rustls::StreamOwned::new(tls, sock)))
    }
}

/// A connection to the server under test, over either transport.
pub(crate) enum Conn {
    Plain(TcpStream),
    Tls(Box<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>),
}

impl Conn {
    fn socket(&self) -> &TcpStream {
        match self {
            Conn::Plain(s) => s,
            Conn::Tls(t) => &t.sock,
        }
    }

    pub(crate) fn set_read_timeout(&self, d: Option<Duration>) -> io::Result<()> {
        self.socket().set_read_timeout(d)
    }

    /// Ends what this side sends and goes on reading: `shutdown(SHUT_WR)`, over TLS after a
    /// close_notify (TLS 1.3 lets the other side go on writing).
    pub(crate) fn shutdown_write(&mut self) -> io::Result<()> {
        if let Conn::Tls(t) = self {
            t.conn.send_close_notify();
            t.flush()?;
        }
        self.socket().shutdown(std::net::Shutdown::Write)
    }

    /// Reads what has arrived, without waiting: `Err(WouldBlock)` when no response byte is
    /// there (over TLS, records without application data, such as session tickets, don't
    /// count). What it reads is consumed.
    pub(crate) fn read_now(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.socket().set_nonblocking(true)?;
        let r = self.read(buf);
        self.socket().set_nonblocking(false)?;
        r
    }
}

impl Read for Conn {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Conn::Plain(s) => s.read(buf),
            Conn::Tls(t) => t.read(buf),
        }
    }
}

impl Write for Conn {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Conn::Plain(s) => s.write(buf),
            Conn::Tls(t) => t.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Conn::Plain(s) => s.flush(),
            Conn::Tls(t) => t.flush(),
        }
    }
}
