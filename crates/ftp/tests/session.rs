//! The session without sockets, on bingfa-net's rig (`bingfa_net::rig`), every action checked. Shows the
//! passive flow's exact actions (a listener in the configured range announcing the configured
//! address, `RETR` queued before the client connects) and that commands sent during a
//! transfer wait, in order. Also: Telnet commands removed anywhere in a line; non-UTF-8 command
//! lines and names with control characters refused by every verb; a listing handed to the
//! blocking pool and showing only names that can be named back; MFMT; a resumed upload that
//! changes the file only at its first byte; a FIN behind a transfer ending the session.

use bingfa_ftp::{Anonymous, FtpConfig, FtpProtocol};
use bingfa_net::rig::Rig;
use bingfa_net::{Action, ChannelEvent, ConnInfo, Passive, Protocol, Session};
use std::net::SocketAddr;

fn info() -> ConnInfo {
    ConnInfo {
        id: 1,
        peer: "127.0.0.1:40000".parse().unwrap(),
        local: "127.0.0.1:21".parse().unwrap(),
        cred: None,
    }
}

/// The actions, with writes as text.
fn take(r: &mut Rig<impl Session>) -> Vec<String> {
    r.take_actions()
        .into_iter()
        .map(|a| match a {
            Action::Watch(w) => format!("watch {}", w.id()),
            Action::Write(b) => format!("write {}", String::from_utf8_lossy(&b)),
            Action::Listen(id, p) => format!("listen {id} {:?} {:?}", p.ports, p.announce),
            Action::ChannelSendFile {
                id, offset, len, ..
            } => format!("sendfile {id} {offset} {len}"),
            Action::ChannelWrite(id, b) => format!("chwrite {id} {}", String::from_utf8_lossy(&b)),
            Action::ChannelClose(id) => format!("chclose {id}"),
            Action::ChannelPause(id, p) => format!("chpause {id} {p}"),
            Action::PauseInput(p) => format!("pause {p}"),
            other => format!("{other:?}"),
        })
        .collect()
}

/// One `on_data` with the line; what it consumed.
fn feed(r: &mut Rig<impl Session>, line: &str) -> usize {
    r.data(line.as_bytes())
}

#[test]
fn passive_retr_queued_before_the_client_connects() {
    let dir = std::env::temp_dir().join(format!("bingfa-ftp-session-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("f.txt"), "0123456789").unwrap();
    let mut cfg = FtpConfig::new(&dir);
    cfg.anonymous = Anonymous::Read;
    cfg.passive_ports = Some(50000..=50099);
    cfg.passive_address = Some("192.0.2.7".parse().unwrap());
    let proto = FtpProtocol::new(cfg).unwrap();
    let mut r = Rig::opened(proto.new_session(&info()), info());
    assert_eq!(take(&mut r), ["write 220 bingfa FTP server ready.\r\n"]);
    assert_eq!(feed(&mut r, "USER anonymous\r\n"), 16);
    feed(&mut r, "PASS x@\r\n");
    assert_eq!(
        take(&mut r),
        [
            "write 331 Anonymous login ok, send your email address as password.\r\n230 Login successful.\r\n"
        ]
    );
    feed(&mut r, "PASV\r\n");
    let want = Passive {
        ports: Some(50000..=50099),
        announce: Some("192.0.2.7".parse().unwrap()),
    };
    assert_eq!(
        take(&mut r),
        [format!("listen 1 {:?} {:?}", want.ports, want.announce)]
    );
    // The driver reports the announced address with the bound port.
    let at: SocketAddr = "192.0.2.7:50010".parse().unwrap();
    r.call(|s, cx| s.on_channel(1, ChannelEvent::Listening(at), cx));
    assert_eq!(
        take(&mut r),
        ["write 227 Entering Passive Mode (192,0,2,7,195,90).\r\n"]
    );
    // RETR before the client connected: the file range and the close are queued at once.
    feed(&mut r, "RETR f.txt\r\n");
    assert_eq!(
        take(&mut r),
        [
            "chpause 1 false",
            "write 150 Opening BINARY mode data connection for f.txt (10 bytes).\r\n",
            "sendfile 1 0 10",
            "chclose 1"
        ]
    );
    // During the transfer a command waits (input paused, nothing consumed)…
    assert_eq!(feed(&mut r, "PWD\r\n"), 0);
    assert_eq!(take(&mut r), ["pause true"]);
    // …but NOOP is answered.
    assert_eq!(feed(&mut r, "NOOP\r\n"), 6);
    assert_eq!(take(&mut r), ["write 200 NOOP ok.\r\n"]);
    r.call(|s, cx| {
        s.on_channel(
            1,
            ChannelEvent::Connected("127.0.0.1:1".parse().unwrap()),
            cx,
        )
    });
    r.call(|s, cx| s.on_channel(1, ChannelEvent::Closed, cx));
    assert_eq!(
        take(&mut r),
        ["write 226 Transfer complete.\r\n", "pause false"]
    );
    assert_eq!(feed(&mut r, "PWD\r\n"), 5);
    assert_eq!(
        take(&mut r),
        ["write 257 \"/\" is the current directory.\r\n"]
    );
    std::fs::remove_dir_all(dir).unwrap();
}

/// A logged-in anonymous session on `dir` (`write`: anonymous may change files), with a
/// passive data channel (id 1) ready.
fn session(dir: &std::path::Path, write: bool) -> Rig<impl Session> {
    let mut cfg = FtpConfig::new(dir);
    // Dotfiles served (`--hidden`): these tests are about names, not the hidden rule, so a
    // user's own `.bingfa-upload-*` shows that only the server's temporary files are hidden.
    cfg.hidden = true;
    cfg.anonymous = if write {
        Anonymous::Write
    } else {
        Anonymous::Read
    };
    let proto = FtpProtocol::new(cfg).unwrap();
    let mut r = Rig::opened(proto.new_session(&info()), info());
    feed(&mut r, "USER anonymous\r\n");
    feed(&mut r, "PASS x@\r\n");
    take(&mut r);
    r
}

/// `EPSV`, and the driver's answer; the channel's id.
fn passive(r: &mut Rig<impl Session>) -> bingfa_net::ChannelId {
    feed(r, "EPSV\r\n");
    let id = r
        .take_actions()
        .into_iter()
        .find_map(|a| match a {
            Action::Listen(id, _) => Some(id),
            _ => None,
        })
        .expect("a listener");
    r.call(|s, cx| {
        s.on_channel(
            id,
            ChannelEvent::Listening("127.0.0.1:50000".parse().unwrap()),
            cx,
        )
    });
    take(r);
    id
}

/// Waits for the watched tasks and tells the session (as the driver does when one ends) until
/// a listing is answered; the actions meanwhile, with the watch requests left out.
fn answered(r: &mut Rig<impl Session>) -> Vec<String> {
    let mut got = Vec::new();
    loop {
        got.extend(take(r).into_iter().filter(|a| !a.starts_with("watch ")));
        if got.iter().any(|a| a.starts_with("write ")) {
            return got;
        }
        assert!(
            r.watching() > 0,
            "no answer and no task to wait for: {got:?}"
        );
        assert!(
            r.finish_task(std::time::Duration::from_secs(30)),
            "no answer: {got:?}"
        );
    }
}

fn tempdir(tag: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("bingfa-ftp-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn telnet_commands_are_removed_anywhere_in_a_line() {
    let dir = tempdir("telnet");
    let mut r = session(&dir, false);
    // IAC WILL 1 before the verb, IAC DO 3 inside it, IAC NOP inside the argument.
    r.data(b"\xff\xfb\x01PW\xff\xfd\x03D\r\n");
    assert_eq!(
        take(&mut r),
        ["write 257 \"/\" is the current directory.\r\n"]
    );
    r.data(b"TY\xff\xf1PE I\xff\xfe\x05\r\n");
    assert_eq!(take(&mut r), ["write 200 Switching to Binary mode.\r\n"]);
    // The Synch before ABOR: IAC IP, then IAC DM with the DM urgent (out of band here)…
    r.data(b"\xff\xf4\xffABOR\r\n");
    assert_eq!(take(&mut r), ["write 225 No transfer to abort.\r\n"]);
    // …or in band.
    r.data(b"\xff\xf4\xff\xf2NOOP\r\n");
    assert_eq!(take(&mut r), ["write 200 NOOP ok.\r\n"]);
    // A subnegotiation goes whole.
    r.data(b"\xff\xfa\x18\x01xterm\xff\xf0NOOP\r\n");
    assert_eq!(take(&mut r), ["write 200 NOOP ok.\r\n"]);
    // IAC IAC is a 0xFF byte: not UTF-8, refused.
    r.data(b"CWD a\xff\xffb\r\n");
    assert_eq!(take(&mut r), ["write 501 Command line is not UTF-8.\r\n"]);
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn names_that_are_not_utf8_or_have_controls_are_refused_everywhere() {
    let dir = tempdir("badnames");
    std::fs::write(dir.join("ok.txt"), "x").unwrap();
    let mut r = session(&dir, true);
    passive(&mut r);
    for line in [
        &b"STOR new\xff.bin\r\n"[..],
        b"RETR new\xff.bin\r\n",
        b"DELE ok\xff.txt\r\n",
        b"RNFR ok\xff.txt\r\n",
        b"CWD d\xff\r\n",
        b"MKD d\xff\r\n",
    ] {
        r.data(line);
        assert_eq!(
            take(&mut r),
            ["write 501 Command line is not UTF-8.\r\n"],
            "{line:?}"
        );
    }
    for line in [
        "STOR a\x1bb",
        "MKD tab\there",
        "RNFR ok.txt",
        "RNTO esc\x1b[2J",
    ] {
        feed(&mut r, &format!("{line}\r\n"));
        let want = if line.starts_with("RNFR") {
            "write 350 Ready for RNTO.\r\n"
        } else {
            "write 553 File name not allowed.\r\n"
        };
        assert_eq!(take(&mut r), [want], "{line:?}");
    }
    // Nothing was made or changed.
    let mut names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    names.sort();
    assert_eq!(names, ["ok.txt"]);
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn listings_are_made_off_the_loop_and_show_only_what_can_be_named() {
    use std::os::unix::ffi::OsStrExt;
    let dir = tempdir("names");
    for n in [
        &b"a.txt"[..],
        b"b.txt",
        b"c.log",
        b".bingfa-upload-mine",
        b"x\r\n-rw-r--r-- 1 ftp ftp 999999 Jan 1 2000 FORGED-ENTRY",
        b"esc\x1b[2J",
        b"latin\xe9",
    ] {
        std::fs::write(dir.join(std::ffi::OsStr::from_bytes(n)), "x").unwrap();
    }
    let fifo = std::ffi::CString::new(dir.join("pipe").as_os_str().as_bytes()).unwrap();
    // SAFETY: a valid path.
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o644) }, 0);
    let mut r = session(&dir, false);
    let id = passive(&mut r);
    // The listing is handed to the pool: input waits, the session is told when it is made.
    feed(&mut r, "NLST -a\r\n");
    let first = take(&mut r);
    assert!(first[0].starts_with("watch "), "{first:?}");
    assert_eq!(first[1], "pause true", "{first:?}");
    // A command meanwhile waits, unread.
    assert_eq!(feed(&mut r, "NOOP\r\n"), 0);
    let got = answered(&mut r);
    assert_eq!(
        got,
        [
            "pause true",
            "pause false",
            &format!("chpause {id} false"),
            "write 150 Here comes the directory listing.\r\n",
            &format!("chwrite {id} .bingfa-upload-mine\r\na.txt\r\nb.txt\r\nc.log\r\npipe\r\n"),
            &format!("chclose {id}"),
        ]
    );
    r.call(|s, cx| s.on_channel(id, ChannelEvent::Closed, cx));
    take(&mut r);
    // The FIFO is listed as one (`p`, `type=OS.unix=fifo`, no `r` permission), as RETR has it.
    let id = passive(&mut r);
    feed(&mut r, "LIST pipe\r\n");
    let got = answered(&mut r);
    assert!(
        got[4].starts_with(&format!("chwrite {id} prw-r--r-- ")),
        "{got:?}"
    );
    r.call(|s, cx| s.on_channel(id, ChannelEvent::Closed, cx));
    take(&mut r);
    feed(&mut r, "RETR pipe\r\n");
    assert_eq!(take(&mut r), ["write 550 Permission denied.\r\n"]);
    let id = passive(&mut r);
    feed(&mut r, "MLSD\r\n");
    let got = answered(&mut r);
    assert!(
        got[4].contains(";perm=;unix.mode=0644; pipe\r\n")
            && got[4].contains("type=OS.unix=fifo;modify="),
        "{got:?}"
    );
    assert!(!got[4].contains("FORGED") && !got[4].contains("latin"));
    r.call(|s, cx| s.on_channel(id, ChannelEvent::Closed, cx));
    take(&mut r);
    // Wildcards: matched in the last component, named as given.
    let id = passive(&mut r);
    feed(&mut r, "NLST /*.txt\r\n");
    let got = answered(&mut r);
    assert_eq!(got[4], format!("chwrite {id} /a.txt\r\n/b.txt\r\n"));
    r.call(|s, cx| s.on_channel(id, ChannelEvent::Closed, cx));
    take(&mut r);
    passive(&mut r);
    feed(&mut r, "NLST *.none\r\n");
    let got = answered(&mut r);
    assert_eq!(
        got[2], "write 550 No such file or directory.\r\n",
        "{got:?}"
    );
    // STAT of a directory: the same names, as a 213 reply.
    feed(&mut r, "STAT [ab].txt\r\n");
    let got = answered(&mut r);
    let text = got[2].strip_prefix("write ").unwrap();
    let lines: Vec<&str> = text.split("\r\n").collect();
    assert_eq!(lines[0], "213-Status of /[ab].txt:");
    assert!(lines[1].starts_with(" -rw-r--r-- ") && lines[1].ends_with(" a.txt"));
    assert!(lines[2].ends_with(" b.txt"));
    assert_eq!(lines[3..], ["213 End of status", ""]);
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn mfmt_sets_the_modification_time() {
    let dir = tempdir("mfmt");
    std::fs::write(dir.join("f.txt"), "x").unwrap();
    let mut r = session(&dir, true);
    feed(&mut r, "FEAT\r\n");
    assert!(take(&mut r)[0].contains("\r\n MFMT\r\n"));
    feed(&mut r, "MFMT 20200229123456 f.txt\r\n");
    assert_eq!(take(&mut r), ["write 213 Modify=20200229123456; f.txt\r\n"]);
    let m = std::fs::metadata(dir.join("f.txt")).unwrap();
    assert_eq!(
        m.modified().unwrap(),
        std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_582_979_696)
    );
    feed(&mut r, "MDTM f.txt\r\n");
    assert_eq!(take(&mut r), ["write 213 20200229123456\r\n"]);
    for (line, want) in [
        (
            "MFMT 20200230000000 f.txt",
            "501 Bad time: YYYYMMDDHHMMSS (UTC) expected.",
        ),
        ("MFMT 20200229123456", "501 Usage: MFMT YYYYMMDDHHMMSS path"),
        ("MFMT 20200229123456 nope", "550 No such file or directory."),
        ("MFMT 20200229123456 ../x", "550 Permission denied."),
    ] {
        feed(&mut r, &format!("{line}\r\n"));
        assert_eq!(take(&mut r), [format!("write {want}\r\n")], "{line}");
    }
    std::fs::remove_dir_all(dir).unwrap();
    // Year 20000 on disk (tmpfs keeps such times; ext4 stops at 2446): still 14 digits.
    let dir =
        std::path::Path::new("/dev/shm").join(format!("bingfa-ftp-y20k-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let f = std::fs::File::create(dir.join("f.txt")).unwrap();
    f.set_modified(std::time::UNIX_EPOCH + std::time::Duration::from_secs(568_971_820_800))
        .unwrap();
    let mut r = session(&dir, false);
    feed(&mut r, "MDTM f.txt\r\n");
    assert_eq!(take(&mut r), ["write 213 99991231235959\r\n"]);
    std::fs::remove_dir_all(dir).unwrap();
    // A read-only user may not.
    let dir = tempdir("mfmt-ro");
    std::fs::write(dir.join("f.txt"), "x").unwrap();
    let mut r = session(&dir, false);
    feed(&mut r, "MFMT 20200229123456 f.txt\r\n");
    assert_eq!(take(&mut r), ["write 550 Permission denied.\r\n"]);
    std::fs::remove_dir_all(dir).unwrap();
}

/// A session logged in as anonymous with write access on a fresh directory holding
/// `victim.bin` = "0123456789", past `PASV` (channel 1, listening).
fn writer(tag: &str) -> (std::path::PathBuf, Rig<impl Session>) {
    let dir = std::env::temp_dir().join(format!("bingfa-ftp-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("victim.bin"), "0123456789").unwrap();
    let mut cfg = FtpConfig::new(&dir);
    cfg.anonymous = Anonymous::Write;
    let proto = FtpProtocol::new(cfg).unwrap();
    let mut r = Rig::opened(proto.new_session(&info()), info());
    feed(&mut r, "USER anonymous\r\n");
    feed(&mut r, "PASS x@\r\n");
    feed(&mut r, "PASV\r\n");
    r.call(|s, cx| {
        s.on_channel(
            1,
            ChannelEvent::Listening("127.0.0.1:50010".parse().unwrap()),
            cx,
        )
    });
    take(&mut r);
    (dir, r)
}

/// A resumed upload (REST + STOR) truncates and writes only once its first byte arrives: the
/// `150`, the data connection and its handshake change nothing, and a transfer that ends
/// before any byte (here: a data handshake that did not resume the control session, 522)
/// leaves the file as it was.
#[test]
fn a_resumed_upload_changes_the_file_only_at_its_first_byte() {
    let (dir, mut r) = writer("lazy-sink");
    let victim = || std::fs::read(dir.join("victim.bin")).unwrap();
    feed(&mut r, "REST 5\r\n");
    feed(&mut r, "STOR victim.bin\r\n");
    assert_eq!(
        take(&mut r),
        [
            "write 350 Restart position accepted (5).\r\n",
            "chpause 1 false",
            "write 150 Ok to send data.\r\n"
        ]
    );
    r.call(|s, cx| {
        s.on_channel(
            1,
            ChannelEvent::Connected("127.0.0.1:1".parse().unwrap()),
            cx,
        )
    });
    assert_eq!(victim(), b"0123456789");
    r.call(|s, cx| {
        s.on_channel(
            1,
            ChannelEvent::Error(std::io::ErrorKind::PermissionDenied),
            cx,
        )
    });
    assert_eq!(
        take(&mut r),
        ["write 522 Data connection refused: its TLS session must resume the control connection's.\r\n"]
    );
    assert_eq!(victim(), b"0123456789");
    // Again, on a data connection that works: truncated to 5, then written from there.
    feed(&mut r, "PASV\r\n");
    r.call(|s, cx| {
        s.on_channel(
            2,
            ChannelEvent::Listening("127.0.0.1:50011".parse().unwrap()),
            cx,
        )
    });
    feed(&mut r, "REST 5\r\n");
    feed(&mut r, "STOR victim.bin\r\n");
    assert_eq!(victim(), b"0123456789");
    r.call(|s, cx| s.on_channel(2, ChannelEvent::Data(b"ab"), cx));
    assert_eq!(victim(), b"01234ab");
    r.call(|s, cx| s.on_channel(2, ChannelEvent::Eof, cx));
    assert!(take(&mut r).contains(&"write 226 Transfer complete.\r\n".to_string()));
    std::fs::remove_dir_all(dir).unwrap();
}

/// The client closes (FIN) while a command waits behind a transfer: the session ends at once,
/// the transfer cancelled.
#[test]
fn a_hangup_behind_a_transfer_ends_the_session() {
    let (dir, mut r) = writer("hangup");
    feed(&mut r, "RETR victim.bin\r\n");
    take(&mut r);
    assert_eq!(feed(&mut r, "PWD\r\n"), 0);
    assert_eq!(take(&mut r), ["pause true"]);
    r.call(|s, cx| s.on_hangup(cx));
    assert_eq!(take(&mut r), ["ChannelAbort(1)", "Close"]);
    std::fs::remove_dir_all(dir).unwrap();
}
