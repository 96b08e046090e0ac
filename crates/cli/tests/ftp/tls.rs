//! FTP over TLS under every model: explicit (RFC 4217: AUTH TLS, PBSZ, PROT) and implicit
//! (`--tls-bind`). Real clients first — ftplib's FTP_TLS runs the very scenarios of the plain
//! suite with every data connection protected, curl (`--ssl-reqd`, `ftps://`), lftp, and
//! bingfa's own client — then a rustls control connection ([`Control`]) where the exact
//! replies are the point: the verbs' rules, a plaintext command pipelined behind AUTH TLS
//! (never executed), `--tls-required`, and data connections whose handshake is garbage or cut
//! (`426`, nothing stored). The security and durability scenarios run over TLS as well, from
//! their own modules (the `_tls` tests).
//!
//! curl is run in passive mode only: curl 7.88 (Debian 12) hangs in active-mode FTPS after
//! accepting the data connection, against pyftpdlib's TLS handler as well; ftplib, lftp and
//! bingfa's client cover active mode.

use super::*;

/// A server with TLS offered (explicit) and an implicit-FTPS listener; `extra` adds options.
fn start(model: Model, edge: bool, tree: &Tree, extra: &[&str]) -> (Server, PathBuf) {
    let mut args = vec!["--tls-bind", "127.0.0.1:0"];
    args.extend(extra);
    let srv = Tls.start(model, edge, tree, &args);
    let pem = srv.pem.clone().expect("the certificate");
    (srv, pem)
}

fn ann_url(addr: SocketAddr, scheme: &str, path: &str) -> String {
    format!(
        "{scheme}://ann:{}@{addr}{path}",
        PASSWORD.replace(' ', "%20")
    )
}

pub(crate) fn ftplib(model: Model, edge: bool) {
    let tree = Tree::new("ftps-ftplib");
    let (mut srv, pem) = start(model, edge, &tree, &[]);
    srv.ftplib_with("session", &tree, Some(&pem));
    srv.ftplib_with("transfers", &tree, Some(&pem));
    assert!(srv.stop().success());
}

fn ok(out: &std::process::Output, what: &str) -> Vec<u8> {
    assert!(
        out.status.success(),
        "{what}: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout.clone()
}

fn payload(n: usize, seed: u32) -> Vec<u8> {
    (0..n as u32)
        .map(|i| (i.wrapping_mul(2654435761).wrapping_add(seed) >> 24) as u8)
        .collect()
}

pub(crate) fn curl_lftp_and_ours(model: Model, edge: bool) {
    let tree = Tree::new("ftps-clients");
    let (mut srv, pem) = start(model, edge, &tree, &[]);
    let implicit = srv.tls_addr.expect("the ftps listener");
    let t = Duration::from_secs(120);
    let curl = |args: &[&str]| {
        let mut c = Command::new("curl");
        c.args(["-sS", "--ssl-reqd", "--cacert"])
            .arg(&pem)
            .args(args);
        run_timeout(&mut c, t)
    };
    // curl, explicit: a download, an upload of 3 MiB and back, a listing.
    let hello = format!("ftp://anonymous@{}/hello.txt", srv.addr);
    assert_eq!(ok(&curl(&[&hello]), "curl AUTH TLS get"), b"hello\nworld\n");
    let data = payload(3 * 1024 * 1024 + 5, 1);
    let local = tree.path("local.bin");
    std::fs::write(&local, &data).unwrap();
    let up = ann_url(srv.addr, "ftp", "/up.bin");
    ok(
        &curl(&["-T", local.to_str().unwrap(), &up]),
        "curl AUTH TLS put",
    );
    assert!(std::fs::read(tree.path("ann/up.bin")).unwrap() == data);
    assert!(ok(&curl(&[&up]), "curl AUTH TLS get back") == data);
    // curl, implicit: ftps:// is TLS from the first byte.
    let list = ok(
        &curl(&["-l", &format!("ftps://anonymous@{implicit}/")]),
        "curl ftps:// list",
    );
    assert_eq!(list, b"hello.txt\nout\nsub\n");
    assert!(
        ok(
            &curl(&[&ann_url(implicit, "ftps", "/up.bin")]),
            "curl ftps:// get"
        ) == data
    );
    // Without the certificate trusted, curl refuses (the server is not trusted blindly).
    let untrusted = run_timeout(Command::new("curl").args(["-sS", "--ssl-reqd", &hello]), t);
    assert_eq!(untrusted.status.code(), Some(60), "curl: peer certificate");

    // lftp, TLS forced on control and data, passive then active; implicit with ftps://.
    if Command::new("lftp").arg("--version").output().is_ok() {
        let big = payload(2 * 1024 * 1024 + 7, 2);
        std::fs::write(tree.path("big.bin"), &big).unwrap();
        for (passive, url) in [
            ("on", format!("ftp://{}", srv.addr)),
            ("off", format!("ftp://{}", srv.addr)),
            ("on", format!("ftps://{implicit}")),
        ] {
            let _ = std::fs::remove_file(tree.path("ann/l.bin"));
            let _ = std::fs::remove_file(tree.path("l-back.bin"));
            let script = format!(
                "set cmd:fail-exit yes; set net:max-retries 1; set net:timeout 20; \
                 set ssl:ca-file {}; set ftp:ssl-force yes; set ftp:ssl-protect-data yes; \
                 set ftp:passive-mode {passive}; open -u ann,'{PASSWORD}' {url}; \
                 put {} -o l.bin; get l.bin -o {}; cls -1",
                pem.display(),
                tree.path("big.bin").display(),
                tree.path("l-back.bin").display()
            );
            let out = run_timeout(Command::new("lftp").args(["-c", &script]), t);
            let listed = ok(&out, &format!("lftp {url} passive {passive}"));
            // (cls reads MLSD, where a link leading outside the home is left out.)
            assert_eq!(listed, b"l.bin\nup.bin\n", "{url}");
            assert!(
                std::fs::read(tree.path("ann/l.bin")).unwrap() == big,
                "{url}"
            );
            assert!(
                std::fs::read(tree.path("l-back.bin")).unwrap() == big,
                "{url}"
            );
        }
    } else {
        crate::tools::missing("lftp over TLS", "lftp", "apt-get install lftp");
    }

    // bingfa's own client, explicit (passive and active) and implicit.
    let ours = payload(1024 * 1024 + 9, 3);
    std::fs::write(tree.path("ours.bin"), &ours).unwrap();
    for (url, extra) in [
        (ann_url(srv.addr, "ftp", "/o.bin"), vec!["--tls"]),
        (
            ann_url(srv.addr, "ftp", "/o.bin"),
            vec!["--tls", "--active"],
        ),
        (ann_url(implicit, "ftps", "/o.bin"), vec![]),
    ] {
        let _ = std::fs::remove_file(tree.path("o-back.bin"));
        let bingfa = |cmd: &str, args: &[&str]| {
            let mut c = Command::new(BIN);
            c.args(["ftp", cmd]).args(&extra).arg("--cacert").arg(&pem);
            c.args(args);
            run_timeout(&mut c, t)
        };
        let local = tree.path("ours.bin");
        ok(
            &bingfa("put", &[local.to_str().unwrap(), &url]),
            "bingfa ftp put",
        );
        assert!(
            std::fs::read(tree.path("ann/o.bin")).unwrap() == ours,
            "{url} {extra:?}"
        );
        let back = tree.path("o-back.bin");
        ok(
            &bingfa("get", &[&url, back.to_str().unwrap()]),
            "bingfa ftp get",
        );
        assert!(std::fs::read(&back).unwrap() == ours, "{url} {extra:?}");
    }
    assert!(srv.stop().success());
}

/// Reads to EOF; a TLS stream must end with close_notify (rustls reports a bare EOF as an
/// error, which fails here).
fn read_all(r: &mut impl Read) -> Vec<u8> {
    let mut v = Vec::new();
    r.read_to_end(&mut v).expect("read to a clean end");
    v
}

pub(crate) fn rules(model: Model, edge: bool) {
    let tree = Tree::new("ftps-rules");
    let (mut srv, pem) = start(model, edge, &tree, &[]);
    let mut c = Control::plain(srv.addr, &pem);
    assert_eq!(c.line(), "220 bingfa FTP server ready.");
    c.send("FEAT");
    let mut feat = vec![c.line()];
    while !feat.last().unwrap().starts_with("211 ") {
        feat.push(c.line());
    }
    for f in [" AUTH TLS", " PBSZ", " PROT"] {
        assert!(feat.iter().any(|l| l == f), "{f} in {feat:?}");
    }
    // PBSZ and PROT need a secure control connection; AUTH needs TLS.
    let secure_first = "PBSZ needs a secure control connection: AUTH TLS first.";
    assert_eq!(c.cmd("PBSZ 0"), format!("503 {secure_first}"));
    assert_eq!(
        c.cmd("PROT P"),
        "503 PROT needs a secure control connection: AUTH TLS first."
    );
    assert_eq!(c.cmd("AUTH"), "501 AUTH needs a mechanism: AUTH TLS.");
    assert_eq!(
        c.cmd("AUTH KERBEROS_V4"),
        "504 AUTH TLS is the only mechanism."
    );
    assert_eq!(c.cmd("AUTH TLS"), "234 AUTH TLS successful.");
    c.upgrade();
    assert_eq!(c.cmd("AUTH TLS"), "503 Already using TLS.");
    assert_eq!(c.cmd("PROT P"), "503 PBSZ first.");
    assert_eq!(c.cmd("PBSZ abc"), "501 PBSZ needs a number.");
    assert_eq!(c.cmd("PBSZ 0"), "200 PBSZ=0");
    assert_eq!(c.cmd("PROT S"), "536 Only PROT C and P are supported.");
    assert_eq!(c.cmd("PROT Q"), "504 Unknown protection level.");
    assert_eq!(c.cmd("PROT P"), "200 Protection level set to Private.");
    c.login("anonymous", "a@b");
    // PROT P: the data connection is TLS (and ends with close_notify).
    let d = c.passive();
    assert!(c.cmd("RETR hello.txt").starts_with("150 "));
    let mut d = c.secure(d);
    assert_eq!(read_all(&mut d), b"hello\nworld\n");
    assert_eq!(c.line(), "226 Transfer complete.");
    // A client that finishes its data handshake before the transfer command (as curl does)
    // is answered at once: the server handshakes as soon as the connection comes.
    let d = c.passive();
    let mut d = c.secure(d);
    while d.conn.is_handshaking() {
        d.conn
            .complete_io(&mut d.sock)
            .expect("the data handshake, before RETR");
    }
    assert!(c.cmd("RETR hello.txt").starts_with("150 "));
    assert_eq!(read_all(&mut d), b"hello\nworld\n");
    assert_eq!(c.line(), "226 Transfer complete.");
    // A passive connection opened under PROT P cannot carry a clear transfer.
    let _d = c.passive();
    assert_eq!(c.cmd("PROT C"), "200 Protection level set to Clear.");
    assert_eq!(
        c.cmd("RETR hello.txt"),
        "425 PROT C since PASV: open a new data connection."
    );
    // PROT C: the same in the clear.
    let mut d = c.passive();
    assert!(c.cmd("RETR hello.txt").starts_with("150 "));
    assert_eq!(read_all(&mut d), b"hello\nworld\n");
    assert_eq!(c.line(), "226 Transfer complete.");
    assert_eq!(c.cmd("QUIT"), "221 Goodbye.");

    // A command pipelined in plaintext behind AUTH TLS is the handshake, never a command:
    // the handshake fails and the connection closes; nothing after the 234 is a reply.
    let mut raw = TcpStream::connect(srv.addr).unwrap();
    raw.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    raw.write_all(b"AUTH TLS\r\nUSER anonymous\r\nPASS x\r\nDELE hello.txt\r\n")
        .unwrap();
    let mut got = Vec::new();
    let _ = raw.read_to_end(&mut got);
    let want = b"220 bingfa FTP server ready.\r\n234 AUTH TLS successful.\r\n";
    assert!(got.starts_with(want), "{:?}", String::from_utf8_lossy(&got));
    let rest = &got[want.len()..];
    assert!(
        rest.is_empty() || rest[0] == 0x15,
        "after 234 only a TLS alert may come: {rest:?}"
    );
    assert!(tree.path("pub/hello.txt").exists());

    // Implicit: TLS from the first byte; AUTH is refused, PBSZ/PROT work at once.
    let mut c = Control::implicit(srv.tls_addr.unwrap(), &pem);
    assert_eq!(c.line(), "220 bingfa FTP server ready.");
    assert_eq!(c.cmd("AUTH TLS"), "503 Already using TLS.");
    assert_eq!(c.cmd("PBSZ 0"), "200 PBSZ=0");
    assert_eq!(c.cmd("PROT P"), "200 Protection level set to Private.");
    c.login("ann", PASSWORD);
    let d = c.passive();
    assert!(c.cmd("NLST").starts_with("150 "));
    assert_eq!(read_all(&mut c.secure(d)), b"out\r\n");
    assert_eq!(c.line(), "226 Transfer complete.");
    assert_eq!(c.cmd("QUIT"), "221 Goodbye.");
    assert!(srv.stop().success());
}

/// `--tls-required`: no login in the clear, no clear data connection; a passive connection
/// made before `PROT P` still carries the transfer once it is asked for.
pub(crate) fn required(model: Model, edge: bool) {
    let tree = Tree::new("ftps-required");
    let (mut srv, pem) = start(model, edge, &tree, &["--tls-required"]);
    let mut c = Control::plain(srv.addr, &pem);
    assert_eq!(c.line(), "220 bingfa FTP server ready.");
    assert_eq!(c.cmd("USER anonymous"), "530 TLS required: AUTH TLS first.");
    assert_eq!(c.cmd("PASS x"), "503 Login with USER first.");
    assert_eq!(c.cmd("AUTH TLS"), "234 AUTH TLS successful.");
    c.upgrade();
    c.login("anonymous", "a@b");
    assert_eq!(c.cmd("PBSZ 0"), "200 PBSZ=0");
    assert_eq!(
        c.cmd("PROT C"),
        "534 Clear data connections are not allowed: PROT P."
    );
    // The client connects to the passive port before the refused transfer…
    let d = c.passive();
    assert_eq!(
        c.cmd("RETR hello.txt"),
        "521 Data connections must be encrypted: PROT P."
    );
    // …and after PROT P the same connection carries it, over TLS.
    assert_eq!(c.cmd("PROT P"), "200 Protection level set to Private.");
    assert!(c.cmd("RETR hello.txt").starts_with("150 "));
    assert_eq!(read_all(&mut c.secure(d)), b"hello\nworld\n");
    assert_eq!(c.line(), "226 Transfer complete.");
    assert_eq!(c.cmd("QUIT"), "221 Goodbye.");
    assert!(srv.stop().success());
}

/// Data connections under PROT P whose TLS goes wrong: garbage instead of a ClientHello, and
/// an EOF mid-handshake, each end the upload with `426` and store nothing; the session goes
/// on. An upload that ends with close_notify is stored; so is one that ends with a bare TCP
/// EOF after its data (as vsftpd's default and pyftpdlib accept: clients close that way).
pub(crate) fn broken_data(model: Model, edge: bool) {
    let tree = Tree::new("ftps-broken");
    let (mut srv, pem) = start(model, edge, &tree, &[]);
    let mut c = Control::plain(srv.addr, &pem);
    assert_eq!(c.line(), "220 bingfa FTP server ready.");
    assert_eq!(c.cmd("AUTH TLS"), "234 AUTH TLS successful.");
    c.upgrade();
    c.login("ann", PASSWORD);
    assert_eq!(c.cmd("PBSZ 0"), "200 PBSZ=0");
    assert_eq!(c.cmd("PROT P"), "200 Protection level set to Private.");
    // Garbage instead of a ClientHello.
    let mut d = c.passive();
    assert_eq!(c.cmd("STOR x.bin"), "150 Ok to send data.");
    d.write_all(b"GET / HTTP/1.0\r\n\r\n").unwrap();
    assert_eq!(c.line(), "426 Connection closed; transfer aborted.");
    drop(d);
    // The client goes away mid-handshake.
    let d = c.passive();
    assert_eq!(c.cmd("STOR y.bin"), "150 Ok to send data.");
    drop(d);
    assert_eq!(c.line(), "426 Connection closed; transfer aborted.");
    assert_eq!(tree.names("ann"), ["out"], "nothing stored");
    // A proper upload: data, close_notify.
    let data = payload(1024 * 1024 + 1, 4);
    let d = c.passive();
    assert_eq!(c.cmd("STOR z.bin"), "150 Ok to send data.");
    let mut d = c.secure(d);
    d.write_all(&data).unwrap();
    d.conn.send_close_notify();
    d.flush().unwrap();
    d.sock.shutdown(std::net::Shutdown::Write).unwrap();
    assert_eq!(c.line(), "226 Transfer complete.");
    assert!(std::fs::read(tree.path("ann/z.bin")).unwrap() == data);
    // Data then a bare TCP EOF (no close_notify): accepted.
    let d = c.passive();
    assert_eq!(c.cmd("STOR w.bin"), "150 Ok to send data.");
    let mut d = c.secure(d);
    d.write_all(b"no close_notify").unwrap();
    d.flush().unwrap();
    d.sock.shutdown(std::net::Shutdown::Write).unwrap();
    assert_eq!(c.line(), "226 Transfer complete.");
    assert_eq!(
        std::fs::read(tree.path("ann/w.bin")).unwrap(),
        b"no close_notify"
    );
    assert_eq!(c.cmd("QUIT"), "221 Goodbye.");
    assert!(srv.stop().success());
}

/// Data connections must resume the control connection's TLS session (the default,
/// `--tls-session-reuse required`, as vsftpd's `require_ssl_reuse`): another process on the
/// client's address that takes the passive port first with a fresh handshake gets nothing
/// and the transfer is refused (`522`), whether it came before or after the transfer command;
/// the client's own data connections resume, transfer after transfer. `optional` lets a
/// fresh handshake through.
pub(crate) fn session_reuse(model: Model, edge: bool) {
    let tree = Tree::new("ftps-reuse");
    std::fs::write(tree.path("ann/victim.bin"), "0123456789").unwrap();
    let srv = Tls.start(model, edge, &tree, &[]);
    let mut c = srv.login(Tls, "ann", PASSWORD);
    let refused =
        "522 Data connection refused: its TLS session must resume the control connection's.";
    // The client's own: resumed every time (more transfers than the tickets it was given).
    for i in 0..5 {
        let d = c.passive();
        assert_eq!(c.cmd("RETR victim.bin").get(..4), Some("150 "), "{i}");
        let mut d = c.data(d);
        let mut got = Vec::new();
        d.read_to_end(&mut got).unwrap();
        c.expect("226 Transfer complete.");
        assert_eq!(got, b"0123456789", "{i}");
    }
    // A stranger after RETR: its handshake completes, then the connection is dropped with
    // nothing of the file, and the client hears 522.
    let s = c.passive();
    assert_eq!(c.cmd("RETR victim.bin").get(..4), Some("150 "));
    let mut s = c.stranger(s);
    let mut got = Vec::new();
    let _ = s.read_to_end(&mut got);
    assert!(got.is_empty(), "the stranger got {got:?}");
    c.expect(refused);
    // A stranger before STOR (REST too): refused at the command, nothing changed on disk.
    let s = c.passive();
    let mut s = c.stranger(s);
    let _ = s.read_to_end(&mut Vec::new());
    assert_eq!(c.cmd("REST 5").get(..4), Some("350 "));
    assert_eq!(c.cmd("STOR victim.bin"), refused);
    assert_eq!(
        std::fs::read(tree.path("ann/victim.bin")).unwrap(),
        b"0123456789"
    );
    assert_eq!(tree.names("ann"), ["out", "victim.bin"]);
    // And the session goes on: the next transfer of its own works.
    let d = c.passive();
    assert_eq!(c.cmd("RETR victim.bin").get(..4), Some("150 "));
    let mut d = c.data(d);
    let mut got = Vec::new();
    d.read_to_end(&mut got).unwrap();
    c.expect("226 Transfer complete.");
    assert_eq!(got, b"0123456789");
    drop(c);
    drop(srv);
    // `optional`: a fresh handshake is a data connection like any other.
    let srv = Tls.start(model, edge, &tree, &["--tls-session-reuse", "optional"]);
    let mut c = srv.login(Tls, "ann", PASSWORD);
    let s = c.passive();
    assert_eq!(c.cmd("RETR victim.bin").get(..4), Some("150 "));
    let mut s = c.stranger(s);
    let mut got = Vec::new();
    s.read_to_end(&mut got).unwrap();
    c.expect("226 Transfer complete.");
    assert_eq!(got, b"0123456789");
}
