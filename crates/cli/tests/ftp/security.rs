//! The security items of issue 10 that live in the models' drivers, each checked by the exact
//! bytes on the control connection: random passive ports in the range, no passive-connection
//! theft (another address connecting first gets nothing), the idle timeout kept in real time,
//! and the client limits; with them, over TLS (`AUTH TLS`, `PROT P`: every data connection TLS
//! too), no PORT bounce and long lines. What only exists in the clear (a refusal sent before
//! any `AUTH TLS` could be) stays in the clear.
//! The session's own rules need no real client and run on the rig in `crates/ftp/tests/`: no
//! PORT bounce, `EPSV ALL` and long lines in the clear (`data.rs`, `misc.rs`), the login rules
//! (`auth.rs`), paths that never leave the user's root (`perm.rs`).

use super::transport::Transport;
use super::*;

/// A TCP connection to `to` from the local address `from` (127.0.0.2 is loopback too).
pub(crate) fn connect_from(from: &str, to: SocketAddr) -> TcpStream {
    use socket2::{Domain, Socket, Type};
    let s = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    s.bind(&SocketAddr::new(from.parse().unwrap(), 0).into())
        .unwrap();
    s.connect_timeout(&to.into(), Duration::from_secs(5))
        .unwrap();
    let s: TcpStream = s.into();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s
}

pub(crate) fn data_connections(model: Model, edge: bool, t: Transport) {
    let tree = Tree::new("data");
    let lo = 30000 + (std::process::id() % 50) as u16 * 400;
    let range = format!("{lo}-{}", lo + 399);
    let mut srv = t.start(model, edge, &tree, &["--passive-ports", &range]);
    let mut c = srv.login(t, "anonymous", "guest@");
    // No bounce: only the client's own address, only ports from 1024.
    let bad = "501 Illegal PORT command: only your own address, port 1024 or above.";
    assert_eq!(c.cmd("PORT 127,0,0,2,39,16"), bad);
    assert_eq!(c.cmd("PORT 127,0,0,1,0,25"), bad);
    assert_eq!(c.cmd("EPRT |1|127.0.0.2|10000|"), bad);
    assert_eq!(c.cmd("EPRT |1|127.0.0.1|80|"), bad);
    assert_eq!(c.cmd("PORT 1,2,3"), "501 Syntax error in PORT arguments.");
    assert_eq!(
        c.cmd("RETR hello.txt"),
        "425 Use PORT, PASV, EPRT or EPSV first."
    );
    // Passive ports are random within the range.
    let mut ports = Vec::new();
    for _ in 0..6 {
        let l = c.cmd("PASV");
        let nums: Vec<u16> = l
            .strip_prefix("227 Entering Passive Mode (")
            .and_then(|r| r.strip_suffix(")."))
            .unwrap_or_else(|| panic!("{l}"))
            .split(',')
            .map(|n| n.parse().unwrap())
            .collect();
        assert_eq!(&nums[..4], [127, 0, 0, 1]);
        let port = nums[4] << 8 | nums[5];
        assert!((lo..=lo + 399).contains(&port), "{port} outside {range}");
        ports.push(port);
    }
    ports.dedup();
    assert!(ports.len() > 1, "six passive ports in a row were {ports:?}");
    // Theft: another address connects first; it gets nothing and the client gets its file.
    // Under PROT P the intruder tries a TLS handshake of its own (the server handshakes on a
    // passive connection as soon as it comes, so the address check must come first).
    let port = c.epsv();
    let data = SocketAddr::from(([127, 0, 0, 1], port));
    let mut intruder = c.stranger(connect_from("127.0.0.2", data));
    std::thread::sleep(Duration::from_millis(100));
    c.send("RETR hello.txt");
    let mut got = Vec::new();
    let _ = intruder.read_to_end(&mut got);
    assert!(got.is_empty(), "the intruder got {got:?}");
    let mut real = c.data(connect_from("127.0.0.1", data));
    real.read_to_end(&mut got).unwrap();
    assert_eq!(got, b"hello\nworld\n");
    c.expect("150 Opening BINARY mode data connection for hello.txt (12 bytes).");
    c.expect("226 Transfer complete.");
    // RETR queued before the client connects loses nothing either (PASV, RETR, then connect).
    let port = c.epsv();
    c.expect_line_after(
        "RETR sub/inner.txt",
        "150 Opening BINARY mode data connection for inner.txt (5 bytes).",
    );
    let mut d = c.data(connect_from(
        "127.0.0.1",
        SocketAddr::from(([127, 0, 0, 1], port)),
    ));
    let mut got = Vec::new();
    d.read_to_end(&mut got).unwrap();
    assert_eq!(got, b"inner");
    c.expect("226 Transfer complete.");
    // After EPSV ALL only EPSV sets up data connections.
    assert_eq!(c.cmd("EPSV ALL"), "200 EPSV ALL ok.");
    assert_eq!(c.cmd("PASV"), "501 EPSV ALL in effect: only EPSV.");
    assert_eq!(
        c.cmd("PORT 127,0,0,1,39,16"),
        "501 EPSV ALL in effect: only EPSV."
    );
    c.epsv();
    assert_eq!(c.cmd("QUIT"), "221 Goodbye.");
    assert!(srv.stop().success());
}

pub(crate) fn long_lines_and_idle(model: Model, edge: bool, t: Transport) {
    let tree = Tree::new("lines");
    let mut srv = t.start(model, edge, &tree, &["--idle-timeout", "1.5"]);
    let mut c = srv.session(t);
    c.send(&format!("NOOP {}", "x".repeat(5000)));
    c.expect("500 Command line too long.");
    assert_eq!(c.cmd("NOOP"), "200 NOOP ok.");
    // Far over the limit, in pieces: consumed as it comes, then one 500.
    for _ in 0..20 {
        c.send_raw(&[b'y'; 10_000]);
    }
    c.send_raw(b"\r\n");
    c.expect("500 Command line too long.");
    c.login("ann", PASSWORD);
    assert_eq!(c.cmd("NOOP"), "200 NOOP ok.");
    // Then silence: 421 and closed (over TLS: with close_notify).
    let at = Instant::now();
    c.expect("421 Timeout: closing control connection.");
    assert!(at.elapsed() >= Duration::from_millis(1000));
    c.expect_closed();
    assert!(srv.stop().success());
}

pub(crate) fn client_limits(model: Model, edge: bool, t: Transport) {
    let tree = Tree::new("limits");
    // The refusal comes before any `AUTH TLS` could: in the clear over either transport. What
    // TLS adds is that sessions gone secure still count.
    let refused = "421 Too many connections, try again later.";
    let mut srv = t.start(model, edge, &tree, &["--max-clients", "2"]);
    let a = srv.session(t);
    // Under iterative the second waits, unserved, behind the first: connected, no greeting.
    let b = if model != Model::Iterative {
        srv.session(t)
    } else {
        srv.control()
    };
    let mut over = srv.control();
    over.expect(refused);
    over.expect_closed();
    drop((a, b));
    assert!(srv.stop().success());
    let mut srv = t.start(model, edge, &tree, &["--max-per-ip", "1"]);
    let a = srv.session(t);
    let mut over = srv.control();
    over.expect(refused);
    over.expect_closed();
    if model != Model::Iterative {
        // Another address still gets in.
        let s = connect_from("127.0.0.2", srv.addr);
        let mut r = BufReader::new(s);
        let mut l = String::new();
        r.read_line(&mut l).unwrap();
        assert_eq!(l, "220 bingfa FTP server ready.\r\n");
    }
    drop(a);
    assert!(srv.stop().success());
}
