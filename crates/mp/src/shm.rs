//! Shared memory segments: an anonymous `memfd` mapped `MAP_SHARED`. A segment travels to
//! children as a spawn argument (its descriptor is passed) and the kernel frees it when the last
//! descriptor and mapping are gone, so nothing is left behind in /dev/shm even after a crash.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::handle;
use crate::sys::{self, cvt};

/// A mapped shared memory segment. Cheap to share inside a process behind an `Arc`.
#[derive(Debug)]
pub struct Segment {
    fd: OwnedFd,
    ptr: *mut u8,
    len: usize,
}

// The mapping is plain shared memory; synchronisation is the job of what lives inside it.
unsafe impl Send for Segment {}
unsafe impl Sync for Segment {}

impl Segment {
    /// A new zero-filled segment of `len` bytes. Pages are only allocated when touched, so a
    /// large, mostly unused segment costs address space, not memory.
    ///
    /// Every segment (so every `Value`, `Lock`, `Queue`…) holds a descriptor. A program with
    /// thousands of them would hit the usual soft limit of 1024 open files, so on `EMFILE` the
    /// soft limit is raised to the hard limit once and the call retried (as Go's runtime does).
    pub fn new(len: usize) -> io::Result<Segment> {
        let create =
            || cvt(unsafe { libc::memfd_create(c"bingfa-mp".as_ptr(), libc::MFD_CLOEXEC) });
        let fd = match create() {
            Err(e) if e.raw_os_error() == Some(libc::EMFILE) && sys::raise_nofile_limit() => {
                create()?
            }
            r => r?,
        };
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        cvt(unsafe { libc::ftruncate(fd.as_raw_fd(), len as libc::off_t) })?;
        Segment::map(fd, len)
    }

    /// Map a segment received from another process.
    pub fn from_fd(fd: OwnedFd) -> io::Result<Segment> {
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        cvt(unsafe { libc::fstat(fd.as_raw_fd(), &mut st) })?;
        Segment::map(fd, st.st_size as usize)
    }

    fn map(fd: OwnedFd, len: usize) -> io::Result<Segment> {
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len.max(1),
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd.as_raw_fd(),
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        Ok(Segment {
            fd,
            ptr: ptr.cast(),
            len,
        })
    }

    pub(crate) fn raw_fd(&self) -> std::os::fd::RawFd {
        self.fd.as_raw_fd()
    }

    pub fn as_ptr(&self) -> *mut u8 {
        self.ptr
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Give the pages of `[offset, offset+len)` back to the kernel; they read as zeros after.
    /// Callers must hold whatever lock guarantees nobody uses that range meanwhile.
    pub fn release(&self, offset: usize, len: usize) {
        debug_assert!(offset + len <= self.len);
        unsafe {
            libc::madvise(self.ptr.add(offset).cast(), len, libc::MADV_REMOVE);
        }
    }
}

impl Drop for Segment {
    fn drop(&mut self) {
        unsafe {
            libc::munmap(self.ptr.cast(), self.len.max(1));
        }
    }
}

impl Serialize for Segment {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        handle::serialize_fd(&self.fd, s)
    }
}

impl<'de> Deserialize<'de> for Segment {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let fd = handle::deserialize_fd(d)?;
        Segment::from_fd(fd).map_err(serde::de::Error::custom)
    }
}
