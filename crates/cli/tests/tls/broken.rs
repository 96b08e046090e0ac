//! What a broken client does to the HTTPS server, under every model: a TLS 1.0-only
//! ClientHello by hand and from Python's `ssl`, garbage instead of a ClientHello, a handshake
//! that stalls. Each is closed (after at most an alert) and nobody else is disturbed.

use super::{raw, Server};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};

const PY_TLS10: &str = r#"
import socket, ssl, sys
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
ctx.minimum_version = ctx.maximum_version = ssl.TLSVersion.TLSv1
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
try:
    ctx.wrap_socket(s)
    print("connected")
except ssl.SSLError as e:
    print("refused:", e)
"#;

/// Everything the server sends until it closes (bounded by the read timeout).
fn read_to_close(c: &mut TcpStream) -> Vec<u8> {
    let mut all = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match c.read(&mut buf) {
            Ok(0) => return all,
            Ok(n) => all.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return all,
            Err(e) => panic!("server did not close: {e}"),
        }
    }
}

/// A ClientHello that offers TLS 1.0 only (no supported_versions extension, one TLS 1.0 suite).
fn tls10_client_hello() -> Vec<u8> {
    let mut body = vec![0x03, 0x01];
    body.extend_from_slice(&[7u8; 32]); // random
    body.push(0); // session id
    body.extend_from_slice(&[0x00, 0x02, 0x00, 0x2f]); // TLS_RSA_WITH_AES_128_CBC_SHA
    body.extend_from_slice(&[0x01, 0x00]); // no compression
    let mut hs = vec![0x01, 0, (body.len() >> 8) as u8, body.len() as u8];
    hs.extend_from_slice(&body);
    let mut rec = vec![0x16, 0x03, 0x01, (hs.len() >> 8) as u8, hs.len() as u8];
    rec.extend_from_slice(&hs);
    rec
}

pub(crate) fn broken_clients_are_closed(s: &Server, model: &str) {
    // TLS 1.0 only, by hand: a fatal alert (handshake_failure or protocol_version), then
    // the connection closes.
    let mut c = raw(s);
    c.write_all(&tls10_client_hello()).unwrap();
    let got = read_to_close(&mut c);
    assert!(
        got.len() >= 7 && got[0] == 0x15 && got[5] == 2 && [40, 70].contains(&got[6]),
        "[{model}] TLS 1.0: {got:?}"
    );
    // And from Python's ssl, with OpenSSL's floor lowered so it will offer TLS 1.0 at all.
    let out = Command::new("timeout")
        .args(["20", "python3", "-W", "ignore", "-c", PY_TLS10])
        .arg(s.addr.port().to_string())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.starts_with("refused: "),
        "[{model}] python TLS 1.0: {text}"
    );
    // Garbage instead of a ClientHello: closed (after at most an alert). (Plain HTTP gets a
    // 400 instead: `ops::plain_http_gets_400`.)
    let mut c = raw(s);
    c.write_all(b"\x01\x02 garbage\r\n\r\n").unwrap();
    let got = read_to_close(&mut c);
    assert!(
        got.is_empty() || got[0] == 0x15,
        "[{model}] garbage: {got:?}"
    );
}

pub(crate) fn slow_handshake_times_out(s: &Server, model: &str) {
    let mut c = raw(s);
    let hello = tls10_client_hello();
    c.write_all(&hello[..9]).unwrap(); // and then nothing
    let t = Instant::now();
    let got = read_to_close(&mut c);
    assert!(got.is_empty() || got[0] == 0x15, "[{model}] slow: {got:?}");
    // --head-timeout 2: closed by the head timer, not by the idle timeout (60 s).
    assert!(
        t.elapsed() < Duration::from_secs(9),
        "[{model}] {:?}",
        t.elapsed()
    );
}
