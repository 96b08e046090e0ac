//! Semaphore: a car park with 3 spaces and 10 cars. Each car takes a space, stays a moment,
//! leaves. The semaphore guarantees that at most 3 are ever parked at once. Threads use
//! `thread::Semaphore`; processes a cross-process `Semaphore` and a shared `Array` to record
//! the occupancy.
//!
//! `cargo run -p bingfa-mp --example semaphore [-- --fork]`

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bingfa_mp::{thread, Array, Process, Semaphore, StartMethod};

/// Spaces in the car park: the semaphore's starting count.
pub(crate) const SPACES: u32 = 3;
/// Cars that want to park, more than there are spaces.
pub(crate) const CARS: u32 = 10;
const STAY: Duration = Duration::from_millis(20);

/// Threads: returns (cars parked, most parked at once).
pub(crate) fn with_threads() -> (u32, u32) {
    let sem = Arc::new(thread::Semaphore::new(SPACES as usize));
    let now = Arc::new(AtomicU32::new(0));
    let peak = Arc::new(AtomicU32::new(0));
    let cars: Vec<_> = (0..CARS)
        .map(|_| {
            let (sem, now, peak) = (sem.clone(), now.clone(), peak.clone());
            std::thread::spawn(move || {
                sem.acquire();
                let n = now.fetch_add(1, Ordering::SeqCst) + 1;
                peak.fetch_max(n, Ordering::SeqCst);
                std::thread::sleep(STAY);
                now.fetch_sub(1, Ordering::SeqCst);
                sem.release().unwrap();
            })
        })
        .collect();
    let parked = cars.into_iter().map(|c| c.join().unwrap()).count() as u32;
    (parked, peak.load(Ordering::SeqCst))
}

/// [parked now, peak, total parked]
fn car((sem, stats): (Semaphore, Array<u32>)) {
    sem.acquire();
    {
        let mut s = stats.lock().unwrap();
        s[0] += 1;
        s[1] = s[1].max(s[0]);
        s[2] += 1;
    }
    std::thread::sleep(STAY);
    stats.lock().unwrap()[0] -= 1;
    sem.release();
}

/// Processes: returns (cars parked, most parked at once).
pub(crate) fn with_processes(m: StartMethod) -> (u32, u32) {
    let sem = Semaphore::new(SPACES).unwrap();
    let stats = Array::<u32>::new(3).unwrap();
    let cars: Vec<_> = (0..CARS)
        .map(|_| {
            Process::builder()
                .start_method(m)
                .spawn(car, (sem.clone(), stats.clone()))
                .unwrap()
        })
        .collect();
    for c in cars {
        c.join().unwrap();
    }
    assert_eq!(sem.get_value(), SPACES, "every space given back");
    let s = stats.to_vec();
    (s[2], s[1])
}

#[allow(dead_code)]
fn main() {
    let _rt = bingfa_mp::init();
    let m = if std::env::args().any(|a| a == "--fork") {
        StartMethod::Fork
    } else {
        StartMethod::Spawn
    };
    let (parked, peak) = with_threads();
    println!("threads:   {parked} cars parked, at most {peak} at once ({SPACES} spaces)");
    let (parked, peak) = with_processes(m);
    println!("processes: {parked} cars parked, at most {peak} at once ({SPACES} spaces)");
}
