//! Uploads that are all or nothing: the bytes go to an unnamed file in the target directory
//! (`O_TMPFILE`), which gets a name only when the transfer completed. Dropped before
//! [`TempFile::persist`] — an aborted or broken upload, a full disk — it vanishes with its
//! descriptor, and whatever had the target name is untouched. Where the file system has no
//! `O_TMPFILE`, a hidden random name is created instead and unlinked on drop.
//!
//! Such a name (`.bingfa-upload-` + 16 random hex digits + a 16-digit keyed hash of them) is
//! recognised by [`is_temp_name`] only when this server made it: the hash's key is random per
//! server (made before any fork by [`prepare_temp_names`]), so listings hide the server's own
//! in-flight files and nothing else — a file a user names `.bingfa-upload-x` is listed as any.

use crate::root::Root;
use std::ffi::CString;
use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;

/// A file being written that has no (visible) name yet.
#[derive(Debug)]
pub struct TempFile {
    file: File,
    dir: File,
    /// The hidden name of the fallback; `None` for an `O_TMPFILE`.
    hidden: Option<CString>,
}

const TEMP_PREFIX: &[u8] = b".bingfa-upload-";

/// The key of the names' hash, random per server process tree.
fn key() -> &'static std::hash::RandomState {
    static KEY: std::sync::OnceLock<std::hash::RandomState> = std::sync::OnceLock::new();
    KEY.get_or_init(std::hash::RandomState::new)
}

/// Makes the key now: a server calls it before it forks, so every worker process recognises
/// the names the others make.
pub fn prepare_temp_names() {
    key();
}

fn tag(r: u64) -> u64 {
    use std::hash::BuildHasher;
    key().hash_one(r)
}

/// Whether `name` is one of this server's in-flight upload files (a name made here, with the
/// right keyed hash); a look-alike a user made is not.
pub fn is_temp_name(name: &[u8]) -> bool {
    let Some(hex) = name.strip_prefix(TEMP_PREFIX) else {
        return false;
    };
    let parse = |h: &[u8]| {
        std::str::from_utf8(h)
            .ok()
            .filter(|s| s.len() == 16 && s.bytes().all(|b| b.is_ascii_hexdigit()))
            .and_then(|s| u64::from_str_radix(s, 16).ok())
    };
    match (hex.len() == 32).then(|| (parse(&hex[..16]), parse(&hex[16..]))) {
        Some((Some(r), Some(t))) => tag(r) == t,
        _ => false,
    }
}

fn random_name() -> CString {
    let mut b = [0u8; 8];
    // SAFETY: getrandom writes at most `b.len()` bytes into `b`, which is live and writable
    // for the call; any bytes are a valid [u8].
    let n = unsafe { libc::getrandom(b.as_mut_ptr().cast(), b.len(), 0) };
    if n != b.len() as isize {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        b = (t ^ (std::process::id() as u64) << 32).to_le_bytes();
    }
    let r = u64::from_le_bytes(b);
    CString::new(format!(".bingfa-upload-{r:016x}{:016x}", tag(r))).expect("no NUL")
}

impl Root {
    /// An unnamed file in directory `dir_rel` (beneath the root), to be named with
    /// [`TempFile::persist`] once complete.
    pub fn create_temp(&self, dir_rel: &[u8]) -> io::Result<TempFile> {
        let dir_rel = if dir_rel.is_empty() {
            b"." as &[u8]
        } else {
            dir_rel
        };
        let dir = self.openat2(dir_rel, libc::O_PATH | libc::O_DIRECTORY)?;
        match self.openat2_mode(dir_rel, libc::O_TMPFILE | libc::O_RDWR, 0o644) {
            Ok(file) => {
                return Ok(TempFile {
                    file,
                    dir,
                    hidden: None,
                })
            }
            Err(e)
                if matches!(
                    e.raw_os_error(),
                    Some(libc::EOPNOTSUPP) | Some(libc::EISDIR)
                ) => {}
            Err(e) => return Err(e),
        }
        for _ in 0..8 {
            let name = random_name();
            // SAFETY: `dir` keeps its descriptor open for the call and `name` is a NUL-terminated
            // string that outlives it; the fd returned is new and ours.
            let fd = unsafe {
                libc::openat(
                    dir.as_raw_fd(),
                    name.as_ptr(),
                    libc::O_RDWR | libc::O_CREAT | libc::O_EXCL | libc::O_CLOEXEC,
                    0o644,
                )
            };
            if fd >= 0 {
                // SAFETY: fd >= 0 is a new descriptor from openat that nothing else owns.
                let file = unsafe { <File as std::os::fd::FromRawFd>::from_raw_fd(fd) };
                return Ok(TempFile {
                    file,
                    dir,
                    hidden: Some(name),
                });
            }
            let e = io::Error::last_os_error();
            if e.raw_os_error() != Some(libc::EEXIST) {
                return Err(e);
            }
        }
        Err(io::Error::from_raw_os_error(libc::EEXIST))
    }
}

impl TempFile {
    /// The file being written: write the upload through it (or through `io::Write` on the
    /// `TempFile`), and `sync_data` it before [`TempFile::persist`] when durability matters.
    pub fn file(&self) -> &File {
        &self.file
    }

    /// Gives the file its name `name` (one component) in its directory, atomically replacing
    /// whatever had that name. Nothing is flushed here: a caller that promises durability
    /// calls `file().sync_data()` first, so a crash right after never leaves a named but empty
    /// file (without it the data reaches the disk with the file system's next writeback, as
    /// any `write` + `rename` does).
    pub fn persist(mut self, name: &[u8]) -> io::Result<()> {
        let target = component(name)?;
        let dir = self.dir.as_raw_fd();
        let hidden = self.link_hidden()?;
        // SAFETY: `self.dir` keeps `dir` open for the call; both names are NUL-terminated
        // strings that outlive it.
        let r = unsafe { libc::renameat(dir, hidden.as_ptr(), dir, target.as_ptr()) };
        if r < 0 {
            let e = io::Error::last_os_error();
            // SAFETY: `dir` is still open (owned by `self`) and `hidden` NUL-terminated; the
            // name is the one we linked, so removing it touches nothing a user made.
            unsafe { libc::unlinkat(dir, hidden.as_ptr(), 0) };
            return Err(e);
        }
        Ok(())
    }

    /// Gives the file the first name `names` yields that nothing has (a name taken meanwhile,
    /// even an instant before, is never replaced: `renameat2(RENAME_NOREPLACE)`, or `link` +
    /// `unlink` where the file system lacks it); returns that name. `EEXIST` when every name
    /// is taken; the file is then dropped as if never persisted. FTP's `STOU`.
    pub fn persist_new<I>(mut self, names: I) -> io::Result<Vec<u8>>
    where
        I: IntoIterator,
        I::Item: AsRef<[u8]>,
    {
        let dir = self.dir.as_raw_fd();
        let hidden = self.link_hidden()?;
        let mut err = io::Error::from_raw_os_error(libc::EEXIST);
        for name in names {
            let name = name.as_ref();
            match component(name).and_then(|t| rename_noreplace(dir, &hidden, &t)) {
                Ok(()) => return Ok(name.to_vec()),
                Err(e) if e.raw_os_error() == Some(libc::EEXIST) => continue,
                Err(e) => {
                    err = e;
                    break;
                }
            }
        }
        // SAFETY: `dir` is still open (owned by `self`) and `hidden` NUL-terminated; the name
        // is the one we linked, so removing it touches nothing a user made.
        unsafe { libc::unlinkat(dir, hidden.as_ptr(), 0) };
        Err(err)
    }

    /// The file under a hidden random name of its directory (the fallback's own, or a fresh
    /// link of the `O_TMPFILE`), ready to be renamed; from here the caller owns the name.
    fn link_hidden(&mut self) -> io::Result<CString> {
        let dir = self.dir.as_raw_fd();
        Ok(match self.hidden.take() {
            Some(h) => h,
            None => {
                // linkat(AT_EMPTY_PATH) needs CAP_DAC_READ_SEARCH; the /proc path works for
                // anyone. It gets a hidden name first because linkat cannot replace a file.
                let proc = CString::new(format!("/proc/self/fd/{}", self.file.as_raw_fd()))
                    .expect("no NUL");
                let mut linked = None;
                for _ in 0..8 {
                    let h = random_name();
                    // SAFETY: `proc` and `h` are NUL-terminated strings that outlive the call,
                    // and `dir` stays open (owned by `self.dir`) throughout it.
                    let r = unsafe {
                        libc::linkat(
                            libc::AT_FDCWD,
                            proc.as_ptr(),
                            dir,
                            h.as_ptr(),
                            libc::AT_SYMLINK_FOLLOW,
                        )
                    };
                    if r == 0 {
                        linked = Some(h);
                        break;
                    }
                    let e = io::Error::last_os_error();
                    if e.raw_os_error() != Some(libc::EEXIST) {
                        return Err(e);
                    }
                }
                linked.ok_or_else(|| io::Error::from_raw_os_error(libc::EEXIST))?
            }
        })
    }
}

/// `name` as one final component (not empty, `.`, `..`, nor containing `/` or NUL).
fn component(name: &[u8]) -> io::Result<CString> {
    if name.is_empty() || name == b"." || name == b".." || name.contains(&b'/') {
        return Err(io::Error::from_raw_os_error(libc::EINVAL));
    }
    CString::new(name).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))
}

/// Renames `from` to `to` in `dir` unless `to` exists (`EEXIST`). File systems without
/// `RENAME_NOREPLACE` (`EINVAL`) get `link` (which never replaces) then `unlink`.
fn rename_noreplace(dir: libc::c_int, from: &CString, to: &CString) -> io::Result<()> {
    // SAFETY: the caller keeps `dir` open for the call; both names are NUL-terminated strings
    // that outlive it.
    let r =
        unsafe { libc::renameat2(dir, from.as_ptr(), dir, to.as_ptr(), libc::RENAME_NOREPLACE) };
    if r == 0 {
        return Ok(());
    }
    let e = io::Error::last_os_error();
    if e.raw_os_error() != Some(libc::EINVAL) {
        return Err(e);
    }
    // SAFETY: as for renameat2 above: an open `dir` and two live NUL-terminated names.
    if unsafe { libc::linkat(dir, from.as_ptr(), dir, to.as_ptr(), 0) } < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: an open `dir` and a live NUL-terminated name; `from` is the caller's hidden
    // name, now also linked as `to`, so only the temporary name goes.
    unsafe { libc::unlinkat(dir, from.as_ptr(), 0) };
    Ok(())
}

impl TempFile {
    /// The file as it is, never to be named: a scratch file (a big listing spooled to disk)
    /// that vanishes with its last descriptor. The fallback's hidden name is removed now.
    pub fn into_unnamed(self) -> File {
        let mut me = std::mem::ManuallyDrop::new(self);
        if let Some(h) = me.hidden.take() {
            // SAFETY: `me.dir` is open (not dropped yet: `me` is ManuallyDrop) and `h` is a
            // NUL-terminated name we created, so removing it touches nothing a user made.
            unsafe { libc::unlinkat(me.dir.as_raw_fd(), h.as_ptr(), 0) };
        }
        // SAFETY: `me` is never used or dropped again, and each field is moved out once
        // (`hidden` is already `None`, so nothing is left to free).
        let (file, dir) = unsafe { (std::ptr::read(&me.file), std::ptr::read(&me.dir)) };
        drop(dir);
        file
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if let Some(h) = &self.hidden {
            // SAFETY: `self.dir` is open until after this drop, `h` is NUL-terminated, and the
            // name is our own hidden one (not persisted, or `hidden` would be `None`).
            unsafe { libc::unlinkat(self.dir.as_raw_fd(), h.as_ptr(), 0) };
        }
    }
}

impl io::Write for TempFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        (&self.file).write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_our_own_names_are_temporary() {
        let ours = random_name().into_bytes();
        assert!(is_temp_name(&ours));
        for other in [
            &b".bingfa-upload-0123456789abcdef"[..],
            b".bingfa-upload-0123456789abcdef0123456789abcdef",
            b".bingfa-upload-",
            b"x.bingfa-upload-",
        ] {
            assert!(!is_temp_name(other), "{other:?}");
        }
        let mut forged = ours.clone();
        let last = forged.last_mut().unwrap();
        *last = if *last == b'0' { b'1' } else { b'0' };
        assert!(!is_temp_name(&forged));
    }
}
