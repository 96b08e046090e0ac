//! Process pool (Python's `multiprocessing.Pool`): `map`, `apply_async` with a callback,
//! `imap_unordered`, a task that panics (only it fails) and a worker that is killed mid-task
//! (only its task fails, the worker is replaced, the rest complete).
//!
//! `cargo run -p bingfa-mp --example pool [-- --fork]`

use std::sync::{Arc, Mutex};

use bingfa_mp::{Pool, PoolError, StartMethod};

fn square(x: u64) -> u64 {
    x * x
}

fn checked_div((a, b): (i64, i64)) -> i64 {
    if b == 0 {
        panic!("division by zero: {a} / 0");
    }
    a / b
}

fn crash_on_7(x: u32) -> u32 {
    if x == 7 {
        // As if the OOM killer chose this worker.
        // SAFETY: raise only sends a signal to ourselves and touches no memory. SIGKILL ends
        // this worker on the spot, which is exactly what we want to show: the pool notices
        // and replaces it.
        unsafe { libc::raise(libc::SIGKILL) };
    }
    x * 10
}

/// What the tour produced, for the test to check.
#[derive(Debug)]
pub(crate) struct Tour {
    /// `pool.map(square, 0..10)`: the squares, in order.
    pub(crate) map: Vec<u64>,
    /// What the `apply_async` callback was handed (just `[144]`).
    pub(crate) callback_saw: Vec<u64>,
    /// The sum of the squares of 1 to 100, whatever order they came back in.
    pub(crate) unordered_sum: u64,
    /// One result per division: the one by zero is an error, the others are fine.
    pub(crate) divisions: Vec<Result<i64, PoolError>>,
    /// One result per task: only task 7, whose worker was killed, is an error.
    pub(crate) crashes: Vec<Result<u32, PoolError>>,
}

/// Builds a pool of 2 workers started with `m` and runs the whole tour on it.
pub(crate) fn run(m: StartMethod) -> Tour {
    let pool = Pool::builder()
        .processes(2)
        .start_method(m)
        .build()
        .unwrap();
    let map = pool.map(square, 0..10).unwrap();

    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = seen.clone();
    let r = pool.apply_async_with(square, 12, move |v| s.lock().unwrap().push(*v), |_| {});
    assert_eq!(r.get().unwrap(), 144);
    let callback_saw = seen.lock().unwrap().clone();

    let unordered_sum = pool
        .imap_unordered(square, 1..=100)
        .map(Result::unwrap)
        .sum();
    let divisions = pool
        .imap(checked_div, vec![(10, 2), (1, 0), (9, 3)])
        .collect();
    let crashes = pool.imap(crash_on_7, 0..10).collect();
    pool.close();
    pool.join().unwrap();
    Tour {
        map,
        callback_saw,
        unordered_sum,
        divisions,
        crashes,
    }
}

#[allow(dead_code)]
fn main() {
    let _rt = bingfa_mp::init();
    let m = if std::env::args().any(|a| a == "--fork") {
        StartMethod::Fork
    } else {
        StartMethod::Spawn
    };
    let t = run(m);
    println!("map(square, 0..10)            = {:?}", t.map);
    println!("apply_async callback saw        {:?}", t.callback_saw);
    println!("sum of imap_unordered(1..=100)= {}", t.unordered_sum);
    for r in &t.divisions {
        println!("checked_div                   -> {r:?}");
    }
    for (i, r) in t.crashes.iter().enumerate() {
        match r {
            Ok(v) => println!("crash_on_7({i})                 = {v}"),
            Err(e) => println!("crash_on_7({i})                 : {e}"),
        }
    }
}
