//! Event: workers wait for a start signal (Python's `Event`), first as threads
//! (`thread::Event`), then as processes (`sync::Event` in shared memory). Before the signal a
//! timed wait returns false; after it, every waiter is released at once.
//!
//! `cargo run -p bingfa-mp --example event [-- --fork]`

use std::sync::Arc;
use std::time::Duration;

use bingfa_mp::{thread, Event, Process, StartMethod};

/// How many workers wait for the start signal.
pub(crate) const WORKERS: usize = 4;

/// Threads: returns how many workers saw the signal, and whether a timed wait before it timed
/// out.
pub(crate) fn with_threads() -> (usize, bool) {
    let go = Arc::new(thread::Event::new());
    let early = !go.wait_timeout(Duration::from_millis(10));
    let ws: Vec<_> = (0..WORKERS)
        .map(|_| {
            let go = go.clone();
            std::thread::spawn(move || go.wait_timeout(Duration::from_secs(10)))
        })
        .collect();
    std::thread::sleep(Duration::from_millis(20));
    go.set();
    let saw = ws
        .into_iter()
        .map(|w| w.join().unwrap())
        .filter(|&b| b)
        .count();
    (saw, early)
}

fn wait_for_green(light: Event) -> bool {
    light.wait_timeout(Duration::from_secs(10))
}

/// Processes: the same with a cross-process `Event`.
pub(crate) fn with_processes(m: StartMethod) -> (usize, bool) {
    let light = Event::new().unwrap();
    let early = !light.wait_timeout(Duration::from_millis(10));
    let ws: Vec<_> = (0..WORKERS)
        .map(|_| {
            Process::builder()
                .start_method(m)
                .spawn(wait_for_green, light.clone())
                .unwrap()
        })
        .collect();
    std::thread::sleep(Duration::from_millis(20));
    light.set();
    let saw = ws
        .into_iter()
        .map(|w| w.join().unwrap())
        .filter(|&b| b)
        .count();
    (saw, early)
}

#[allow(dead_code)]
fn main() {
    let _rt = bingfa_mp::init();
    let m = if std::env::args().any(|a| a == "--fork") {
        StartMethod::Fork
    } else {
        StartMethod::Spawn
    };
    let (saw, early) = with_threads();
    println!("threads:   wait before set timed out: {early}; {saw}/{WORKERS} released by set()");
    let (saw, early) = with_processes(m);
    println!("processes: wait before set timed out: {early}; {saw}/{WORKERS} released by set()");
}
