//! The harness of `chat_input.rs`: the real binary as a child process (its listeners read
//! from its ready lines), a raw line client (what `nc` is), and a rustls client that offers
//! the ALPN list it is given.

use bingfa_net::Model;
use bingfa_testkit::{model_args, workers, ServerProc};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_bingfa");
pub(crate) const GREETING: &str = "* welcome to the bingfa chat room; what is your name?";

pub(crate) struct Server {
    _proc: ServerProc,
    pub addr: SocketAddr,
    pub web: Option<SocketAddr>,
    pub tls: Option<SocketAddr>,
}

impl Server {
    pub(crate) fn start(model: Model, edge: bool, extra: &[&str]) -> Server {
        let mut cmd = Command::new(BIN);
        cmd.args(["chat", "serve", "--bind", "127.0.0.1:0"])
            .args(model_args(model, edge))
            .args(extra)
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .args(["--workers", workers(model)]);
        let mut proc = ServerProc::spawn(cmd);
        let (mut addr, mut web, mut tls) = (None, None, None);
        let want_web = extra.contains(&"--web");
        let want_tls = extra.contains(&"--tls-bind");
        while addr.is_none() || (want_web && web.is_none()) || (want_tls && tls.is_none()) {
            // The page over TLS is announced as `web-tls`.
            match proc.next_listening(Duration::from_secs(20)) {
                (svc, a) if svc == "chat" => addr = Some(a),
                (svc, a) if svc == "web" || svc == "web-tls" => web = Some(a),
                (svc, a) if svc == "chat-tls" => tls = Some(a),
                _ => {}
            }
        }
        Server {
            _proc: proc,
            addr: addr.unwrap(),
            web,
            tls,
        }
    }

    pub(crate) fn connect(&self) -> Client {
        let mut c = Client::connect(self.addr);
        c.expect(GREETING);
        c
    }

    pub(crate) fn join(&self, name: &str) -> Client {
        let mut c = self.connect();
        c.send(name);
        let l = c.line();
        assert!(
            l.starts_with(&format!("* you are {name}; online: ")),
            "{l:?}"
        );
        c
    }
}

/// What `nc` is: bytes out as given, lines in.
pub(crate) struct Client {
    pub r: BufReader<TcpStream>,
    pub w: TcpStream,
}

impl Client {
    pub(crate) fn connect(addr: SocketAddr) -> Client {
        let s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        Client {
            w: s.try_clone().unwrap(),
            r: BufReader::new(s),
        }
    }
    pub(crate) fn send(&mut self, line: &str) {
        self.raw(format!("{line}\n").as_bytes());
    }
    pub(crate) fn raw(&mut self, bytes: &[u8]) {
        self.w.write_all(bytes).unwrap();
    }
    pub(crate) fn line(&mut self) -> String {
        let mut s = Vec::new();
        self.r.read_until(b'\n', &mut s).expect("read (timed out?)");
        assert!(
            s.ends_with(b"\n"),
            "closed: {:?}",
            String::from_utf8_lossy(&s)
        );
        s.pop();
        String::from_utf8(s).expect("the server sends UTF-8")
    }
    pub(crate) fn expect(&mut self, want: &str) {
        assert_eq!(self.line(), want);
    }
    /// Everything up to EOF.
    pub(crate) fn rest(&mut self) -> String {
        let mut rest = Vec::new();
        match self.r.read_to_end(&mut rest) {
            Ok(_) => {}
            Err(e) => assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset),
        }
        String::from_utf8_lossy(&rest).into_owned()
    }
}

/// A rustls client offering `alpn`, trusting one certificate, for `localhost`.
pub(crate) struct Tls {
    s: rustls::StreamOwned<rustls::ClientConnection, TcpStream>,
    pending: Vec<u8>,
}

impl Tls {
    pub(crate) fn connect(addr: SocketAddr, ca: &[u8], alpn: &[&[u8]]) -> Tls {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(ca.to_vec().into()).unwrap();
        let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
        let mut cfg = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        cfg.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
        let conn = rustls::ClientConnection::new(std::sync::Arc::new(cfg), name).unwrap();
        let sock = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).unwrap();
        sock.set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        Tls {
            s: rustls::StreamOwned::new(conn, sock),
            pending: Vec::new(),
        }
    }
    pub(crate) fn alpn(&self) -> Option<Vec<u8>> {
        self.s.conn.alpn_protocol().map(|p| p.to_vec())
    }
    pub(crate) fn write(&mut self, b: &[u8]) {
        self.s.write_all(b).unwrap();
        self.s.flush().unwrap();
    }
    /// The next line, or the error (a refused handshake, EOF).
    pub(crate) fn read_line(&mut self) -> std::io::Result<String> {
        let mut buf = [0u8; 4096];
        while !self.pending.contains(&b'\n') {
            let n = self.s.read(&mut buf)?;
            if n == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            self.pending.extend_from_slice(&buf[..n]);
        }
        let i = self.pending.iter().position(|&b| b == b'\n').unwrap();
        let line: Vec<u8> = self.pending.drain(..=i).collect();
        let line = String::from_utf8_lossy(&line[..i]).into_owned();
        Ok(line.strip_suffix('\r').unwrap_or(&line).to_string())
    }
}
