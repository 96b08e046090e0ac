//! Two worker processes share one account: one deposits 1 yuan 100 000 times, the other
//! withdraws 1 yuan 100 000 times, both starting together at a barrier. With the account's lock the balance ends where it started; with `--no-lock`
//! each worker reads, pauses, then writes, and updates are lost: the race made visible.
//!
//! `cargo run -p bingfa-mp --example bank_account [-- --no-lock] [--fork]`

use bingfa_mp::{Barrier, Process, StartMethod, Value};

/// The balance both workers start from (and, with the lock, end at).
pub(crate) const START: i64 = 1000;
/// How many times each worker changes the balance by 1 yuan.
pub(crate) const OPS: u32 = 100_000;

fn worker((acct, start, delta, locked): (Value<i64>, Barrier, i64, bool)) {
    // Process start-up takes longer than the whole loop: without this the two would hardly
    // overlap, and the race would hide.
    start.wait().unwrap();
    for _ in 0..OPS {
        if locked {
            *acct.lock().unwrap() += delta;
        } else {
            // Read-modify-write without the lock: the other worker can write in between, and
            // one of the two updates is lost.
            // SAFETY: no thread of this process holds a guard of `acct` (this branch never
            // locks it); the other process's writes are the race being shown.
            let v = unsafe { acct.get_unlocked() };
            for _ in 0..20 {
                std::hint::spin_loop();
            }
            // SAFETY: as above, no guard of `acct` is held in this process.
            unsafe { acct.set_unlocked(v + delta) };
        }
    }
}

/// Run the depositor and the withdrawer as two processes; returns the final balance.
pub(crate) fn run(locked: bool, m: StartMethod) -> i64 {
    let acct = Value::new(START).unwrap();
    let start = Barrier::new(2).unwrap();
    let workers: Vec<_> = [1i64, -1]
        .into_iter()
        .map(|delta| {
            Process::builder()
                .start_method(m)
                .spawn(worker, (acct.clone(), start.clone(), delta, locked))
                .unwrap()
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
    acct.get()
}

#[allow(dead_code)]
fn main() {
    let _rt = bingfa_mp::init();
    let args: Vec<String> = std::env::args().collect();
    let locked = !args.iter().any(|a| a == "--no-lock");
    let m = if args.iter().any(|a| a == "--fork") {
        StartMethod::Fork
    } else {
        StartMethod::Spawn
    };
    let end = run(locked, m);
    println!(
        "{} lock: {OPS} deposits and {OPS} withdrawals of 1 yuan on {START} yuan -> {end} yuan{}",
        if locked { "with" } else { "without" },
        if end == START {
            " (exact)"
        } else {
            " (updates were lost: a race)"
        }
    );
}
