//! join vs. no join: without `join` the parent races ahead of its child; with it, the parent
//! waits. Either way the child is reaped (no zombie), because the runtime joins non-daemon
//! children when `main` returns.
//!
//! Run: `cargo run -p bingfa-mp --example join`

use std::time::{Duration, Instant};

use bingfa_mp::Process;

fn work(ms: u64) -> u64 {
    std::thread::sleep(Duration::from_millis(ms));
    println!("  child {}: done after {ms} ms", std::process::id());
    ms
}

fn main() {
    let _rt = bingfa_mp::init();
    let t = Instant::now();
    println!("without join:");
    let p = Process::builder().spawn(work, 300).expect("start");
    println!(
        "  parent goes on at {:?}, child alive: {}",
        t.elapsed(),
        p.is_alive()
    );
    drop(p); // no join: the handle is gone, the child runs on and is reaped when it ends

    let t = Instant::now();
    println!("with join:");
    let p = Process::builder().spawn(work, 300).expect("start");
    let r = p.join().expect("child result");
    println!(
        "  parent continues at {:?} with the child's result {r}",
        t.elapsed()
    );
    // `_rt` drops here: the first child is joined before the program exits.
}
