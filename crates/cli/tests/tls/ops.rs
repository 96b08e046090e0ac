//! What an operator moving from nginx relies on (issue 24, TLS operations), under every model:
//! sessions resumed with `openssl s_client -sess_out/-sess_in` (TLS 1.2 and 1.3) after 400
//! fresh clients, a stapled OCSP response (`-status`) that SIGHUP replaces, SIGHUP's outcome
//! logged once when the signal comes (a bad file keeps the old certificate and says why),
//! and curl's `http://` to the HTTPS port answered with a readable 400.

use super::{Client, Server};
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// An OCSP response ("good") for the certificate `NAME.pem`, signed by its own key, as
/// `openssl ocsp` makes one: `NAME.ocsp.der`. Returns the certificate's serial (hex), which
/// `s_client -status` prints back.
pub(crate) fn make_ocsp(dir: &Path, name: &str) -> String {
    let cert = dir.join(format!("{name}.pem"));
    let out = Command::new("openssl")
        .args(["x509", "-noout", "-serial", "-in"])
        .arg(&cert)
        .output()
        .expect("openssl");
    let serial = String::from_utf8_lossy(&out.stdout)
        .trim()
        .trim_start_matches("serial=")
        .to_string();
    assert!(!serial.is_empty(), "no serial: {out:?}");
    let index = dir.join(format!("{name}.index"));
    std::fs::write(
        &index,
        format!("V\t301231235959Z\t\t{serial}\tunknown\t/CN=rcgen self signed cert\n"),
    )
    .unwrap();
    let key = dir.join(format!("{name}.key"));
    let out = Command::new("openssl")
        .arg("ocsp")
        .arg("-index")
        .arg(&index)
        .arg("-rsigner")
        .arg(&cert)
        .arg("-rkey")
        .arg(&key)
        .arg("-CA")
        .arg(&cert)
        .arg("-issuer")
        .arg(&cert)
        .arg("-cert")
        .arg(&cert)
        .arg("-respout")
        .arg(dir.join(format!("{name}.ocsp.der")))
        .args(["-ndays", "1"])
        .output()
        .expect("openssl ocsp");
    assert!(out.status.success(), "openssl ocsp: {out:?}");
    serial
}

/// `openssl s_client` with one request, its output (stdout and stderr).
fn s_client(s: &Server, args: &[&str]) -> String {
    let mut child = Command::new("timeout")
        .args([
            "20",
            "openssl",
            "s_client",
            "-ign_eof",
            "-servername",
            "localhost",
        ])
        .args(["-connect", &s.addr.to_string()])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("openssl");
    // A whole request and its answer: a TLS 1.3 ticket comes after the handshake, and
    // s_client saves it only if it stays to read.
    let _ = child
        .stdin
        .take()
        .unwrap()
        .write_all(b"GET /hello.txt HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    let out = child.wait_with_output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("hello over tls"), "s_client {args:?}: {text}");
    text
}

/// Sessions saved by `s_client -sess_out` resume after 400 other clients (more than rustls's
/// 256-entry cache) under every model, a TLS 1.3 ticket more than once.
pub(crate) fn resumption_survives_load(s: &Server, model: &str) {
    let mut saved = Vec::new();
    for v in ["-tls1_2", "-tls1_3"] {
        let file = s.dir.join(format!("sess{v}.pem"));
        let out = s_client(s, &[v, "-sess_out", file.to_str().unwrap()]);
        assert!(out.contains("New, TLSv1."), "[{model}] {v}: {out}");
        saved.push((v, file));
    }
    let ca = s.dir.join("ca-a.pem");
    for _ in 0..400 {
        Client::connect(s, &[&ca]).get();
    }
    for round in 0..2 {
        for (v, file) in &saved {
            let out = s_client(s, &[v, "-sess_in", file.to_str().unwrap()]);
            let want = if *v == "-tls1_2" {
                "Reused, TLSv1.2"
            } else {
                "Reused, TLSv1.3"
            };
            assert!(
                out.contains(want),
                "[{model}] {v} not resumed (round {round}): {}",
                out.lines()
                    .filter(|l| l.contains(", TLSv1"))
                    .collect::<String>()
            );
        }
    }
}

/// `s_client -status` shows the stapled response, for the certificate with `serial`.
pub(crate) fn ocsp_is_stapled(s: &Server, serial: &str, model: &str) {
    let out = s_client(s, &["-status"]);
    assert!(
        out.contains("OCSP Response Status: successful"),
        "[{model}] no staple: {out}"
    );
    assert!(
        out.contains(&format!("Serial Number: {serial}")),
        "[{model}] not the staple for {serial}: {out}"
    );
}

/// curl's `http://` to the HTTPS port: a 400 that says to use https, in the clear.
pub(crate) fn plain_http_gets_400(s: &Server, model: &str) {
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "20", "-w", "\n%{http_code}"])
        .arg(format!("http://127.0.0.1:{}/hello.txt", s.addr.port()))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "[{model}] curl: {out:?}");
    assert!(text.ends_with("\n400"), "[{model}] {text}");
    assert!(text.contains("Use an https:// URL"), "[{model}] {text}");
    // And a real client right after is served as ever.
    let ca = s.dir.join("ca-a.pem");
    Client::connect(s, &[&ca]).get();
}

/// Lines of the server's log (its stderr, in `log.txt`) that contain `what`.
pub(crate) fn log_lines(s: &Server, what: &str) -> usize {
    std::fs::read_to_string(s.dir.join("log.txt"))
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains(what))
        .count()
}

/// Wait (without connecting: the log comes at the signal) for `n` lines with `what`.
pub(crate) fn wait_for_log(s: &Server, what: &str, n: usize, model: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while log_lines(s, what) < n {
        assert!(
            Instant::now() < deadline,
            "[{model}] no {what:?} in the log: {}",
            std::fs::read_to_string(s.dir.join("log.txt")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A SIGHUP with a broken certificate file: logged at once, with the reason; the server
/// keeps serving the certificate it had (`current`), and nothing more is logged per handshake.
pub(crate) fn bad_reload_keeps_the_old(s: &Server, current: &[u8], cas: &[&Path], model: &str) {
    std::fs::write(s.dir.join("a.pem"), "not a certificate\n").unwrap();
    s.proc.signal(libc::SIGHUP);
    wait_for_log(s, "not reloaded, keeping the old one", 1, model);
    assert_eq!(
        log_lines(s, "a.pem: no certificate in it"),
        1,
        "[{model}] the reason, once"
    );
    for _ in 0..6 {
        assert_eq!(Client::connect(s, cas).get(), current, "[{model}]");
    }
    assert_eq!(
        log_lines(s, "not reloaded"),
        1,
        "[{model}] logged once, not per worker or handshake"
    );
    assert_eq!(log_lines(s, "TLS certificate reloaded"), 1, "[{model}]");
}
