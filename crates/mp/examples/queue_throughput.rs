//! Queue throughput alone: small messages (`Option<u64>`) from one producer process to one
//! consumer (1→1), then from 4 producer processes to 4 consumers (4→4), as `bingfa lab ipc`
//! measures them beside CPython (BENCHMARKS.md, issue 26); this is the quick look, without the
//! anchor.
//!
//! Run: `cargo run --release -p bingfa-mp --example queue_throughput [1|4|both|solo] [N] [rounds]`
use bingfa_mp::{Barrier, Process, Queue};
use std::time::Instant;

fn producer(args: (Queue<Option<u64>>, Barrier, u64)) {
    let (q, start, n) = args;
    start.wait().unwrap();
    for i in 0..n {
        q.put(Some(i)).unwrap();
    }
    q.put(None).unwrap();
}

fn consumer(args: (Queue<Option<u64>>, Barrier)) -> u64 {
    let (q, start) = args;
    start.wait().unwrap();
    let mut got = 0;
    while q.get().unwrap().is_some() {
        got += 1;
    }
    got
}

/// `k` producer processes, `k` consumer processes, `n` messages in all: messages per second.
fn run(k: u64, n: u64) -> f64 {
    let q: Queue<Option<u64>> = Queue::new().unwrap();
    let start = Barrier::new(2 * k as u32 + 1).unwrap();
    let consumers: Vec<_> = (0..k)
        .map(|_| {
            Process::builder()
                .spawn(consumer, (q.clone(), start.clone()))
                .unwrap()
        })
        .collect();
    let producers: Vec<_> = (0..k)
        .map(|_| {
            Process::builder()
                .spawn(producer, (q.clone(), start.clone(), n / k))
                .unwrap()
        })
        .collect();
    start.wait().unwrap();
    let t = Instant::now();
    let got: u64 = consumers.into_iter().map(|p| p.join().unwrap()).sum();
    let dt = t.elapsed();
    for p in producers {
        p.join().unwrap();
    }
    assert_eq!(got, n / k * k);
    got as f64 / dt.as_secs_f64()
}

/// One process, no peer: `n` puts, then `n` gets; nanoseconds per put and per get. The cost
/// of the code path alone, without the cache lines travelling between cores.
fn solo(n: u64) -> (f64, f64) {
    let q: Queue<Option<u64>> = Queue::new().unwrap();
    let t = Instant::now();
    for i in 0..n {
        q.put(Some(i)).unwrap();
    }
    let put = t.elapsed().as_secs_f64() / n as f64 * 1e9;
    let t = Instant::now();
    for _ in 0..n {
        q.get().unwrap();
    }
    (put, t.elapsed().as_secs_f64() / n as f64 * 1e9)
}

fn main() {
    let _rt = bingfa_mp::init();
    let arg = |i: usize| std::env::args().nth(i);
    let which = arg(1).unwrap_or("both".into());
    let n: u64 = arg(2).and_then(|s| s.parse().ok()).unwrap_or(2_000_000);
    let rounds: usize = arg(3).and_then(|s| s.parse().ok()).unwrap_or(5);
    if which == "solo" {
        for _ in 0..rounds {
            let (p, g) = solo(n);
            println!("solo: put {p:.1} ns, get {g:.1} ns");
        }
        return;
    }
    for k in [1, 4] {
        if which != "both" && which != k.to_string() {
            continue;
        }
        let mut v: Vec<f64> = (0..rounds).map(|_| run(k, n)).collect();
        v.sort_by(f64::total_cmp);
        let m: Vec<String> = v.iter().map(|x| format!("{:.2}", x / 1e6)).collect();
        println!(
            "queue {k}->{k}: median {:.2} M msg/s (rounds: {})",
            v[v.len() / 2] / 1e6,
            m.join(" ")
        );
    }
}
