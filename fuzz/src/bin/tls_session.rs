//! The TLS wrapper (bingfa-net `tls`) driven by hand through a session, against a real rustls
//! client: the input is a script of steps (the client writes a line, some of the pending
//! ciphertext is delivered in a piece of any size, a byte is corrupted, garbage is injected,
//! the server's writes drain). The wrapper never claims more than it was given; uncorrupted,
//! every line comes back echoed, in order, after the greeting; corrupted, it closes and never
//! hands the session plaintext that wasn't sent.
use bingfa_net::tls::{TlsConfig, TlsProtocol};
use bingfa_net::{Action, ConnInfo, Context, Protocol, Session};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use std::io::{Read, Write};
use std::sync::{Arc, LazyLock};

/// Greets, then echoes whole lines; input without a newline stays unconsumed (the wrapper must
/// keep it and offer it again).
struct Echo;
impl Session for Echo {
    fn on_open(&mut self, cx: &mut Context) {
        cx.write(b"hello\n");
    }
    fn on_data(&mut self, input: &[u8], cx: &mut Context) -> usize {
        let Some(i) = input.iter().position(|&b| b == b'\n') else {
            return 0;
        };
        cx.write(&input[..=i]);
        i + 1
    }
}
struct EchoProto;
impl Protocol for EchoProto {
    type Session = Echo;
    fn new_session(&self, _: &ConnInfo) -> Echo {
        Echo
    }
}

static SETUP: LazyLock<(TlsProtocol<EchoProto>, Arc<rustls::ClientConfig>)> = LazyLock::new(|| {
    let (cfg, made) = TlsConfig::self_signed(&["localhost"], &[b"x"]).unwrap();
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(made.cert_pem.as_bytes()).unwrap())
        .unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut c = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    c.alpn_protocols = vec![b"x".to_vec()];
    (TlsProtocol::new(EchoProto, cfg), Arc::new(c))
});

fn info() -> ConnInfo {
    ConnInfo {
        id: 1,
        peer: "127.0.0.1:1".parse().unwrap(),
        local: "127.0.0.1:2".parse().unwrap(),
        cred: None,
    }
}

struct Run {
    server: <TlsProtocol<EchoProto> as Protocol>::Session,
    cx: Context,
    client: rustls::ClientConnection,
    up: Vec<u8>,
    plain: Vec<u8>,
    sent: Vec<u8>,
    closed: bool,
    corrupt: bool,
    /// Bytes moved either way so far: the finish loop stops when a round moves none (comparing
    /// buffer lengths instead stopped a run whose client answer was as long as what it sent).
    moved: usize,
}

impl Run {
    fn pump_client(&mut self) {
        while self.client.wants_write() {
            self.client.write_tls(&mut self.up).unwrap();
        }
    }
    /// Delivers up to `n` pending bytes to the server and carries its answer to the client.
    fn deliver(&mut self, n: usize) {
        self.pump_client();
        if self.closed {
            return;
        }
        let n = n.min(self.up.len());
        let used = self.server.on_data(&self.up[..n], &mut self.cx);
        assert!(used <= n, "wrapper claimed {used} of {n} bytes");
        self.up.drain(..used);
        self.moved += used;
        self.actions();
    }
    fn actions(&mut self) {
        let acts: Vec<Action> = self.cx.take_actions().collect();
        let mut wrote = false;
        for a in acts {
            match a {
                Action::Write(b) => {
                    wrote = true;
                    self.moved += b.len();
                    let mut rd = &b[..];
                    while !rd.is_empty() {
                        if self.client.read_tls(&mut rd).is_err()
                            || self.client.process_new_packets().is_err()
                        {
                            assert!(self.corrupt, "the client rejected an uncorrupted server");
                            self.closed = true;
                            return;
                        }
                        let mut buf = [0u8; 4096];
                        while let Ok(n) = self.client.reader().read(&mut buf) {
                            if n == 0 {
                                break;
                            }
                            self.plain.extend_from_slice(&buf[..n]);
                        }
                    }
                }
                Action::Close | Action::Abort => self.closed = true,
                _ => {}
            }
        }
        if wrote && !self.closed {
            self.server.on_drained(&mut self.cx);
            if self.cx.has_actions() {
                self.actions();
            }
        }
    }
}

fn main() {
    bingfa_fuzz::set_limits(4 << 20, 64 << 20);
    LazyLock::force(&SETUP);
    afl::fuzz!(|data: &[u8]| {
        let (proto, ccfg) = &*SETUP;
        let mut client =
            rustls::ClientConnection::new(ccfg.clone(), ServerName::try_from("localhost").unwrap())
                .unwrap();
        client.set_buffer_limit(None);
        let mut cx = Context::new(info());
        let mut server = proto.new_session(&info());
        server.on_open(&mut cx);
        let mut r = Run {
            server,
            cx,
            client,
            up: Vec::new(),
            plain: Vec::new(),
            sent: Vec::new(),
            closed: false,
            corrupt: false,
            moved: 0,
        };
        r.actions();
        let mut it = data.iter().copied();
        let mut steps = 0;
        while let Some(op) = it.next() {
            steps += 1;
            if steps > 64 || r.closed {
                break;
            }
            let arg = usize::from(it.next().unwrap_or(0));
            match op % 6 {
                0 => {
                    // A line of `arg` bytes (no newline inside) and its newline.
                    let line: Vec<u8> = (0..arg)
                        .map(|i| b'a' + (i % 26) as u8)
                        .chain([b'\n'])
                        .collect();
                    r.client.writer().write_all(&line).unwrap();
                    r.sent.extend_from_slice(&line);
                }
                1 => r.deliver(arg * 37 % 2000 + 1),
                2 => {
                    r.pump_client();
                    if let Some(b) = r.up.get_mut(arg * 13 % 4096) {
                        *b ^= 1 << (arg % 8);
                        r.corrupt = true;
                    }
                }
                3 => {
                    let take: Vec<u8> = it.by_ref().take(arg).collect();
                    r.pump_client();
                    r.up.extend_from_slice(&take);
                    r.corrupt |= !take.is_empty();
                }
                4 => r.deliver(usize::MAX),
                _ => {
                    if !r.closed {
                        r.server.on_drained(&mut r.cx);
                        r.actions();
                    }
                }
            }
        }
        // Finish: deliver everything until nothing moves.
        for _ in 0..100 {
            let before = r.moved;
            r.pump_client();
            r.deliver(usize::MAX);
            if r.closed || r.moved == before {
                break;
            }
        }
        let mut want = b"hello\n".to_vec();
        want.extend_from_slice(&r.sent);
        if !r.corrupt {
            assert!(!r.closed, "an uncorrupted connection was closed");
            assert_eq!(r.plain, want, "echo differs");
        } else {
            assert!(
                want.starts_with(&r.plain),
                "plaintext that was never sent came back"
            );
        }
    });
}
