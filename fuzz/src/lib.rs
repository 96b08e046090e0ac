//! What every fuzz target shares: a counting global allocator that aborts (a crash AFL
//! records) when one allocation, or everything live at once, passes a bound. The bounds are the
//! point: a parser fed a few KB by a stranger must never ask for megabytes because a length
//! field said so.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

/// Largest single allocation allowed; a target may lower it with [`set_limits`].
static MAX_ONE: AtomicUsize = AtomicUsize::new(16 << 20);
/// Most bytes live at once.
static MAX_LIVE: AtomicUsize = AtomicUsize::new(64 << 20);
static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

pub struct Counting;

fn over(what: &[u8]) -> ! {
    // No formatting here: we are inside the allocator.
    unsafe {
        libc::write(2, what.as_ptr().cast(), what.len());
        libc::abort()
    }
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        track(l.size());
        System.alloc(l)
    }
    unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
        track(l.size());
        System.alloc_zeroed(l)
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        LIVE.fetch_sub(l.size(), Relaxed);
        System.dealloc(p, l)
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        LIVE.fetch_sub(l.size(), Relaxed);
        track(new);
        System.realloc(p, l, new)
    }
}

fn track(n: usize) {
    if n > MAX_ONE.load(Relaxed) {
        over(b"fuzz: one allocation past the bound\n");
    }
    let live = LIVE.fetch_add(n, Relaxed) + n;
    if live > MAX_LIVE.load(Relaxed) {
        over(b"fuzz: live allocations past the bound\n");
    }
    PEAK.fetch_max(live, Relaxed);
}

#[global_allocator]
static A: Counting = Counting;

/// Bounds for this target: one allocation, and all live allocations.
pub fn set_limits(one: usize, live: usize) {
    MAX_ONE.store(one, Relaxed);
    MAX_LIVE.store(live, Relaxed);
}

/// Splits `data` into chunks whose sizes come from its first byte, so each target also feeds
/// its parser piece by piece (what a socket does) and can compare with one-shot parsing.
pub fn chunks(data: &[u8]) -> (usize, &[u8]) {
    match data.split_first() {
        Some((&b, rest)) => (usize::from(b % 17) + 1, rest),
        None => (1, data),
    }
}
