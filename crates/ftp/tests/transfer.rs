//! Transfers (RETR STOR APPE STOU ABOR, TYPE), on the rig: `STOU` never replaces a file that
//! appeared meanwhile; TYPE A sends a CRLF file as it is and refuses `SIZE`; an upload
//! replaces the old file only when complete (an `ABOR`, a reset data connection, a vanished
//! client leave the old file and no partial one); with `--fsync-uploads` uploads and appends
//! arrive whole through the syncing path. Moved from the binary's per-model suite
//! (`crates/cli/tests/ftp/`), where the same scenarios still run over TLS (a record at a
//! time, user-space crypto) and, in the clear, with `ABOR` sent as urgent data.

mod common;

use common::{Control, Server, Tree, PASSWORD};

/// STOU announces a free name; a client that STORs that name meanwhile keeps its file, and
/// the unique upload takes the next free name (said in its 226).
#[test]
fn stou_never_replaces() {
    let tree = Tree::new("stou");
    let srv = Server::start(&tree);
    let mut a = srv.login("ann", PASSWORD);
    let d = a.passive();
    a.connect(d);
    assert_eq!(a.cmd("STOU x.bin"), "150 FILE: x.bin");
    a.upload(d, b"unique");
    // Another client stores the announced name while the STOU upload is still open.
    let mut b = srv.login("ann", PASSWORD);
    assert_eq!(b.store("STOR x.bin", b"theirs"), "226 Transfer complete.");
    a.finish(d);
    a.expect("226 Transfer complete; the name was taken meanwhile: FILE: x.bin.1");
    assert_eq!(std::fs::read(tree.path("ann/x.bin")).unwrap(), b"theirs");
    assert_eq!(std::fs::read(tree.path("ann/x.bin.1")).unwrap(), b"unique");
    assert_eq!(tree.names("ann"), ["out", "x.bin", "x.bin.1"]);
}

/// TYPE A: a file with CRLF already goes out as it is (no `\r\r\n`), a LF file gets CRs, and
/// `SIZE` is refused (the wire size is not the file's); TYPE I gives SIZE back.
#[test]
fn ascii_mode() {
    let tree = Tree::new("ascii");
    std::fs::write(tree.path("ann/dos.txt"), b"a\r\nb\r\n\r\nc\nd\re\r\n").unwrap();
    let srv = Server::start(&tree);
    let mut c = srv.login("ann", PASSWORD);
    assert_eq!(c.cmd("TYPE A"), "200 Switching to ASCII mode.");
    assert_eq!(
        c.cmd("SIZE dos.txt"),
        "550 SIZE not allowed in ASCII mode: TYPE I first."
    );
    assert_eq!(c.fetch("RETR dos.txt"), b"a\r\nb\r\n\r\nc\r\nd\re\r\n");
    assert_eq!(c.cmd("TYPE I"), "200 Switching to Binary mode.");
    assert_eq!(c.cmd("SIZE dos.txt"), "213 15");
}

/// `STOR name` on a fresh connected passive channel; its id, the `150` read.
fn start_upload(c: &mut Control, name: &str) -> bingfa_net::ChannelId {
    let d = c.passive();
    c.connect(d);
    assert_eq!(c.cmd(&format!("STOR {name}")), "150 Ok to send data.");
    d
}

#[test]
fn uploads_all_or_nothing() {
    let tree = Tree::new("uploads");
    std::fs::write(tree.path("ann/keep.txt"), "old contents").unwrap();
    let srv = Server::start(&tree);
    let chunk = vec![b'n'; 256 * 1024];
    let untouched = |why: &str| {
        assert_eq!(
            std::fs::read_to_string(tree.path("ann/keep.txt")).unwrap(),
            "old contents",
            "{why}"
        );
        assert_eq!(
            tree.names("ann"),
            ["keep.txt", "out"],
            "{why}: no partial file"
        );
    };
    let mut c = srv.login("ann", PASSWORD);
    // ABOR in the middle, as it reaches the session when ftplib sends it urgent (MSG_OOB
    // takes the LF out of the stream: the line ends at its CR).
    let d = start_upload(&mut c, "keep.txt");
    c.upload(d, &chunk);
    c.send_raw(b"ABOR\r");
    c.expect("426 Connection closed; transfer aborted.");
    c.expect("226 Abort successful.");
    assert!(c.chan(d).aborted, "the data connection is dropped");
    untouched("after ABOR");
    // The data connection reset in the middle.
    let d = start_upload(&mut c, "keep.txt");
    c.upload(d, &chunk);
    c.reset(d);
    c.expect("426 Connection closed; transfer aborted.");
    untouched("after a reset");
    // A complete upload replaces the file.
    let d = start_upload(&mut c, "keep.txt");
    c.upload(d, b"new contents");
    c.finish(d);
    c.expect("226 Transfer complete.");
    assert_eq!(
        std::fs::read_to_string(tree.path("ann/keep.txt")).unwrap(),
        "new contents"
    );
    std::fs::write(tree.path("ann/keep.txt"), "old contents").unwrap();
    // The client vanishes mid-upload (control connection gone): the data connection is
    // dropped and, the session ended, nothing is stored.
    let d = start_upload(&mut c, "keep.txt");
    c.upload(d, &chunk);
    c.rig.call(bingfa_net::Session::on_eof);
    c.expect_closed();
    assert!(c.chan(d).aborted, "the data connection is dropped");
    drop(c);
    untouched("after the client vanished");
}

/// `--fsync-uploads`: a 20 MiB upload (writeback started twice on the way) and an `APPE` on
/// top arrive byte for byte, and the all-or-nothing rule still holds for an aborted one.
#[test]
fn synced_uploads() {
    let tree = Tree::new("synced");
    std::fs::write(tree.path("ann/keep.txt"), "old contents").unwrap();
    let srv = Server::start_with(&tree, |c| c.fsync_uploads = true);
    let mut c = srv.login("ann", PASSWORD);
    let big: Vec<u8> = (0..20u32 << 20).map(|i| (i % 253) as u8).collect();
    let d = start_upload(&mut c, "big.bin");
    c.upload(d, &big);
    c.finish(d);
    c.expect("226 Transfer complete.");
    assert!(std::fs::read(tree.path("ann/big.bin")).unwrap() == big);
    let d = c.passive();
    c.connect(d);
    assert_eq!(c.cmd("APPE big.bin"), "150 Ok to send data.");
    c.upload(d, b"tail");
    c.finish(d);
    c.expect("226 Transfer complete.");
    let got = std::fs::read(tree.path("ann/big.bin")).unwrap();
    assert!(got.len() == big.len() + 4 && got[..big.len()] == big[..] && got.ends_with(b"tail"));
    let d = start_upload(&mut c, "keep.txt");
    c.upload(d, &vec![b'n'; 9 << 20]);
    assert_eq!(c.cmd("ABOR"), "426 Connection closed; transfer aborted.");
    c.expect("226 Abort successful.");
    assert_eq!(
        std::fs::read_to_string(tree.path("ann/keep.txt")).unwrap(),
        "old contents"
    );
    assert_eq!(tree.names("ann"), ["big.bin", "keep.txt", "out"]);
    assert_eq!(c.cmd("QUIT"), "221 Goodbye.");
}
