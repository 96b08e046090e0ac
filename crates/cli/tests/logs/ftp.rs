//! The FTP server's logs: the xferlog under every model, the security lines, fail2ban.

use super::*;

/// A control connection, replies read whole (multi-line ones to their last line).
struct Ctl {
    r: BufReader<TcpStream>,
    w: TcpStream,
}

impl Ctl {
    fn connect(to: SocketAddr) -> Ctl {
        let s = TcpStream::connect(to).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let mut c = Ctl {
            r: BufReader::new(s.try_clone().unwrap()),
            w: s,
        };
        assert!(c.reply().starts_with("220"));
        c
    }
    /// The next reply's last line ("" at EOF).
    fn reply(&mut self) -> String {
        loop {
            let mut l = String::new();
            if self.r.read_line(&mut l).unwrap_or(0) == 0 {
                return String::new();
            }
            let l = l.trim_end_matches(['\r', '\n']).to_string();
            if l.len() >= 4 && l.as_bytes()[3] == b' ' && l[..3].bytes().all(|b| b.is_ascii_digit())
            {
                return l;
            }
        }
    }
    fn send(&mut self, bytes: &[u8]) {
        self.w.write_all(bytes).unwrap();
        self.w.write_all(b"\r\n").unwrap();
    }
    fn cmd(&mut self, c: &str) -> String {
        self.send(c.as_bytes());
        self.reply()
    }
    fn login_anonymous(&mut self) {
        assert!(self.cmd("USER anonymous").starts_with("331"));
        assert!(self.cmd("PASS guest@").starts_with("230"));
    }
    /// EPSV, and the data connection to the port it names.
    fn data(&mut self) -> TcpStream {
        let r = self.cmd("EPSV");
        assert!(r.starts_with("229"), "{r}");
        let port: u16 = r
            .split("|||")
            .nth(1)
            .and_then(|t| t.split('|').next())
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("{r}"));
        let peer = self.w.peer_addr().unwrap();
        let d = TcpStream::connect((peer.ip(), port)).unwrap();
        d.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        d
    }
}

/// `ftp serve` on a fresh root with anonymous write access, the xferlog in `dir`.
fn ftp(dir: &Dir, model: Model, edge: bool, extra: &[&str]) -> (ServerProc, SocketAddr) {
    std::fs::create_dir_all(dir.path("root")).unwrap();
    let mut args: Vec<String> = [
        "ftp",
        "serve",
        "--bind",
        "127.0.0.1:0",
        "--anonymous",
        "write",
    ]
    .map(String::from)
    .to_vec();
    args.extend(["--root".into(), dir.path("root").display().to_string()]);
    args.extend([
        "--xferlog".into(),
        dir.path("xferlog").display().to_string(),
    ]);
    args.extend(["--login-delay-ms".into(), "10".into()]);
    args.extend(model_args(model, edge));
    args.extend(["--workers".into(), workers(model).into()]);
    args.extend(extra.iter().map(|s| s.to_string()));
    let p = spawn(&args, &dir.path("err"), &["ftp"]);
    let a = p.addr("ftp");
    (p, a)
}

/// One xferlog line, its fourteen fields parsed (the time is five words).
#[derive(Debug)]
struct Xfer {
    time: i64,
    secs: u64,
    host: String,
    bytes: u64,
    file: String,
    kind: String,
    flag: String,
    dir: String,
    mode: String,
    user: String,
    service: String,
    auth: String,
    auth_id: String,
    status: String,
}

fn parse_xfer(l: &str) -> Xfer {
    let w: Vec<&str> = l.split(' ').filter(|w| !w.is_empty()).collect();
    assert_eq!(w.len(), 18, "18 words (5 of the time): {l:?}");
    // ctime(3): `Www Mmm dd hh:mm:ss yyyy`, the day padded with a space.
    assert_eq!(&l[3..4], " ");
    assert_eq!(&l[7..8], " ");
    assert_eq!(&l[10..11], " ");
    assert_eq!(&l[19..20], " ");
    let stamp = &l[..24];
    // SAFETY: an all-zero tm is a valid value (integers and a null zone pointer).
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    let c = std::ffi::CString::new(stamp).unwrap();
    let fmt = std::ffi::CString::new("%a %b %e %H:%M:%S %Y").unwrap();
    // SAFETY: valid C strings and a tm to fill; strptime returns where it stopped.
    let end = unsafe { libc::strptime(c.as_ptr(), fmt.as_ptr(), &mut tm) };
    assert!(!end.is_null(), "not ctime's shape: {stamp:?}");
    // SAFETY: the parsed end lies inside `c`, up to its NUL.
    let rest = unsafe { *end };
    assert_eq!(rest, 0, "trailing text after the time: {stamp:?}");
    tm.tm_isdst = -1;
    // SAFETY: a filled-in tm; mktime reads local time as the server wrote it.
    let time = unsafe { libc::mktime(&mut tm) } as i64;
    Xfer {
        time,
        secs: w[5].parse().unwrap(),
        host: w[6].into(),
        bytes: w[7].parse().unwrap(),
        file: w[8].into(),
        kind: w[9].into(),
        flag: w[10].into(),
        dir: w[11].into(),
        mode: w[12].into(),
        user: w[13].into(),
        service: w[14].into(),
        auth: w[15].into(),
        auth_id: w[16].into(),
        status: w[17].into(),
    }
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// An upload, a download and an aborted upload: three exact xferlog lines.
fn xferlog(model: Model, edge: bool) {
    let dir = Dir::new("xfer");
    let (mut srv, addr) = ftp(&dir, model, edge, &[]);
    let before = now();
    let body: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();

    let mut c = Ctl::connect(addr);
    c.login_anonymous();
    assert!(c.cmd("TYPE I").starts_with("200"));
    // Upload, with a space in the name (vsftpd writes it `_`).
    let mut d = c.data();
    assert!(c.cmd("STOR up load.bin").starts_with("150"));
    d.write_all(&body).unwrap();
    drop(d);
    assert_eq!(c.reply(), "226 Transfer complete.");
    // Download.
    let mut d = c.data();
    assert!(c.cmd("RETR up load.bin").starts_with("150"));
    let mut got = Vec::new();
    d.read_to_end(&mut got).unwrap();
    assert_eq!(got, body);
    assert_eq!(c.reply(), "226 Transfer complete.");
    // An upload the client aborts after 1000 bytes: nothing stored, logged incomplete.
    let mut d = c.data();
    assert!(c.cmd("STOR aborted.bin").starts_with("150"));
    d.write_all(&body[..1000]).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    c.send(b"ABOR");
    assert!(c.reply().starts_with("426"));
    assert!(c.reply().starts_with("226"));
    drop(d);
    assert!(c.cmd("QUIT").starts_with("221"));

    let lines = wait_lines(&dir.path("xferlog"), "three transfers", |l| l.len() >= 3);
    let after = now();
    assert_eq!(lines.len(), 3, "{lines:#?}");
    let x: Vec<Xfer> = lines.iter().map(|l| parse_xfer(l)).collect();
    for (i, x) in x.iter().enumerate() {
        assert!(
            (before - 1..=after + 1).contains(&x.time),
            "time {} not within [{before}, {after}]: {}",
            x.time,
            lines[i]
        );
        assert!(
            (1..=after - before + 1).contains(&(x.secs as i64)),
            "{}",
            lines[i]
        );
        assert_eq!(x.host, "127.0.0.1");
        assert_eq!(x.kind, "b");
        assert_eq!(x.flag, "_");
        assert_eq!(x.mode, "a");
        assert_eq!(x.user, "anonymous");
        assert_eq!(x.service, "ftp");
        assert_eq!(x.auth, "0");
        assert_eq!(x.auth_id, "*");
    }
    assert_eq!(
        (
            x[0].bytes,
            x[0].file.as_str(),
            x[0].dir.as_str(),
            x[0].status.as_str()
        ),
        (100_000, "/up_load.bin", "i", "c"),
        "{}",
        lines[0]
    );
    assert_eq!(
        (
            x[1].bytes,
            x[1].file.as_str(),
            x[1].dir.as_str(),
            x[1].status.as_str()
        ),
        (100_000, "/up_load.bin", "o", "c"),
        "{}",
        lines[1]
    );
    assert_eq!(
        (x[2].file.as_str(), x[2].dir.as_str(), x[2].status.as_str()),
        ("/aborted.bin", "i", "i"),
        "{}",
        lines[2]
    );
    assert!(x[2].bytes <= 1000, "{}", lines[2]);
    assert!(!dir.path("root/aborted.bin").exists());
    assert!(srv.stop().success());
    // The login was logged with the address, and nothing else forged a line.
    let err = wait_lines(&dir.path("err"), "the login line", |l| {
        l.iter()
            .any(|l| l.contains(" INFO ftp: login peer=127.0.0.1 user=\"anonymous\""))
    });
    assert_all_real_lines(&err);
}

bingfa_testkit::for_each_model! {
    #[test]
    fn xferlog_lines_for_upload_download_and_abort() {
        super::xferlog(M, E)
    }
}

/// A user name with ESC (erase the line), BS, a C1 control (NEL), a bidi override and a
/// whole fake log line in it. CR and LF cannot be in one: the server ends a command line at
/// either (a bare CR too, for ftplib's ABOR).
const FORGED: &[u8] =
    b"x\x1b[2K\x08 2026-01-01T00:00:00Z  WARN ftp: login failed peer=6.6.6.6 user=\"y\"\xc2\x85\xe2\x80\xae";

/// Logins that fail (one with a forged name), one that works, a bounce: the lines, and
/// `fail2ban-regex` with the shipped filter matching exactly the failed logins.
#[test]
fn security_lines_and_the_fail2ban_filter() {
    let dir = Dir::new("f2b");
    let (mut srv, addr) = ftp(&dir, Model::default(), false, &["--ban-after", "0"]);
    let mut c = Ctl::connect(addr);
    assert!(c.cmd("USER alice").starts_with("331"));
    assert!(c.cmd("PASS wrong").starts_with("530"));
    let mut user = b"USER ".to_vec();
    user.extend_from_slice(FORGED);
    c.send(&user);
    assert!(c.reply().starts_with("331"));
    assert!(c.cmd("PASS wrong").starts_with("530"));
    drop(c);
    let mut c = Ctl::connect(addr);
    c.login_anonymous();
    assert!(c.cmd("PORT 192,0,2,1,4,1").starts_with("501"));
    assert!(c.cmd("QUIT").starts_with("221"));

    wait_lines(&dir.path("err"), "the security lines", |l| {
        l.iter().any(|l| l.contains("reason=\"bounce\""))
    });
    assert!(srv.stop().success());
    let lines = std::fs::read_to_string(dir.path("err")).unwrap();
    let lines: Vec<&str> = lines.lines().collect();
    assert_all_real_lines(&lines.iter().map(|l| l.to_string()).collect::<Vec<_>>());
    let failed: Vec<&str> = lines
        .iter()
        .copied()
        .filter(|l| l.contains(" WARN ftp: login failed "))
        .collect();
    assert_eq!(failed.len(), 2, "{lines:#?}");
    assert!(
        failed[0].ends_with(" WARN ftp: login failed peer=127.0.0.1 user=\"alice\""),
        "{}",
        failed[0]
    );
    // The forged name stays in its quoted field, escaped.
    assert!(
        failed[1].ends_with(
            r#" WARN ftp: login failed peer=127.0.0.1 user="x\u{1b}[2K\u{8} 2026-01-01T00:00:00Z  WARN ftp: login failed peer=6.6.6.6 user=\"y\"\u{85}\u{202e}""#
        ),
        "{}",
        failed[1]
    );
    assert!(lines
        .iter()
        .any(|l| l.ends_with(" INFO ftp: login peer=127.0.0.1 user=\"anonymous\"")));
    assert!(lines
        .iter()
        .any(|l| l.ends_with(" WARN ftp: refused peer=127.0.0.1 reason=\"bounce\"")));

    // fail2ban's own reader: the shipped filter matches the two failed logins, 127.0.0.1
    // both times, and nothing else (not the forged 6.6.6.6).
    let filter =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../dist/fail2ban/filter.d/bingfa-ftp.conf");
    let out = Command::new("fail2ban-regex")
        .args(["--print-all-matched", "--print-no-missed"])
        .arg(dir.path("err"))
        .arg(&filter)
        .output()
        .expect("fail2ban-regex (scripts/deps.sh install)");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains(&format!(
            "Lines: {} lines, 0 ignored, 2 matched",
            lines.len()
        )),
        "{text}"
    );
    let matched: Vec<&str> = text
        .lines()
        // `|  LINE` under "Matched line(s)"; the regex's own row is `|   1) [2] ...`.
        .filter(|l| l.starts_with("|  2"))
        .collect();
    assert_eq!(matched.len(), 2, "{text}");
    assert!(
        matched
            .iter()
            .all(|l| l.contains("login failed peer=127.0.0.1 ")),
        "{text}"
    );
}

/// `--log-format json`: every line is one JSON object, and a forged user name comes back
/// byte for byte from its field.
#[test]
fn json_lines_parse_and_keep_the_name_exact() {
    let dir = Dir::new("json");
    let (mut srv, addr) = ftp(&dir, Model::default(), false, &["--log-format", "json"]);
    let mut c = Ctl::connect(addr);
    let mut user = b"USER ".to_vec();
    user.extend_from_slice(FORGED);
    c.send(&user);
    assert!(c.reply().starts_with("331"));
    assert!(c.cmd("PASS wrong").starts_with("530"));
    drop(c);
    wait_lines(&dir.path("err"), "the failed login", |l| {
        l.iter().any(|l| l.contains("login failed"))
    });
    assert!(srv.stop().success());
    let text = std::fs::read_to_string(dir.path("err")).unwrap();
    let mut failed = 0;
    for l in text.lines() {
        let v: serde_json::Value =
            serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l:?}"));
        assert!(v["timestamp"].is_string() && v["level"].is_string(), "{l}");
        if v["message"] == "login failed" {
            failed += 1;
            assert_eq!(v["target"], "ftp");
            assert_eq!(v["level"], "WARN");
            assert_eq!(v["peer"], "127.0.0.1");
            assert_eq!(v["user"].as_str().unwrap().as_bytes(), FORGED);
        }
    }
    assert_eq!(failed, 1, "{text}");
}

/// `--log-level warn` leaves out the info lines (a login), keeps the warnings.
#[test]
fn log_level_filters() {
    let dir = Dir::new("level");
    let (mut srv, addr) = ftp(&dir, Model::default(), false, &["--log-level", "warn"]);
    let mut c = Ctl::connect(addr);
    c.login_anonymous();
    assert!(c.cmd("PORT 192,0,2,1,4,1").starts_with("501"));
    assert!(c.cmd("QUIT").starts_with("221"));
    let lines = wait_lines(&dir.path("err"), "the bounce", |l| {
        l.iter().any(|l| l.contains("reason=\"bounce\""))
    });
    assert!(srv.stop().success());
    assert!(lines.iter().all(|l| !l.contains(" INFO ")), "{lines:#?}");
}

/// Download `name` over a fresh anonymous session.
fn download(addr: SocketAddr, name: &str) -> Vec<u8> {
    let mut c = Ctl::connect(addr);
    c.login_anonymous();
    let mut d = c.data();
    assert!(c.cmd(&format!("RETR {name}")).starts_with("150"));
    let mut got = Vec::new();
    d.read_to_end(&mut got).unwrap();
    assert_eq!(c.reply(), "226 Transfer complete.");
    assert!(c.cmd("QUIT").starts_with("221"));
    got
}

/// `bingfa serve --ftp-xferlog --log-format json`: the FTP service writes the transfer log
/// (under prefork, from its workers), logrotate's SIGUSR1 sent to `serve` reaches it and it
/// reopens the file; every service's stderr is JSON.
#[test]
fn serve_passes_the_xferlog_and_log_format_on_and_sigusr1_reopens() {
    let dir = Dir::new("serve");
    std::fs::create_dir_all(dir.path("root")).unwrap();
    std::fs::write(dir.path("root/f.txt"), b"twelve bytes").unwrap();
    let log = dir.path("xferlog");
    let mut args: Vec<String> = ["serve", "--model", "prefork", "--workers", "2"]
        .map(String::from)
        .to_vec();
    for flag in ["--http-bind", "--chat-bind", "--web-bind", "--ftp-bind"] {
        args.extend([flag.to_string(), "127.0.0.1:0".into()]);
    }
    args.extend(["--root".into(), dir.path("root").display().to_string()]);
    args.extend(["--ftp-anonymous".into(), "read".into()]);
    args.extend(["--ftp-xferlog".into(), log.display().to_string()]);
    args.extend(["--log-format".into(), "json".into()]);
    let mut srv = spawn(&args, &dir.path("err"), &["chat", "web", "ftp", "http"]);
    let ftp = srv.addr("ftp");
    assert_eq!(download(ftp, "f.txt"), b"twelve bytes");
    wait_lines(&log, "the first download", |l| l.len() == 1);
    let rotated = dir.path("xferlog.1");
    std::fs::rename(&log, &rotated).unwrap();
    srv.signal(libc::SIGUSR1);
    // The supervisor looks every 50 ms, then signals the FTP service's parent.
    std::thread::sleep(Duration::from_millis(800));
    assert_eq!(download(ftp, "f.txt"), b"twelve bytes");
    let new = wait_lines(&log, "the download after the rotation", |l| l.len() == 1);
    assert!(srv.stop().success());
    let old = std::fs::read_to_string(&rotated).unwrap();
    assert_eq!(old.lines().count(), 1, "{old}");
    for l in old.lines().chain(new.iter().map(String::as_str)) {
        let x = parse_xfer(l);
        assert_eq!(
            (x.bytes, x.file.as_str(), x.dir.as_str(), x.status.as_str()),
            (12, "/f.txt", "o", "c"),
            "{l}"
        );
    }
    let err = std::fs::read_to_string(dir.path("err")).unwrap();
    let mut logins = 0;
    for l in err.lines() {
        let v: serde_json::Value =
            serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l:?}"));
        if v["target"] == "ftp" && v["message"] == "login" {
            logins += 1;
        }
    }
    assert_eq!(logins, 2, "{err}");
}
