//! Deadlock: two threads take two locks in opposite order (A then B, B then A). Each second
//! acquire is timed (`try_lock_for`), so instead of hanging forever the example detects the
//! deadlock and reports who holds what and waits for what. Then the fix: both take the locks
//! in the same global order (A before B), and both finish.
//!
//! `cargo run -p bingfa-mp --example deadlock`

use std::sync::{Arc, Barrier};
use std::time::Duration;

use bingfa_mp::thread::Mutex;

/// One thread that could not get its second lock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Stuck {
    /// The stuck thread's name (`thread-1` or `thread-2`).
    pub(crate) thread: String,
    /// The lock it got first and still holds (`"A"` or `"B"`).
    pub(crate) holds: &'static str,
    /// The lock it timed out waiting for.
    pub(crate) waits_for: &'static str,
}

const WAIT: Duration = Duration::from_millis(200);

/// Run two threads taking locks in the given orders; returns those that got stuck.
fn run(orders: [[&'static str; 2]; 2]) -> Vec<Stuck> {
    let a = Arc::new(Mutex::new(0u32));
    let b = Arc::new(Mutex::new(0u32));
    // Both hold their first lock before either tries its second, and nobody lets go before
    // both have tried: the outcome is the same on every run.
    let holding = Arc::new(Barrier::new(2));
    let tried = Arc::new(Barrier::new(2));
    let threads: Vec<_> = orders
        .into_iter()
        .enumerate()
        .map(|(i, [first, second])| {
            let pick = |n: &str| if n == "A" { a.clone() } else { b.clone() };
            let (l1, l2) = (pick(first), pick(second));
            let (holding, tried) = (holding.clone(), tried.clone());
            let name = format!("thread-{}", i + 1);
            std::thread::Builder::new()
                .name(name.clone())
                .spawn(move || {
                    let mut g1 = l1.lock();
                    holding.wait();
                    let r = match l2.try_lock_for(WAIT) {
                        Some(mut g2) => {
                            *g1 += 1;
                            *g2 += 1;
                            None
                        }
                        None => Some(Stuck {
                            thread: name,
                            holds: first,
                            waits_for: second,
                        }),
                    };
                    tried.wait();
                    r
                })
                .unwrap()
        })
        .collect();
    threads
        .into_iter()
        .filter_map(|t| t.join().unwrap())
        .collect()
}

/// Opposite orders: both threads end up stuck.
pub(crate) fn opposite_order() -> Vec<Stuck> {
    run([["A", "B"], ["B", "A"]])
}

/// Same order for everyone: whoever gets A first also gets B; the other queues for A. Nobody
/// is stuck.
pub(crate) fn same_order() -> Vec<Stuck> {
    let a = Arc::new(Mutex::new(0u32));
    let b = Arc::new(Mutex::new(0u32));
    let threads: Vec<_> = (1..=2)
        .map(|i| {
            let (a, b) = (a.clone(), b.clone());
            std::thread::Builder::new()
                .name(format!("thread-{i}"))
                .spawn(move || {
                    let mut ga = a.lock();
                    match b.try_lock_for(WAIT) {
                        Some(mut gb) => {
                            *ga += 1;
                            *gb += 1;
                            None
                        }
                        None => Some(Stuck {
                            thread: format!("thread-{i}"),
                            holds: "A",
                            waits_for: "B",
                        }),
                    }
                })
                .unwrap()
        })
        .collect();
    let stuck: Vec<Stuck> = threads
        .into_iter()
        .filter_map(|t| t.join().unwrap())
        .collect();
    assert_eq!(
        (*a.lock(), *b.lock()),
        (2, 2),
        "both threads did their work"
    );
    stuck
}

#[allow(dead_code)]
fn main() {
    let _rt = bingfa_mp::init();
    println!("locks taken in opposite order:");
    for s in opposite_order() {
        println!(
            "  deadlock: {} holds lock {} and has waited {WAIT:?} for lock {}",
            s.thread, s.holds, s.waits_for
        );
    }
    println!("fix: every thread takes A before B");
    let stuck = same_order();
    println!(
        "  {}",
        if stuck.is_empty() {
            "both threads finished".to_string()
        } else {
            format!("still stuck: {stuck:?}")
        }
    );
}
