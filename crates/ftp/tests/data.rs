//! Preparing data connections (PORT PASV EPRT EPSV), on the rig: no PORT bounce (only the
//! client's own address, ports from 1024), the passive listener asked in the configured range,
//! a transfer queued before the client connects losing nothing, `EPSV ALL`; and uploads
//! refused before any byte changing nothing on disk (no data connection `425`, a refused
//! active connect, `521` under `--tls-required` without `PROT P`). Moved from the binary's
//! per-model suite (`crates/cli/tests/ftp/`). What stays there is the driver's part: random
//! ports in the range, a stranger taking the passive port first, the per-address cap on
//! passive listeners, an abandoned session's port closed at once.

mod common;

use common::{Control, Server, Tree, PASSWORD};

#[test]
fn no_bounce_and_passive_rules() {
    let tree = Tree::new("data");
    let (lo, hi) = (30000u16, 30399u16);
    let srv = Server::start_with(&tree, |c| c.passive_ports = Some(lo..=hi));
    let mut c = srv.login("anonymous", "guest@");
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
    // Each PASV asks the driver for a listener within the range (the driver picks the port at
    // random), and announces where it was bound.
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
        assert!((lo..=hi).contains(&port), "{port} outside {lo}-{hi}");
        let id = c.last_channel();
        assert_eq!(
            c.chan(id).passive.as_ref().unwrap().ports,
            Some(lo..=hi),
            "the range asked"
        );
    }
    // A new PASV replaced (aborted) the one before it, unused.
    let last = c.last_channel();
    for id in 1..last {
        assert!(c.chan(id).aborted, "listener {id} of {last}");
    }
    // The client connects, then asks: the file, its size said in the 150.
    let d = c.passive();
    c.connect(d);
    c.send("RETR hello.txt");
    c.expect("150 Opening BINARY mode data connection for hello.txt (12 bytes).");
    c.expect("226 Transfer complete.");
    assert_eq!(c.received(d), b"hello\nworld\n");
    // RETR queued before the client connects loses nothing either (PASV, RETR, then connect).
    let d = c.passive();
    assert_eq!(
        c.cmd("RETR sub/inner.txt"),
        "150 Opening BINARY mode data connection for inner.txt (5 bytes)."
    );
    c.connect(d);
    c.expect("226 Transfer complete.");
    assert_eq!(c.received(d), b"inner");
    // After EPSV ALL only EPSV sets up data connections.
    assert_eq!(c.cmd("EPSV ALL"), "200 EPSV ALL ok.");
    assert_eq!(c.cmd("PASV"), "501 EPSV ALL in effect: only EPSV.");
    assert_eq!(
        c.cmd("PORT 127,0,0,1,39,16"),
        "501 EPSV ALL in effect: only EPSV."
    );
    c.passive();
    assert_eq!(c.cmd("QUIT"), "221 Goodbye.");
    c.expect_closed();
}

/// The refusals that come before any data connection, on a session set up by the caller;
/// `refusal` is the reply each gets. ann's `victim.bin` holds "0123456789".
fn refused_uploads(c: &mut Control, tree: &Tree, refusal: &str, why: &str) {
    let victim = || std::fs::read(tree.path("ann/victim.bin")).unwrap();
    assert_eq!(c.cmd("REST 5"), "350 Restart position accepted (5).");
    assert_eq!(c.cmd("STOR victim.bin"), refusal, "{why}");
    assert_eq!(victim(), b"0123456789", "{why}: REST 5 + refused STOR");
    assert_eq!(c.cmd("APPE new.bin"), refusal, "{why}");
    assert_eq!(c.cmd("APPE victim.bin"), refusal, "{why}");
    assert_eq!(
        c.cmd("REST 1048576"),
        "350 Restart position accepted (1048576)."
    );
    assert_eq!(c.cmd("STOR other.bin"), refusal, "{why}");
    assert_eq!(c.cmd("STOU victim.bin"), refusal, "{why}");
    assert_eq!(victim(), b"0123456789", "{why}");
    assert_eq!(
        tree.names("ann"),
        ["out", "victim.bin"],
        "{why}: nothing created"
    );
}

#[test]
fn refused_uploads_change_nothing() {
    let tree = Tree::new("refused");
    std::fs::write(tree.path("ann/victim.bin"), "0123456789").unwrap();
    let srv = Server::start(&tree);
    let mut c = srv.login("ann", PASSWORD);
    refused_uploads(
        &mut c,
        &tree,
        "425 Use PORT, PASV, EPRT or EPSV first.",
        "no data connection",
    );
    // An active connect that is refused: 150, then 425, and still nothing changed.
    for (rest, cmd) in [
        (Some(5), "STOR victim.bin"),
        (None, "APPE new.bin"),
        (Some(1048576), "STOR other.bin"),
    ] {
        let port = 40000u16;
        assert_eq!(
            c.cmd(&format!("PORT 127,0,0,1,{},{}", port >> 8, port & 0xff)),
            "200 PORT command successful. Consider using PASV."
        );
        if let Some(n) = rest {
            assert_eq!(c.cmd(&format!("REST {n}")).get(..4), Some("350 "));
        }
        assert_eq!(c.cmd(cmd).get(..4), Some("150 "), "{cmd}");
        let id = c.last_channel();
        assert_eq!(
            c.chan(id).connect_to,
            Some(([127, 0, 0, 1], port).into()),
            "{cmd}: the connect asked"
        );
        c.refuse(id);
        c.expect("425 Cannot open data connection.");
        assert_eq!(
            std::fs::read(tree.path("ann/victim.bin")).unwrap(),
            b"0123456789",
            "{cmd} over a refused connect"
        );
        assert_eq!(tree.names("ann"), ["out", "victim.bin"], "{cmd}");
    }
    // What the refusals were protecting still works: a resume on a data connection.
    let d = c.passive();
    c.connect(d);
    assert_eq!(c.cmd("REST 5").get(..4), Some("350 "));
    assert_eq!(c.cmd("STOR victim.bin"), "150 Ok to send data.");
    c.upload(d, b"abc");
    c.finish(d);
    c.expect("226 Transfer complete.");
    assert_eq!(
        std::fs::read(tree.path("ann/victim.bin")).unwrap(),
        b"01234abc"
    );
}

/// The same refusals with `521` under `--tls-required` (a secure session without `PROT P`,
/// whose data connection is prepared). The TLS layer is bingfa-net's: here the rig says the
/// control connection went secure (`on_secure`) after the `234`, as the layer does.
#[test]
fn refused_uploads_change_nothing_tls_required() {
    let tree = Tree::new("refused521");
    std::fs::write(tree.path("ann/victim.bin"), "0123456789").unwrap();
    let srv = Server::start_with(&tree, |c| c.tls = bingfa_ftp::TlsPolicy::Required);
    let mut c = srv.session();
    assert_eq!(c.cmd("USER ann"), "530 TLS required: AUTH TLS first.");
    assert_eq!(c.cmd("AUTH TLS"), "234 AUTH TLS successful.");
    c.rig.call(bingfa_net::Session::on_secure);
    c.login("ann", PASSWORD);
    let d = c.passive();
    c.connect(d);
    refused_uploads(
        &mut c,
        &tree,
        "521 Data connections must be encrypted: PROT P.",
        "--tls-required",
    );
}
