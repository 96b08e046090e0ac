//! The relay's links (`fork`/`prefork`). A lost link (`relay_link_lost`): one process is
//! SIGSTOPped while 20 MiB goes through the relay; once its queue sits at the relay's mark
//! without moving, the relay holds the publisher back, finds the stopped one stuck and closes
//! its link, and the flood goes on; the worker cut off must not go on as a room of its own. Once resumed it shuts down (its clients get what was
//! on its way, `on_shutdown`'s last line and EOF), the clients of the other processes keep
//! talking, and under `prefork` a fresh worker takes its place in the same room. A burst on a
//! link (`link_burst`): 8 MiB waits for a stopped worker whose client keeps reading; it gets
//! every line in order and is not evicted (with an unbounded link read it is evicted at once).

use crate::harness::{children_of, Client, Spec, TestServer};
use bingfa_net::Model;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// The pid of the process serving `c`, from the chat protocol's welcome line.
fn serving_pid(c: &mut Client) -> i32 {
    let l = c.line();
    l.strip_prefix("welcome ")
        .unwrap_or_else(|| panic!("{l:?}"))
        .parse()
        .unwrap()
}

fn set_state(pid: i32, sig: libc::c_int) {
    // SAFETY: signalling a process of the server this test started.
    assert_eq!(unsafe { libc::kill(pid, sig) }, 0);
}

/// A client on one process, `a`, which is left stopped (SIGSTOP), and two clients on other
/// processes: with `a` stopped, only another process can accept them (under `prefork` the
/// workers share the listener, and the running one would otherwise take them all).
fn spread(srv: &TestServer) -> (i32, Client, Client, Client) {
    let mut first = srv.connect();
    let a = serving_pid(&mut first);
    set_state(a, libc::SIGSTOP);
    let other = || {
        let mut c = srv.connect();
        assert_ne!(serving_pid(&mut c), a);
        c
    };
    let sender = other();
    let listener = other();
    (a, first, sender, listener)
}

pub(super) fn relay_link_lost(model: Model, edge: bool) {
    if !model.multi_process() {
        return;
    }
    let mut srv = TestServer::start(&Spec::new(model, edge, "chat"));
    // Process `a` stops reading its link while 20 MiB goes through the relay, so the relay's
    // queue for it reaches 16 MiB, the publisher is held back, and after `STUCK_AFTER` without
    // a byte taken the relay closes that link and lets the rest through.
    let (a, victim, mut sender, mut listener) = spread(&srv);
    let mut victims = [victim];
    let n = 20 * 1024;
    let pad = "z".repeat(1000);
    let mut r = listener.r;
    let reading = std::thread::spawn(move || {
        for i in 0..n {
            let mut l = String::new();
            r.read_line(&mut l).expect("listener: read (timed out?)");
            assert!(
                l.starts_with(&format!("L{i} ")),
                "listener: expected L{i}, got {:?}",
                &l[..l.len().min(30)]
            );
        }
        r
    });
    let mut w = sender.w.try_clone().unwrap();
    for chunk in (0..n).collect::<Vec<_>>().chunks(100) {
        let burst: String = chunk.iter().map(|i| format!("L{i} {pad}\n")).collect();
        w.write_all(burst.as_bytes()).unwrap();
    }
    listener.r = reading
        .join()
        .expect("the listener got every line, in order");
    set_state(a, libc::SIGCONT);

    // Each victim gets what was still on its way, then the shutdown's last line, then EOF:
    // disconnected, not left in a room of its own.
    for (k, v) in victims.iter_mut().enumerate() {
        let mut next = 0;
        loop {
            let l = v.line();
            if l == "bye shutdown" {
                break;
            }
            assert!(
                l.starts_with(&format!("L{next} ")),
                "victim {k}: expected L{next} or the goodbye, got {:?}",
                &l[..l.len().min(20)]
            );
            next += 1;
        }
        assert!(next < n, "victim {k} cannot have had everything");
        v.expect_closed();
    }

    // The others are still in the room.
    sender.send("still here");
    listener.expect("still here");

    // A new client lands on a process other than the two old ones (under prefork: the fresh
    // worker started in place of `a`, once it is there) and is in the same room.
    let b = serving_pid(&mut srv.connect());
    let end = Instant::now() + Duration::from_secs(10);
    let mut fresh = loop {
        let mut c = srv.connect();
        let p = serving_pid(&mut c);
        if p != a && p != b {
            break c;
        }
        assert!(Instant::now() < end, "no process but {a} and {b} serves");
        std::thread::sleep(Duration::from_millis(50));
    };
    if model == Model::Prefork {
        let live = children_of(srv.pid())
            .into_iter()
            .filter(|(p, s)| *s != 'Z' && *p != a)
            .count();
        assert_eq!(live, 2, "two workers, the cut-off one replaced");
    }
    fresh.send("one room");
    sender.expect("one room");
    listener.expect("one room");
    drop((victims, sender, listener, fresh));
    assert!(srv.stop().success());
}

/// A burst much bigger than `hub_queue_bytes` (1 MiB) waiting on a worker's link (the worker
/// was stopped while 8 MiB was published) reaches a subscriber that keeps reading whole and in
/// order: the worker reads its link a bounded amount per loop turn, letting the subscriber
/// take its messages in between, instead of pouring the burst into its inbox at once.
pub(super) fn link_burst(model: Model, edge: bool) {
    if !model.multi_process() {
        return;
    }
    let mut srv = TestServer::start(&Spec::new(model, edge, "chat"));
    let (a, reader, mut sender, mut listener) = spread(&srv);
    let n = 8 * 1024;
    let pad = "b".repeat(1000);
    let read_all = |mut r: BufReader<TcpStream>, who: &'static str| {
        std::thread::spawn(move || {
            for i in 0..n {
                let mut l = String::new();
                r.read_line(&mut l).expect("read (timed out?)");
                assert!(
                    l.starts_with(&format!("B{i} ")),
                    "{who}: expected B{i}, got {:?}",
                    &l[..l.len().min(30)]
                );
            }
            r
        })
    };
    let t_listener = read_all(listener.r, "listener");
    let t_reader = read_all(reader.r, "the reader on the stopped worker");
    for chunk in (0..n).collect::<Vec<_>>().chunks(100) {
        let burst: String = chunk.iter().map(|i| format!("B{i} {pad}\n")).collect();
        sender.w.write_all(burst.as_bytes()).unwrap();
    }
    listener.r = t_listener.join().expect("the listener got every line");
    // Everything is now queued for `a` at the relay and in its link.
    set_state(a, libc::SIGCONT);
    let mut r = t_reader.join().expect("the reader got every line");
    let mut w = reader.w;
    w.write_all(b"after the burst\n").unwrap();
    listener.expect("after the burst");
    sender.send("still in");
    let mut l = String::new();
    r.read_line(&mut l).unwrap();
    assert_eq!(l, "still in\n");
    drop((r, w, sender, listener));
    assert!(srv.stop().success());
}
