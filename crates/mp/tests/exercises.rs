//! The part-2 classic exercises in examples/, checked for their exact results under both start
//! methods. Each example's logic is a function its `main` calls; the test calls it too, in
//! this binary (whose spawn entry is below), so no `cargo run` is needed.

#![allow(dead_code)]

mod common;

use bingfa_mp::{PoolError, StartMethod};

bingfa_mp::spawn_entry!();

#[path = "../examples/bank_account.rs"]
mod bank_account;
#[path = "../examples/deadlock.rs"]
mod deadlock;
#[path = "../examples/event.rs"]
mod event;
#[path = "../examples/pool.rs"]
mod pool;
#[path = "../examples/pos_terminal.rs"]
mod pos_terminal;
#[path = "../examples/producer_consumer.rs"]
mod producer_consumer;
#[path = "../examples/rlock.rs"]
mod rlock;
#[path = "../examples/semaphore.rs"]
mod semaphore;
#[path = "../examples/shared_array.rs"]
mod shared_array;
#[path = "../examples/shared_value.rs"]
mod shared_value;
#[path = "../examples/thread_local.rs"]
mod thread_local;

fn pos_terminal_is_exact(m: StartMethod) {
    use pos_terminal::*;
    let want = START_BALANCE - DAILY_LIMIT as i64;
    let (card, got) = with_threads();
    assert_eq!((card.balance, card.swipes), (want, DAILY_LIMIT));
    assert_eq!(got.iter().sum::<u32>(), DAILY_LIMIT);
    let (card, got) = with_processes(m);
    assert_eq!((card.balance, card.swipes), (want, DAILY_LIMIT));
    assert_eq!(got.iter().sum::<u32>(), DAILY_LIMIT);
    assert_eq!(got.len(), PEOPLE as usize);
}

fn bank_account_is_exact_with_lock(m: StartMethod) {
    assert_eq!(bank_account::run(true, m), bank_account::START);
    // Without the lock the result is whatever the race makes it; it must still finish.
    let _ = bank_account::run(false, m);
}

fn check_once(got: Vec<Vec<u32>>) {
    assert_eq!(got.len(), producer_consumer::CONSUMERS);
    let mut all = got.concat();
    all.sort_unstable();
    assert_eq!(all, (1..=producer_consumer::ITEMS).collect::<Vec<_>>());
}

fn producer_consumer_each_item_once(m: StartMethod) {
    check_once(producer_consumer::with_threads());
    check_once(producer_consumer::with_processes(m));
}

fn deadlock_detected_then_fixed(_m: StartMethod) {
    let mut stuck = deadlock::opposite_order();
    stuck.sort_by(|a, b| a.thread.cmp(&b.thread));
    assert_eq!(
        stuck,
        vec![
            deadlock::Stuck {
                thread: "thread-1".into(),
                holds: "A",
                waits_for: "B"
            },
            deadlock::Stuck {
                thread: "thread-2".into(),
                holds: "B",
                waits_for: "A"
            },
        ]
    );
    assert!(deadlock::same_order().is_empty());
}

fn thread_local_counts(_m: StartMethod) {
    use thread_local::*;
    let (total, per) = run();
    assert_eq!(total, WORK * (1..=THREADS).sum::<u64>());
    let mut per = per;
    per.sort();
    for (i, (tag, n)) in per.into_iter().enumerate() {
        assert_eq!(tag, format!("worker-{i}"));
        assert_eq!(n, WORK * (i as u64 + 1));
    }
}

fn event_releases_all(m: StartMethod) {
    assert_eq!(event::with_threads(), (event::WORKERS, true));
    assert_eq!(event::with_processes(m), (event::WORKERS, true));
}

fn rlock_transfers_are_exact(m: StartMethod) {
    let want = [
        100 - 3 * rlock::TRANSFERS as i64 + 2 * rlock::TRANSFERS as i64,
        100 + 3 * rlock::TRANSFERS as i64 - 2 * rlock::TRANSFERS as i64,
    ];
    assert_eq!(rlock::with_threads(), want);
    assert_eq!(rlock::with_processes(m), want);
}

fn semaphore_limits_concurrency(m: StartMethod) {
    for (parked, peak) in [semaphore::with_threads(), semaphore::with_processes(m)] {
        assert_eq!(parked, semaphore::CARS);
        assert!((1..=semaphore::SPACES).contains(&peak), "peak {peak}");
    }
}

fn shared_value_is_exact(m: StartMethod) {
    let n = shared_value::PROCS * shared_value::ADDS;
    assert_eq!(shared_value::run(m), (n as i32, n as f64 * 0.5));
}

fn shared_array_changes_are_seen(m: StartMethod) {
    let (nums, text) = shared_array::run(m);
    assert_eq!(nums, (0..10).map(|x| x * x).collect::<Vec<i32>>());
    assert_eq!(text, "HELLO, SHARED MEMORY");
}

fn pool_tour(m: StartMethod) {
    let t = pool::run(m);
    assert_eq!(t.map, (0..10u64).map(|x| x * x).collect::<Vec<_>>());
    assert_eq!(t.callback_saw, vec![144]);
    assert_eq!(t.unordered_sum, (1..=100u64).map(|x| x * x).sum());
    assert_eq!(
        t.divisions,
        vec![
            Ok(5),
            Err(PoolError::Panicked {
                message: "division by zero: 1 / 0".into()
            }),
            Ok(3)
        ]
    );
    for (i, r) in t.crashes.iter().enumerate() {
        if i == 7 {
            assert!(
                matches!(r, Err(PoolError::WorkerLost { exitcode: -9, .. })),
                "{r:?}"
            );
        } else {
            assert_eq!(r, &Ok(i as u32 * 10));
        }
    }
}

both_methods!(
    pos_terminal_is_exact,
    bank_account_is_exact_with_lock,
    producer_consumer_each_item_once,
    deadlock_detected_then_fixed,
    thread_local_counts,
    event_releases_all,
    rlock_transfers_are_exact,
    semaphore_limits_concurrency,
    shared_value_is_exact,
    shared_array_changes_are_seen,
    pool_tour,
);
