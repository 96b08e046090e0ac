//! Where a listing is rendered: memory while it is small, then an unnamed scratch file, so an
//! 80,000-entry listing is neither held in a session's memory nor counted against the
//! connection's output bound (a file range is sent as it is read). The scratch file is an
//! `O_TMPFILE` in `$TMPDIR` (or a hidden name unlinked at once); when `$TMPDIR` is unusable
//! (missing, read-only, full) a `memfd` instead — a big listing never depends on it.

use std::fs::File;
use std::io::{self, Write};
use std::os::fd::FromRawFd;
use std::sync::Arc;

/// Listings up to this size stay in memory.
const SPOOL_OVER: usize = 256 * 1024;

/// A rendered listing.
pub(crate) enum Body {
    Bytes(Vec<u8>),
    /// The first `len` bytes of a scratch file.
    File(Arc<File>, u64),
}

/// A writer that moves to a scratch file once past [`SPOOL_OVER`].
#[derive(Default)]
pub(crate) struct Spool {
    buf: Vec<u8>,
    file: Option<File>,
    len: u64,
}

impl Spool {
    pub(crate) fn new() -> Spool {
        Spool::default()
    }

    fn spill(&mut self) -> io::Result<()> {
        if self.file.is_none() {
            self.file = Some(scratch()?);
        }
        self.file.as_mut().expect("opened").write_all(&self.buf)?;
        self.len += self.buf.len() as u64;
        self.buf.clear();
        Ok(())
    }

    pub(crate) fn finish(mut self) -> io::Result<Body> {
        if self.file.is_none() {
            return Ok(Body::Bytes(self.buf));
        }
        self.spill()?;
        Ok(Body::File(
            Arc::new(self.file.take().expect("opened")),
            self.len,
        ))
    }
}

impl Write for Spool {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(b);
        if self.buf.len() > SPOOL_OVER {
            self.spill()?;
        }
        Ok(b.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// An unnamed file: in `$TMPDIR` if it can have one, else in memory (`memfd_create`).
fn scratch() -> io::Result<File> {
    let tmp = bingfa_root::Root::open(&std::env::temp_dir())
        .and_then(|dir| dir.create_temp(b""))
        .map(|t| t.into_unnamed());
    match tmp {
        Ok(f) => Ok(f),
        Err(e) => {
            tracing::debug!("no scratch file in $TMPDIR ({e}): spooling to memory");
            memfd()
        }
    }
}

fn memfd() -> io::Result<File> {
    // SAFETY: a valid NUL-terminated name; the fd returned is ours.
    let fd = unsafe { libc::memfd_create(c"bingfa-listing".as_ptr(), libc::MFD_CLOEXEC) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a fresh fd we own.
    Ok(unsafe { File::from_raw_fd(fd) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::FileExt;

    #[test]
    fn small_stays_in_memory_big_goes_to_a_file() {
        let mut s = Spool::new();
        s.write_all(b"abc").unwrap();
        assert!(matches!(s.finish().unwrap(), Body::Bytes(b) if b == b"abc"));
        let mut s = Spool::new();
        let line = [b'x'; 1000];
        for _ in 0..1000 {
            s.write_all(&line).unwrap();
        }
        let Body::File(f, n) = s.finish().unwrap() else {
            panic!("not spooled")
        };
        assert_eq!(n, 1_000_000);
        let mut back = vec![0; 1_000_000];
        f.read_exact_at(&mut back, 0).unwrap();
        assert!(back.iter().all(|&b| b == b'x'));
        let f = memfd().unwrap();
        f.write_all_at(b"hi", 0).unwrap();
    }
}
