//! The thread-side primitives of `bingfa_mp::thread`.

use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bingfa_mp::thread::{self, Event, ReleasedTooManyTimes, Semaphore, ThreadLocal};

#[test]
fn event_set_clear_wait() {
    let e = Arc::new(Event::new());
    assert!(!e.is_set());
    let t = Instant::now();
    assert!(!e.wait_timeout(Duration::from_millis(20)));
    assert!(t.elapsed() >= Duration::from_millis(20));
    let waiters: Vec<_> = (0..3)
        .map(|_| {
            let e = e.clone();
            std::thread::spawn(move || e.wait_timeout(Duration::from_secs(10)))
        })
        .collect();
    std::thread::sleep(Duration::from_millis(20));
    e.set();
    for w in waiters {
        assert!(w.join().unwrap());
    }
    e.wait();
    e.clear();
    assert!(!e.is_set());
}

#[test]
fn semaphore_limits_and_bounds() {
    let s = Arc::new(Semaphore::new(2));
    let inside = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let ts: Vec<_> = (0..8)
        .map(|_| {
            let (s, inside, peak) = (s.clone(), inside.clone(), peak.clone());
            std::thread::spawn(move || {
                s.acquire();
                let n = inside.fetch_add(1, Ordering::SeqCst) + 1;
                peak.fetch_max(n, Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(5));
                inside.fetch_sub(1, Ordering::SeqCst);
                s.release().unwrap();
            })
        })
        .collect();
    for t in ts {
        t.join().unwrap();
    }
    assert!(peak.load(Ordering::SeqCst) <= 2);
    assert_eq!(s.get_value(), 2);
    assert!(s.try_acquire() && s.try_acquire());
    assert!(!s.try_acquire());
    assert!(!s.acquire_timeout(Duration::from_millis(10)));

    let b = Semaphore::bounded(1);
    assert_eq!(b.release(), Err(ReleasedTooManyTimes));
    b.acquire();
    assert_eq!(b.release(), Ok(()));
}

#[test]
fn rlock_reenters_and_excludes() {
    let r = Arc::new(thread::RLock::new(Cell::new(0)));
    let g1 = r.lock();
    let g2 = r.lock();
    g2.set(g2.get() + 1);
    let r2 = r.clone();
    let other = std::thread::spawn(move || r2.try_lock_for(Duration::from_millis(20)).is_none());
    assert!(other.join().unwrap(), "another thread got a held RLock");
    drop(g2);
    drop(g1);
    assert_eq!(r.lock().get(), 1);
}

#[test]
fn per_object_thread_local() {
    let tl: Arc<ThreadLocal<Cell<u32>>> = Arc::new(ThreadLocal::new());
    let start = Arc::new(std::sync::Barrier::new(4));
    let ts: Vec<_> = (1..=4u32)
        .map(|i| {
            let (tl, start) = (tl.clone(), start.clone());
            std::thread::spawn(move || {
                tl.get_or(|| Cell::new(0)).set(i);
                start.wait();
                tl.get().unwrap().get()
            })
        })
        .collect();
    let seen: Vec<u32> = ts.into_iter().map(|t| t.join().unwrap()).collect();
    assert_eq!(seen, vec![1, 2, 3, 4]);
    assert!(
        tl.get().is_none(),
        "the main thread has no value of its own"
    );
    let mut all: Vec<u32> = Arc::try_unwrap(tl)
        .unwrap()
        .into_iter()
        .map(Cell::into_inner)
        .collect();
    all.sort();
    assert_eq!(all, vec![1, 2, 3, 4]);
}

#[test]
fn os_thread_count_sees_new_threads() {
    let before = thread::os_thread_count();
    let stop = Arc::new(Event::new());
    let s = stop.clone();
    let t = std::thread::spawn(move || s.wait());
    assert!(thread::os_thread_count() > before);
    stop.set();
    t.join().unwrap();
}
