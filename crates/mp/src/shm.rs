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

// SAFETY: a Segment owns its descriptor and mapping, and its methods only hand out the raw
// pointer: every access through it is the caller's unsafe code, which must synchronise (the
// memory is shared with other processes anyway). Moving or sharing the handle itself between
// threads is therefore as safe as it is between processes.
unsafe impl Send for Segment {}
// SAFETY: as for Send: `&Segment` gives nothing but the pointer, the length and the descriptor.
unsafe impl Sync for Segment {}

impl Segment {
    /// A new zero-filled segment of `len` bytes. Pages are only allocated when touched, so a
    /// large, mostly unused segment costs address space, not memory.
    ///
    /// Every segment (so every `Value`, `Lock`, `Queue`…) holds a descriptor. A program with
    /// thousands of them would hit the usual soft limit of 1024 open files, so on `EMFILE` the
    /// soft limit is raised to the hard limit once and the call retried (as Go's runtime does).
    pub fn new(len: usize) -> io::Result<Segment> {
        // SAFETY: the name is a NUL-terminated C string literal that outlives the call.
        let create =
            || cvt(unsafe { libc::memfd_create(c"bingfa-mp".as_ptr(), libc::MFD_CLOEXEC) });
        let fd = match create() {
            Err(e) if e.raw_os_error() == Some(libc::EMFILE) && sys::raise_nofile_limit() => {
                create()?
            }
            r => r?,
        };
        // SAFETY: memfd_create succeeded: a fresh descriptor that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        // SAFETY: ftruncate takes no pointer; `fd` is ours and open.
        cvt(unsafe { libc::ftruncate(fd.as_raw_fd(), len as libc::off_t) })?;
        Segment::map(fd, len)
    }

    /// Map a segment received from another process.
    pub fn from_fd(fd: OwnedFd) -> io::Result<Segment> {
        // SAFETY: `stat` is plain integers; all-zero is a valid value.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        // SAFETY: `fd` is owned and open; `st` is a live stat for fstat to fill.
        cvt(unsafe { libc::fstat(fd.as_raw_fd(), &mut st) })?;
        Segment::map(fd, st.st_size as usize)
    }

    fn map(fd: OwnedFd, len: usize) -> io::Result<Segment> {
        // SAFETY: a fresh mapping at an address the kernel picks (null hint), so no existing
        // memory is replaced; `fd` is owned and open. At least one byte is mapped so a
        // zero-length segment still has a distinct, unmappable-by-others address.
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

    /// The first byte of the mapping, valid for [`Segment::len`] bytes while `self` lives.
    pub fn as_ptr(&self) -> *mut u8 {
        self.ptr
    }

    /// The segment's size in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True for a zero-byte segment.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Give the pages of `[offset, offset+len)` back to the kernel; they read as zeros after.
    /// Callers must hold whatever lock guarantees nobody uses that range meanwhile.
    ///
    /// # Panics
    /// If the range is not inside the segment.
    pub fn release(&self, offset: usize, len: usize) {
        // A range outside the mapping would make `add` leave the allocation and madvise punch
        // holes in whatever else is mapped there: refuse it in release builds too.
        assert!(
            offset.checked_add(len).is_some_and(|end| end <= self.len),
            "Segment::release({offset}, {len}) outside a {}-byte segment",
            self.len
        );
        // SAFETY: `offset + len <= self.len` (just checked), so the range lies inside our own
        // mapping; MADV_REMOVE on a MAP_SHARED memfd mapping only turns it back to zeros, which
        // any holder of the segment could write anyway.
        unsafe {
            libc::madvise(self.ptr.add(offset).cast(), len, libc::MADV_REMOVE);
        }
    }
}

impl Drop for Segment {
    fn drop(&mut self) {
        // SAFETY: `ptr`/`len.max(1)` is exactly the mapping `map` made, unmapped only here, once;
        // nothing borrows from `self` any more. Raw pointers into it that callers kept must not
        // outlive the Segment (every user holds it in the same struct or an Arc beside them).
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn release_zeroes_a_range_inside() {
        let seg = Segment::new(3 * 4096).unwrap();
        // SAFETY: the segment is ours alone and 3 pages long.
        unsafe { seg.as_ptr().add(4096).write_bytes(7, 4096) };
        seg.release(4096, 4096);
        // SAFETY: as above.
        let page = unsafe { std::slice::from_raw_parts(seg.as_ptr().add(4096), 4096) };
        assert!(page.iter().all(|&b| b == 0));
    }

    /// Before the check, only a debug_assert stood between a bad range and madvise(MADV_REMOVE)
    /// on memory past the mapping.
    #[test]
    #[should_panic(expected = "outside a 4096-byte segment")]
    fn release_outside_the_segment_panics() {
        let seg = Segment::new(4096).unwrap();
        seg.release(4096, 4096);
    }

    #[test]
    #[should_panic(expected = "outside")]
    fn release_with_an_overflowing_range_panics() {
        let seg = Segment::new(4096).unwrap();
        seg.release(usize::MAX, 2);
    }
}
