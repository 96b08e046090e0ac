//! A small closed-loop load generator for `echo_server`: C connections, each sending a 64-byte
//! line and waiting for it back, for D seconds. Prints requests/s and p50/p99 latency.
//! `cargo run -p bingfa-net --example echo_load -- 127.0.0.1:PORT 50 5`

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let addr = args.first().expect("ADDR [CONNS] [SECONDS]").clone();
    let conns: usize = args.get(1).map_or(50, |s| s.parse().unwrap());
    let secs: u64 = args.get(2).map_or(5, |s| s.parse().unwrap());
    let end = Instant::now() + Duration::from_secs(secs);
    let threads: Vec<_> = (0..conns)
        .map(|_| {
            let addr = addr.clone();
            std::thread::spawn(move || {
                let mut s = TcpStream::connect(&addr).expect("connect");
                s.set_nodelay(true).unwrap();
                s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                let line = [b'x'; 63]
                    .iter()
                    .copied()
                    .chain([b'\n'])
                    .collect::<Vec<u8>>();
                let mut buf = [0u8; 64];
                let mut lat = Vec::new();
                while Instant::now() < end {
                    let t = Instant::now();
                    s.write_all(&line).unwrap();
                    s.read_exact(&mut buf).unwrap();
                    lat.push(t.elapsed());
                }
                lat
            })
        })
        .collect();
    let mut all: Vec<Duration> = threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
    all.sort();
    let n = all.len();
    let pct = |p: f64| all[((n as f64 * p) as usize).min(n - 1)];
    println!(
        "{} requests in {}s over {} connections: {:.0} req/s, p50 {:?}, p99 {:?}",
        n,
        secs,
        conns,
        n as f64 / secs as f64,
        pct(0.5),
        pct(0.99)
    );
}
