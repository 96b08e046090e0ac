//! Heap allocations per request on the hot path, counted by a counting global allocator: a
//! keep-alive GET of a small cached file, driven through the session on bingfa-net's rig as a
//! driver would. The count is per thread (the allocator counts only while this thread asks it
//! to), so other tests in this binary can't disturb it; this binary holds only this test.

use bingfa_http::HttpServer;
use bingfa_net::rig::{loopback, Rig};
use bingfa_net::{Model, Protocol};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::time::Duration;

struct Counting;

thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    static COUNT: Cell<u64> = const { Cell::new(0) };
}

// SAFETY: every call is passed on to the system allocator unchanged; the counters are
// const-initialised thread-locals without destructors, which never allocate.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNTING.with(Cell::get) {
            COUNT.with(|c| c.set(c.get() + 1));
        }
        // SAFETY: the caller's contract for `alloc` is passed on as it is.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System.alloc` with this layout (the caller's contract).
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if COUNTING.with(Cell::get) {
            COUNT.with(|c| c.set(c.get() + 1));
        }
        // SAFETY: the caller's contract for `realloc` is passed on as it is.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// Allocations made by `f` on this thread.
fn allocations(f: impl FnOnce()) -> u64 {
    COUNT.with(|c| c.set(0));
    COUNTING.with(|c| c.set(true));
    f();
    COUNTING.with(|c| c.set(false));
    COUNT.with(Cell::get)
}

#[test]
fn a_cached_small_file_costs_one_allocation_per_request() {
    let dir = std::env::temp_dir().join(format!("bingfa-alloc-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let body = "x".repeat(1024);
    std::fs::write(dir.join("small.html"), &body).unwrap();
    // The cache takes a file only once its times are a second old (see filecache.rs).
    std::thread::sleep(Duration::from_millis(1100));
    let proto = HttpServer::new(&dir)
        .unwrap()
        .into_protocol(Model::Epoll, 1);
    let info = loopback(1);
    let mut rig = Rig::opened(proto.new_session(&info), info);
    let req = b"GET /small.html HTTP/1.1\r\nHost: bench\r\n\r\n";
    // The first request fills the cache (and the per-thread date, siblings and type tables).
    for _ in 0..3 {
        assert_eq!(rig.data(req), req.len());
    }
    let first = rig.take_output().text();
    assert!(first.starts_with("HTTP/1.1 200 OK\r\n"), "{first}");
    assert!(first.ends_with(&body), "{first}");
    const N: u64 = 1000;
    let n = allocations(|| {
        for _ in 0..N {
            rig.data(req);
        }
    });
    let out = rig.take_output();
    assert_eq!(
        out.written.len(),
        first.len() / 3 * N as usize,
        "every answer is whole"
    );
    assert!(!out.closes());
    let _ = std::fs::remove_dir_all(&dir);
    // The output buffer is the one allocation a response needs (the driver owns and frees
    // it); the rig's own queue grows a few times over the run.
    let per = n as f64 / N as f64;
    println!("allocations per request: {per:.2}");
    assert!(per <= 1.05, "{per} allocations per request");
}
