//! The client side of the raw scenarios: a control connection whose exact replies are checked,
//! in the clear or over TLS (explicit, `AUTH TLS`, or implicit), and its data connections —
//! plain TCP, or TLS resuming the control connection's session once `PROT P` is in effect.
//!
//! [`Transport`] lets one scenario run both ways: it starts the server (with a certificate for
//! TLS), opens the session (greeting, then `AUTH TLS`, `PBSZ 0`, `PROT P` for TLS), and
//! [`Control::data`] wraps each data connection as the protection level asks, so the same
//! checks of replies, bytes and files hold over both.

use super::*;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use std::sync::Arc;

/// How a scenario talks to the server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Transport {
    /// Control and data in the clear.
    Plain,
    /// Explicit FTPS: `AUTH TLS` after the greeting, then `PBSZ 0` and `PROT P`, so every data
    /// connection is TLS too.
    Tls,
}

pub(crate) use Transport::{Plain, Tls};

impl Transport {
    /// [`Server::start`], with a certificate (`--tls-cert/--tls-key`) for [`Tls`].
    pub(crate) fn start(self, model: Model, edge: bool, tree: &Tree, extra: &[&str]) -> Server {
        self.start_with(model, edge, tree, extra, |_| {})
    }

    pub(crate) fn start_with(
        self,
        model: Model,
        edge: bool,
        tree: &Tree,
        extra: &[&str],
        tweak: impl FnOnce(&mut Command),
    ) -> Server {
        match self {
            Plain => Server::start_with(model, edge, tree, extra, tweak),
            Tls => {
                let (pem, key) = cert(tree);
                let (p, k) = (pem.display().to_string(), key.display().to_string());
                let mut args = vec!["--tls-cert", &p, "--tls-key", &k];
                args.extend(extra);
                let mut srv = Server::start_with(model, edge, tree, &args, tweak);
                srv.pem = Some(pem);
                srv
            }
        }
    }
}

/// A certificate for localhost and 127.0.0.1 (rcgen) in the tree: (`cert.pem`, `key.pem`).
pub(crate) fn cert(tree: &Tree) -> (PathBuf, PathBuf) {
    let c =
        rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
    let (pem, key) = (tree.path("cert.pem"), tree.path("key.pem"));
    std::fs::write(&pem, c.cert.pem()).unwrap();
    std::fs::write(&key, c.key_pair.serialize_pem()).unwrap();
    (pem, key)
}

impl Server {
    /// A control connection past the greeting: for [`Tls`] also past `AUTH TLS` (handshake
    /// done), `PBSZ 0` and `PROT P`.
    pub(crate) fn session(&self, t: Transport) -> Control {
        let mut c = match (t, &self.pem) {
            (Plain, _) => Control::connect(self.addr),
            (Tls, Some(pem)) => Control::plain(self.addr, pem),
            (Tls, None) => panic!("a TLS session needs a server started with Tls"),
        };
        c.greeting();
        if t == Tls {
            assert_eq!(c.cmd("AUTH TLS"), "234 AUTH TLS successful.");
            c.upgrade();
            assert_eq!(c.cmd("PBSZ 0"), "200 PBSZ=0");
            assert_eq!(c.cmd("PROT P"), "200 Protection level set to Private.");
        }
        c
    }

    /// [`Server::session`], logged in.
    pub(crate) fn login(&self, t: Transport, user: &str, pass: &str) -> Control {
        let mut c = self.session(t);
        c.login(user, pass);
        c
    }
}

/// A stream in the clear or over TLS: a control connection, or a data connection.
pub(crate) enum Io {
    Plain(TcpStream),
    Tls(Box<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>),
}

impl Read for Io {
    fn read(&mut self, b: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Io::Plain(s) => s.read(b),
            Io::Tls(s) => s.read(b),
        }
    }
}

impl Write for Io {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        match self {
            Io::Plain(s) => s.write(b),
            Io::Tls(s) => s.write(b),
        }
    }
    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Io::Plain(s) => s.flush(),
            Io::Tls(s) => s.flush(),
        }
    }
}

impl Io {
    pub(crate) fn tcp(&self) -> &TcpStream {
        match self {
            Io::Plain(s) => s,
            Io::Tls(s) => &s.sock,
        }
    }

    /// Ends an upload cleanly (TLS: close_notify first), then waits (bounded) until the
    /// server closes its side.
    pub(crate) fn finish(mut self) {
        if let Io::Tls(s) = &mut self {
            s.conn.send_close_notify();
            s.flush().unwrap();
        }
        let _ = self.tcp().shutdown(std::net::Shutdown::Write);
        self.wait_closed();
    }

    /// Drops the connection with a TCP reset (SO_LINGER 0), whatever TLS was doing.
    pub(crate) fn reset(self) {
        socket2::SockRef::from(self.tcp())
            .set_linger(Some(Duration::ZERO))
            .unwrap();
    }

    /// Waits (bounded by the read timeout) until the server has closed this connection.
    pub(crate) fn wait_closed(mut self) {
        self.tcp()
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut buf = [0u8; 16384];
        loop {
            match self.read(&mut buf) {
                Ok(0) | Err(_) => return,
                Ok(_) => continue,
            }
        }
    }
}

/// A rustls client configuration trusting `pem` (one per control connection, so its data
/// connections resume the control connection's session).
pub(crate) fn client_config(pem: &Path) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_file(pem).unwrap())
        .unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Arc::new(
        rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth(),
    )
}

pub(crate) fn tls_stream(
    cfg: &Arc<rustls::ClientConfig>,
    s: TcpStream,
) -> Box<rustls::StreamOwned<rustls::ClientConnection, TcpStream>> {
    let name = ServerName::try_from("localhost").unwrap();
    let conn = rustls::ClientConnection::new(cfg.clone(), name).unwrap();
    Box::new(rustls::StreamOwned::new(conn, s))
}

/// A TCP connection with every wait bounded.
pub(crate) fn tcp(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.set_write_timeout(Some(Duration::from_secs(10))).unwrap();
    s
}

/// A control connection whose exact replies are checked, in the clear until
/// [`Control::upgrade`] (or TLS from the first byte, [`Control::implicit`]).
pub(crate) struct Control {
    io: Io,
    buf: Vec<u8>,
    /// The certificate trusted, and the configuration whose session cache the data
    /// connections resume from (TLS-capable connections only).
    tls: Option<(PathBuf, Arc<rustls::ClientConfig>)>,
    /// `PROT P` accepted: data connections are TLS.
    private: bool,
}

impl Control {
    /// In the clear, with no TLS possible.
    pub(crate) fn connect(addr: SocketAddr) -> Control {
        Control {
            io: Io::Plain(tcp(addr)),
            buf: Vec::new(),
            tls: None,
            private: false,
        }
    }

    /// In the clear, ready to [`Control::upgrade`] trusting `pem`.
    pub(crate) fn plain(addr: SocketAddr, pem: &Path) -> Control {
        Control {
            tls: Some((pem.to_path_buf(), client_config(pem))),
            ..Control::connect(addr)
        }
    }

    /// Implicit FTPS: TLS from the first byte.
    pub(crate) fn implicit(addr: SocketAddr, pem: &Path) -> Control {
        let cfg = client_config(pem);
        Control {
            io: Io::Tls(tls_stream(&cfg, tcp(addr))),
            buf: Vec::new(),
            tls: Some((pem.to_path_buf(), cfg)),
            private: false,
        }
    }

    fn cfg(&self) -> &Arc<rustls::ClientConfig> {
        &self
            .tls
            .as_ref()
            .expect("a TLS-capable control connection")
            .1
    }

    pub(crate) fn is_tls(&self) -> bool {
        matches!(self.io, Io::Tls(_))
    }

    /// After `234`: the handshake, with nothing unread in between.
    pub(crate) fn upgrade(&mut self) {
        assert!(self.buf.is_empty(), "bytes after 234: {:?}", self.buf);
        let placeholder = Io::Plain(self.io.tcp().try_clone().unwrap());
        let Io::Plain(s) = std::mem::replace(&mut self.io, placeholder) else {
            panic!("already TLS");
        };
        let mut t = tls_stream(self.cfg(), s);
        // Complete it now, so a failure shows here.
        while t.conn.is_handshaking() {
            t.conn.complete_io(&mut t.sock).expect("TLS handshake");
        }
        self.io = Io::Tls(t);
    }

    pub(crate) fn send(&mut self, line: &str) {
        self.send_raw(format!("{line}\r\n").as_bytes());
    }

    pub(crate) fn send_raw(&mut self, bytes: &[u8]) {
        self.io.write_all(bytes).unwrap();
        self.io.flush().unwrap();
    }

    /// As ftplib's `abort` sends: the whole line with MSG_OOB, so its last byte (the LF) is
    /// urgent data, out of the normal stream.
    pub(crate) fn send_oob(&mut self, line: &str) {
        use std::os::fd::AsRawFd;
        assert!(
            !self.is_tls(),
            "urgent data inside a TLS record would corrupt it"
        );
        let b = format!("{line}\r\n");
        // SAFETY: a valid buffer of its length on our own socket.
        let n = unsafe {
            libc::send(
                self.io.tcp().as_raw_fd(),
                b.as_ptr().cast(),
                b.len(),
                libc::MSG_OOB,
            )
        };
        assert_eq!(n, b.len() as isize);
    }

    /// `ABOR` as ftplib sends it: urgent in the clear; in-band over TLS (`FTP_TLS.abort`
    /// does so, since urgent data cannot be sent through TLS).
    pub(crate) fn abort(&mut self) {
        if self.is_tls() {
            self.send("ABOR");
        } else {
            self.send_oob("ABOR");
        }
    }

    /// The next reply line, without CRLF ("" at EOF).
    pub(crate) fn line(&mut self) -> String {
        loop {
            if let Some(i) = self.buf.iter().position(|&b| b == b'\n') {
                let l: Vec<u8> = self.buf.drain(..=i).collect();
                assert!(l.ends_with(b"\r\n"), "reply not CRLF-terminated: {l:?}");
                return String::from_utf8_lossy(&l[..l.len() - 2]).into_owned();
            }
            let mut b = [0u8; 4096];
            let n = self.io.read(&mut b).expect("read (timed out?)");
            if n == 0 {
                assert!(
                    self.buf.is_empty(),
                    "reply not CRLF-terminated: {:?}",
                    self.buf
                );
                return String::new();
            }
            self.buf.extend_from_slice(&b[..n]);
        }
    }

    pub(crate) fn expect(&mut self, want: &str) {
        assert_eq!(self.line(), want);
    }

    pub(crate) fn cmd(&mut self, line: &str) -> String {
        self.send(line);
        let l = self.line();
        if line.eq_ignore_ascii_case("PROT P") && l.starts_with("200 ") {
            self.private = true;
        } else if line.eq_ignore_ascii_case("PROT C") && l.starts_with("200 ") {
            self.private = false;
        }
        l
    }

    pub(crate) fn greeting(&mut self) {
        self.expect("220 bingfa FTP server ready.");
    }

    /// USER and PASS (after the greeting).
    pub(crate) fn login(&mut self, user: &str, pass: &str) {
        assert_eq!(self.cmd(&format!("USER {user}")).get(..4), Some("331 "));
        assert_eq!(self.cmd(&format!("PASS {pass}")), "230 Login successful.");
    }

    /// Sends `cmd`, expects exactly `want`.
    pub(crate) fn expect_line_after(&mut self, cmd: &str, want: &str) {
        assert_eq!(self.cmd(cmd), want, "{cmd}");
    }

    /// The server closed the connection within the read timeout: EOF or reset in the clear;
    /// over TLS a close_notify first (rustls reports a bare EOF as an error, which fails here).
    pub(crate) fn expect_closed(&mut self) {
        assert!(self.buf.is_empty(), "bytes before close: {:?}", self.buf);
        let mut buf = Vec::new();
        match self.io.read_to_end(&mut buf) {
            Ok(_) => assert!(
                buf.is_empty(),
                "bytes before close: {:?}",
                String::from_utf8_lossy(&buf)
            ),
            Err(e) => {
                assert!(!self.is_tls(), "no close_notify: {e}");
                assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset, "{e}");
            }
        }
    }

    /// `EPSV` → the data port.
    pub(crate) fn epsv(&mut self) -> u16 {
        let l = self.cmd("EPSV");
        let p = l
            .strip_prefix("229 Entering Extended Passive Mode (|||")
            .and_then(|r| r.strip_suffix("|)."))
            .unwrap_or_else(|| panic!("EPSV reply: {l}"));
        p.parse().unwrap()
    }

    /// `EPSV` → a TCP connection to the data port (not yet TLS: see [`Control::data`]).
    pub(crate) fn passive(&mut self) -> TcpStream {
        let ip = self.io.tcp().peer_addr().unwrap().ip();
        let port = self.epsv();
        tcp(SocketAddr::new(ip, port))
    }

    /// A data connection as the protection level has it: under `PROT P`, TLS resuming this
    /// control connection's session (the handshake runs at the first read or write).
    pub(crate) fn data(&self, s: TcpStream) -> Io {
        if self.private {
            Io::Tls(self.secure(s))
        } else {
            Io::Plain(s)
        }
    }

    /// A data connection as someone else's: under `PROT P`, TLS with a configuration of its
    /// own (trusting the certificate, but without this connection's session).
    pub(crate) fn stranger(&self, s: TcpStream) -> Io {
        match &self.tls {
            Some((pem, _)) if self.private => Io::Tls(tls_stream(&client_config(pem), s)),
            _ => Io::Plain(s),
        }
    }

    /// A data connection as TLS, resuming this control connection's session.
    pub(crate) fn secure(
        &self,
        s: TcpStream,
    ) -> Box<rustls::StreamOwned<rustls::ClientConnection, TcpStream>> {
        tls_stream(self.cfg(), s)
    }
}
