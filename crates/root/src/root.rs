//! The root handle itself: opening it (with a probe that openat2 works), and resolving a
//! relative path beneath it.

use std::ffi::CString;
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

/// Why a path could not be opened, in the terms a server answers with.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum OpenError {
    /// No such file, or not representable as a path (HTTP 404, FTP 550).
    #[error("not found")]
    NotFound,
    /// Exists but not ours to serve: an escape attempt, permissions, not a regular file.
    #[error("forbidden")]
    Forbidden,
    /// Anything else the kernel said.
    #[error("error")]
    Other,
}

/// A directory that every network path is resolved beneath. A user's home is a `Root` of its
/// own, so one user can never reach another's files.
#[derive(Debug)]
pub struct Root {
    pub(crate) dir: OwnedFd,
}

impl Root {
    /// Opens the directory `path` as a root (an `O_PATH` handle: only searched, never read
    /// itself). Fails if it is not a directory, or if this kernel lacks openat2, so a server
    /// never serves unconfined.
    pub fn open(path: &Path) -> io::Result<Root> {
        let c = CString::new(path.as_os_str().as_encoded_bytes())
            .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
        // SAFETY: `c` is a NUL-terminated string that outlives the call; open only reads it.
        // The fd it returns is new and referenced nowhere else, so we take ownership below.
        let fd = unsafe {
            libc::open(
                c.as_ptr(),
                libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC,
            )
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: fd >= 0 was just returned by open, so it is an open descriptor that nothing
        // else owns or will close.
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
    /// root. Returns the file and its status; kinds other than files and directories are
    /// Forbidden.
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
        let file = file.map_err(|e| open_error(&e))?;
        let st = fstat(&file).map_err(|_| OpenError::Other)?;
        match st.st_mode & libc::S_IFMT {
            libc::S_IFREG | libc::S_IFDIR => Ok((file, st)),
            _ => Err(OpenError::Forbidden),
        }
    }

    /// The status of what `rel` names, resolved beneath the root (symlinks that lead outside
    /// fail here, so nothing about the outside is ever revealed). `None` if it can't be
    /// resolved beneath the root.
    pub fn stat_beneath(&self, rel: &[u8]) -> Option<libc::stat> {
        let rel = if rel.is_empty() { b"." as &[u8] } else { rel };
        let f = self.openat2(rel, libc::O_PATH).ok()?;
        fstat(&f).ok()
    }

    /// The status of what `rel` names now, by one plain `fstatat(root, rel)` that follows
    /// symlinks wherever they lead: **not** confined to the root. Only for revalidating a file
    /// that was already opened beneath the root (a cache compares device, inode, size and
    /// times with what it saw then, so a path that now leads elsewhere is a different inode
    /// and a miss); never for deciding what may be served. Nothing outside is revealed: the
    /// caller learns only "same file or not". No allocation for paths under 256 bytes.
    pub fn restat(&self, rel: &[u8]) -> Option<libc::stat> {
        let mut buf = [0u8; 256];
        let owned;
        let path: &std::ffi::CStr = if rel.len() < buf.len() {
            buf[..rel.len()].copy_from_slice(rel);
            std::ffi::CStr::from_bytes_until_nul(&buf[..=rel.len()]).ok()?
        } else {
            owned = CString::new(rel).ok()?;
            &owned
        };
        // A NUL inside `rel` would end the name early: that is another path, so no answer.
        if path.to_bytes().len() != rel.len() || rel.is_empty() {
            return None;
        }
        // SAFETY: libc::stat is a C struct of integers, for which all-zero bytes are valid.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        // SAFETY: the dirfd is owned by `self.dir` and open for the call; `path` is a
        // NUL-terminated string alive until it returns; `st` is a live, writable stat.
        let rc = unsafe {
            libc::fstatat(
                self.dir.as_raw_fd(),
                path.as_ptr(),
                &mut st,
                libc::AT_NO_AUTOMOUNT,
            )
        };
        (rc == 0).then_some(st)
    }

    /// `openat2(root, rel, flags, RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS)`; `O_CLOEXEC` is
    /// added. Errors are the kernel's (`EXDEV`/`ELOOP` for an escape: see [`crate::is_escape`]).
    pub fn openat2(&self, rel: &[u8], flags: libc::c_int) -> io::Result<File> {
        self.openat2_mode(rel, flags, 0)
    }

    pub(crate) fn openat2_mode(
        &self,
        rel: &[u8],
        flags: libc::c_int,
        mode: u32,
    ) -> io::Result<File> {
        // A NUL can't be part of a path; answering it is the caller's 404.
        let c = CString::new(rel).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
        // SAFETY: open_how is a C struct of integers only, for which all-zero bytes are a valid
        // value (and the one openat2 wants for fields we leave unset).
        let mut how: libc::open_how = unsafe { std::mem::zeroed() };
        // Readers pass O_NONBLOCK with O_RDONLY, so a FIFO planted in the tree can't block the
        // worker in open. openat2 refuses O_PATH with any flag but O_CLOEXEC, O_DIRECTORY and
        // O_NOFOLLOW.
        let extra = if flags & libc::O_PATH != 0 {
            libc::O_CLOEXEC
        } else {
            libc::O_CLOEXEC | libc::O_NOCTTY
        };
        how.flags = (flags | extra) as u64;
        how.mode = mode as u64;
        how.resolve = libc::RESOLVE_BENEATH | libc::RESOLVE_NO_MAGICLINKS;
        // SAFETY: the dirfd is owned by `self.dir` and open for the whole call; `c` is a
        // NUL-terminated string and `how` an initialised open_how, both alive until the call
        // returns; the size passed is exactly that of the struct the pointer points to.
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
        // SAFETY: fd >= 0 (checked above) is a new descriptor from openat2 that nothing else
        // owns; the syscall returns a c_long but descriptors always fit in an i32.
        Ok(unsafe { File::from_raw_fd(fd as i32) })
    }
}

/// Maps what the kernel said onto [`OpenError`].
pub(crate) fn open_error(e: &io::Error) -> OpenError {
    match e.raw_os_error() {
        Some(libc::ENOENT) | Some(libc::ENOTDIR) | Some(libc::ENAMETOOLONG) => OpenError::NotFound,
        // EXDEV: the path tried to leave the root; ELOOP: symlink loop or magic link.
        Some(libc::EXDEV) | Some(libc::ELOOP) | Some(libc::EACCES) | Some(libc::EPERM) => {
            OpenError::Forbidden
        }
        _ if e.kind() == io::ErrorKind::InvalidInput => OpenError::NotFound,
        _ => OpenError::Other,
    }
}

/// The status (`fstat(2)`) of an open file: kind, size, mode, times, as the kernel sees them now.
pub fn fstat(f: &File) -> io::Result<libc::stat> {
    // SAFETY: libc::stat is a C struct of integers, for which all-zero bytes are valid.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: `f` keeps its descriptor open for the call and `st` is a live, writable stat
    // that fstat fills in; no other reference to `st` exists meanwhile.
    if unsafe { libc::fstat(f.as_raw_fd(), &mut st) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(st)
}
