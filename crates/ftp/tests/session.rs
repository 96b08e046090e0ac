//! The session without sockets: a `Context` built by hand, every action checked. Shows the
//! passive flow's exact actions (a listener in the configured range announcing the configured
//! address, `RETR` queued before the client connects) and that commands sent during a
//! transfer wait, in order.

use bingfa_ftp::{Anonymous, FtpConfig, FtpProtocol};
use bingfa_net::{Action, ChannelEvent, ConnInfo, Context, Passive, Protocol, Session};
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
fn take(cx: &mut Context) -> Vec<String> {
    cx.take_actions()
        .map(|a| match a {
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

fn feed(s: &mut impl Session, cx: &mut Context, line: &str) -> usize {
    s.on_data(line.as_bytes(), cx)
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
    let mut s = proto.new_session(&info());
    let mut cx = Context::new(info());
    s.on_open(&mut cx);
    assert_eq!(take(&mut cx), ["write 220 bingfa FTP server ready.\r\n"]);
    assert_eq!(feed(&mut s, &mut cx, "USER anonymous\r\n"), 16);
    feed(&mut s, &mut cx, "PASS x@\r\n");
    assert_eq!(
        take(&mut cx),
        [
            "write 331 Anonymous login ok, send your email address as password.\r\n230 Login successful.\r\n"
        ]
    );
    feed(&mut s, &mut cx, "PASV\r\n");
    let want = Passive {
        ports: Some(50000..=50099),
        announce: Some("192.0.2.7".parse().unwrap()),
    };
    assert_eq!(
        take(&mut cx),
        [format!("listen 1 {:?} {:?}", want.ports, want.announce)]
    );
    // The driver reports the announced address with the bound port.
    let at: SocketAddr = "192.0.2.7:50010".parse().unwrap();
    s.on_channel(1, ChannelEvent::Listening(at), &mut cx);
    assert_eq!(
        take(&mut cx),
        ["write 227 Entering Passive Mode (192,0,2,7,195,90).\r\n"]
    );
    // RETR before the client connected: the file range and the close are queued at once.
    feed(&mut s, &mut cx, "RETR f.txt\r\n");
    assert_eq!(
        take(&mut cx),
        [
            "chpause 1 false",
            "write 150 Opening BINARY mode data connection for f.txt (10 bytes).\r\n",
            "sendfile 1 0 10",
            "chclose 1"
        ]
    );
    // During the transfer a command waits (input paused, nothing consumed)…
    assert_eq!(feed(&mut s, &mut cx, "PWD\r\n"), 0);
    assert_eq!(take(&mut cx), ["pause true"]);
    // …but NOOP is answered.
    assert_eq!(feed(&mut s, &mut cx, "NOOP\r\n"), 6);
    assert_eq!(take(&mut cx), ["write 200 NOOP ok.\r\n"]);
    s.on_channel(
        1,
        ChannelEvent::Connected("127.0.0.1:1".parse().unwrap()),
        &mut cx,
    );
    s.on_channel(1, ChannelEvent::Closed, &mut cx);
    assert_eq!(
        take(&mut cx),
        ["write 226 Transfer complete.\r\n", "pause false"]
    );
    assert_eq!(feed(&mut s, &mut cx, "PWD\r\n"), 5);
    assert_eq!(
        take(&mut cx),
        ["write 257 \"/\" is the current directory.\r\n"]
    );
    std::fs::remove_dir_all(dir).unwrap();
}

/// A session logged in as anonymous with write access on a fresh directory holding
/// `victim.bin` = "0123456789", past `PASV` (channel 1, listening).
fn writer(tag: &str) -> (std::path::PathBuf, impl Session, Context) {
    let dir = std::env::temp_dir().join(format!("bingfa-ftp-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("victim.bin"), "0123456789").unwrap();
    let mut cfg = FtpConfig::new(&dir);
    cfg.anonymous = Anonymous::Write;
    let proto = FtpProtocol::new(cfg).unwrap();
    let mut s = proto.new_session(&info());
    let mut cx = Context::new(info());
    s.on_open(&mut cx);
    feed(&mut s, &mut cx, "USER anonymous\r\n");
    feed(&mut s, &mut cx, "PASS x@\r\n");
    feed(&mut s, &mut cx, "PASV\r\n");
    s.on_channel(
        1,
        ChannelEvent::Listening("127.0.0.1:50010".parse().unwrap()),
        &mut cx,
    );
    take(&mut cx);
    (dir, s, cx)
}

/// A resumed upload (REST + STOR) truncates and writes only once its first byte arrives: the
/// `150`, the data connection and its handshake change nothing, and a transfer that ends
/// before any byte (here: a data handshake that did not resume the control session, 522)
/// leaves the file as it was.
#[test]
fn a_resumed_upload_changes_the_file_only_at_its_first_byte() {
    let (dir, mut s, mut cx) = writer("lazy-sink");
    let victim = || std::fs::read(dir.join("victim.bin")).unwrap();
    feed(&mut s, &mut cx, "REST 5\r\n");
    feed(&mut s, &mut cx, "STOR victim.bin\r\n");
    assert_eq!(
        take(&mut cx),
        [
            "write 350 Restart position accepted (5).\r\n",
            "chpause 1 false",
            "write 150 Ok to send data.\r\n"
        ]
    );
    s.on_channel(
        1,
        ChannelEvent::Connected("127.0.0.1:1".parse().unwrap()),
        &mut cx,
    );
    assert_eq!(victim(), b"0123456789");
    s.on_channel(
        1,
        ChannelEvent::Error(std::io::ErrorKind::PermissionDenied),
        &mut cx,
    );
    assert_eq!(
        take(&mut cx),
        ["write 522 Data connection refused: its TLS session must resume the control connection's.\r\n"]
    );
    assert_eq!(victim(), b"0123456789");
    // Again, on a data connection that works: truncated to 5, then written from there.
    feed(&mut s, &mut cx, "PASV\r\n");
    s.on_channel(
        2,
        ChannelEvent::Listening("127.0.0.1:50011".parse().unwrap()),
        &mut cx,
    );
    feed(&mut s, &mut cx, "REST 5\r\n");
    feed(&mut s, &mut cx, "STOR victim.bin\r\n");
    assert_eq!(victim(), b"0123456789");
    s.on_channel(2, ChannelEvent::Data(b"ab"), &mut cx);
    assert_eq!(victim(), b"01234ab");
    s.on_channel(2, ChannelEvent::Eof, &mut cx);
    assert!(take(&mut cx).contains(&"write 226 Transfer complete.\r\n".to_string()));
    std::fs::remove_dir_all(dir).unwrap();
}

/// The client closes (FIN) while a command waits behind a transfer: the session ends at once,
/// the transfer cancelled.
#[test]
fn a_hangup_behind_a_transfer_ends_the_session() {
    let (dir, mut s, mut cx) = writer("hangup");
    feed(&mut s, &mut cx, "RETR victim.bin\r\n");
    take(&mut cx);
    assert_eq!(feed(&mut s, &mut cx, "PWD\r\n"), 0);
    assert_eq!(take(&mut cx), ["pause true"]);
    s.on_hangup(&mut cx);
    assert_eq!(take(&mut cx), ["ChannelAbort(1)", "Close"]);
    std::fs::remove_dir_all(dir).unwrap();
}
