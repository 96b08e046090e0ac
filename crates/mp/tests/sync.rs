//! Shared memory values and the cross-process synchronisation primitives, under both start
//! methods: exact counts, owner-died recovery, timeouts, and the error variants.

mod common;

use std::time::{Duration, Instant};

use bingfa_mp::{
    Array, Barrier, BoundedSemaphore, Condition, Event, Lock, LockError, Process, RLock, Semaphore,
    StartMethod, SyncError, Value,
};

bingfa_mp::spawn_entry!();

fn start<A, R>(m: StartMethod, f: fn(A) -> R, a: A) -> Process<R>
where
    A: serde::Serialize + serde::de::DeserializeOwned,
    R: serde::Serialize + serde::de::DeserializeOwned,
{
    Process::builder().start_method(m).spawn(f, a).unwrap()
}

fn add_many((v, n): (Value<u64>, u32)) {
    for _ in 0..n {
        *v.lock().unwrap() += 1;
    }
}

fn value_counts_exactly(m: StartMethod) {
    let v = Value::new(0u64).unwrap();
    let kids: Vec<_> = (0..4)
        .map(|_| start(m, add_many, (v.clone(), 2000)))
        .collect();
    add_many((v.clone(), 2000));
    for k in kids {
        k.join().unwrap();
    }
    assert_eq!(v.get(), 10_000);
}

fn fill(a: Array<i32>) {
    let mut g = a.lock().unwrap();
    for (i, x) in g.iter_mut().enumerate() {
        *x = -(i as i32) * 10;
    }
}

fn array_and_bytes(m: StartMethod) {
    let a = Array::<i32>::new(5).unwrap();
    start(m, fill, a.clone()).join().unwrap();
    assert_eq!(a.to_vec(), vec![0, -10, -20, -30, -40]);
    assert_eq!(a.get(2), Some(-20));
    assert_eq!(a.get(5), None);
    assert!(a.set(4, 7));
    assert!(!a.set(5, 7));

    let s = Array::<u8>::from_bytes(b"hello world\0\0\0\0\0").unwrap();
    let p = start(
        m,
        |s: Array<u8>| {
            let up = s.value().to_ascii_uppercase();
            s.set_value(&up);
            s.to_string()
        },
        s.clone(),
    );
    assert_eq!(p.join().unwrap(), "HELLO WORLD");
    assert_eq!(s.to_string(), "HELLO WORLD");
    assert!(!s.set_value(&[b'x'; 17]));
}

fn die_holding(l: Lock) {
    let g = l.acquire().unwrap();
    std::mem::forget(g);
    std::process::exit(0);
}

fn lock_owner_died(m: StartMethod) {
    let l = Lock::new().unwrap();
    start(m, die_holding, l.clone()).join().unwrap_err();
    match l.acquire_timeout(Duration::from_secs(10)) {
        Err(LockError::OwnerDied(g)) => drop(g),
        other => panic!("expected OwnerDied, got {other:?}"),
    }
    // Repaired: the next acquire is clean.
    let g = l.acquire().unwrap();
    assert!(matches!(l.try_acquire(), Err(LockError::WouldBlock)));
    drop(g);
}

fn die_in_rlock(r: RLock) {
    let a = r.acquire().unwrap();
    let b = r.acquire().unwrap();
    std::mem::forget((a, b));
    std::process::exit(0);
}

fn die_mid_update(v: Value<[u64; 2]>) {
    let mut g = v.lock().unwrap();
    g[0] = 1; // the second half of the update never happens
    std::mem::forget(g);
    std::process::exit(0);
}

fn rlock_and_value_owner_died(m: StartMethod) {
    let r = RLock::new().unwrap();
    start(m, die_in_rlock, r.clone()).join().unwrap_err();
    assert!(matches!(
        r.acquire_timeout(Duration::from_secs(10)),
        Err(LockError::OwnerDied(_))
    ));
    assert!(r.acquire().is_ok());

    let v = Value::new([0u64; 2]).unwrap();
    start(m, die_mid_update, v.clone()).join().unwrap_err();
    match v.lock_timeout(Duration::from_secs(10)) {
        Err(LockError::OwnerDied(mut g)) => {
            // The half-done update is visible; the new owner repairs it.
            assert_eq!(*g, [1, 0]);
            g[1] = 1;
        }
        other => panic!("expected OwnerDied, got {other:?}"),
    }
    assert_eq!(v.get(), [1, 1]);
}

fn condition_and_barrier_between_threads(_m: StartMethod) {
    let c = Condition::new().unwrap();
    let b = Barrier::new(4).unwrap();
    let ready = Value::new(0u32).unwrap();
    let ts: Vec<_> = (0..3)
        .map(|_| {
            let (c, b, ready) = (c.clone(), b.clone(), ready.clone());
            std::thread::spawn(move || {
                let i = b.wait_timeout(Duration::from_secs(10)).unwrap();
                let mut g = c.acquire().unwrap();
                let ok = c
                    .wait_for(&mut g, Some(Duration::from_secs(10)), || {
                        // SAFETY: `ready` is only ever accessed unlocked (no guard exists).
                        unsafe { ready.get_unlocked() == 1 }
                    })
                    .unwrap();
                (i, ok)
            })
        })
        .collect();
    let mine = b.wait_timeout(Duration::from_secs(10)).unwrap();
    {
        let _g = c.acquire().unwrap();
        // SAFETY: `ready` is only ever accessed unlocked (no guard exists).
        unsafe { ready.set_unlocked(1) };
        c.notify_all();
    }
    let mut idx = vec![mine];
    for t in ts {
        let (i, ok) = t.join().unwrap();
        assert!(ok);
        idx.push(i);
    }
    idx.sort();
    assert_eq!(idx, vec![0, 1, 2, 3]);
}

fn hold_then_release((l, e): (Lock, Event)) {
    let _g = l.acquire().unwrap();
    e.set();
    std::thread::sleep(Duration::from_millis(300));
}

fn lock_excludes_and_times_out(m: StartMethod) {
    let l = Lock::new().unwrap();
    let e = Event::new().unwrap();
    let p = start(m, hold_then_release, (l.clone(), e.clone()));
    assert!(e.wait_timeout(Duration::from_secs(10)));
    assert!(matches!(l.try_acquire(), Err(LockError::WouldBlock)));
    assert!(matches!(
        l.acquire_timeout(Duration::from_millis(20)),
        Err(LockError::Timeout)
    ));
    let g = l.acquire_timeout(Duration::from_secs(10)).unwrap();
    drop(g);
    p.join().unwrap();
}

fn rlock_reenters(m: StartMethod) {
    let r = RLock::new().unwrap();
    let a = r.acquire().unwrap();
    let b = r.acquire().unwrap();
    let p = start(
        m,
        |r: RLock| matches!(r.try_acquire(), Err(LockError::WouldBlock)),
        r.clone(),
    );
    assert!(p.join().unwrap(), "child took an RLock the parent holds");
    drop(b);
    drop(a);
    let p = start(m, |r: RLock| r.try_acquire().is_ok(), r.clone());
    assert!(p.join().unwrap());
}

fn take_units((s, n): (Semaphore, u32)) -> u32 {
    (0..n)
        .filter(|_| s.acquire_timeout(Duration::from_millis(50)))
        .count() as u32
}

fn semaphore_counts(m: StartMethod) {
    let s = Semaphore::new(3).unwrap();
    assert_eq!(start(m, take_units, (s.clone(), 5)).join().unwrap(), 3);
    assert_eq!(s.get_value(), 0);
    assert!(!s.try_acquire());
    // A waiter in another process is woken by a release here.
    let p = start(
        m,
        |s: Semaphore| s.acquire_timeout(Duration::from_secs(10)),
        s.clone(),
    );
    std::thread::sleep(Duration::from_millis(50));
    s.release();
    assert!(p.join().unwrap());
    s.release_n(2);
    assert_eq!(s.get_value(), 2);

    let b = BoundedSemaphore::new(2).unwrap();
    assert!(b.try_acquire());
    b.release().unwrap();
    assert!(matches!(b.release(), Err(SyncError::ReleasedTooManyTimes)));
    assert_eq!(b.get_value(), 2);
}

fn event_wakes_waiters(m: StartMethod) {
    let e = Event::new().unwrap();
    assert!(!e.is_set());
    let kids: Vec<_> = (0..3)
        .map(|_| {
            start(
                m,
                |e: Event| e.wait_timeout(Duration::from_secs(10)),
                e.clone(),
            )
        })
        .collect();
    std::thread::sleep(Duration::from_millis(50));
    e.set();
    for k in kids {
        assert!(k.join().unwrap());
    }
    assert!(e.is_set());
    e.clear();
    let t = Instant::now();
    assert!(!e.wait_timeout(Duration::from_millis(30)));
    assert!(t.elapsed() >= Duration::from_millis(30));
}

fn consumer((c, v): (Condition, Value<u32>)) -> u32 {
    let mut g = c.acquire().unwrap();
    let ok = c
        .wait_for(&mut g, Some(Duration::from_secs(10)), || {
            // SAFETY: `v` is only ever accessed unlocked (no guard exists).
            unsafe { v.get_unlocked() >= 3 }
        })
        .unwrap();
    assert!(ok);
    // SAFETY: as above.
    unsafe { v.get_unlocked() }
}

fn condition_notifies(m: StartMethod) {
    let c = Condition::new().unwrap();
    let v = Value::new(0u32).unwrap();
    let p = start(m, consumer, (c.clone(), v.clone()));
    for _ in 0..3 {
        std::thread::sleep(Duration::from_millis(20));
        let _g = c.acquire().unwrap();
        // SAFETY: `v` is only ever accessed unlocked (no guard exists).
        unsafe { v.set_unlocked(v.get_unlocked() + 1) };
        c.notify_all();
    }
    assert_eq!(p.join().unwrap(), 3);
    let mut g = c.acquire().unwrap();
    assert!(!c.wait_timeout(&mut g, Duration::from_millis(20)).unwrap());
}

fn barrier_party(b: Barrier) -> Vec<u32> {
    (0..3)
        .map(|_| b.wait_timeout(Duration::from_secs(10)).unwrap())
        .collect()
}

fn barrier_releases_together(m: StartMethod) {
    let b = Barrier::new(3).unwrap();
    let kids: Vec<_> = (0..2).map(|_| start(m, barrier_party, b.clone())).collect();
    let mut mine = barrier_party(b.clone());
    for k in kids {
        let theirs = k.join().unwrap();
        for (x, y) in mine.iter_mut().zip(theirs) {
            *x += y;
        }
    }
    // Each round hands out indices 0, 1, 2 exactly once.
    assert_eq!(mine, vec![3, 3, 3]);
    // A party that waits alone breaks the barrier for everyone.
    assert!(matches!(
        b.wait_timeout(Duration::from_millis(20)),
        Err(SyncError::BrokenBarrier)
    ));
    assert!(b.broken());
    assert!(matches!(b.wait(), Err(SyncError::BrokenBarrier)));
    b.reset();
    assert!(!b.broken());
    // A party waiting when the barrier is reset is released with BrokenBarrier.
    let p = start(
        m,
        |b: Barrier| b.wait_timeout(Duration::from_secs(10)).is_err(),
        b.clone(),
    );
    assert!(common::eventually(Duration::from_secs(10), || b
        .n_waiting()
        == 1));
    b.reset();
    assert!(
        p.join().unwrap(),
        "a reset released a waiter as if the barrier had passed"
    );
    // And the barrier (3 parties) works again.
    let qs: Vec<_> = (0..2)
        .map(|_| {
            start(
                m,
                |b: Barrier| b.wait_timeout(Duration::from_secs(10)).is_ok(),
                b.clone(),
            )
        })
        .collect();
    assert!(b.wait_timeout(Duration::from_secs(10)).is_ok());
    for q in qs {
        assert!(q.join().unwrap());
    }
}

fn primitives_work_between_threads(_m: StartMethod) {
    let v = Value::new(0i64).unwrap();
    let s = Semaphore::new(0).unwrap();
    let hs: Vec<_> = (0..4)
        .map(|_| {
            let (v, s) = (v.clone(), s.clone());
            std::thread::spawn(move || {
                for _ in 0..1000 {
                    *v.lock().unwrap() += 1;
                }
                s.release();
            })
        })
        .collect();
    for _ in 0..4 {
        assert!(s.acquire_timeout(Duration::from_secs(10)));
    }
    for h in hs {
        h.join().unwrap();
    }
    assert_eq!(v.get(), 4000);
}

fn memfds() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .flatten()
        .filter(|e| {
            std::fs::read_link(e.path())
                .map(|l| l.to_string_lossy().contains("bingfa-mp"))
                .unwrap_or(false)
        })
        .count()
}

fn freed_with_last_handle(m: StartMethod) {
    let before = memfds();
    let v = Value::new(7u32).unwrap();
    let a = Array::<u8>::new(100).unwrap();
    let l = Lock::new().unwrap();
    assert_eq!(memfds(), before + 3);
    let p = start(
        m,
        |(v, a, _l): (Value<u32>, Array<u8>, Lock)| v.get() + a.len() as u32,
        (v.clone(), a.clone(), l.clone()),
    );
    assert_eq!(p.join().unwrap(), 107);
    let v2 = v.clone();
    drop((v, a, l));
    assert_eq!(memfds(), before + 1, "a clone keeps its segment");
    drop(v2);
    assert_eq!(memfds(), before);
}

fn many_primitives_past_the_soft_fd_limit(m: StartMethod) {
    // SAFETY: rlimit is two integers, for which all-zero bytes are a valid value.
    let mut lim: libc::rlimit = unsafe { std::mem::zeroed() };
    // SAFETY: `lim` is a live, writable rlimit for getrlimit to fill in.
    unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) };
    if lim.rlim_max < 600 {
        return; // nothing to raise to on this machine
    }
    // This test runs in its own process (nextest), so lowering the limit harms nobody else.
    let low = libc::rlimit {
        rlim_cur: 128,
        rlim_max: lim.rlim_max,
    };
    // SAFETY: setrlimit only reads `low`, a live rlimit.
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &low) }, 0);
    let locks: Vec<Lock> = (0..400).map(|_| Lock::new().unwrap()).collect();
    let p = start(m, |l: Lock| l.try_acquire().is_ok(), locks[399].clone());
    assert!(p.join().unwrap());
    assert!(locks.iter().all(|l| l.try_acquire().is_ok()));
}

both_methods!(
    many_primitives_past_the_soft_fd_limit,
    rlock_and_value_owner_died,
    condition_and_barrier_between_threads,
    freed_with_last_handle,
    value_counts_exactly,
    array_and_bytes,
    lock_owner_died,
    lock_excludes_and_times_out,
    rlock_reenters,
    semaphore_counts,
    event_wakes_waiters,
    condition_notifies,
    barrier_releases_together,
    primitives_work_between_threads,
);
