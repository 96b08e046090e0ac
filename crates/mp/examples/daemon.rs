//! Daemon vs. non-daemon children. At the end of `main`, the runtime terminates daemon children
//! and joins the others; a daemon child also dies if its parent is killed (even by SIGKILL).
//!
//! Run: `cargo run -p bingfa-mp --example daemon`

use std::time::Duration;

use bingfa_mp::Process;

fn tick(name: String) {
    for i in 1.. {
        println!("  {name}: tick {i}");
        std::thread::sleep(Duration::from_millis(100));
        if name == "worker" && i == 5 {
            return;
        }
    }
}

fn main() {
    let _rt = bingfa_mp::init();
    let d = Process::builder()
        .name("daemon")
        .daemon(true)
        .spawn(tick, "daemon".into())
        .unwrap();
    let w = Process::builder()
        .name("worker")
        .spawn(tick, "worker".into())
        .unwrap();
    println!("started daemon {} and worker {}", d.pid(), w.pid());
    std::thread::sleep(Duration::from_millis(250));
    println!("main returns; the worker is joined (5 ticks), the daemon is terminated");
    drop((d, w));
}
