//! The served directory as a handle, and the only way a network path becomes a file: the
//! percent-decoded path is resolved by the kernel *beneath* the root handle with openat2(2)
//! `RESOLVE_BENEATH`, so `..`, absolute paths and symlinks that lead outside fail in the kernel
//! instead of depending on string cleaning.

use std::ffi::CString;
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

/// Why a path could not be opened, mapped onto the status the client gets.
#[derive(Debug, PartialEq, Eq)]
pub enum OpenError {
    /// 404: no such file, or not representable as a path.
    NotFound,
    /// 403: exists but not ours to serve (escape attempt, permissions, not a regular file).
    Forbidden,
    /// 500: anything else the kernel said.
    Other,
}

/// A directory that every request path is resolved beneath.
#[derive(Debug)]
pub struct Root {
    dir: OwnedFd,
}

impl Root {
    pub fn open(path: &Path) -> io::Result<Root> {
        let c = CString::new(path.as_os_str().as_encoded_bytes())
            .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
        // SAFETY: c is a valid C string; the returned fd is owned by us.
        let fd = unsafe {
            libc::open(
                c.as_ptr(),
                libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC,
            )
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: fd was just returned by open and is not owned elsewhere.
        let dir = unsafe { OwnedFd::from_raw_fd(fd) };
        // Refuse to start on a kernel without openat2 instead of serving unconfined.
        Root { dir }.probe()
    }

    fn probe(self) -> io::Result<Root> {
        // O_PATH: the probe asks whether openat2 works, not whether the root is readable (an
        // execute-only root is fine: files beneath it still open).
        match self.openat2(b".", libc::O_PATH | libc::O_DIRECTORY) {
            Ok(_) => Ok(self),
            Err(e) => Err(io::Error::other(format!(
                "openat2(RESOLVE_BENEATH) unavailable: {e}"
            ))),
        }
    }

    /// Opens `rel` (decoded bytes, no leading slash; empty means the root itself) beneath the
    /// root. Returns the file and whether it is a directory; other kinds are Forbidden.
    ///
    /// A directory that may be searched but not read (mode 0711) still opens, as an `O_PATH`
    /// handle: its `index.html` can be served even though it can't be listed.
    pub fn open_path(&self, rel: &[u8]) -> Result<(File, libc::stat), OpenError> {
        let rel = if rel.is_empty() { b"." as &[u8] } else { rel };
        let file = match self.openat2(rel, libc::O_RDONLY | libc::O_NONBLOCK) {
            Err(e) if e.raw_os_error() == Some(libc::EACCES) => {
                match self.openat2(rel, libc::O_PATH | libc::O_DIRECTORY) {
                    Ok(dir) => Ok(dir),
                    Err(_) => Err(e),
                }
            }
            other => other,
        };
        let file = file.map_err(|e| match e.raw_os_error() {
            Some(libc::ENOENT) | Some(libc::ENOTDIR) | Some(libc::ENAMETOOLONG) => {
                OpenError::NotFound
            }
            // EXDEV: the path tried to leave the root; ELOOP: symlink loop or magic link.
            Some(libc::EXDEV) | Some(libc::ELOOP) | Some(libc::EACCES) | Some(libc::EPERM) => {
                OpenError::Forbidden
            }
            _ if e.kind() == io::ErrorKind::InvalidInput => OpenError::NotFound,
            _ => OpenError::Other,
        })?;
        let st = fstat(&file).map_err(|_| OpenError::Other)?;
        match st.st_mode & libc::S_IFMT {
            libc::S_IFREG | libc::S_IFDIR => Ok((file, st)),
            _ => Err(OpenError::Forbidden),
        }
    }

    /// The kind of what `rel` names, resolved beneath the root (symlinks that lead outside
    /// fail here, so a listing never reveals anything about the outside). `None` if it can't
    /// be resolved beneath the root.
    pub fn stat_beneath(&self, rel: &[u8]) -> Option<libc::stat> {
        let f = self.openat2(rel, libc::O_PATH).ok()?;
        fstat(&f).ok()
    }

    fn openat2(&self, rel: &[u8], flags: libc::c_int) -> io::Result<File> {
        // A NUL can't be part of a path; answering it is the caller's 404.
        let c = CString::new(rel).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
        // SAFETY: open_how is plain old data; zeroed is a valid value of it.
        let mut how: libc::open_how = unsafe { std::mem::zeroed() };
        // Callers pass O_NONBLOCK with O_RDONLY, so a FIFO planted in the tree can't block the
        // worker in open.
        // openat2 refuses O_PATH with any flag but O_CLOEXEC, O_DIRECTORY and O_NOFOLLOW.
        let extra = if flags & libc::O_PATH != 0 {
            libc::O_CLOEXEC
        } else {
            libc::O_CLOEXEC | libc::O_NOCTTY
        };
        how.flags = (flags | extra) as u64;
        how.resolve = libc::RESOLVE_BENEATH | libc::RESOLVE_NO_MAGICLINKS;
        // SAFETY: valid pointers for the duration of the call; size matches the struct.
        let fd = unsafe {
            libc::syscall(
                libc::SYS_openat2,
                self.dir.as_raw_fd(),
                c.as_ptr(),
                &how as *const libc::open_how,
                std::mem::size_of::<libc::open_how>(),
            )
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: the kernel returned a fresh fd that we now own.
        Ok(unsafe { File::from_raw_fd(fd as i32) })
    }
}

pub fn fstat(f: &File) -> io::Result<libc::stat> {
    // SAFETY: st is written by fstat before being read.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    if unsafe { libc::fstat(f.as_raw_fd(), &mut st) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(st)
}

/// Decodes `%XX` exactly once. A malformed escape is `None` (the caller's 400).
pub fn percent_decode(s: &str) -> Option<Vec<u8>> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = |c: u8| (c as char).to_digit(16);
            let hi = hex(*b.get(i + 1)?)?;
            let lo = hex(*b.get(i + 2)?)?;
            out.push((hi * 16 + lo) as u8);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    Some(out)
}

/// Encodes a file name for use in a URL path segment.
pub fn percent_encode_segment(name: &[u8]) -> String {
    let mut s = String::with_capacity(name.len());
    for &c in name {
        if c.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@".contains(&c) {
            s.push(c as char);
        } else {
            s.push_str(&format!("%{c:02X}"));
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn tree() -> (std::path::PathBuf, Root) {
        let base = std::env::temp_dir().join(format!("bingfa-files-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        let root = base.join("root");
        std::fs::create_dir_all(root.join("sub")).unwrap();
        std::fs::write(base.join("secret"), "no").unwrap();
        std::fs::write(root.join("a.txt"), "a").unwrap();
        std::fs::write(root.join("sub/b.txt"), "b").unwrap();
        symlink("../secret", root.join("out")).unwrap();
        symlink("/etc/passwd", root.join("abs")).unwrap();
        symlink("sub/b.txt", root.join("in")).unwrap();
        let r = Root::open(&root).unwrap();
        (base, r)
    }

    #[test]
    fn stays_beneath_the_root() {
        let (base, r) = tree();
        assert!(r.open_path(b"a.txt").is_ok());
        assert!(r.open_path(b"sub/../a.txt").is_ok());
        assert!(
            r.open_path(b"in").is_ok(),
            "a symlink inside the root is followed"
        );
        assert!(r.open_path(b"").unwrap().1.st_mode & libc::S_IFMT == libc::S_IFDIR);
        assert_eq!(r.open_path(b"../secret").unwrap_err(), OpenError::Forbidden);
        assert_eq!(
            r.open_path(b"sub/../../secret").unwrap_err(),
            OpenError::Forbidden
        );
        assert_eq!(
            r.open_path(b"/etc/passwd").unwrap_err(),
            OpenError::Forbidden
        );
        assert_eq!(r.open_path(b"out").unwrap_err(), OpenError::Forbidden);
        assert_eq!(r.open_path(b"abs").unwrap_err(), OpenError::Forbidden);
        assert_eq!(r.open_path(b"a.txt\0x").unwrap_err(), OpenError::NotFound);
        assert_eq!(r.open_path(b"missing").unwrap_err(), OpenError::NotFound);
        // What a listing may learn about an entry: only what resolves beneath the root.
        assert!(r.stat_beneath(b"in").is_some() && r.stat_beneath(b"sub").is_some());
        assert!(r.stat_beneath(b"abs").is_none() && r.stat_beneath(b"out").is_none());
        std::fs::remove_dir_all(base).unwrap();
    }

    #[test]
    fn decoding() {
        assert_eq!(percent_decode("/a%20b%2e%2E").unwrap(), b"/a b..");
        assert_eq!(
            percent_decode("/%252e").unwrap(),
            b"/%2e",
            "decoded once only"
        );
        assert!(percent_decode("/%2").is_none());
        assert!(percent_decode("/%zz").is_none());
        assert_eq!(
            percent_encode_segment(b"a b<\"&>.txt"),
            "a%20b%3C%22&%3E.txt"
        );
    }
}
