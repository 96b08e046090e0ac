//! The site every test server serves, made afresh per server: files of every kind the
//! scenarios ask for (names that need escaping, gzip, brotli and zstd siblings, a 3 MiB file, symlinks in and
//! out of the root, hidden names, a file from year 10000, a listing past the output bound).

use std::path::{Path, PathBuf};
use std::process::Command;

/// Where test sites live: tmpfs when there is one (it keeps file times past year 9999, which
/// ext4 clamps to 2446), else the temporary directory.
pub(crate) fn site_parent() -> PathBuf {
    let shm = Path::new("/dev/shm");
    if shm.is_dir() && std::fs::metadata(shm).is_ok_and(|m| !m.permissions().readonly()) {
        shm.to_path_buf()
    } else {
        std::env::temp_dir()
    }
}

/// Makes `base/root` (with `base/secret.txt` beside it, outside the root); returns the root.
pub(crate) fn make_site(base: &Path) -> PathBuf {
    let _ = std::fs::remove_dir_all(base);
    let root = base.join("root");
    std::fs::create_dir_all(root.join("sub")).unwrap();
    std::fs::create_dir_all(root.join("list")).unwrap();
    std::fs::write(base.join("secret.txt"), "TOP SECRET").unwrap();
    std::fs::write(root.join("hello.txt"), "hello world\n").unwrap();
    let page = "<!DOCTYPE html><p>compress me compress me compress me</p>\n".repeat(20);
    std::fs::write(root.join("page.html"), &page).unwrap();
    let gz = Command::new("gzip")
        .args(["-c", "-9"])
        .arg(root.join("page.html"))
        .output()
        .unwrap();
    std::fs::write(root.join("page.html.gz"), gz.stdout).unwrap();
    // A stylesheet with brotli and zstd siblings (no gzip one): the client's codings choose.
    let css = STYLE.repeat(40);
    std::fs::write(root.join("style.css"), &css).unwrap();
    let mut br = Vec::new();
    {
        use std::io::Write;
        let mut w = brotli::CompressorWriter::new(&mut br, 4096, 9, 22);
        w.write_all(css.as_bytes()).unwrap();
    }
    std::fs::write(root.join("style.css.br"), br).unwrap();
    let zst = zstd::encode_all(css.as_bytes(), 19).unwrap();
    std::fs::write(root.join("style.css.zst"), zst).unwrap();
    std::fs::write(root.join("sub/index.html"), "sub index\n").unwrap();
    std::fs::write(root.join("文件.txt"), "utf-8 name\n").unwrap();
    std::fs::write(root.join("a%20b.txt"), "literal percent\n").unwrap();
    std::fs::write(root.join("list/<b>&x.txt"), "x").unwrap();
    std::fs::write(root.join("list/a b.txt"), "y").unwrap();
    std::fs::create_dir(root.join("list/dir")).unwrap();
    let big: Vec<u8> = (0..3 * 1024 * 1024u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    std::fs::write(root.join("big.bin"), big).unwrap();
    std::os::unix::fs::symlink("../secret.txt", root.join("escape")).unwrap();
    std::os::unix::fs::symlink("/etc", root.join("etc")).unwrap();
    std::os::unix::fs::symlink("hello.txt", root.join("alias.txt")).unwrap();
    std::os::unix::fs::symlink("sub", root.join("sublink")).unwrap();
    // Hidden names: never served or listed unless --hidden.
    std::fs::write(root.join(".env"), "SECRET=1\n").unwrap();
    std::fs::create_dir(root.join(".git")).unwrap();
    std::fs::write(root.join(".git/config"), "[core]\n").unwrap();
    std::fs::write(root.join("list/.hidden"), "h").unwrap();
    // A file modified after year 9999 (where the file system keeps such a time).
    std::fs::write(root.join("future.txt"), "from the future\n").unwrap();
    set_mtime(&root.join("future.txt"), FUTURE_SECS);
    // A listing over 4 MiB (the connections' output bound): long names that escape badly.
    std::fs::create_dir(root.join("huge")).unwrap();
    for i in 0..HUGE_ENTRIES {
        let name = format!("{i:04}{}", "<".repeat(HUGE_NAME_LEN));
        std::fs::write(root.join("huge").join(name), "").unwrap();
    }
    root
}

/// A line of `style.css`, repeated.
pub(crate) const STYLE: &str = "body { color: #333; margin: 0 auto; max-width: 40em; }\n";

/// 10000-01-02T00:00:00Z.
pub(crate) const FUTURE_SECS: i64 = 253_402_387_200;
pub(crate) const HUGE_ENTRIES: usize = 2600;
pub(crate) const HUGE_NAME_LEN: usize = 240;

fn set_mtime(path: &Path, secs: i64) {
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
    let t = libc::timespec {
        tv_sec: secs,
        tv_nsec: 0,
    };
    // SAFETY: valid C string and two timespecs, as utimensat takes.
    let r = unsafe { libc::utimensat(libc::AT_FDCWD, c.as_ptr(), [t, t].as_ptr(), 0) };
    assert_eq!(r, 0, "utimensat {}", path.display());
}
