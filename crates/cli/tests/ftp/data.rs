//! Data connections under every model: `STOU` never replaces a file that appeared meanwhile
//! and TYPE A sends a CRLF file as it is, over TLS data connections (the same rules in the
//! clear, and refused uploads changing nothing, are checked on the rig in
//! `crates/ftp/tests/transfer.rs` and `data.rs`); an abandoned session (FIN while a command
//! waits behind a transfer) gives back its slot and its passive port at once; one address
//! cannot hold more passive listeners than `--max-passive-per-ip`.

use super::transport::{Plain, Transport};
use super::*;

/// STOU announces a free name; a client that STORs that name meanwhile keeps its file, and
/// the unique upload takes the next free name (said in its 226).
pub(crate) fn stou_never_replaces(model: Model, edge: bool, t: Transport) {
    if model == Model::Iterative {
        return; // two sessions at once
    }
    let tree = Tree::new("stou");
    let srv = t.start(model, edge, &tree, &[]);
    let mut a = srv.login(t, "ann", PASSWORD);
    let d = a.passive();
    assert_eq!(a.cmd("STOU x.bin"), "150 FILE: x.bin");
    let mut d = a.data(d);
    d.write_all(b"unique").unwrap();
    d.flush().unwrap();
    // Another client stores the announced name while the STOU upload is still open.
    let mut b = srv.login(t, "ann", PASSWORD);
    let bd = b.passive();
    assert_eq!(b.cmd("STOR x.bin"), "150 Ok to send data.");
    let mut bd = b.data(bd);
    bd.write_all(b"theirs").unwrap();
    bd.finish();
    b.expect("226 Transfer complete.");
    d.finish();
    a.expect("226 Transfer complete; the name was taken meanwhile: FILE: x.bin.1");
    assert_eq!(std::fs::read(tree.path("ann/x.bin")).unwrap(), b"theirs");
    assert_eq!(std::fs::read(tree.path("ann/x.bin.1")).unwrap(), b"unique");
    assert_eq!(tree.names("ann"), ["out", "x.bin", "x.bin.1"]);
}

/// TYPE A: a file with CRLF already goes out as it is (no `\r\r\n`), a LF file gets CRs, and
/// `SIZE` is refused (the wire size is not the file's); TYPE I gives SIZE back.
pub(crate) fn ascii_mode(model: Model, edge: bool, t: Transport) {
    let tree = Tree::new("ascii");
    std::fs::write(tree.path("ann/dos.txt"), b"a\r\nb\r\n\r\nc\nd\re\r\n").unwrap();
    let srv = t.start(model, edge, &tree, &[]);
    let mut c = srv.login(t, "ann", PASSWORD);
    assert_eq!(c.cmd("TYPE A"), "200 Switching to ASCII mode.");
    assert_eq!(
        c.cmd("SIZE dos.txt"),
        "550 SIZE not allowed in ASCII mode: TYPE I first."
    );
    let d = c.passive();
    assert_eq!(c.cmd("RETR dos.txt").get(..4), Some("150 "));
    let mut d = c.data(d);
    let mut wire = Vec::new();
    d.read_to_end(&mut wire).unwrap();
    c.expect("226 Transfer complete.");
    assert_eq!(wire, b"a\r\nb\r\n\r\nc\r\nd\re\r\n");
    assert_eq!(c.cmd("TYPE I"), "200 Switching to Binary mode.");
    assert_eq!(c.cmd("SIZE dos.txt"), "213 15");
}

/// A session whose client sends `EPSV`, `RETR`, one more command, then closes without ever
/// connecting the data port: its slot and its passive port are freed at once, not after the
/// idle timeout (300 s). With `--max-clients 3`, after 3 such clients a 4th gets in.
pub(crate) fn abandoned_sessions_free_their_slot(model: Model, edge: bool, t: Transport) {
    let tree = Tree::new("abandoned");
    let srv = t.start(model, edge, &tree, &["--max-clients", "3"]);
    for round in 0..2 {
        let mut ports = Vec::new();
        for _ in 0..3 {
            let mut c = srv.login(t, "anonymous", "x@");
            let port = c.epsv();
            assert_eq!(c.cmd("RETR hello.txt").get(..4), Some("150 "));
            // Waits behind the transfer (input paused), then the client goes away (FIN).
            c.send("PWD");
            ports.push(port);
            drop(c);
        }
        // A new client is served within a few seconds (generous: a loaded machine).
        let end = Instant::now() + Duration::from_secs(8);
        loop {
            let mut c = srv.control();
            let l = c.line();
            if l == "220 bingfa FTP server ready." {
                break;
            }
            assert!(
                Instant::now() < end,
                "round {round}: still refused after 8 s under {model}: {l}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        // And the passive ports stopped listening.
        for p in ports {
            let end = Instant::now() + Duration::from_secs(8);
            while TcpStream::connect(("127.0.0.1", p)).is_ok() {
                assert!(Instant::now() < end, "passive port {p} still listening");
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }
}

/// `--max-passive-per-ip 3`: a fourth passive listener waiting from the same address gets
/// `425`, whatever the port range has left; a place comes back when a client connects its
/// data port, or its session ends.
pub(crate) fn passive_cap_per_address(model: Model, edge: bool) {
    if model == Model::Iterative {
        return; // sessions at once
    }
    let tree = Tree::new("pasvcap");
    let srv = Server::start(model, edge, &tree, &["--max-passive-per-ip", "3"]);
    let full =
        "425 Too many passive connections waiting from your address: use or close one first.";
    let mut held: Vec<(Control, u16)> = (0..3)
        .map(|_| {
            let mut c = srv.login(Plain, "anonymous", "x@");
            let p = c.epsv();
            (c, p)
        })
        .collect();
    let mut late = srv.login(Plain, "anonymous", "x@");
    assert_eq!(late.cmd("EPSV"), full);
    assert_eq!(late.cmd("PASV"), full);
    // A new EPSV in a session that has one replaces it: still three.
    let p = held[0].0.epsv();
    held[0].1 = p;
    assert_eq!(late.cmd("EPSV"), full);
    // One client connects its data port: that listener is gone, its place is free.
    let (c, port) = &mut held[1];
    let d = TcpStream::connect(("127.0.0.1", *port)).unwrap();
    assert_eq!(c.cmd("NLST").get(..4), Some("150 "));
    let mut names = String::new();
    d.try_clone().unwrap().read_to_string(&mut names).unwrap();
    c.expect("226 Transfer complete.");
    let _ = late.epsv();
    // Another session ends: its place too.
    let (mut c, _) = held.remove(2);
    assert_eq!(c.cmd("QUIT"), "221 Goodbye.");
    c.expect_closed();
    let mut again = srv.login(Plain, "anonymous", "x@");
    let end = Instant::now() + Duration::from_secs(5);
    loop {
        let l = again.cmd("EPSV");
        if l.starts_with("229 ") {
            break;
        }
        assert_eq!(l, full);
        assert!(Instant::now() < end, "the place never came back");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `--idle-timeout 0` would close every session at its first command: refused at start.
#[test]
fn idle_timeout_zero_is_refused() {
    for v in ["0", "0.0", "-1"] {
        let out = run_timeout(
            Command::new(BIN)
                .args(["ftp", "serve", "--bind", "127.0.0.1:0"])
                .arg(format!("--idle-timeout={v}")),
            Duration::from_secs(20),
        );
        assert_eq!(out.status.code(), Some(2), "{v}");
        assert!(out.stdout.is_empty(), "no ready line");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("the idle timeout must be a number of seconds above 0"),
            "{v}: {err}"
        );
    }
}
