//! Nothing is lost: an upload replaces the old file only when complete; an `ABOR`, a reset data
//! connection, a vanished client or a full disk (`452`) leave the old file untouched and no
//! partial file; with `--fsync-uploads`, uploads and resumes arrive whole through the syncing
//! path; a transfer in flight at SIGTERM finishes, then the server exits 0.
//!
//! All run over TLS (`AUTH TLS`, `PROT P`); the upload and shutdown scenarios in the clear too
//! (`ABOR` sent as urgent data, a signal to the process). The same rules in the clear with
//! nothing of a model in them (all-or-nothing, `--fsync-uploads`, a full disk) are checked on
//! the rig in `crates/ftp/tests/transfer.rs` and `disk.rs`. Over TLS an
//! upload is decrypted and a download encrypted in user space, a record at a time: nothing
//! partial may be stored when the TLS data connection is aborted, reset or abandoned, and a
//! download in flight at SIGTERM must still be drained to the end (and end with close_notify).

use super::transport::{Io, Transport};
use super::*;

fn start_upload(c: &mut Control, name: &str) -> Io {
    let d = c.passive();
    c.expect_line_after(&format!("STOR {name}"), "150 Ok to send data.");
    c.data(d)
}

pub(crate) fn uploads_all_or_nothing(model: Model, edge: bool, t: Transport) {
    let tree = Tree::new("uploads");
    std::fs::write(tree.path("ann/keep.txt"), "old contents").unwrap();
    let mut srv = t.start(model, edge, &tree, &[]);
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
    let mut c = srv.login(t, "ann", PASSWORD);
    // ABOR in the middle, sent as ftplib's `abort` does (urgent data in the clear).
    let mut d = start_upload(&mut c, "keep.txt");
    d.write_all(&chunk).unwrap();
    c.abort();
    c.expect("426 Connection closed; transfer aborted.");
    c.expect("226 Abort successful.");
    untouched("after ABOR");
    d.wait_closed();
    // The data connection reset in the middle.
    let mut d = start_upload(&mut c, "keep.txt");
    d.write_all(&chunk).unwrap();
    d.reset();
    c.expect("426 Connection closed; transfer aborted.");
    untouched("after a reset");
    // A complete upload replaces the file.
    let mut d = start_upload(&mut c, "keep.txt");
    d.write_all(b"new contents").unwrap();
    d.finish();
    c.expect("226 Transfer complete.");
    assert_eq!(
        std::fs::read_to_string(tree.path("ann/keep.txt")).unwrap(),
        "new contents"
    );
    std::fs::write(tree.path("ann/keep.txt"), "old contents").unwrap();
    // The client vanishes mid-upload (control connection gone): the data connection is
    // dropped and nothing is stored.
    let mut d = start_upload(&mut c, "keep.txt");
    d.write_all(&chunk).unwrap();
    drop(c);
    d.wait_closed();
    // The session's end is what discards the file; give a forked child its moment.
    let end = Instant::now() + Duration::from_secs(5);
    while tree.names("ann") != ["keep.txt", "out"] && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(20));
    }
    untouched("after the client vanished");
    assert!(srv.stop().success());
}

/// `--fsync-uploads`: a 20 MiB upload (writeback started twice on the way) and an `APPE` on
/// top arrive byte for byte, and the all-or-nothing rule still holds for an aborted one. (That
/// the data reached the disk is the kernel's part; what is tested is that the path that asks
/// for it loses nothing.)
pub(crate) fn synced_uploads(model: Model, edge: bool, t: Transport) {
    let tree = Tree::new("synced");
    std::fs::write(tree.path("ann/keep.txt"), "old contents").unwrap();
    let mut srv = t.start(model, edge, &tree, &["--fsync-uploads"]);
    let mut c = srv.login(t, "ann", PASSWORD);
    let big: Vec<u8> = (0..20u32 << 20).map(|i| (i % 253) as u8).collect();
    let mut d = start_upload(&mut c, "big.bin");
    d.write_all(&big).unwrap();
    d.finish();
    c.expect("226 Transfer complete.");
    assert!(std::fs::read(tree.path("ann/big.bin")).unwrap() == big);
    let d = c.passive();
    c.expect_line_after("APPE big.bin", "150 Ok to send data.");
    let mut d = c.data(d);
    d.write_all(b"tail").unwrap();
    d.finish();
    c.expect("226 Transfer complete.");
    let got = std::fs::read(tree.path("ann/big.bin")).unwrap();
    assert!(got.len() == big.len() + 4 && got[..big.len()] == big[..] && got.ends_with(b"tail"));
    let mut d = start_upload(&mut c, "keep.txt");
    d.write_all(&vec![b'n'; 9 << 20]).unwrap();
    c.abort();
    c.expect("426 Connection closed; transfer aborted.");
    c.expect("226 Abort successful.");
    d.wait_closed();
    assert_eq!(
        std::fs::read_to_string(tree.path("ann/keep.txt")).unwrap(),
        "old contents"
    );
    assert_eq!(tree.names("ann"), ["big.bin", "keep.txt", "out"]);
    assert_eq!(c.cmd("QUIT"), "221 Goodbye.");
    assert!(srv.stop().success());
}

/// A 1 MiB tmpfs mounted on `dir` (root only), unmounted on drop.
struct Mount(PathBuf);

impl Mount {
    fn tmpfs(dir: &Path) -> Option<Mount> {
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=1m", "tmpfs"])
            .arg(dir)
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        ok.then(|| Mount(dir.to_path_buf()))
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

pub(crate) fn full_disk(model: Model, edge: bool, t: Transport) {
    let tree = Tree::new("full");
    let small = tree.path("ann/small");
    std::fs::create_dir(&small).unwrap();
    let mount = Mount::tmpfs(&small);
    std::fs::write(small.join("keep.txt"), "old").unwrap();
    let mut srv = t.start_with(model, edge, &tree, &[], |cmd| {
        if mount.is_none() {
            // No tmpfs (not root): a 1 MiB file-size limit gives EFBIG the same way.
            use std::os::unix::process::CommandExt;
            // SAFETY: only async-signal-safe calls between fork and exec.
            unsafe {
                cmd.pre_exec(|| {
                    libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
                    let lim = libc::rlimit {
                        rlim_cur: 1 << 20,
                        rlim_max: 1 << 20,
                    };
                    libc::setrlimit(libc::RLIMIT_FSIZE, &lim);
                    Ok(())
                });
            }
        }
    });
    let mut c = srv.login(t, "ann", PASSWORD);
    let mut d = start_upload(&mut c, "small/keep.txt");
    let writer = std::thread::spawn(move || {
        let _ = d.write_all(&vec![b'x'; 3 << 20]);
        d
    });
    c.expect("452 Insufficient storage space.");
    drop(writer.join().unwrap());
    assert_eq!(
        std::fs::read_to_string(small.join("keep.txt")).unwrap(),
        "old"
    );
    assert_eq!(tree.names("ann/small"), ["keep.txt"], "no partial file");
    // The session goes on.
    assert_eq!(c.cmd("NOOP"), "200 NOOP ok.");
    assert_eq!(c.cmd("QUIT"), "221 Goodbye.");
    assert!(srv.stop().success());
    drop(srv);
    drop(mount);
}

pub(crate) fn shutdown(model: Model, edge: bool, t: Transport) {
    let tree = Tree::new("shutdown");
    let big: Vec<u8> = (0..24u32 << 20).map(|i| (i % 251) as u8).collect();
    std::fs::write(tree.path("pub/big.bin"), &big).unwrap();
    let mut srv = t.start(model, edge, &tree, &[]);
    let mut c = srv.login(t, "anonymous", "guest@");
    let mut idle = (model != Model::Iterative).then(|| srv.session(t));
    let d = c.passive();
    c.expect_line_after(
        "RETR big.bin",
        &format!(
            "150 Opening BINARY mode data connection for big.bin ({} bytes).",
            big.len()
        ),
    );
    let mut d = c.data(d);
    let mut got = vec![0u8; 65536];
    d.read_exact(&mut got).unwrap();
    // SAFETY: signalling our own child.
    unsafe { libc::kill(srv.pid(), libc::SIGTERM) };
    if let Some(i) = idle.as_mut() {
        i.expect("421 Server shutting down.");
        i.expect_closed();
    }
    d.read_to_end(&mut got).unwrap();
    assert!(
        got == big,
        "the transfer finished: {} of {} bytes",
        got.len(),
        big.len()
    );
    c.expect("226 Transfer complete.");
    c.expect("421 Server shutting down.");
    c.expect_closed();
    let st = srv
        .wait(Duration::from_secs(10))
        .expect("exit after the transfer");
    assert!(st.success(), "{st:?}");
}
