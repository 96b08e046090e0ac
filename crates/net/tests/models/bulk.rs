//! Scenarios about bulk input and connections dying with work in flight, written for the
//! `uring` model's receive path (multishot receives into a ring of 64 provided buffers of
//! 16 KiB, a bounded queue per connection) but run under every model, since each must give the
//! session the same bytes in the same order: input far larger than one buffer and than the
//! whole ring, a paused connection that must stop taking input in (the peer ends up blocked,
//! not buffered without bound), and many connections reset or closed while replies and
//! receives are in flight (the server survives and ends up holding no descriptor for them).

use crate::harness::*;
use bingfa_net::Model;
use std::io::{BufRead, Write};
use std::net::TcpStream;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The lines of a pipelined burst: numbered, so a lost or reordered byte is named.
fn burst_line(i: usize) -> String {
    format!("line {i:07} {}\n", "abcdefghij".repeat(9))
}

/// Send `lines` pipelined lines from a thread while reading the echo here; every byte must come
/// back in order.
fn pipeline(c: &mut Client, lines: std::ops::Range<usize>) {
    let mut w = c.w.try_clone().unwrap();
    let range = lines.clone();
    let writer = std::thread::spawn(move || {
        let mut chunk = String::new();
        for i in range {
            chunk.push_str(&burst_line(i));
            if chunk.len() > 200_000 {
                w.write_all(chunk.as_bytes()).unwrap();
                chunk.clear();
            }
        }
        w.write_all(chunk.as_bytes()).unwrap();
    });
    let mut got = String::new();
    for i in lines {
        got.clear();
        c.r.read_line(&mut got).expect("echo (timed out?)");
        assert_eq!(got, burst_line(i), "line {i} lost or out of order");
    }
    writer.join().unwrap();
}

/// 3.3 MiB pipelined in big writes, three times over on one connection: more than one provided
/// buffer per completion and more than the whole buffer ring per turn, so the ring runs dry
/// and receives are armed again; not a byte may be lost or reordered.
pub(crate) fn big_pipeline(model: Model, edge: bool) {
    let mut srv = TestServer::start(&Spec::new(model, edge, "echo"));
    let mut c = srv.connect();
    for round in 0..3 {
        pipeline(&mut c, round * 30_000..(round + 1) * 30_000);
    }
    drop(c);
    assert!(srv.stop().success());
}

/// A paused connection stops taking input in: a peer that keeps writing ends up blocked with
/// a bounded amount sent (socket buffers plus a bounded queue), and what it sent comes back
/// in order once the session resumes.
pub(crate) fn paused_input_bounded(model: Model, edge: bool) {
    let mut srv = TestServer::start(&Spec::new(model, edge, "echo"));
    let mut c = srv.connect();
    c.send("PAUSE 2500");
    // Far more than a bounded server and the kernel can hold (loopback socket buffers are a
    // few MiB each way): a server taking it all in would let it all through in 2 s.
    let (cap, total) = (32usize << 20, 48usize << 20);
    // Numbered lines first (checked on the way back), then filler written as fast as memcpy,
    // so only the server's bound can stop the peer.
    let numbered: Vec<u8> = (0..40_000)
        .flat_map(|i| burst_line(i).into_bytes())
        .collect();
    let filler = "f".repeat(99) + "\n";
    let filler = filler.repeat(10_000).into_bytes();
    let sent = Arc::new(AtomicUsize::new(0));
    let mut w = c.w.try_clone().unwrap();
    let progress = sent.clone();
    let writer = std::thread::spawn(move || {
        let mut chunk: &[u8] = &numbered;
        while progress.load(Ordering::Relaxed) < total {
            if w.write_all(chunk).is_err() {
                return; // the test is over
            }
            progress.fetch_add(chunk.len(), Ordering::Relaxed);
            chunk = &filler;
        }
    });
    std::thread::sleep(Duration::from_millis(2000));
    let held = sent.load(Ordering::Relaxed);
    eprintln!("{model}: the peer of a paused connection got {held} bytes out in 2 s");
    assert!(
        held < cap,
        "{model}: a paused connection took {held} bytes in without blocking its peer"
    );
    c.expect("resumed");
    let mut got = String::new();
    for i in 0..40_000 {
        got.clear();
        c.r.read_line(&mut got).expect("echo (timed out?)");
        assert_eq!(got, burst_line(i), "line {i} lost or out of order");
    }
    // Stop the writer (it may be blocked: nobody reads the rest of the echo).
    set_reset(&c.w);
    let _ = c.w.shutdown(std::net::Shutdown::Both);
    writer.join().unwrap();
    drop(c);
    assert!(srv.stop().success());
}

/// The descriptors a process holds.
fn fds(pid: i32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0)
}

/// Reset the connection (SO_LINGER 0, then close): the server sees ECONNRESET.
fn reset(s: TcpStream) {
    set_reset(&s);
    drop(s);
}

/// Make the socket's last close a reset (SO_LINGER 0).
fn set_reset(s: &TcpStream) {
    let lin = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: a valid socket and a valid `linger` of the size given.
    unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            &lin as *const _ as *const libc::c_void,
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        );
    }
}

/// Many connections reset, or closed, while a 512 KiB reply is being sent and input is being
/// received: the server goes on serving, and ends up holding exactly the descriptors it held
/// before (none leaked, none closed twice).
pub(crate) fn reset_in_flight(model: Model, edge: bool) {
    if !model.concurrent() {
        return; // one connection at a time: the rest would wait, not be in flight
    }
    let mut srv = TestServer::start(&Spec::new(model, edge, "echo"));
    // Warm up: let the loops make whatever they keep (eventfds, listeners' twins).
    let mut c = srv.connect();
    c.send("warm");
    c.expect("warm");
    drop(c);
    let in_process = !model.multi_process();
    let settle = |want: usize| {
        let end = Instant::now() + Duration::from_secs(15);
        loop {
            let n = fds(srv.pid());
            if n == want || Instant::now() > end {
                return n;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    // The warm-up connection's own descriptor goes once the server has seen it close.
    let mut before = fds(srv.pid());
    for _ in 0..50 {
        std::thread::sleep(Duration::from_millis(100));
        let now = fds(srv.pid());
        if now == before {
            break;
        }
        before = now;
    }
    for round in 0..3 {
        let mut conns: Vec<Client> = (0..40).map(|_| srv.connect()).collect();
        for (k, c) in conns.iter_mut().enumerate() {
            // A big reply on its way out, and more input behind the request.
            let mut req = b"CLOSE\n".to_vec();
            req.resize(req.len() + (k % 4) * 20_000, b'j');
            let _ = c.w.write_all(&req);
        }
        std::thread::sleep(Duration::from_millis(20));
        for (k, c) in conns.into_iter().enumerate() {
            if (k + round) % 2 == 0 {
                reset(c.w);
            } else {
                // Closed without reading the reply: the server's send fails (EPIPE or reset).
                drop(c);
            }
        }
    }
    let mut c = srv.connect();
    c.send("still here");
    c.expect("still here");
    drop(c);
    if in_process {
        let after = settle(before);
        assert_eq!(after, before, "{model}: descriptors before and after");
    }
    assert!(srv.stop().success());
}
