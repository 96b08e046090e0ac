//! `bingfa http serve` over TLS under every concurrency model (`bingfa_testkit::for_each_model!`):
//! curl (`--cacert`) and Python's `ssl` for what a user does (GET, keep-alive, a range, a big
//! file intact), hand-made bytes for what a broken client does (a TLS 1.0-only ClientHello,
//! garbage, a handshake that stalls: `tls/broken.rs`), and a rustls client that sees which
//! certificate it got across a SIGHUP reload while an older keep-alive connection goes on
//! working. `tls/ops.rs`: what an operator relies on (resumption, OCSP staple, the reload
//! logged once, plain HTTP answered with a 400).

use bingfa_testkit::ServerProc;
use rustls::pki_types::{pem::PemObject, CertificateDer, ServerName};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_bingfa");
const BIG: usize = 8 * 1024 * 1024 + 123;

/// A running server; SIGTERM then reaped on drop (exit 0 asserted unless the test failed
/// first), its directory removed after.
struct Server {
    proc: ServerProc,
    addr: SocketAddr,
    dir: PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.proc.finish();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A certificate for localhost and 127.0.0.1, written as `NAME.pem` / `NAME.key`; its DER.
fn make_cert(dir: &Path, name: &str) -> Vec<u8> {
    let c =
        rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
    std::fs::write(dir.join(format!("{name}.pem")), c.cert.pem()).unwrap();
    std::fs::write(dir.join(format!("{name}.key")), c.key_pair.serialize_pem()).unwrap();
    c.cert.der().to_vec()
}

#[path = "tls/broken.rs"]
mod broken;
#[path = "tls/ops.rs"]
mod ops;

/// `model` is the suite's label (`epoll-edge` for edge-triggered epoll), `args` selects it.
fn start(model: &str, args: &[String]) -> (Server, Vec<u8>, String) {
    let dir = std::env::temp_dir().join(format!("bingfa-tls-{model}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("www")).unwrap();
    let der = make_cert(&dir, "a");
    // A copy the SIGHUP scenario can still trust after a.pem is replaced.
    std::fs::copy(dir.join("a.pem"), dir.join("ca-a.pem")).unwrap();
    let serial = ops::make_ocsp(&dir, "a");
    std::fs::copy(dir.join("a.ocsp.der"), dir.join("ocsp.der")).unwrap();
    let log = std::fs::File::create(dir.join("log.txt")).unwrap();
    std::fs::write(dir.join("www/hello.txt"), "hello over tls\n").unwrap();
    let big: Vec<u8> = (0..BIG).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(dir.join("www/big.bin"), big).unwrap();
    let mut cmd = Command::new(BIN);
    cmd.args(["http", "serve", "--bind", "127.0.0.1:0"])
        .args(args)
        .args(["--head-timeout", "2", "--workers", "2", "--root"])
        .arg(dir.join("www"))
        .arg("--tls-cert")
        .arg(dir.join("a.pem"))
        .arg("--tls-key")
        .arg(dir.join("a.key"))
        .arg("--tls-ocsp")
        .arg(dir.join("ocsp.der"))
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .stderr(log);
    let proc = ServerProc::spawn(cmd).listening_on(&["https"], Duration::from_secs(20));
    let addr = proc.addr("https");
    (Server { proc, addr, dir }, der, serial)
}

fn curl(s: &Server, args: &[&str]) -> std::process::Output {
    let port = s.addr.port();
    Command::new("curl")
        .args(["-sS", "--max-time", "20", "--cacert"])
        .arg(s.dir.join("a.pem"))
        .args(["--resolve", &format!("localhost:{port}:127.0.0.1")])
        .args(args.iter().map(|a| a.replace("PORT", &port.to_string())))
        .output()
        .unwrap()
}

fn curl_works(s: &Server, model: &str) {
    let out = curl(
        s,
        &[
            "-v",
            "https://localhost:PORT/hello.txt",
            "https://localhost:PORT/hello.txt",
        ],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "[{model}] curl: {err}");
    assert_eq!(out.stdout, b"hello over tls\nhello over tls\n", "[{model}]");
    assert!(
        err.contains("ALPN: server accepted http/1.1"),
        "[{model}] {err}"
    );
    assert!(
        err.contains("Re-using existing connection"),
        "[{model}] keep-alive: {err}"
    );
    let out = curl(s, &["-r", "100-109", "https://localhost:PORT/big.bin"]);
    let want: Vec<u8> = (100..110).map(|i| (i * 7 % 251) as u8).collect();
    assert_eq!(out.stdout, want, "[{model}] range");
    let out = curl(s, &["https://localhost:PORT/big.bin"]);
    assert_eq!(out.stdout.len(), BIG, "[{model}] big file length");
    assert!(
        out.stdout
            .iter()
            .enumerate()
            .all(|(i, &b)| b == (i * 7 % 251) as u8),
        "[{model}] big file intact"
    );
}

const PY: &str = r#"
import http.client, ssl, sys
ctx = ssl.create_default_context(cafile=sys.argv[1])
c = http.client.HTTPSConnection("localhost", int(sys.argv[2]), context=ctx, timeout=20)
for _ in range(3):
    c.request("GET", "/hello.txt"); r = c.getresponse()
    assert r.status == 200 and r.read() == b"hello over tls\n"
c.request("GET", "/big.bin", headers={"Range": "bytes=1000-"}); r = c.getresponse()
body = r.read()
assert r.status == 206 and len(body) == int(sys.argv[3]) - 1000, (r.status, len(body))
assert all(b == (i + 1000) * 7 % 251 for i, b in enumerate(body[:5000]))
print("ok", c.sock.version())
"#;

fn python_works(s: &Server, model: &str) {
    let out = Command::new("timeout")
        .args(["60", "python3", "-c", PY])
        .arg(s.dir.join("a.pem"))
        .arg(s.addr.port().to_string())
        .arg(BIG.to_string())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.starts_with("ok TLSv1.3"),
        "[{model}] python: {text} {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn raw(s: &Server) -> TcpStream {
    let c = TcpStream::connect_timeout(&s.addr, Duration::from_secs(5)).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    c
}

/// A rustls client that trusts both test certificates and reports which one it was shown.
struct Client {
    tls: rustls::StreamOwned<rustls::ClientConnection, TcpStream>,
}

impl Client {
    fn connect(s: &Server, cas: &[&Path]) -> Client {
        let mut roots = rustls::RootCertStore::empty();
        for ca in cas {
            roots
                .add(CertificateDer::from_pem_file(ca).unwrap())
                .unwrap();
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let cfg = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        let name = ServerName::try_from("localhost").unwrap();
        let conn = rustls::ClientConnection::new(Arc::new(cfg), name).unwrap();
        Client {
            tls: rustls::StreamOwned::new(conn, raw(s)),
        }
    }

    /// GET /hello.txt on this connection; the DER of the certificate the server showed.
    fn get(&mut self) -> Vec<u8> {
        self.tls
            .write_all(b"GET /hello.txt HTTP/1.1\r\nHost: localhost\r\n\r\n")
            .unwrap();
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        while !got.ends_with(b"hello over tls\n") {
            let n = self.tls.read(&mut buf).expect("response");
            assert!(n > 0, "closed early: {}", String::from_utf8_lossy(&got));
            got.extend_from_slice(&buf[..n]);
        }
        assert!(got.starts_with(b"HTTP/1.1 200 OK\r\n"));
        self.tls.conn.peer_certificates().unwrap()[0].to_vec()
    }
}

fn sighup_reloads(s: &Server, a: &[u8], model: &str) {
    let ca_a = s.dir.join("ca-a.pem");
    // The iterative model serves one connection at a time: the old one can't stay open.
    let mut old = (model != "iterative").then(|| Client::connect(s, &[&ca_a]));
    if let Some(o) = &mut old {
        assert_eq!(o.get(), a, "[{model}]");
    }
    // New files under the same names, then SIGHUP.
    let b = make_cert(&s.dir, "b");
    std::fs::copy(s.dir.join("b.pem"), s.dir.join("a.pem")).unwrap();
    std::fs::copy(s.dir.join("b.key"), s.dir.join("a.key")).unwrap();
    let b_serial = ops::make_ocsp(&s.dir, "b");
    std::fs::copy(s.dir.join("b.ocsp.der"), s.dir.join("ocsp.der")).unwrap();
    s.proc.signal(libc::SIGHUP);
    // Logged when the signal comes, before any handshake, once (not per worker).
    ops::wait_for_log(s, "TLS certificate reloaded", 1, model);
    let ca_b = s.dir.join("b.pem");
    let cas = [ca_a.as_path(), ca_b.as_path()];
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let seen = Client::connect(s, &cas).get();
        if seen == b {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "[{model}] still the old certificate"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    if let Some(o) = &mut old {
        assert_eq!(o.get(), a, "[{model}] the old connection keeps its session");
    }
    // The staple came with the certificate.
    ops::ocsp_is_stapled(s, &b_serial, model);
    assert_eq!(
        ops::log_lines(s, "TLS certificate reloaded"),
        1,
        "[{model}]"
    );
    ops::bad_reload_keeps_the_old(s, &b, &cas, model);
}

fn suite(m: bingfa_net::Model, edge: bool) {
    let label = if edge {
        format!("{m}-edge")
    } else {
        m.to_string()
    };
    let model = label.as_str();
    let (s, a, serial) = start(model, &bingfa_testkit::model_args(m, edge));
    curl_works(&s, model);
    ops::ocsp_is_stapled(&s, &serial, model);
    ops::plain_http_gets_400(&s, model);
    ops::resumption_survives_load(&s, model);
    python_works(&s, model);
    broken::broken_clients_are_closed(&s, model);
    broken::slow_handshake_times_out(&s, model);
    curl_works(&s, model); // nobody else was disturbed
    sighup_reloads(&s, &a, model);
}

bingfa_testkit::for_each_model! {
    #[test]
    fn suite() {
        super::suite(M, E)
    }
}

#[test]
fn a_bad_certificate_file_is_named() {
    let dir = std::env::temp_dir().join(format!("bingfa-tls-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let junk = dir.join("junk.pem");
    std::fs::write(&junk, "not a certificate\n").unwrap();
    for (cert, want) in [
        (dir.join("missing.pem"), "missing.pem: cannot read"),
        (junk.clone(), "junk.pem: no certificate"),
    ] {
        let out = Command::new("timeout")
            .args([
                "20",
                BIN,
                "http",
                "serve",
                "--bind",
                "127.0.0.1:0",
                "--tls-cert",
            ])
            .arg(&cert)
            .arg("--tls-key")
            .arg(&junk)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{err}");
        assert!(err.contains(want), "{err}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A key with a passphrase (as `openssl genpkey -aes256` writes it) is named as encrypted,
/// and an OCSP file that is not DER is refused at start.
#[test]
fn an_encrypted_key_and_a_bad_staple_are_named() {
    let dir = std::env::temp_dir().join(format!("bingfa-tls-enc-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    make_cert(&dir, "a");
    let out = Command::new("openssl")
        .args(["pkey", "-aes256", "-passout", "pass:secret", "-in"])
        .arg(dir.join("a.key"))
        .arg("-out")
        .arg(dir.join("enc.key"))
        .output()
        .expect("openssl");
    assert!(out.status.success(), "{out:?}");
    std::fs::write(dir.join("bad.der"), "-----BEGIN OCSP RESPONSE-----\n").unwrap();
    for (key, ocsp, want) in [
        ("enc.key", None, "enc.key: the private key is encrypted"),
        ("a.key", Some("bad.der"), "bad.der: not a DER OCSP response"),
    ] {
        let mut cmd = Command::new("timeout");
        cmd.args(["20", BIN, "http", "serve", "--bind", "127.0.0.1:0"])
            .arg("--tls-cert")
            .arg(dir.join("a.pem"))
            .arg("--tls-key")
            .arg(dir.join(key));
        if let Some(o) = ocsp {
            cmd.arg("--tls-ocsp").arg(dir.join(o));
        }
        let out = cmd.output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{err}");
        assert!(err.contains(want), "{err}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn self_signed_prints_what_a_client_needs() {
    let mut cmd = Command::new(BIN);
    cmd.args(["http", "serve", "--bind", "127.0.0.1:0", "--root", "/"])
        .arg("--tls-self-signed")
        .stderr(Stdio::piped());
    // Stopped on drop, even if an assertion fails first.
    let mut guard = ServerProc::spawn(cmd);
    let (out, err) = (
        guard.take_stdout(),
        guard.child_mut().stderr.take().unwrap(),
    );
    let (tx, rx) = std::sync::mpsc::channel();
    let tx2 = tx.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(err).lines().map_while(Result::ok) {
            let _ = tx2.send(line);
        }
    });
    std::thread::spawn(move || {
        for line in out.iter() {
            let _ = tx.send(line);
        }
    });
    let (mut fingerprint, mut pin, mut port) = (None, None, None);
    while fingerprint.is_none() || pin.is_none() || port.is_none() {
        let line = rx.recv_timeout(Duration::from_secs(20)).expect("output");
        if let Some(f) = line.split("SHA-256 fingerprint ").nth(1) {
            fingerprint = Some(f.to_string());
        } else if let Some(p) = line.strip_prefix("tls: public key pin ") {
            pin = Some(p.to_string());
        } else if let Some(a) = line.strip_prefix("https listening on ") {
            port = Some(a.rsplit(':').next().unwrap().to_string());
        }
    }
    let (fingerprint, pin, port) = (fingerprint.unwrap(), pin.unwrap(), port.unwrap());
    assert_eq!(fingerprint.len(), 32 * 3 - 1, "{fingerprint}");
    // The pin is enough to trust it; a wrong pin is refused.
    let url = format!("https://127.0.0.1:{port}/_none");
    let ok = Command::new("curl")
        .args([
            "-sS",
            "-k",
            "--max-time",
            "20",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
        ])
        .args(["--pinnedpubkey", &pin, &url])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&ok.stdout), "404");
    let wrong = Command::new("curl")
        .args(["-sS", "-k", "--max-time", "20", "--pinnedpubkey"])
        .args(["sha256//AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", &url])
        .output()
        .unwrap();
    assert!(!wrong.status.success());
}
