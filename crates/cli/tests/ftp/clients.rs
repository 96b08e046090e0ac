//! Real clients against the server: Python's ftplib (the scenarios are in `ftplib_client.py`:
//! login, exact LIST/NLST/MLSD, SIZE/MDTM, CWD/CDUP, MKD/RMD/DELE/RNFR/RNTO, UTF-8 names,
//! PASV/PORT/EPSV/EPRT, a 5 MiB file both ways, REST/APPE resume, STOU, a spooled listing of
//! about 1 MiB, ASCII both ways), curl (list, `-l`, download, `-T` upload passive and active),
//! lftp (`mirror -R`, `mirror`, `put`, `get`) and an IPv6 control connection, each checked by
//! exact bytes on disk and on stdout.

use super::*;

pub(crate) fn ftplib_session(model: Model, edge: bool) {
    let tree = Tree::new("ftplib-session");
    let mut srv = Server::start(model, edge, &tree, &[]);
    srv.ftplib("session", &tree);
    assert!(srv.stop().success());
}

pub(crate) fn ftplib_transfers(model: Model, edge: bool) {
    let tree = Tree::new("ftplib-transfers");
    let mut srv = Server::start(model, edge, &tree, &[]);
    srv.ftplib("transfers", &tree);
    assert!(srv.stop().success());
}

fn payload(n: usize) -> Vec<u8> {
    (0..n as u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 24) as u8)
        .collect()
}

fn ok(out: &std::process::Output, what: &str) -> String {
    assert!(
        out.status.success(),
        "{what}: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub(crate) fn curl(model: Model, edge: bool) {
    let tree = Tree::new("curl");
    let mut srv = Server::start(model, edge, &tree, &[]);
    let url = |user: &str, path: &str| format!("ftp://{user}@{}{path}", srv.addr);
    let ann = format!("ann:{}", PASSWORD.replace(' ', "%20"));
    let t = Duration::from_secs(60);
    // A listing (anonymous), names only, a download.
    let list = ok(
        &run_timeout(
            Command::new("curl").args(["-sS", &url("anonymous", "/")]),
            t,
        ),
        "curl list",
    );
    let names: Vec<&str> = list
        .lines()
        .map(|l| l.rsplit(' ').next().unwrap())
        .collect();
    assert_eq!(names, ["hello.txt", "out", "sub"], "{list}");
    let nlst = ok(
        &run_timeout(
            Command::new("curl").args(["-sS", "-l", &url("anonymous", "/sub/")]),
            t,
        ),
        "curl -l",
    );
    // curl turns the listing's CRLF into its platform's newline.
    assert_eq!(nlst, "inner.txt\n");
    let got = ok(
        &run_timeout(
            Command::new("curl").args(["-sS", &url("anonymous", "/hello.txt")]),
            t,
        ),
        "curl get",
    );
    assert_eq!(got, "hello\nworld\n");
    // Upload with -T (passive and active), then download it back.
    let data = payload(3 * 1024 * 1024 + 5);
    let local = tree.path("local.bin");
    std::fs::write(&local, &data).unwrap();
    for extra in [&[][..], &["-P", "127.0.0.1"][..]] {
        ok(
            &run_timeout(
                Command::new("curl")
                    .args(["-sS", "-T"])
                    .arg(&local)
                    .args(extra)
                    .arg(url(&ann, "/up.bin")),
                t,
            ),
            "curl -T",
        );
        assert!(std::fs::read(tree.path("ann/up.bin")).unwrap() == data);
        let back = run_timeout(
            Command::new("curl")
                .args(["-sS"])
                .args(extra)
                .arg(url(&ann, "/up.bin")),
            t,
        );
        ok(&back, "curl get back");
        assert!(back.stdout == data, "{} bytes back", back.stdout.len());
    }
    // A wrong password and a path outside fail with curl's login / file errors.
    let bad = run_timeout(
        Command::new("curl").args(["-sS", &url("ann:wrong", "/")]),
        t,
    );
    assert_eq!(bad.status.code(), Some(67), "curl: login denied");
    let out = run_timeout(
        Command::new("curl").args(["-sS", &url("anonymous", "/out")]),
        t,
    );
    assert_eq!(out.status.code(), Some(78), "curl: remote file not found");
    assert_eq!(tree.names("ann"), ["out", "up.bin"]);
    assert!(srv.stop().success());
}

pub(crate) fn lftp(model: Model, edge: bool) {
    if Command::new("lftp").arg("--version").output().is_err() {
        // scripts/deps.sh installs it; without it this fails where tools are required.
        crate::tools::missing("lftp", "lftp", "apt-get install lftp");
        return;
    }
    let tree = Tree::new("lftp");
    let mut srv = Server::start(model, edge, &tree, &[]);
    let t = Duration::from_secs(120);
    let local = tree.path("local");
    std::fs::create_dir_all(local.join("deep")).unwrap();
    let big = payload(2 * 1024 * 1024 + 7);
    std::fs::write(local.join("deep/big.bin"), &big).unwrap();
    std::fs::write(local.join("small.txt"), "small\n").unwrap();
    let open = format!(
        "set cmd:fail-exit yes; set net:max-retries 1; set net:timeout 20; set ftp:ssl-allow no; open -u ann,'{PASSWORD}' -p {} {}",
        srv.addr.port(),
        srv.addr.ip()
    );
    // Upload a tree with mirror -R, list it, download it again with mirror, and get/put one file.
    let script = format!(
        "{open}; mirror -R {} up; cls -1 up; mirror up {}; put {} -o one.txt; get one.txt -o {}",
        local.display(),
        tree.path("down").display(),
        local.join("small.txt").display(),
        tree.path("one.txt").display()
    );
    let out = run_timeout(Command::new("lftp").args(["-c", &script]), t);
    let stdout = ok(&out, "lftp");
    assert_eq!(stdout, "up/deep/\nup/small.txt\n", "cls output");
    assert!(std::fs::read(tree.path("ann/up/deep/big.bin")).unwrap() == big);
    assert_eq!(
        std::fs::read_to_string(tree.path("ann/up/small.txt")).unwrap(),
        "small\n"
    );
    assert!(std::fs::read(tree.path("down/deep/big.bin")).unwrap() == big);
    assert_eq!(
        std::fs::read_to_string(tree.path("one.txt")).unwrap(),
        "small\n"
    );
    assert_eq!(tree.names("ann"), ["one.txt", "out", "up"]);
    assert!(srv.stop().success());
}

/// Over IPv6 (`--bind [::1]:0`), where PASV and PORT cannot carry the address: curl with EPSV
/// and with EPRT (`-P ::1`), an upload, ftplib (which uses EPSV, and EPRT when passive is off,
/// on an IPv6 connection), and the bounce rules in EPRT's IPv6 form. Skipped (with a note)
/// where the machine has no `::1`.
pub(crate) fn ipv6(model: Model, edge: bool) {
    if std::net::TcpListener::bind("[::1]:0").is_err() {
        eprintln!("skipped: no IPv6 loopback here");
        return;
    }
    let tree = Tree::new("ipv6");
    let mut srv = Server::start(model, edge, &tree, &["--bind", "[::1]:0"]);
    assert!(srv.addr.is_ipv6(), "{}", srv.addr);
    let url = |user: &str, path: &str| format!("ftp://{user}@{}{path}", srv.addr);
    let ann = format!("ann:{}", PASSWORD.replace(' ', "%20"));
    let t = Duration::from_secs(60);
    for extra in [&[][..], &["-P", "::1"][..]] {
        let got = run_timeout(
            Command::new("curl")
                .args(["-sS"])
                .args(extra)
                .arg(url("anonymous", "/hello.txt")),
            t,
        );
        assert_eq!(ok(&got, "curl over IPv6"), "hello\nworld\n", "{extra:?}");
    }
    let data = payload(1024 * 1024 + 3);
    let local = tree.path("local6.bin");
    std::fs::write(&local, &data).unwrap();
    ok(
        &run_timeout(
            Command::new("curl")
                .args(["-sS", "-T"])
                .arg(&local)
                .arg(url(&ann, "/six.bin")),
            t,
        ),
        "curl -T over IPv6",
    );
    assert!(std::fs::read(tree.path("ann/six.bin")).unwrap() == data);
    let py = format!(
        r#"
import ftplib, io
for passive in (True, False):
    f = ftplib.FTP()
    f.connect("::1", {port}, timeout=20)
    f.login()
    f.set_pasv(passive)
    b = io.BytesIO()
    f.retrbinary("RETR hello.txt", b.write)
    assert b.getvalue() == b"hello\nworld\n", b.getvalue()
    assert f.nlst("sub") == ["inner.txt"] or f.nlst("sub") == ["sub/inner.txt"], f.nlst("sub")
    f.quit()
print("ok")
"#,
        port = srv.addr.port()
    );
    let out = run_timeout(Command::new("python3").args(["-c", &py]), t);
    assert_eq!(ok(&out, "ftplib over IPv6").trim(), "ok");

    let mut c = srv.login(Plain, "anonymous", "x@");
    let bad = "501 Illegal PORT command: only your own address, port 1024 or above.";
    assert_eq!(c.cmd("EPRT |2|::1|80|"), bad);
    assert_eq!(c.cmd("EPRT |1|127.0.0.1|10000|"), bad);
    assert_eq!(c.cmd("EPRT |2|::2|10000|"), bad);
    let port = c.epsv();
    drop(TcpStream::connect_timeout(&SocketAddr::new(srv.addr.ip(), port), t).unwrap());
    c.cmd("QUIT");
    assert!(srv.stop().success());
}
