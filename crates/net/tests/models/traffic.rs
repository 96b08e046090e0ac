//! Scenarios about traffic: echo (pipelining, timers, pauses, input limit, lingering close,
//! panics), hub broadcast order (4 clients, two interleaved senders; under `fork` each client in
//! its own process), a slow receiver cut off while a reading client gets all 12,000 messages in
//! order, data channels (passive and active, a 3 MiB file by sendfile).

use crate::harness::*;
use bingfa_net::Model;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

pub(crate) fn echo(model: Model, edge: bool) {
    let mut srv = TestServer::start(&Spec::new(model, edge, "echo"));
    for round in 0..2 {
        let mut c = srv.connect();
        for i in 0..50 {
            c.send(&format!("hello {round} {i}"));
            c.expect(&format!("hello {round} {i}"));
        }
        // Pipelined: many lines in one write come back in order.
        let batch: String = (0..200).map(|i| format!("p{i}\n")).collect();
        c.w.write_all(batch.as_bytes()).unwrap();
        for i in 0..200 {
            c.expect(&format!("p{i}"));
        }
    }
    // Session timers.
    let mut c = srv.connect();
    c.send("TIMER 100");
    c.send("after");
    c.expect("after");
    c.expect("tick");
    // Paused input waits (in the same write as the pause) until the session resumes it.
    c.w.write_all(b"PAUSE 150\nwaited\n").unwrap();
    c.expect("resumed");
    c.expect("waited");
    // Input that never completes a line is bounded: past max_input the connection is closed.
    let _ = c.w.write_all(&vec![b'z'; 200 * 1024]);
    c.expect_closed();
    drop(c);
    // Closing with unread input still delivers the last reply (lingering close: FIN, not RST).
    for _ in 0..5 {
        let mut c = srv.connect();
        let mut burst = b"CLOSE\n".to_vec();
        burst.resize(burst.len() + 64 * 1024, b'j');
        let _ = c.w.write_all(&burst);
        assert_eq!(c.line().len(), 512 * 1024, "the whole last reply arrives");
        c.expect("closing");
        c.expect_closed();
    }
    // A session that panics loses its connection; the server goes on.
    let mut p = srv.connect();
    p.send("PANIC");
    p.expect_closed();
    drop(p);
    if model.concurrent() {
        let mut a = srv.connect();
        let mut b = srv.connect();
        a.send("a");
        b.send("b");
        b.expect("b");
        a.expect("a");
    }
    assert!(srv.stop().success());
}

pub(crate) fn broadcast(model: Model, edge: bool) {
    if !model.concurrent() {
        // One client at a time: there is never an "other" client to broadcast to. The session
        // still works alone (publishing with no other subscriber).
        let mut srv = TestServer::start(&Spec::new(model, edge, "chat"));
        let mut c = srv.connect();
        assert!(c.line().starts_with("welcome "));
        c.send("alone");
        drop(c);
        assert!(srv.stop().success());
        return;
    }
    let mut spec = Spec::new(model, edge, "chat");
    spec.workers = spec.workers.max(3);
    let mut srv = TestServer::start(&spec);
    let mut clients: Vec<Client> = (0..4).map(|_| srv.connect()).collect();
    let mut pids = std::collections::HashSet::new();
    for c in &mut clients {
        let l = c.line();
        pids.insert(
            l.strip_prefix("welcome ")
                .expect("welcome line")
                .to_string(),
        );
    }
    if model == Model::Fork {
        assert_eq!(pids.len(), 4, "fork: each client has its own process");
    }
    eprintln!(
        "{model}: 4 chat clients served by {} process(es)",
        pids.len()
    );
    // Two senders interleave; every other client sees each sender's lines in order.
    let n = 100;
    for i in 0..n {
        clients[0].send(&format!("A{i}"));
        clients[1].send(&format!("B{i}"));
    }
    for (k, c) in clients.iter_mut().enumerate() {
        let (mut na, mut nb) = (0, 0);
        let expect_a = if k == 0 { 0 } else { n };
        let expect_b = if k == 1 { 0 } else { n };
        while na < expect_a || nb < expect_b {
            let l = c.line();
            assert!(
                !l.is_empty(),
                "client {k}: connection closed early ({na} A, {nb} B)"
            );
            if let Some(x) = l.strip_prefix('A') {
                assert_eq!(
                    x.parse::<usize>().unwrap(),
                    na,
                    "client {k}: A out of order"
                );
                na += 1;
            } else if let Some(x) = l.strip_prefix('B') {
                assert_eq!(
                    x.parse::<usize>().unwrap(),
                    nb,
                    "client {k}: B out of order"
                );
                nb += 1;
            } else {
                panic!("client {k}: unexpected line {l:?}");
            }
        }
    }
    drop(clients);
    assert!(srv.stop().success());
}

/// A client that never reads must not stall the others: it is disconnected when its bounded
/// queue overflows, while a reading client gets every message, in order.
pub(crate) fn slow_receiver(model: Model, edge: bool) {
    if !model.concurrent() {
        return; // one client at a time: nobody to be slow towards
    }
    let mut spec = Spec::new(model, edge, "chat");
    spec.tight = true;
    spec.workers = spec.workers.max(3);
    let mut srv = TestServer::start(&spec);
    let mut slow = srv.connect();
    let mut fast = srv.connect();
    let mut sender = srv.connect();
    for c in [&mut slow, &mut fast, &mut sender] {
        assert!(c.line().starts_with("welcome "));
    }
    slow.r
        .get_ref()
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    // The sender is paced by the fast reader (batches in lock-step), so only `slow` falls
    // behind; it must be cut off once its kernel buffers and its bounded queues are full.
    let (batches, per) = (120, 100);
    let n = batches * per;
    let pad = "x".repeat(1000);
    let mut next = 0;
    for _ in 0..batches {
        let burst: String = (next..next + per)
            .map(|i| format!("M{i} {pad}\n"))
            .collect();
        sender.w.write_all(burst.as_bytes()).unwrap();
        for i in next..next + per {
            let l = fast.line();
            assert!(
                l.starts_with(&format!("M{i} ")),
                "fast client: expected M{i}, got {:?}",
                &l[..l.len().min(20)]
            );
        }
        next += per;
    }
    // The slow client was cut off: it finds its connection closed after what it was sent.
    let mut sink = Vec::new();
    let r = slow.r.read_to_end(&mut sink);
    assert!(r.is_ok() || r.unwrap_err().kind() == std::io::ErrorKind::ConnectionReset);
    assert!(
        sink.len() < n * 1000,
        "the slow client cannot have been sent everything"
    );
    drop((slow, fast, sender));
    assert!(srv.stop().success());
}

pub(crate) fn data_channel(model: Model, edge: bool) {
    let path = std::env::temp_dir().join(format!(
        "bingfa-net-test-{}-{}-{}",
        std::process::id(),
        model,
        edge
    ));
    let content: Vec<u8> = (0..3 * 1024 * 1024 + 17)
        .map(|i: u32| (i.wrapping_mul(2654435761) >> 24) as u8)
        .collect();
    std::fs::write(&path, &content).unwrap();
    let mut spec = Spec::new(model, edge, "files");
    spec.file = path.to_string_lossy().into_owned();
    let mut srv = TestServer::start(&spec);
    let mut c = srv.connect();
    let check = |mut data: TcpStream| {
        data.set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut got = Vec::new();
        data.read_to_end(&mut got).unwrap();
        assert!(
            got.starts_with(b"BEGIN\n"),
            "channel output starts with its bytes"
        );
        assert!(
            got[6..] == content[..],
            "file arrived intact ({} of {} bytes)",
            got.len() - 6,
            content.len()
        );
    };
    for _ in 0..2 {
        // Passive: the session opens a second listening socket and streams to whoever connects.
        c.send("PASV");
        let l = c.line();
        let port: u16 = l.strip_prefix("227 ").expect("227 reply").parse().unwrap();
        check(TcpStream::connect(("127.0.0.1", port)).unwrap());
        c.expect("226 done");
        // Active: the session connects to us.
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        c.send(&format!("PORT {}", listener.local_addr().unwrap().port()));
        listener.set_nonblocking(false).unwrap();
        let (s, _) = accept_timeout(&listener, Duration::from_secs(10));
        check(s);
        c.expect("226 done");
        // Upload: the session receives the channel's bytes and learns of EOF.
        c.send("STOR");
        let port: u16 = c
            .line()
            .strip_prefix("227 ")
            .expect("227 reply")
            .parse()
            .unwrap();
        let mut up = TcpStream::connect(("127.0.0.1", port)).unwrap();
        up.write_all(&content).unwrap();
        up.shutdown(std::net::Shutdown::Write).unwrap();
        let sum = content
            .iter()
            .fold(0u64, |s, &b| s.wrapping_mul(31).wrapping_add(b as u64));
        c.expect(&format!("226 got {} {sum}", content.len()));
    }
    // ABOR: a passive listener dropped before anyone connected.
    c.send("PASV");
    let port: u16 = c
        .line()
        .strip_prefix("227 ")
        .expect("227 reply")
        .parse()
        .unwrap();
    c.send("ABOR");
    c.expect("226 aborted");
    assert!(
        TcpStream::connect(("127.0.0.1", port)).is_err(),
        "the aborted listener is closed"
    );
    // An active connection that cannot be made is reported, and the session goes on.
    let closed_port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    c.send(&format!("PORT {closed_port}"));
    c.expect("425 ConnectionRefused");
    drop(c);
    assert!(srv.stop().success());
    let _ = std::fs::remove_file(&path);
}

pub(crate) fn accept_timeout(l: &TcpListener, limit: Duration) -> (TcpStream, SocketAddr) {
    l.set_nonblocking(true).unwrap();
    let end = Instant::now() + limit;
    loop {
        match l.accept() {
            Ok((s, a)) => {
                s.set_nonblocking(false).unwrap();
                return (s, a);
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock && Instant::now() < end => {
                std::thread::sleep(Duration::from_millis(10))
            }
            Err(e) => panic!("accept: {e}"),
        }
    }
}
