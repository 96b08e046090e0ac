//! Thread-local storage (Python's `threading.local()`): each thread keeps its own count in the
//! *same* object, a `ThreadLocal` field, with no lock; the owner adds them up at the end. The
//! static flavour, `thread_local!`, gives each thread its own name tag.
//!
//! One caveat of per-object storage worth seeing: a slot outlives its thread and is handed to
//! the next new thread (the `thread_local` crate recycles thread ids), so a value must be
//! reset by a thread that wants a fresh one. Here all workers run at once, so none inherits.
//!
//! `cargo run -p bingfa-mp --example thread_local`

use std::cell::{Cell, RefCell};
use std::sync::{Arc, Barrier};

use bingfa_mp::thread::ThreadLocal;

/// How many worker threads count.
pub(crate) const THREADS: u64 = 4;
/// Worker `i` (from 0) counts to `WORK * (i + 1)`, so each total is different.
pub(crate) const WORK: u64 = 10_000;

thread_local! {
    static TAG: RefCell<String> = const { RefCell::new(String::new()) };
}

/// Returns the total and, per thread, (its tag, what it counted).
pub(crate) fn run() -> (u64, Vec<(String, u64)>) {
    let counts: Arc<ThreadLocal<Cell<u64>>> = Arc::new(ThreadLocal::new());
    // Everyone is alive until everyone has counted: no thread inherits a finished one's slot.
    let all_done = Arc::new(Barrier::new(THREADS as usize));
    let threads: Vec<_> = (0..THREADS)
        .map(|i| {
            let (counts, all_done) = (counts.clone(), all_done.clone());
            std::thread::spawn(move || {
                TAG.with(|t| *t.borrow_mut() = format!("worker-{i}"));
                let mine = counts.get_or(|| Cell::new(0));
                for _ in 0..WORK * (i + 1) {
                    mine.set(mine.get() + 1);
                }
                let r = (TAG.with(|t| t.borrow().clone()), mine.get());
                all_done.wait();
                r
            })
        })
        .collect();
    let per_thread: Vec<(String, u64)> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    let counts = Arc::try_unwrap(counts).expect("threads are done");
    let total = counts.into_iter().map(Cell::into_inner).sum();
    (total, per_thread)
}

#[allow(dead_code)]
fn main() {
    let _rt = bingfa_mp::init();
    let (total, per) = run();
    for (tag, n) in &per {
        println!("{tag} counted {n} in its own slot");
    }
    // The main thread never set its tag: thread-locals are per thread.
    println!("main's tag: {:?}", TAG.with(|t| t.borrow().clone()));
    println!("total {total}");
}
