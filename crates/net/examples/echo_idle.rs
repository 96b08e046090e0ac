//! Open N connections to an `echo_server`, check each with one echo, then hold them idle for S
//! seconds (to measure what idle connections cost a model, e.g. its RSS).
//! `cargo run -p bingfa-net --example echo_idle -- 127.0.0.1:PORT 10000 5`

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let addr = args.first().expect("ADDR [CONNS] [SECONDS]").clone();
    let n: usize = args.get(1).map_or(10_000, |s| s.parse().unwrap());
    let secs: u64 = args.get(2).map_or(5, |s| s.parse().unwrap());
    let mut held = Vec::with_capacity(n);
    for i in 0..n {
        let mut s = match TcpStream::connect(&addr) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("connection {i}: {e}");
                break;
            }
        };
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut buf = [0u8; 3];
        if s.write_all(b"hi\n")
            .and_then(|_| s.read_exact(&mut buf))
            .is_err()
            || &buf != b"hi\n"
        {
            eprintln!("connection {i}: no echo");
            break;
        }
        held.push(s);
    }
    println!("holding {} idle connections", held.len());
    std::thread::sleep(Duration::from_secs(secs));
}
