//! bingfa-root: a directory handle that every path from the network resolves beneath.
//!
//! Paths are resolved by the kernel with openat2(2) `RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS`
//! relative to the root's descriptor, so `..`, absolute paths and symlinks leading outside fail
//! in the kernel (`EXDEV`/`ELOOP`) instead of depending on string cleaning. Shared by
//! bingfa-http (read) and bingfa-ftp (read, write, rename, mkdir, delete); a server on a kernel
//! without openat2 refuses to start rather than serving unconfined.
//!
//! Operations that name an entry (mkdir, unlink, rename, create) open the *parent* beneath the
//! root and act on one final component with the `*at` calls, so the entry itself is never
//! followed: removing a symlink removes the link, not what it points at.

mod dir;
mod ops;
mod root;
mod temp;

pub use dir::Entry;
pub use root::{fstat, OpenError, Root};
pub use temp::{is_temp_name, prepare_temp_names, TempFile};

/// Whether an error means "this path tried to leave the root" (or went through a magic link).
pub fn is_escape(e: &std::io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EXDEV) | Some(libc::ELOOP))
}
