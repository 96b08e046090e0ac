//! Pool throughput on its own: `cargo run --release -p bingfa-lab --example pool_bench [N]`.
//! Prints the same JSON keys as python/pool_bench.py.

fn main() {
    let _rt = bingfa_mp::init();
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(200_000);
    let median = |f: fn(usize) -> f64| {
        let mut v: Vec<f64> = (0..5).map(|_| f(n)).collect();
        v.sort_by(|a, b| a.partial_cmp(b).unwrap());
        v[2]
    };
    let a = median(bingfa_lab::pool_bench::apply_async_tasks_per_sec);
    let m = median(bingfa_lab::pool_bench::map_chunksize1_tasks_per_sec);
    println!(
        "{{\"pool_apply_async_tasks_per_s\": {a:.0}, \"pool_map_chunksize1_tasks_per_s\": {m:.0}}}"
    );
}
