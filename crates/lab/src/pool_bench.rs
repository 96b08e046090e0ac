//! Pool throughput for `bingfa lab ipc`: trivial tasks (`x + 1`) through a `Pool` of
//! `cpu_count()` workers, the way CPython's `Pool.apply_async` and `Pool.map(chunksize=1)` are
//! used (python/pool_bench.py measures those in the same run).
//!
//! The pool is started (default start method: spawn) and warmed up before the clock starts:
//! the figure is the steady-state task rate, which does not depend on how workers were started.

use std::time::Instant;

use bingfa_mp::{cpu_count, Pool};

fn inc(x: u64) -> u64 {
    x + 1
}

fn warm_pool() -> Pool {
    let pool = Pool::new(cpu_count()).expect("starting the pool");
    // Every worker started and has run tasks: the clock measures only the traffic.
    pool.map_chunked(inc, 0..(1000 * cpu_count() as u64), 1)
        .expect("warm-up");
    pool
}

/// Tasks per second: `n_tasks` `apply_async` calls, then every result collected with `get`.
pub fn apply_async_tasks_per_sec(n_tasks: usize) -> f64 {
    let pool = warm_pool();
    let t = Instant::now();
    let results: Vec<_> = (0..n_tasks as u64)
        .map(|i| pool.apply_async(inc, i))
        .collect();
    for (i, r) in results.into_iter().enumerate() {
        assert_eq!(r.get().expect("task"), i as u64 + 1);
    }
    n_tasks as f64 / t.elapsed().as_secs_f64()
}

/// Tasks per second through `map` with one item per task (Python's `map(f, it, chunksize=1)`).
pub fn map_chunksize1_tasks_per_sec(n_tasks: usize) -> f64 {
    let pool = warm_pool();
    let t = Instant::now();
    let out = pool.map_chunked(inc, 0..n_tasks as u64, 1).expect("map");
    let dt = t.elapsed().as_secs_f64();
    assert_eq!(out.len(), n_tasks);
    assert_eq!(
        out.last().copied(),
        n_tasks.checked_sub(1).map(|l| l as u64 + 1)
    );
    n_tasks as f64 / dt
}
