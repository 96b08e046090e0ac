//! Ping-pong over a duplex `Pipe`: the parent sends "ping N", the child answers "pong N".
//!
//! Run: `cargo run -p bingfa-mp --example pipe_pingpong`

use std::time::Instant;

use bingfa_mp::{Connection, Pipe, Process};

fn ponger(mut conn: Connection<String>) -> u32 {
    let mut n = 0;
    while let Ok(msg) = conn.recv() {
        conn.send(&msg.replace("ping", "pong")).unwrap();
        n += 1;
    }
    n // the parent closed its end: recv returned Eof
}

fn main() {
    let _rt = bingfa_mp::init();
    let (mut conn, theirs) = Pipe::duplex::<String>().unwrap();
    let child = Process::builder().spawn(ponger, theirs).unwrap();
    let rounds = 10_000;
    let t = Instant::now();
    for i in 0..rounds {
        conn.send(&format!("ping {i}")).unwrap();
        let reply = conn.recv().unwrap();
        assert_eq!(reply, format!("pong {i}"));
        if i < 3 {
            println!("sent ping {i}, got {reply}");
        }
    }
    let per = t.elapsed() / rounds;
    drop(conn);
    println!(
        "{rounds} round trips, {per:?} each; child answered {}",
        child.join().unwrap()
    );
}
