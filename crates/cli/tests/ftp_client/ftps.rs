//! FTP over TLS (RFC 4217): the client against vsftpd (explicit TLS and implicit `ftps://`,
//! TLS required for the login and every data connection, and TLS session reuse required on
//! data connections, vsftpd's default) and pyftpdlib's TLS_FTPHandler (TLS required on
//! control and data), bytes checked on disk; then the refusals: a server without TLS, a
//! certificate that is not trusted, and a fake server that says 234 and then breaks the
//! handshake, which must end in a clean error, never a hang.

use super::fake_tls;
use super::hostile::{self, BadTls};
use super::run::{bingfa, names, ok, pattern, read, Out};
use super::servers::{self, Cert, Server, TempDir};

/// `--tls` (unless the URL is ftps://) and `--cacert` with the server's certificate.
fn tls_args(s: &Server) -> Vec<String> {
    let mut a = Vec::new();
    if s.scheme == "ftp" {
        a.push("--tls".to_string());
    }
    let cert = s.tls.as_ref().expect("a TLS server").cert();
    a.extend(["--cacert".to_string(), cert.display().to_string()]);
    a
}

/// `bingfa ftp CMD [TLS options] ARGS...` in `cwd`.
fn run(s: &Server, cmd: &str, args: &[&str], cwd: &std::path::Path, stdin: &str) -> Out {
    let tls = tls_args(s);
    let mut all: Vec<&str> = vec![cmd];
    all.extend(tls.iter().map(String::as_str));
    all.extend(args);
    bingfa(&all, cwd, stdin, &[])
}

/// Each listed test against every TLS server.
macro_rules! per_tls_server {
    ($($t:ident),* $(,)?) => {
        mod pyftpdlib_tls {
            $(#[test]
            fn $t() {
                if let Some(s) = crate::start(super::servers::pyftpdlib_tls, "pyftpdlib (TLS)") {
                    super::$t(&s);
                }
            })*
        }
        mod vsftpd_tls {
            $(#[test]
            fn $t() {
                if let Some(s) = crate::start(super::servers::vsftpd_tls, "vsftpd (TLS)") {
                    super::$t(&s);
                }
            })*
        }
        mod vsftpd_implicit {
            $(#[test]
            fn $t() {
                if let Some(s) = crate::start(super::servers::vsftpd_implicit, "vsftpd (implicit TLS)") {
                    super::$t(&s);
                }
            })*
        }
    };
}

per_tls_server!(
    ls_get_put_passive_and_active,
    shell_many_transfers_on_one_session,
    a_plaintext_client_is_refused,
);

fn ls_get_put_passive_and_active(s: &Server) {
    let big = pattern(3 * 1024 * 1024 + 17, 21);
    std::fs::write(s.file("big.bin"), &big).unwrap();
    std::fs::write(s.file("empty.bin"), b"").unwrap();
    let cwd = TempDir::new("ftps");
    for active in [false, true] {
        let mode = if active { "active" } else { "passive" };
        // The arguments, with --active first in active mode.
        let args = |rest: &[&str]| -> Vec<String> {
            let mut v: Vec<String> = if active {
                vec!["--active".into()]
            } else {
                vec![]
            };
            v.extend(rest.iter().map(|a| a.to_string()));
            v
        };
        let go = |cmd: &str, rest: &[&str]| {
            let a = args(rest);
            let a: Vec<&str> = a.iter().map(String::as_str).collect();
            ok(run(s, cmd, &a, cwd.path(), ""))
        };
        let o = go("ls", &[&s.url("")]);
        let want = if active {
            "big.bin\nempty.bin\nup-passive.bin\n"
        } else {
            "big.bin\nempty.bin\n"
        };
        assert_eq!(o.stdout, want, "{mode} ls; stderr: {}", o.stderr);

        let got = format!("got-{mode}.bin");
        go("get", &[&s.url("big.bin"), &got]);
        assert!(
            read(cwd.path().join(&got)) == big,
            "{mode} get: bytes differ"
        );

        let got_empty = format!("empty-{mode}.bin");
        go("get", &[&s.url("empty.bin"), &got_empty]);
        assert_eq!(
            read(cwd.path().join(&got_empty)),
            b"",
            "{mode} get of an empty file"
        );

        let up = pattern(2 * 1024 * 1024 + 3, if active { 23 } else { 22 });
        std::fs::write(cwd.path().join("up.bin"), &up).unwrap();
        let name = format!("up-{mode}.bin");
        go("put", &["up.bin", &s.url(&name)]);
        assert!(read(s.file(&name)) == up, "{mode} put: bytes differ");
    }
}

/// Many data connections on one control connection: each must resume the TLS session
/// (vsftpd refuses a data connection that does not: require_ssl_reuse).
fn shell_many_transfers_on_one_session(s: &Server) {
    let cwd = TempDir::new("ftps-shell");
    let data = pattern(200_000, 24);
    std::fs::write(cwd.path().join("a.bin"), &data).unwrap();
    let script = "put a.bin x.bin\nput a.bin y.bin\nls\nget x.bin x.out\nls\nget y.bin y.out\n\
                  rm x.bin\nrm y.bin\nls\nquit\n";
    let o = ok(run(s, "shell", &[&s.url("")], cwd.path(), script));
    assert_eq!(
        o.stdout,
        "put x.bin (200000 bytes sent)\nput y.bin (200000 bytes sent)\nx.bin\ny.bin\n\
         got x.out (200000 bytes)\nx.bin\ny.bin\ngot y.out (200000 bytes)\n",
        "stderr: {}",
        o.stderr
    );
    assert!(read(cwd.path().join("x.out")) == data);
    assert!(read(cwd.path().join("y.out")) == data);
    assert!(
        names(s.root.path()).is_empty(),
        "left {:?}",
        names(s.root.path())
    );
}

/// The servers really require TLS: the same command without it fails.
fn a_plaintext_client_is_refused(s: &Server) {
    let cwd = TempDir::new("ftps-plain");
    let url = s.url("").replacen("ftps://", "ftp://", 1);
    let o = bingfa(&["ls", "--timeout", "5", &url], cwd.path(), "", &[]);
    assert_eq!(o.code, 1, "stdout: {}\nstderr: {}", o.stdout, o.stderr);
    let want = match (s.name, s.scheme) {
        ("pyftpdlib", _) => "SSL/TLS required on the control channel",
        (_, "ftp") => "530 Anonymous sessions must use encryption.",
        // Implicit TLS: the server waits for a ClientHello, the client for a greeting.
        _ => "I/O error",
    };
    assert!(o.stderr.contains(want), "want {want:?} in: {}", o.stderr);
}

/// A server without TLS answers AUTH TLS with an error: the client stops, it does not go
/// on in plaintext.
fn tls_refused(s: &Server, reply: &str) {
    let cwd = TempDir::new("ftps-refused");
    let o = bingfa(
        &["ls", "--tls", "--insecure", &s.url("")],
        cwd.path(),
        "",
        &[],
    );
    assert_eq!(o.code, 1, "stdout: {}\nstderr: {}", o.stdout, o.stderr);
    let want = format!("the server refused TLS (AUTH TLS: {reply}); not continuing without it");
    assert!(o.stderr.contains(&want), "want {want:?} in: {}", o.stderr);
    assert!(o.stdout.is_empty(), "{}", o.stdout);
}

#[test]
fn vsftpd_without_tls_refuses_auth_tls() {
    if let Some(s) = crate::start(servers::vsftpd, "vsftpd") {
        tls_refused(&s, "530 Please login with USER and PASS.");
    }
}

#[test]
fn pyftpdlib_without_tls_refuses_auth_tls() {
    if let Some(s) = crate::start(servers::pyftpdlib, "pyftpdlib") {
        tls_refused(&s, "500 Command \"AUTH\" not understood.");
    }
}

#[test]
fn an_untrusted_certificate_is_refused_with_the_reason() {
    let Some(s) = crate::start(servers::vsftpd_tls, "vsftpd (TLS)") else {
        return;
    };
    std::fs::write(s.file("f"), b"secret").unwrap();
    let cwd = TempDir::new("ftps-cert");
    let other = Cert::new();
    let other = other.cert().display().to_string();
    let url = s.url("f");
    // Another self-signed certificate (rcgen gives every one the same name, so it poses as
    // the issuer and the signature fails), then the system's CAs (none of them is the issuer).
    for (extra, why) in [
        (&["--cacert", other.as_str()][..], "BadSignature"),
        (
            &[][..],
            "UnknownIssuer (not signed by a trusted CA; trust it with --cacert FILE)",
        ),
    ] {
        let args = [&["get", "--tls"][..], extra, &[url.as_str()][..]].concat();
        let o = bingfa(&args, cwd.path(), "", &[]);
        assert_eq!(o.code, 1, "{args:?}: {}", o.stderr);
        let want = format!("the server's certificate was rejected: {why}");
        assert!(o.stderr.contains(&want), "want {want:?} in: {}", o.stderr);
        assert!(names(cwd.path()).is_empty(), "{:?}", names(cwd.path()));
    }
    // --insecure connects, and says loudly what it gives up.
    let o = ok(bingfa(
        &["get", "--tls", "--insecure", &s.url("f")],
        cwd.path(),
        "",
        &[],
    ));
    assert!(
        o.stderr
            .contains("WARNING: --insecure: the server's certificate is NOT verified"),
        "{}",
        o.stderr
    );
    assert_eq!(read(cwd.path().join("f")), b"secret");
}

/// The server's own certificate given with --cacert is trusted as itself even when it is
/// marked as a CA (which WebPKI alone refuses as CaUsedAsEndEntity); its name still counts.
#[test]
fn a_pinned_ca_flagged_certificate_is_trusted_for_its_name_only() {
    let Some(s) = crate::start(
        || servers::vsftpd_tls_with(Cert::ca_flagged()),
        "vsftpd (TLS)",
    ) else {
        return;
    };
    std::fs::write(s.file("f"), b"pinned").unwrap();
    let cwd = TempDir::new("ftps-pinned");
    let cacert = s.tls.as_ref().unwrap().cert().display().to_string();
    let by_name = format!("ftp://localhost:{}/f", s.port);
    ok(bingfa(
        &["get", "--tls", "--cacert", &cacert, &by_name],
        cwd.path(),
        "",
        &[],
    ));
    assert_eq!(read(cwd.path().join("f")), b"pinned");
    // The certificate names localhost, not 127.0.0.1.
    let o = bingfa(
        &["ls", "--tls", "--cacert", &cacert, &s.url("")],
        cwd.path(),
        "",
        &[],
    );
    assert_eq!(o.code, 1, "{}", o.stderr);
    let want =
        "the server's certificate was rejected: certificate not valid for name \"127.0.0.1\"";
    assert!(o.stderr.contains(want), "want {want:?} in: {}", o.stderr);
}

#[test]
fn cacert_without_tls_is_a_usage_error() {
    let cwd = TempDir::new("ftps-usage");
    let o = bingfa(
        &["ls", "--cacert", "/nonexistent.pem", "ftp://127.0.0.1:9/"],
        cwd.path(),
        "",
        &[],
    );
    assert_eq!(o.code, 1, "{}", o.stderr);
    assert!(
        o.stderr
            .contains("--cacert and --insecure are for TLS: add --tls or use ftps://"),
        "{}",
        o.stderr
    );
}

/// A fake server that accepts AUTH TLS and then does not speak TLS: a clean error each
/// time, and (with the connection held open by the server) no hang: every wait is bounded.
#[test]
fn a_broken_tls_handshake_after_234_is_a_clean_error() {
    let cwd = TempDir::new("ftps-bad");
    for (how, want) in [
        (
            BadTls::PlaintextAfter234,
            "TLS: the server sent plaintext after 234, before the TLS handshake",
        ),
        (
            BadTls::GarbageHandshake,
            "TLS: TLS handshake failed: received corrupt message",
        ),
        (BadTls::Silent, "TLS: the TLS handshake timed out"),
    ] {
        let port = hostile::start_bad_tls(how);
        let url = format!("ftp://127.0.0.1:{port}/");
        let o = bingfa(
            &["ls", "--tls", "--insecure", "--timeout", "2", &url],
            cwd.path(),
            "",
            &[],
        );
        assert_eq!(o.code, 1, "{want}: {}", o.stderr);
        assert!(o.stderr.contains(want), "want {want:?} in: {}", o.stderr);
        assert!(o.stdout.is_empty(), "{}", o.stdout);
    }
}

/// A TLS download that ends without the server's close_notify is an error even though the
/// server then says 226: the end of the data is unauthenticated, so it may be a cut. The
/// partial file is kept as `.part` (as for any interrupted download), never renamed to the
/// final name.
#[test]
fn a_tls_download_cut_without_close_notify_is_an_error() {
    let cert = Cert::new();
    let port = fake_tls::start(&cert, false);
    let cwd = TempDir::new("ftps-cut");
    let cacert = cert.cert().display().to_string();
    let url = format!("ftp://127.0.0.1:{port}/{}", fake_tls::NAME);
    let o = bingfa(
        &["get", "--tls", "--cacert", &cacert, "--timeout", "10", &url],
        cwd.path(),
        "",
        &[],
    );
    assert_eq!(o.code, 1, "{}", o.stderr);
    let want = "RETR cut.bin: the server closed the data connection without TLS close_notify; \
                the data may be truncated";
    assert!(o.stderr.contains(want), "want {want:?} in: {}", o.stderr);
    assert_eq!(names(cwd.path()), ["cut.bin.part"].map(String::from).into());
    assert_eq!(read(cwd.path().join("cut.bin.part")).len(), fake_tls::SENT);
}

/// A server that refuses PBSZ before the login (530) gets PBSZ and PROT P right after it, and
/// the download is protected (the fake refuses RETR without PROT P).
#[test]
fn pbsz_refused_before_login_is_sent_after_it() {
    let cert = Cert::new();
    let cacert = cert.cert().display().to_string();
    let cwd = TempDir::new("ftps-late-pbsz");
    for login_first in [false, true] {
        let port = fake_tls::start(&cert, login_first);
        let url = format!("ftp://127.0.0.1:{port}/{}", fake_tls::OK_NAME);
        let out = format!("ok-{login_first}.txt");
        ok(bingfa(
            &[
                "get",
                "--tls",
                "--cacert",
                &cacert,
                "--timeout",
                "10",
                &url,
                &out,
            ],
            cwd.path(),
            "",
            &[],
        ));
        assert_eq!(read(cwd.path().join(&out)), fake_tls::OK_TEXT);
    }
}
