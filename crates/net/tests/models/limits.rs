//! Scenarios about limits: max connections (the refusal, then a freed place is reused), max per
//! IP (a second address still gets in), the idle timeout; idle keep-alive clients holding nothing
//! (2 workers, 8 quiet clients and 6 lingering closes: a newcomer is served at once and the quiet
//! ones are still served after); and a FIN while input is paused told at once (`on_hangup`), with
//! unconsumed input already read and with bytes still queued in the kernel before the FIN.

use crate::harness::*;
use bingfa_net::Model;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

pub(crate) fn max_connections(model: Model, edge: bool) {
    let mut spec = Spec::new(model, edge, "echo");
    spec.max = 2;
    let mut srv = TestServer::start(&spec);
    let mut a = srv.connect();
    a.send("a");
    a.expect("a");
    let mut b = srv.connect();
    if model.concurrent() {
        b.send("b");
        b.expect("b");
    } else {
        // Iterative: b waits its turn, but it holds a place; give the loop time to accept it.
        // (generous, for a loaded machine: an idle loop accepts it at once).
        std::thread::sleep(Duration::from_millis(1000));
    }
    let mut c = srv.connect();
    c.expect("busy");
    c.expect_closed();
    // The two admitted clients are unaffected; once one leaves, a newcomer gets in.
    a.send("still");
    a.expect("still");
    drop(a);
    if !model.concurrent() {
        b.send("b");
        b.expect("b");
        // Serving one at a time, a waiting newcomer would wait for `b`: let it go too.
        drop(b);
        b = srv.connect();
        b.w.shutdown(std::net::Shutdown::Both).unwrap();
    }
    // A place was freed when `a` left: a newcomer is admitted. Until the server has noticed,
    // newcomers get "busy" (or a reset, if the refusal raced with our line).
    let start = Instant::now();
    loop {
        let mut d = srv.connect();
        let _ = d.w.write_all(b"d\n");
        let mut l = String::new();
        match d.r.read_line(&mut l) {
            Ok(_) if l == "d\n" => break,
            Ok(_) => assert!(l == "busy\n" || l.is_empty(), "unexpected {l:?}"),
            Err(e) => assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset),
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "a freed place was never reused"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    drop(b);
    assert!(srv.stop().success());
}

/// `max_per_ip`: one address at its limit is refused while another address still gets in.
pub(crate) fn per_ip_limit(model: Model, edge: bool) {
    if !model.concurrent() {
        return; // one at a time: the others wait anyway (max_connections covers refusal)
    }
    let mut spec = Spec::new(model, edge, "echo");
    spec.per_ip = 2;
    let mut srv = TestServer::start(&spec);
    let from = |ip: [u8; 4]| {
        use socket2::{Domain, Socket, Type};
        let s = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
        s.bind(&SocketAddr::from((ip, 0)).into()).unwrap();
        s.connect_timeout(&srv.addr.into(), Duration::from_secs(5))
            .unwrap();
        let s: TcpStream = s.into();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        Client {
            w: s.try_clone().unwrap(),
            r: BufReader::new(s),
        }
    };
    let mut held = Vec::new();
    for i in 0..2 {
        let mut c = from([127, 0, 0, 1]);
        c.send(&format!("one {i}"));
        c.expect(&format!("one {i}"));
        held.push(c);
    }
    let mut third = from([127, 0, 0, 1]);
    third.expect("busy");
    third.expect_closed();
    let mut other = from([127, 0, 0, 2]);
    other.send("two");
    other.expect("two");
    drop((held, other));
    assert!(srv.stop().success());
}

pub(crate) fn idle_timeout(model: Model, edge: bool) {
    let mut spec = Spec::new(model, edge, "echo");
    spec.idle_ms = 300;
    let mut srv = TestServer::start(&spec);
    let mut c = srv.connect();
    c.send("x");
    c.expect("x");
    let t = Instant::now();
    c.expect("bye idle");
    c.expect_closed();
    assert!(
        t.elapsed() >= Duration::from_millis(250),
        "closed too early: {:?}",
        t.elapsed()
    );
    // The server is still fine for the next client.
    let mut d = srv.connect();
    d.send("y");
    d.expect("y");
    drop(d);
    assert!(srv.stop().success());
}

/// Idle keep-alive clients must not hold the server: with 2 workers (threadpool: 2 threads),
/// 8 clients that made one round trip and went quiet, and 6 the server is closing (lingering
/// for their FIN), leave a newcomer served at once, long before their timeouts; and each quiet
/// client is still served when it speaks again.
pub(crate) fn idle_clients_hold_nothing(model: Model, edge: bool) {
    if !model.concurrent() {
        return; // one at a time by design: a newcomer waits for the current client
    }
    let mut spec = Spec::new(model, edge, "echo");
    spec.workers = 2;
    spec.idle_ms = 30_000;
    let mut srv = TestServer::start(&spec);
    let mut quiet: Vec<Client> = (0..8)
        .map(|i| {
            let mut c = srv.connect();
            c.send(&format!("first {i}"));
            c.expect(&format!("first {i}"));
            c
        })
        .collect();
    // Clients the server closed on that keep their end open: the server lingers (reads until
    // their FIN, up to 2 s), which is waiting too, not work. Were a lingering connection to
    // hold a worker, the third of them would wait 2 s for one.
    let t = Instant::now();
    let lingering: Vec<Client> = (0..6)
        .map(|_| {
            let mut c = srv.connect();
            c.send("CLOSE");
            assert_eq!(c.line().len(), 512 * 1024);
            c.expect("closing");
            c
        })
        .collect();
    let mut newcomer = srv.connect();
    newcomer
        .r
        .get_ref()
        .set_read_timeout(Some(Duration::from_secs(3)))
        .unwrap();
    newcomer.send("newcomer");
    newcomer.expect("newcomer");
    assert!(
        t.elapsed() < Duration::from_secs(3),
        "took {:?}",
        t.elapsed()
    );
    for (i, c) in quiet.iter_mut().enumerate().rev() {
        c.send(&format!("again {i}"));
        c.expect(&format!("again {i}"));
    }
    drop((quiet, newcomer, lingering));
    assert!(srv.stop().success());
}

/// A FIN while the session has paused its input is told at once (`on_hangup`), not after the
/// pause: with unconsumed input already read (FTP's command waiting behind a transfer), and
/// with bytes still queued in the kernel before the FIN. The pause here is 60 s; the client's
/// read timeout is 10 s.
pub(crate) fn hangup_while_paused(model: Model, edge: bool) {
    let mut srv = TestServer::start(&Spec::new(model, edge, "echo"));
    let mut c = srv.connect();
    c.w.write_all(b"PAUSE 60000\nwaiting\n").unwrap();
    c.w.shutdown(std::net::Shutdown::Write).unwrap();
    let t = Instant::now();
    c.expect("hangup");
    c.expect_closed();
    drop(c);
    let mut c = srv.connect();
    c.send("PAUSE 60000");
    std::thread::sleep(Duration::from_millis(300));
    c.send("queued");
    std::thread::sleep(Duration::from_millis(100));
    c.w.shutdown(std::net::Shutdown::Write).unwrap();
    c.expect("hangup");
    c.expect_closed();
    assert!(t.elapsed() < Duration::from_secs(30), "{:?}", t.elapsed());
    // The server is still fine for the next client.
    let mut d = srv.connect();
    d.send("y");
    d.expect("y");
    drop(d);
    assert!(srv.stop().success());
}
