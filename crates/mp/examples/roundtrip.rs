//! Round trips alone: a u64 there and back through a duplex `Pipe`, then through a pair of
//! `Queue`s, timed over N round trips after a warm-up (BENCHMARKS.md, issue 26). `bingfa lab
//! ipc` measures the same beside CPython and ipc-channel; this is the quick look.
//!
//! Run: `cargo run --release -p bingfa-mp --example roundtrip [pipe|queue|both] [N]`
use bingfa_mp::{Connection, Pipe, Process, Queue};
use std::time::Instant;

fn echo(mut c: Connection<u64>) {
    while let Ok(x) = c.recv() {
        if c.send(&x).is_err() {
            break;
        }
    }
}
fn qecho(args: (Queue<Option<u64>>, Queue<Option<u64>>)) {
    let (a, b) = args;
    while let Some(x) = a.get().unwrap() {
        b.put(Some(x)).unwrap();
    }
}
fn main() {
    let _rt = bingfa_mp::init();
    let n: u64 = std::env::args()
        .nth(2)
        .and_then(|s| s.parse().ok())
        .unwrap_or(50_000);
    let which = std::env::args().nth(1).unwrap_or("both".into());
    if which == "pipe" || which == "both" {
        let (mut a, b) = Pipe::duplex::<u64>().unwrap();
        let p = Process::builder().spawn(echo, b).unwrap();
        for i in 0..1000 {
            a.send(&i).unwrap();
            a.recv().unwrap();
        }
        let t = Instant::now();
        for i in 0..n {
            a.send(&i).unwrap();
            assert_eq!(a.recv().unwrap(), i);
        }
        println!(
            "pipe rt {:.2} us",
            t.elapsed().as_secs_f64() / n as f64 * 1e6
        );
        drop(a);
        p.join().unwrap();
    }
    if which == "queue" || which == "both" {
        let (q1, q2) = (Queue::new().unwrap(), Queue::new().unwrap());
        let p = Process::builder()
            .spawn(qecho, (q1.clone(), q2.clone()))
            .unwrap();
        for i in 0..1000 {
            q1.put(Some(i)).unwrap();
            q2.get().unwrap();
        }
        let t = Instant::now();
        for i in 0..n {
            q1.put(Some(i)).unwrap();
            assert_eq!(q2.get().unwrap(), Some(i));
        }
        println!(
            "queue rt {:.2} us",
            t.elapsed().as_secs_f64() / n as f64 * 1e6
        );
        q1.put(None).unwrap();
        p.join().unwrap();
    }
}
