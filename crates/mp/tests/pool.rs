//! The process pool under both start methods: every API, exact results, panics, killed and
//! crashing workers, recycling, initializers, close/join/terminate.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bingfa_mp::{Pool, PoolError, StartMethod, Value};

bingfa_mp::spawn_entry!();

fn pool(m: StartMethod, n: usize) -> Pool {
    Pool::builder()
        .processes(n)
        .start_method(m)
        .build()
        .unwrap()
}

fn square(x: u64) -> u64 {
    x * x
}

fn add((a, b): (i32, i32)) -> i32 {
    a + b
}

fn fail_on_odd(x: u32) -> u32 {
    if x % 2 == 1 {
        panic!("odd input {x}");
    }
    x
}

fn die_on(x: u32) -> u32 {
    if x == 13 {
        // SAFETY: raise only signals this worker and touches no memory; SIGKILL cannot be
        // caught, so the worker dies on the spot, as the test wants.
        unsafe { libc::raise(libc::SIGKILL) };
    }
    x
}

fn segfault(_: ()) -> u32 {
    // A real invalid write (raise() would be swallowed by std's SIGSEGV handler).
    // SAFETY: address 0 lies outside every Rust allocation, and a volatile access to memory
    // outside any Rust allocation is not UB: the pointer need not be valid, the access may
    // trap (see `ptr::write_volatile`). Linux never maps page 0 (vm.mmap_min_addr), so it
    // traps with SIGSEGV and this worker dies of it, which is what the test wants.
    unsafe { std::ptr::null_mut::<u32>().write_volatile(1) };
    0
}

fn sleep_ms(ms: u64) -> u64 {
    std::thread::sleep(Duration::from_millis(ms));
    ms
}

fn apply_and_async(m: StartMethod) {
    let p = pool(m, 2);
    assert_eq!(p.apply(square, 7).unwrap(), 49);
    let rs: Vec<_> = (0..100).map(|i| p.apply_async(square, i)).collect();
    for (i, r) in rs.into_iter().enumerate() {
        let i = i as u64;
        assert_eq!(r.get().unwrap(), i * i);
    }
    let r = p.apply_async(sleep_ms, 200);
    assert!(!r.ready());
    assert_eq!(r.successful(), None);
    assert_eq!(
        r.get_timeout(Duration::from_millis(10)),
        Err(PoolError::Timeout)
    );
    assert_eq!(r.get_timeout(Duration::from_secs(10)), Ok(200));
    assert!(r.ready());
    assert_eq!(
        r.get_timeout(Duration::from_secs(1)),
        Err(PoolError::AlreadyTaken)
    );
}

fn callbacks_run(m: StartMethod) {
    let p = pool(m, 2);
    let ok = Arc::new(AtomicUsize::new(0));
    let bad = Arc::new(AtomicUsize::new(0));
    let mut rs = Vec::new();
    for i in 0..10u32 {
        let (ok, bad) = (ok.clone(), bad.clone());
        rs.push(p.apply_async_with(
            fail_on_odd,
            i,
            move |v| {
                ok.fetch_add(*v as usize, Ordering::SeqCst);
            },
            move |e| {
                assert!(matches!(e, PoolError::Panicked { .. }));
                bad.fetch_add(1, Ordering::SeqCst);
            },
        ));
    }
    for r in &rs {
        r.wait();
    }
    assert_eq!(ok.load(Ordering::SeqCst), 2 + 4 + 6 + 8);
    assert_eq!(bad.load(Ordering::SeqCst), 5);
    assert_eq!(rs[0].successful(), Some(true));
    assert_eq!(rs[1].successful(), Some(false));
}

fn panicking_callback_is_contained(m: StartMethod) {
    let p = pool(m, 2);
    let r = p.apply_async_with(square, 4, |_| panic!("callback bug"), |_| {});
    assert_eq!(r.get_timeout(Duration::from_secs(10)), Ok(16));
    assert_eq!(p.apply(square, 5), Ok(25));
}

fn map_variants(m: StartMethod) {
    let p = pool(m, 2);
    let want: Vec<u64> = (0..1000u64).map(|x| x * x).collect();
    assert_eq!(p.map(square, 0..1000).unwrap(), want);
    assert_eq!(p.map_chunked(square, 0..1000, 1).unwrap(), want);
    assert_eq!(p.map_chunked(square, 0..1000, 37).unwrap(), want);
    assert_eq!(p.map(square, Vec::new()).unwrap(), Vec::<u64>::new());
    let got: Vec<u64> = p.imap(square, 0..200).map(Result::unwrap).collect();
    assert_eq!(got, want[..200]);
    let mut un: Vec<u64> = p
        .imap_unordered(square, 0..200)
        .map(Result::unwrap)
        .collect();
    un.sort();
    assert_eq!(un, want[..200]);
    assert_eq!(
        p.starmap(add, vec![(1, 2), (3, 4), (-5, 5)]).unwrap(),
        vec![3, 7, 0]
    );
    assert_eq!(
        p.starmap_async(add, vec![(1, 1), (2, 2)]).get(),
        Ok(vec![2, 4])
    );
    let mut it = p.imap(sleep_ms, vec![300]);
    assert_eq!(
        it.next_timeout(Duration::from_millis(10)),
        Some(Err(PoolError::Timeout))
    );
    assert_eq!(it.next_timeout(Duration::from_secs(10)), Some(Ok(300)));
    assert_eq!(it.next(), None);

    let r = p.map_async(square, 0..1000);
    assert_eq!(r.get_timeout(Duration::from_secs(20)), Ok(want.clone()));
    assert_eq!(p.map_async(square, Vec::new()).get(), Ok(vec![]));
    assert_eq!(
        p.map_async(fail_on_odd, 0..10).get(),
        Err(PoolError::Panicked {
            message: "odd input 1".into()
        })
    );
}

fn pool_outlives_the_thread_that_built_it(m: StartMethod) {
    // Workers are started by the pool's own thread: the builder thread exiting (which would
    // fire a death signal tied to it) must not kill them.
    let p = std::thread::spawn(move || pool(m, 2)).join().unwrap();
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(p.map(square, 0..50).unwrap().len(), 50);
    assert_eq!(bingfa_mp::active_children().len(), 2);
}

fn panic_fails_only_its_task(m: StartMethod) {
    let p = pool(m, 2);
    let rs: Vec<_> = p.imap(fail_on_odd, 0..10).collect();
    for (i, r) in rs.into_iter().enumerate() {
        if i % 2 == 1 {
            assert_eq!(
                r,
                Err(PoolError::Panicked {
                    message: format!("odd input {i}")
                })
            );
        } else {
            assert_eq!(r, Ok(i as u32));
        }
    }
    assert_eq!(
        p.map(fail_on_odd, 0..10),
        Err(PoolError::Panicked {
            message: "odd input 1".into()
        })
    );
    assert_eq!(p.apply(square, 3).unwrap(), 9);
}

fn killed_worker_fails_its_task_and_is_replaced(m: StartMethod) {
    let p = pool(m, 2);
    let rs: Vec<_> = p.imap(die_on, 0..40).collect();
    for (i, r) in rs.into_iter().enumerate() {
        if i == 13 {
            assert!(
                matches!(r, Err(PoolError::WorkerLost { exitcode: -9, .. })),
                "{r:?}"
            );
        } else {
            assert_eq!(r, Ok(i as u32), "task {i}");
        }
    }
    match p.apply(segfault, ()) {
        Err(PoolError::WorkerLost { exitcode, .. }) => assert_eq!(exitcode, -libc::SIGSEGV),
        other => panic!("expected WorkerLost, got {other:?}"),
    }
    // Still two working workers.
    assert_eq!(p.map(square, 0..100).unwrap().len(), 100);
    let pids: std::collections::HashSet<u32> = p
        .map_chunked(pid_slow, 0..20, 1)
        .unwrap()
        .into_iter()
        .collect();
    assert!(pids.len() <= 2 && !pids.is_empty());
    p.close();
    p.join().unwrap();
    assert_eq!(common::zombies(), 0);
}

fn pid_slow(_: u32) -> u32 {
    std::thread::sleep(Duration::from_millis(5));
    std::process::id()
}

fn external_sigkill_of_busy_worker(m: StartMethod) {
    let p = pool(m, 2);
    let a = p.apply_async(pid_then_sleep, 5000);
    let b = p.apply_async(sleep_ms, 50);
    assert_eq!(b.get_timeout(Duration::from_secs(10)), Ok(50));
    let kids = bingfa_mp::active_children();
    assert_eq!(kids.len(), 2);
    // Kill both; only the busy one held a task.
    for k in &kids {
        // SAFETY: kill touches no memory; each pid is a live worker, a child of ours not yet
        // reaped (just listed by active_children), so the pid has not been reused.
        unsafe { libc::kill(k.pid as i32, libc::SIGKILL) };
    }
    assert!(matches!(
        a.get_timeout(Duration::from_secs(10)),
        Err(PoolError::WorkerLost { exitcode: -9, .. })
    ));
    assert_eq!(p.apply(square, 5).unwrap(), 25);
}

fn pid_then_sleep(ms: u64) -> u32 {
    std::thread::sleep(Duration::from_millis(ms));
    std::process::id()
}

fn maxtasksperchild_recycles(m: StartMethod) {
    let p = Pool::builder()
        .processes(2)
        .maxtasksperchild(3)
        .start_method(m)
        .build()
        .unwrap();
    let pids = p.map_chunked(pid_slow, 0..30, 1).unwrap();
    let distinct: std::collections::HashSet<_> = pids.iter().collect();
    // 30 tasks, at most 3 per worker: at least 10 different processes.
    assert!(distinct.len() >= 10, "{} workers", distinct.len());
    for pid in &distinct {
        assert!(pids.iter().filter(|p| p == pid).count() <= 3);
    }
    p.close();
    p.join().unwrap();
}

static COUNTER: OnceLock<Value<u64>> = OnceLock::new();

fn init_counter(v: Value<u64>) {
    let _ = COUNTER.set(v);
}

fn bump(n: u64) -> u64 {
    let v = COUNTER.get().expect("initializer ran");
    let mut g = v.lock().unwrap();
    *g += n;
    n
}

fn initializer_passes_handles(m: StartMethod) {
    let v = Value::new(0u64).unwrap();
    let p = Pool::builder()
        .processes(2)
        .initializer(init_counter, v.clone())
        .start_method(m)
        .build()
        .unwrap();
    let total: u64 = p.map_chunked(bump, 1..=100, 7).unwrap().iter().sum();
    assert_eq!(total, 5050);
    assert_eq!(v.get(), 5050);
}

fn bad_init(_: ()) {
    panic!("no database");
}

fn failing_initializer_breaks_pool(m: StartMethod) {
    let p = Pool::builder()
        .processes(2)
        .initializer(bad_init, ())
        .start_method(m)
        .build()
        .unwrap();
    let r = p
        .apply_async(square, 2)
        .get_timeout(Duration::from_secs(20));
    assert_eq!(r, Err(PoolError::Initializer("no database".into())));
    assert_eq!(
        p.apply(square, 2),
        Err(PoolError::Initializer("no database".into()))
    );
}

fn close_join_terminate(m: StartMethod) {
    let p = pool(m, 2);
    assert_eq!(p.join(), Err(PoolError::StillRunning));
    let rs: Vec<_> = (0..4).map(|_| p.apply_async(sleep_ms, 50)).collect();
    p.close();
    assert_eq!(p.apply(square, 1), Err(PoolError::NotRunning));
    p.join().unwrap();
    assert!(p.is_finished());
    for r in rs {
        assert_eq!(r.get(), Ok(50));
    }
    assert!(bingfa_mp::active_children().is_empty());

    let p = pool(m, 2);
    let rs: Vec<_> = (0..6).map(|_| p.apply_async(sleep_ms, 10_000)).collect();
    std::thread::sleep(Duration::from_millis(50));
    let t = std::time::Instant::now();
    p.terminate();
    assert!(t.elapsed() < Duration::from_secs(5));
    for r in rs {
        assert_eq!(
            r.get_timeout(Duration::from_secs(5)),
            Err(PoolError::Terminated)
        );
    }
    p.join().unwrap();
    assert!(bingfa_mp::active_children().is_empty());

    let p = pool(m, 2);
    let r = p.apply_async(sleep_ms, 10_000);
    drop(p);
    assert_eq!(
        r.get_timeout(Duration::from_secs(5)),
        Err(PoolError::Terminated)
    );
    assert!(common::eventually(
        Duration::from_secs(5),
        || common::zombies() == 0
    ));
}

fn default_size_is_cpu_count(m: StartMethod) {
    let p = Pool::builder().start_method(m).build().unwrap();
    assert_eq!(p.processes(), bingfa_mp::cpu_count());
    assert_eq!(bingfa_mp::active_children().len(), bingfa_mp::cpu_count());
}

fn checksum_and_grow(v: Vec<u8>) -> (u64, Vec<u8>) {
    let sum = v.iter().map(|&b| b as u64).sum();
    let mut out = v.clone();
    out.extend_from_slice(&v);
    (sum, out)
}

fn large_args_and_results(m: StartMethod) {
    let p = pool(m, 2);
    // Far beyond socket buffers and the workers' result slots, in both directions.
    let inputs: Vec<Vec<u8>> = (0..6u8)
        .map(|k| (0..(3 << 20)).map(|i| (i as u8).wrapping_mul(k)).collect())
        .collect();
    let outs = p.map_chunked(checksum_and_grow, inputs.clone(), 1).unwrap();
    for (inp, (sum, out)) in inputs.iter().zip(outs) {
        assert_eq!(sum, inp.iter().map(|&b| b as u64).sum::<u64>());
        assert_eq!(out.len(), 2 * inp.len());
        assert_eq!(&out[..inp.len()], &inp[..]);
    }
}

fn many_tiny_tasks_from_many_threads(m: StartMethod) {
    let p = Arc::new(pool(m, 2));
    let ts: Vec<_> = (0..4u64)
        .map(|t| {
            let p = p.clone();
            std::thread::spawn(move || {
                let rs: Vec<_> = (0..5000u64)
                    .map(|i| p.apply_async(square, t * 10_000 + i))
                    .collect();
                rs.into_iter()
                    .enumerate()
                    .all(|(i, r)| r.get() == Ok((t * 10_000 + i as u64).pow(2)))
            })
        })
        .collect();
    for t in ts {
        assert!(t.join().unwrap());
    }
}

fn tasks_behind_a_long_one_are_stolen(m: StartMethod) {
    let p = pool(m, 2);
    // A 5 s task first, then 400 short ones: the backlog is deep, so the long task's worker is
    // handed a batch of short ones queued behind it. They must not wait 5 s for it.
    let mut items = vec![5000u64];
    items.extend([1; 400]);
    let t = std::time::Instant::now();
    let mut it = p.imap_unordered(sleep_ms, items);
    for _ in 0..400 {
        assert_eq!(it.next_timeout(Duration::from_secs(20)), Some(Ok(1)));
    }
    let short_done = t.elapsed();
    assert!(
        short_done < Duration::from_millis(4000),
        "short tasks waited behind the long one: {short_done:?}"
    );
    assert_eq!(it.next_timeout(Duration::from_secs(20)), Some(Ok(5000)));
    assert_eq!(it.next(), None);
    // Stolen tasks are neither lost nor run twice: a full map still adds up.
    let mut items = vec![0u64];
    items.extend(1..=2000);
    let got = p.map(slow_zero, items).unwrap();
    assert_eq!(got, (0..=2000).collect::<Vec<u64>>());
}

fn slow_zero(x: u64) -> u64 {
    if x == 0 {
        std::thread::sleep(Duration::from_millis(300));
    }
    x
}

static MARKS: OnceLock<bingfa_mp::Array<u32>> = OnceLock::new();

fn init_marks(a: bingfa_mp::Array<u32>) {
    let _ = MARKS.set(a);
}

fn mark(i: u32) -> u32 {
    // Every 40th task is slow: the others pile up behind it and get stolen.
    if i.is_multiple_of(40) {
        std::thread::sleep(Duration::from_millis(5));
    }
    let a = MARKS.get().expect("initializer ran");
    let mut g = a.lock().unwrap();
    g[i as usize] += 1;
    i
}

fn every_task_runs_exactly_once(m: StartMethod) {
    const N: u32 = 2000;
    let marks = bingfa_mp::Array::<u32>::new(N as usize).unwrap();
    let p = Pool::builder()
        .processes(3)
        .initializer(init_marks, marks.clone())
        .start_method(m)
        .build()
        .unwrap();
    let rs: Vec<_> = (0..N).map(|i| p.apply_async(mark, i)).collect();
    for (i, r) in rs.into_iter().enumerate() {
        assert_eq!(r.get_timeout(Duration::from_secs(60)), Ok(i as u32));
    }
    // Small rounds led by a slow task: the tasks queued behind it are stolen in every round.
    for round in 0..N / 40 {
        let r = round * 40..(round + 1) * 40;
        assert_eq!(
            p.map_chunked(mark, r.clone(), 1).unwrap(),
            r.collect::<Vec<_>>()
        );
    }
    let counts = marks.to_vec();
    let wrong: Vec<(usize, u32)> = counts
        .iter()
        .enumerate()
        .filter(|(_, &c)| c != 2)
        .map(|(i, &c)| (i, c))
        .collect();
    assert!(
        wrong.is_empty(),
        "tasks not run exactly once per call: {wrong:?}"
    );
}

fn read_value(v: Value<u64>) -> u64 {
    v.get()
}

fn handles_are_refused_as_task_arguments(m: StartMethod) {
    let p = pool(m, 1);
    let v = Value::new(5u64).unwrap();
    match p.apply(read_value, v.clone()) {
        Err(PoolError::Codec(msg)) => assert!(msg.contains("initializer"), "{msg}"),
        other => panic!("expected a Codec error, got {other:?}"),
    }
    assert!(matches!(
        p.map(read_value, vec![v]),
        Err(PoolError::Codec(_))
    ));
    assert_eq!(p.apply(square, 2), Ok(4));
}

both_methods!(
    handles_are_refused_as_task_arguments,
    every_task_runs_exactly_once,
    pool_outlives_the_thread_that_built_it,
    tasks_behind_a_long_one_are_stolen,
    panicking_callback_is_contained,
    large_args_and_results,
    many_tiny_tasks_from_many_threads,
    apply_and_async,
    callbacks_run,
    map_variants,
    panic_fails_only_its_task,
    killed_worker_fails_its_task_and_is_replaced,
    external_sigkill_of_busy_worker,
    maxtasksperchild_recycles,
    initializer_passes_handles,
    failing_initializer_breaks_pool,
    close_join_terminate,
    default_size_is_cpu_count,
);
