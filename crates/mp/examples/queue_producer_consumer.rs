//! Producer/consumer over a `Queue`: one producer process, two consumer processes, a sentinel
//! per consumer to stop. Every item is consumed exactly once.
//!
//! Run: `cargo run -p bingfa-mp --example queue_producer_consumer`

use bingfa_mp::{Process, Queue};

fn producer(args: (Queue<Option<u32>>, u32)) {
    let (q, n) = args;
    for i in 1..=n {
        q.put(Some(i)).unwrap();
    }
    println!("producer {}: put {n} items", std::process::id());
}

fn consumer(q: Queue<Option<u32>>) -> (u32, u64) {
    let (mut count, mut sum) = (0, 0);
    while let Some(i) = q.get().unwrap() {
        count += 1;
        sum += i as u64;
    }
    println!("consumer {}: took {count} items", std::process::id());
    (count, sum)
}

fn main() {
    let _rt = bingfa_mp::init();
    let q = Queue::bounded(100).unwrap();
    let n = 10_000;
    let p = Process::builder().spawn(producer, (q.clone(), n)).unwrap();
    let consumers: Vec<_> = (0..2)
        .map(|_| Process::builder().spawn(consumer, q.clone()).unwrap())
        .collect();
    p.join().unwrap();
    for _ in &consumers {
        q.put(None).unwrap();
    }
    let (mut count, mut sum) = (0, 0);
    for c in consumers {
        let (c, s) = c.join().unwrap();
        count += c;
        sum += s;
    }
    println!(
        "total: {count} items, sum {sum} (expected {n} items, sum {})",
        n as u64 * (n as u64 + 1) / 2
    );
    assert_eq!((count, sum), (n, n as u64 * (n as u64 + 1) / 2));
}
