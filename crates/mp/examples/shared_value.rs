//! Shared `Value`s (Python's `Value('i', 0)`, `Value('d', 0.0)`): four processes add to a
//! counter and to a running total under the values' locks; the parent reads exact results.
//!
//! `cargo run -p bingfa-mp --example shared_value [-- --fork]`

use bingfa_mp::{Process, StartMethod, Value};

/// How many processes add to the shared values.
pub(crate) const PROCS: u32 = 4;
/// How many additions each process makes.
pub(crate) const ADDS: u32 = 2500;

fn add((count, total, step): (Value<i32>, Value<f64>, f64)) {
    for _ in 0..ADDS {
        // The guard is Python's `with v.get_lock():` — the read and the write are one step.
        *count.lock().unwrap() += 1;
        *total.lock().unwrap() += step;
    }
}

/// Returns (count, total).
pub(crate) fn run(m: StartMethod) -> (i32, f64) {
    let count = Value::new(0i32).unwrap();
    let total = Value::new(0.0f64).unwrap();
    let ps: Vec<_> = (0..PROCS)
        .map(|_| {
            Process::builder()
                .start_method(m)
                .spawn(add, (count.clone(), total.clone(), 0.5))
                .unwrap()
        })
        .collect();
    for p in ps {
        p.join().unwrap();
    }
    (count.get(), total.get())
}

#[allow(dead_code)]
fn main() {
    let _rt = bingfa_mp::init();
    let m = if std::env::args().any(|a| a == "--fork") {
        StartMethod::Fork
    } else {
        StartMethod::Spawn
    };
    let (c, t) = run(m);
    println!(
        "count = {c} (expected {}), total = {t} (expected {})",
        PROCS * ADDS,
        (PROCS * ADDS) as f64 * 0.5
    );
}
