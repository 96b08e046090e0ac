//! A full disk, on the rig: an upload that runs out of space gets `452`, the old file stays
//! and no partial file is left; the session goes on. Alone in its test binary: without a
//! tmpfs to fill (mounting one needs root), the test process's own file-size limit stands in
//! for the full disk, and it must not limit any other test.

mod common;

use common::{Server, Tree, PASSWORD};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

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

#[test]
fn full_disk() {
    let tree = Tree::new("full");
    let small = tree.path("ann/small");
    std::fs::create_dir(&small).unwrap();
    let mount = Mount::tmpfs(&small);
    std::fs::write(small.join("keep.txt"), "old").unwrap();
    if mount.is_none() {
        // No tmpfs (not root): a 1 MiB file-size limit gives EFBIG the same way.
        // SAFETY: plain libc calls on this process, with valid arguments.
        unsafe {
            libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
            let lim = libc::rlimit {
                rlim_cur: 1 << 20,
                rlim_max: 1 << 20,
            };
            assert_eq!(libc::setrlimit(libc::RLIMIT_FSIZE, &lim), 0);
        }
    }
    let srv = Server::start(&tree);
    let mut c = srv.login("ann", PASSWORD);
    let d = c.passive();
    c.connect(d);
    assert_eq!(c.cmd("STOR small/keep.txt"), "150 Ok to send data.");
    // The client sends until the server stops reading (it aborts the channel at the error).
    for _ in 0..48 {
        if c.chan(d).aborted {
            break;
        }
        c.upload(d, &[b'x'; 64 * 1024]);
    }
    c.expect("452 Insufficient storage space.");
    assert!(c.chan(d).aborted, "the data connection is dropped");
    assert_eq!(
        std::fs::read_to_string(small.join("keep.txt")).unwrap(),
        "old"
    );
    assert_eq!(tree.names("ann/small"), ["keep.txt"], "no partial file");
    // The session goes on.
    assert_eq!(c.cmd("NOOP"), "200 NOOP ok.");
    assert_eq!(c.cmd("QUIT"), "221 Goodbye.");
    drop(c);
    drop(mount);
}
