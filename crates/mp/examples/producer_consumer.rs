//! One producer, three consumers. With threads the buffer is a bounded channel (5 slots); with
//! processes it is a bounded `Queue`. Each consumer stops at a sentinel (`None`), one per
//! consumer; every item is consumed exactly once.
//!
//! `cargo run -p bingfa-mp --example producer_consumer [-- --fork]`

use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use bingfa_mp::{Process, Queue, StartMethod};

/// How many items the producer makes (numbered 1 to `ITEMS`).
pub(crate) const ITEMS: u32 = 300;
/// How many consumers share the work.
pub(crate) const CONSUMERS: usize = 3;
/// Time to "use" an item, so the consumers take turns.
const WORK: Duration = Duration::from_micros(200);

/// Threads: returns what each consumer took.
pub(crate) fn with_threads() -> Vec<Vec<u32>> {
    let (tx, rx) = mpsc::sync_channel::<Option<u32>>(5);
    // std's receiver has one owner; consumers take turns at it, as at Python's queue.Queue.
    let rx = Arc::new(Mutex::new(rx));
    let consumers: Vec<_> = (0..CONSUMERS)
        .map(|_| {
            let rx = rx.clone();
            std::thread::spawn(move || {
                let mut got = Vec::new();
                loop {
                    let item = rx.lock().unwrap().recv().unwrap();
                    match item {
                        Some(x) => {
                            got.push(x);
                            std::thread::sleep(WORK);
                        }
                        None => return got,
                    }
                }
            })
        })
        .collect();
    for x in 1..=ITEMS {
        tx.send(Some(x)).unwrap();
    }
    for _ in 0..CONSUMERS {
        tx.send(None).unwrap();
    }
    consumers.into_iter().map(|c| c.join().unwrap()).collect()
}

fn consumer(q: Queue<Option<u32>>) -> Vec<u32> {
    let mut got = Vec::new();
    while let Some(x) = q.get().unwrap() {
        got.push(x);
        std::thread::sleep(WORK);
    }
    got
}

fn producer(q: Queue<Option<u32>>) {
    for x in 1..=ITEMS {
        q.put(Some(x)).unwrap();
    }
    for _ in 0..CONSUMERS {
        q.put(None).unwrap();
    }
}

/// Processes: one producer process, three consumer processes, a `Queue` of 5 slots.
pub(crate) fn with_processes(m: StartMethod) -> Vec<Vec<u32>> {
    let q = Queue::bounded(5).unwrap();
    let consumers: Vec<_> = (0..CONSUMERS)
        .map(|i| {
            Process::builder()
                .name(format!("consumer-{i}"))
                .start_method(m)
                .spawn(consumer, q.clone())
                .unwrap()
        })
        .collect();
    let p = Process::builder()
        .name("producer")
        .start_method(m)
        .spawn(producer, q)
        .unwrap();
    p.join().unwrap();
    consumers.into_iter().map(|c| c.join().unwrap()).collect()
}

fn summary(label: &str, got: &[Vec<u32>]) {
    let counts: Vec<usize> = got.iter().map(Vec::len).collect();
    let mut all: Vec<u32> = got.concat();
    all.sort_unstable();
    let exact = all == (1..=ITEMS).collect::<Vec<_>>();
    println!("{label}: consumers took {counts:?} items; every item exactly once: {exact}");
}

#[allow(dead_code)]
fn main() {
    let _rt = bingfa_mp::init();
    let m = if std::env::args().any(|a| a == "--fork") {
        StartMethod::Fork
    } else {
        StartMethod::Spawn
    };
    summary("threads  ", &with_threads());
    summary("processes", &with_processes(m));
}
