//! RLock: a transfer takes the account lock, then calls `withdraw` and `deposit`, which take
//! the same lock again. With a plain lock that would deadlock on itself; a re-entrant lock
//! lets its holder in. Shown with threads (`thread::RLock`) and processes (`sync::RLock`).
//!
//! `cargo run -p bingfa-mp --example rlock [-- --fork]`

use std::sync::Arc;

use bingfa_mp::{thread, Array, Process, RLock, StartMethod};

/// How many transfers each thread or process makes.
pub(crate) const TRANSFERS: u32 = 1000;

/// Threads: two threads move 1 yuan back and forth between two accounts.
pub(crate) fn with_threads() -> [i64; 2] {
    struct Bank {
        lock: thread::RLock<std::cell::RefCell<[i64; 2]>>,
    }
    impl Bank {
        fn withdraw(&self, from: usize, n: i64) {
            let g = self.lock.lock();
            g.borrow_mut()[from] -= n;
        }
        fn deposit(&self, to: usize, n: i64) {
            let g = self.lock.lock();
            g.borrow_mut()[to] += n;
        }
        fn transfer(&self, from: usize, to: usize, n: i64) {
            // Held across both steps: nobody sees the money in flight.
            let _g = self.lock.lock();
            self.withdraw(from, n);
            self.deposit(to, n);
        }
    }
    let bank = Arc::new(Bank {
        lock: thread::RLock::new(std::cell::RefCell::new([100, 100])),
    });
    let ts: Vec<_> = [(0, 1, 3), (1, 0, 2)]
        .into_iter()
        .map(|(from, to, n)| {
            let bank = bank.clone();
            std::thread::spawn(move || {
                for _ in 0..TRANSFERS {
                    bank.transfer(from, to, n);
                }
            })
        })
        .collect();
    for t in ts {
        t.join().unwrap();
    }
    let g = bank.lock.lock();
    let v = *g.borrow();
    v
}

fn step(lock: &RLock, accts: &Array<i64>, i: usize, n: i64) {
    let _g = lock.acquire().unwrap();
    // Under our own RLock, the array's lock guards each single access.
    let v = accts.get(i).unwrap();
    accts.set(i, v + n);
}

fn transfers((lock, accts, from, to, n): (RLock, Array<i64>, usize, usize, i64)) {
    for _ in 0..TRANSFERS {
        let _g = lock.acquire().unwrap();
        step(&lock, &accts, from, -n);
        step(&lock, &accts, to, n);
    }
}

/// Processes: the same transfers, the accounts in a shared `Array`, one cross-process RLock.
pub(crate) fn with_processes(m: StartMethod) -> [i64; 2] {
    let lock = RLock::new().unwrap();
    let accts = Array::from_slice(&[100i64, 100]).unwrap();
    let ps: Vec<_> = [(0, 1, 3), (1, 0, 2)]
        .into_iter()
        .map(|(from, to, n)| {
            Process::builder()
                .start_method(m)
                .spawn(transfers, (lock.clone(), accts.clone(), from, to, n))
                .unwrap()
        })
        .collect();
    for p in ps {
        p.join().unwrap();
    }
    let v = accts.to_vec();
    [v[0], v[1]]
}

#[allow(dead_code)]
fn main() {
    let _rt = bingfa_mp::init();
    let m = if std::env::args().any(|a| a == "--fork") {
        StartMethod::Fork
    } else {
        StartMethod::Spawn
    };
    println!(
        "threads:   accounts {:?} (expected [-900, 1100])",
        with_threads()
    );
    println!(
        "processes: accounts {:?} (expected [-900, 1100])",
        with_processes(m)
    );
}
