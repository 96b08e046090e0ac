//! What FTP does beneath the root besides reading: stat, open for writing, mkdir, rmdir,
//! unlink, rename. Each names one final component of a parent directory that is itself opened
//! beneath the root, and acts with the `*at` calls, so the final component is never followed.

use crate::root::{fstat, Root};
use std::ffi::CString;
use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;

/// Splits `rel` into (parent, final component). The final component may not be empty, `.` or
/// `..`: an operation on those would act on the parent or outside it (`EINVAL`).
pub(crate) fn split(rel: &[u8]) -> io::Result<(&[u8], CString)> {
    let mut rel = rel;
    while rel.len() > 1 && rel.ends_with(b"/") {
        rel = &rel[..rel.len() - 1];
    }
    let (parent, name) = match rel.iter().rposition(|&b| b == b'/') {
        Some(i) => (&rel[..i], &rel[i + 1..]),
        None => (&b"."[..], rel),
    };
    let parent = if parent.is_empty() {
        b"/" as &[u8]
    } else {
        parent
    };
    if name.is_empty() || name == b"." || name == b".." {
        return Err(io::Error::from_raw_os_error(libc::EINVAL));
    }
    let name = CString::new(name).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    Ok((parent, name))
}

fn check(r: libc::c_int) -> io::Result<()> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

impl Root {
    /// The parent directory of `rel`, opened `O_PATH` beneath the root, and the final name.
    pub(crate) fn parent(&self, rel: &[u8]) -> io::Result<(File, CString)> {
        let (parent, name) = split(rel)?;
        let dir = self.openat2(parent, libc::O_PATH | libc::O_DIRECTORY)?;
        Ok((dir, name))
    }

    /// The status of what `rel` names, following symlinks only while they stay beneath the
    /// root (a link leading outside is `EXDEV`/`ELOOP`).
    pub fn stat(&self, rel: &[u8]) -> io::Result<libc::stat> {
        let rel = if rel.is_empty() { b"." as &[u8] } else { rel };
        fstat(&self.openat2(rel, libc::O_PATH)?)
    }

    /// The status of the entry `rel` itself (a symlink is reported as a link, not followed).
    pub fn lstat(&self, rel: &[u8]) -> io::Result<libc::stat> {
        let (dir, name) = self.parent(rel)?;
        // SAFETY: libc::stat is a C struct of integers, for which all-zero bytes are valid.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        // SAFETY: `dir` keeps its descriptor open for the call, `name` is a NUL-terminated
        // string and `st` a live, writable stat that fstatat fills in.
        check(unsafe {
            libc::fstatat(
                dir.as_raw_fd(),
                name.as_ptr(),
                &mut st,
                libc::AT_SYMLINK_NOFOLLOW,
            )
        })?;
        Ok(st)
    }

    /// Opens a regular file for reading (`EISDIR` for a directory, `EACCES` for other kinds).
    pub fn open_read(&self, rel: &[u8]) -> io::Result<(File, libc::stat)> {
        let f = self.openat2(rel, libc::O_RDONLY | libc::O_NONBLOCK)?;
        let st = fstat(&f)?;
        match st.st_mode & libc::S_IFMT {
            libc::S_IFREG => Ok((f, st)),
            libc::S_IFDIR => Err(io::Error::from_raw_os_error(libc::EISDIR)),
            _ => Err(io::Error::from_raw_os_error(libc::EACCES)),
        }
    }

    /// Opens a directory for reading its entries.
    pub fn open_dir(&self, rel: &[u8]) -> io::Result<File> {
        let rel = if rel.is_empty() { b"." as &[u8] } else { rel };
        self.openat2(rel, libc::O_RDONLY | libc::O_DIRECTORY)
    }

    /// Opens `rel` for writing in place, created (mode 0644 less the umask) if missing, never
    /// truncated: for resumed uploads (REST + STOR, APPE), where keeping what is there is the
    /// point. `append` opens with `O_APPEND`.
    pub fn open_write(&self, rel: &[u8], append: bool) -> io::Result<File> {
        let (dir, name) = self.parent(rel)?;
        let flags = libc::O_WRONLY
            | libc::O_CREAT
            | libc::O_CLOEXEC
            | libc::O_NOFOLLOW
            | libc::O_NONBLOCK
            | if append { libc::O_APPEND } else { 0 };
        // SAFETY: `dir` keeps its descriptor open for the call and `name` is a NUL-terminated
        // string that outlives it; the fd returned is new and ours. O_NOFOLLOW: a symlink as
        // the final component is refused (ELOOP) rather than followed, wherever it points.
        let fd = unsafe { libc::openat(dir.as_raw_fd(), name.as_ptr(), flags, 0o644) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: fd >= 0 is a new descriptor from openat that nothing else owns or closes.
        let f = unsafe { <File as std::os::fd::FromRawFd>::from_raw_fd(fd) };
        if fstat(&f)?.st_mode & libc::S_IFMT != libc::S_IFREG {
            return Err(io::Error::from_raw_os_error(libc::EACCES));
        }
        Ok(f)
    }

    /// Sets the modification time of the file or directory `rel` (symlinks followed beneath
    /// the root) to `secs` since the epoch, leaving its access time; returns its new status.
    /// Other kinds (FIFOs, devices) are `EACCES`, as for reading. The kernel checks that the
    /// server's user owns it.
    pub fn set_mtime(&self, rel: &[u8], secs: i64) -> io::Result<libc::stat> {
        let rel = if rel.is_empty() { b"." as &[u8] } else { rel };
        // O_NONBLOCK: a FIFO must not block the open (it is refused just below).
        let f = self.openat2(rel, libc::O_RDONLY | libc::O_NONBLOCK)?;
        if !matches!(
            fstat(&f)?.st_mode & libc::S_IFMT,
            libc::S_IFREG | libc::S_IFDIR
        ) {
            return Err(io::Error::from_raw_os_error(libc::EACCES));
        }
        let times = [
            libc::timespec {
                tv_sec: 0,
                tv_nsec: libc::UTIME_OMIT,
            },
            libc::timespec {
                tv_sec: secs as libc::time_t,
                tv_nsec: 0,
            },
        ];
        // SAFETY: `f` keeps its descriptor open for the call, and `times` is the two-element
        // array futimens reads (access, then modification time), alive until it returns.
        check(unsafe { libc::futimens(f.as_raw_fd(), times.as_ptr()) })?;
        fstat(&f)
    }

    /// Creates the directory `rel` (mode 0755 less the umask); `EEXIST` if the name is taken,
    /// even by a symlink.
    pub fn mkdir(&self, rel: &[u8]) -> io::Result<()> {
        let (dir, name) = self.parent(rel)?;
        // SAFETY: `dir` keeps its descriptor open for the call and `name` is a NUL-terminated
        // string that outlives it.
        check(unsafe { libc::mkdirat(dir.as_raw_fd(), name.as_ptr(), 0o755) })
    }

    /// Removes the empty directory `rel` (`ENOTEMPTY` otherwise, `ENOTDIR` for anything else,
    /// a symlink to a directory included).
    pub fn rmdir(&self, rel: &[u8]) -> io::Result<()> {
        let (dir, name) = self.parent(rel)?;
        // SAFETY: `dir` keeps its descriptor open for the call and `name` is a NUL-terminated
        // string that outlives it.
        check(unsafe { libc::unlinkat(dir.as_raw_fd(), name.as_ptr(), libc::AT_REMOVEDIR) })
    }

    /// Removes a file (or a symlink itself); `EISDIR` for a directory.
    pub fn unlink(&self, rel: &[u8]) -> io::Result<()> {
        let (dir, name) = self.parent(rel)?;
        // SAFETY: `dir` keeps its descriptor open for the call and `name` is a NUL-terminated
        // string that outlives it.
        check(unsafe { libc::unlinkat(dir.as_raw_fd(), name.as_ptr(), 0) })
    }

    /// Renames `from` to `to` (both beneath the root), replacing `to` as rename(2) does.
    pub fn rename(&self, from: &[u8], to: &[u8]) -> io::Result<()> {
        let (fdir, fname) = self.parent(from)?;
        let (tdir, tname) = self.parent(to)?;
        // SAFETY: both parents keep their descriptors open for the call, and both names are
        // NUL-terminated strings that outlive it.
        check(unsafe {
            libc::renameat(
                fdir.as_raw_fd(),
                fname.as_ptr(),
                tdir.as_raw_fd(),
                tname.as_ptr(),
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::split;

    #[test]
    fn splitting() {
        let s = |p: &[u8]| split(p).map(|(a, b)| (a.to_vec(), b.into_bytes()));
        assert_eq!(s(b"a").unwrap(), (b".".to_vec(), b"a".to_vec()));
        assert_eq!(s(b"x/y/a/").unwrap(), (b"x/y".to_vec(), b"a".to_vec()));
        assert!(s(b"x/..").is_err() && s(b".").is_err() && s(b"").is_err());
    }
}
