//! Reading a directory beneath the root. Each entry carries its own status (`lstat`, taken
//! relative to the open directory) and, for a symlink, the status of its target only when the
//! target resolves beneath the root: a listing never reveals anything about the outside.

use crate::root::Root;
use std::ffi::CStr;
use std::io;
use std::os::fd::AsRawFd;

/// One directory entry (never `.` or `..`).
#[derive(Clone)]
pub struct Entry {
    /// The entry's file name in its directory: raw bytes, as the file system stores them.
    pub name: Vec<u8>,
    /// The entry itself (a symlink is a symlink here).
    pub lstat: libc::stat,
    /// What it leads to, resolved beneath the root: the same as `lstat` for anything but a
    /// symlink; `None` for a link that dangles or leads outside.
    pub target: Option<libc::stat>,
}

impl std::fmt::Debug for Entry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Entry")
            .field("name", &String::from_utf8_lossy(&self.name))
            .field("mode", &format_args!("{:o}", self.lstat.st_mode))
            .field("target", &self.target.map(|t| t.st_mode))
            .finish()
    }
}

impl Entry {
    /// Whether it is a directory, or a symlink leading to one beneath the root (what a listing
    /// shows as a folder one can enter).
    pub fn is_dir(&self) -> bool {
        self.target
            .is_some_and(|t| t.st_mode & libc::S_IFMT == libc::S_IFDIR)
    }

    /// Whether the entry itself is a symlink (whatever it leads to).
    pub fn is_symlink(&self) -> bool {
        self.lstat.st_mode & libc::S_IFMT == libc::S_IFLNK
    }
}

impl Root {
    /// The entries of directory `rel`, sorted by name.
    pub fn read_dir(&self, rel: &[u8]) -> io::Result<Vec<Entry>> {
        let rel = if rel.is_empty() { b"." as &[u8] } else { rel };
        let dir = self.open_dir(rel)?;
        let dfd = dir.as_raw_fd();
        // fdopendir takes the descriptor; a duplicate keeps `dir` usable for fstatat.
        // SAFETY: `dfd` is open for as long as `dir` lives, which is past this call; fcntl
        // only duplicates it and touches no memory.
        let dup = unsafe { libc::fcntl(dfd, libc::F_DUPFD_CLOEXEC, 0) };
        if dup < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `dup` is a fresh descriptor of a directory that only we hold; on success the
        // DIR owns it (closed by closedir below), so it is not closed twice.
        let dp = unsafe { libc::fdopendir(dup) };
        if dp.is_null() {
            let e = io::Error::last_os_error();
            // SAFETY: fdopendir failed, so it did not take `dup`: it is still ours, open, and
            // closed only here.
            unsafe { libc::close(dup) };
            return Err(e);
        }
        let mut out = Vec::new();
        loop {
            // SAFETY: `dp` is the non-null DIR* from fdopendir, not yet closed, and used by this
            // thread only.
            let ent = unsafe { libc::readdir(dp) };
            if ent.is_null() {
                break;
            }
            // SAFETY: `ent` is non-null and stays valid until the next readdir/closedir on `dp`,
            // both after the last use of `name`; the kernel NUL-terminates d_name within the
            // record.
            let name = unsafe { CStr::from_ptr((*ent).d_name.as_ptr()) };
            let bytes = name.to_bytes();
            if bytes == b"." || bytes == b".." {
                continue;
            }
            // SAFETY: libc::stat is a C struct of integers, for which all-zero bytes are valid.
            let mut st: libc::stat = unsafe { std::mem::zeroed() };
            // SAFETY: `dfd` is open (owned by `dir`), `name` is NUL-terminated and `st` is a
            // live, writable stat that fstatat fills in.
            if unsafe { libc::fstatat(dfd, name.as_ptr(), &mut st, libc::AT_SYMLINK_NOFOLLOW) } < 0
            {
                continue; // removed while we read
            }
            let target = if st.st_mode & libc::S_IFMT == libc::S_IFLNK {
                let mut path = rel.to_vec();
                path.push(b'/');
                path.extend_from_slice(bytes);
                self.stat_beneath(&path)
            } else {
                Some(st)
            };
            out.push(Entry {
                name: bytes.to_vec(),
                lstat: st,
                target,
            });
        }
        // SAFETY: `dp` is the DIR* from fdopendir, closed here once and never used after
        // (this also closes `dup`, which it owns).
        unsafe { libc::closedir(dp) };
        drop(dir);
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }
}
