//! The provided-buffer ring a loop's multishot receives take their buffers from
//! (`IORING_REGISTER_PBUF_RING`): the kernel picks a free buffer when bytes arrive, so an idle
//! connection holds no receive buffer at all, and a loop's receive memory is this one fixed
//! block however many connections it serves.
//!
//! A buffer is handed back as soon as its bytes are copied out (the same reap that saw it), so
//! the ring runs dry only when one batch of completions fills every buffer; the receives that
//! found it dry end with ENOBUFS and are armed again on the next turn, after the hand-back, so
//! no byte is lost or reordered (the kernel leaves bytes it could not place in the socket).

use io_uring::types::BufRingEntry;
use io_uring::Submitter;
use std::alloc::{alloc_zeroed, dealloc, Layout};
use std::io;
use std::sync::atomic::{AtomicU16, Ordering};

/// Buffers in the ring (a power of two, as the kernel requires).
pub(super) const ENTRIES: u16 = 64;
/// Bytes per buffer: one completion carries at most this much.
pub(super) const BUF_SIZE: usize = 16 * 1024;
/// The buffer group id the receives name.
pub(super) const GROUP: u16 = 0;

pub(super) struct BufRing {
    /// The ring of entries the kernel reads (page-aligned, `ENTRIES` of them).
    entries: *mut BufRingEntry,
    layout: Layout,
    /// The buffers themselves, `ENTRIES × BUF_SIZE`, at fixed addresses for the ring's life.
    mem: Box<[u8]>,
    /// Our copy of the tail: entries up to it are the kernel's to use.
    tail: u16,
    /// Set when requests may still be writing into `mem` at drop (see `UringPoller::drop`): the
    /// memory is then leaked rather than freed under the kernel.
    pub(super) leak: bool,
}

// SAFETY: the raw pointer is owned memory of this struct alone (no aliasing outside the
// kernel's view through the registered ring); moving it to another thread with the poller that
// owns it is as safe as moving a Box.
unsafe impl Send for BufRing {}

impl BufRing {
    /// Allocate the buffers and register them with `submitter`'s ring (Linux 5.19).
    pub(super) fn new(submitter: &Submitter<'_>) -> io::Result<Self> {
        let size = ENTRIES as usize * std::mem::size_of::<BufRingEntry>();
        let layout = Layout::from_size_align(size, 4096).map_err(io::Error::other)?;
        // SAFETY: the layout has a non-zero size; the memory is freed in `drop` with the same
        // layout. Zeroed entries are valid `io_uring_buf`s (plain integers).
        let entries = unsafe { alloc_zeroed(layout) } as *mut BufRingEntry;
        if entries.is_null() {
            return Err(io::Error::from(io::ErrorKind::OutOfMemory));
        }
        let mut ring = BufRing {
            entries,
            layout,
            mem: vec![0u8; ENTRIES as usize * BUF_SIZE].into_boxed_slice(),
            tail: 0,
            leak: false,
        };
        // SAFETY: `entries` points at `ENTRIES` entries that live until `drop`, which runs
        // after the ring that uses them is gone (`UringPoller` declares its ring first) and
        // after every receive that could write into `mem` has completed (or leaks them).
        unsafe { submitter.register_buf_ring_with_flags(entries as u64, ENTRIES, GROUP, 0) }
            .map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!(
                        "io_uring refused a provided-buffer ring (Linux 5.19 or later is needed \
                         for multishot receives): {e}"
                    ),
                )
            })?;
        for bid in 0..ENTRIES {
            ring.give_back(bid);
        }
        ring.publish();
        Ok(ring)
    }

    /// The first `len` bytes of buffer `bid` (as a completion reported them).
    pub(super) fn bytes(&self, bid: u16, len: usize) -> &[u8] {
        let start = bid as usize * BUF_SIZE;
        &self.mem[start..start + len.min(BUF_SIZE)]
    }

    /// Queue buffer `bid` for the kernel again (seen by it after [`BufRing::publish`]).
    pub(super) fn give_back(&mut self, bid: u16) {
        if bid >= ENTRIES {
            return; // not one of ours: never handed out
        }
        let index = (self.tail & (ENTRIES - 1)) as usize;
        let addr = self.mem.as_ptr() as u64 + bid as u64 * BUF_SIZE as u64;
        // SAFETY: `index < ENTRIES`, inside the allocation; the kernel reads only entries
        // between its head and the published tail, and this one is past the published tail.
        let entry = unsafe { &mut *self.entries.add(index) };
        entry.set_addr(addr);
        entry.set_len(BUF_SIZE as u32);
        entry.set_bid(bid);
        self.tail = self.tail.wrapping_add(1);
    }

    /// Let the kernel see every buffer given back so far.
    pub(super) fn publish(&mut self) {
        // SAFETY: the tail field lies inside the first entry of our allocation, is u16-aligned,
        // and is shared with the kernel only through atomic accesses (release: the entries
        // written before are visible to it first).
        unsafe {
            let tail = BufRingEntry::tail(self.entries) as *const AtomicU16;
            (*tail).store(self.tail, Ordering::Release);
        }
    }
}

impl Drop for BufRing {
    fn drop(&mut self) {
        if self.leak {
            // A receive may still own a buffer: leaking a fixed block once is better than the
            // kernel writing into freed memory.
            std::mem::forget(std::mem::take(&mut self.mem));
            return;
        }
        // SAFETY: allocated in `new` with this layout, freed once.
        unsafe { dealloc(self.entries as *mut u8, self.layout) };
    }
}
