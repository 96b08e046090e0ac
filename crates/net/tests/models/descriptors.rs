//! Scenario: the server runs out of file descriptors (it sets `RLIMIT_NOFILE` to 64 for
//! itself). Over-limit clients must be refused at once rather than hang, the server must not
//! spin while exhausted, the log says so once, and once clients leave, new ones are served.

use crate::harness::*;
use bingfa_net::Model;
use std::io::{BufRead, ErrorKind, Write};
use std::time::{Duration, Instant};

/// utime + stime of `pid` and of its children (prefork workers, fork children), in clock ticks.
fn cpu_ticks(pid: i32) -> u64 {
    let one = |p: i32| {
        let stat = std::fs::read_to_string(format!("/proc/{p}/stat")).unwrap_or_default();
        let Some(rp) = stat.rfind(')') else { return 0 };
        // After the command: state is field 3; utime and stime are fields 14 and 15.
        let f: Vec<&str> = stat[rp + 2..].split(' ').collect();
        f.get(11).and_then(|s| s.parse::<u64>().ok()).unwrap_or(0)
            + f.get(12).and_then(|s| s.parse::<u64>().ok()).unwrap_or(0)
    };
    one(pid)
        + children_of(pid)
            .into_iter()
            .map(|(p, _)| one(p))
            .sum::<u64>()
}

/// What a client got: its echo (admitted and served), or the refusal and then EOF.
#[derive(Debug, PartialEq)]
enum Answer {
    Served,
    Refused,
}

/// Send a line and read the answer. A refused client may find its line was answered with a
/// reset (the server closed right after the refusal, before the line arrived).
fn answer(c: &mut Client, line: &str) -> Answer {
    let _ = c.w.write_all(format!("{line}\n").as_bytes());
    let mut l = String::new();
    match c.r.read_line(&mut l) {
        Ok(_) if l.trim_end() == line => Answer::Served,
        Ok(_) if l == "busy\n" => {
            c.expect_closed();
            Answer::Refused
        }
        Err(e) if e.kind() == ErrorKind::ConnectionReset => Answer::Refused,
        r => panic!("neither the echo nor the refusal: {r:?} {l:?}"),
    }
}

pub(crate) fn fd_exhaustion(model: Model, edge: bool) {
    let mut spec = Spec::new(model, edge, "echo");
    spec.nofile = 64;
    let mut srv = TestServer::start(&spec);
    let pid = srv.pid();
    // More than any model can hold in 64 descriptors (prefork: 2 processes of 64 each).
    const N: usize = 160;
    // Connect them all first: accepting (and refusing) happens while the others queue.
    let mut clients: Vec<Client> = (0..N).map(|_| srv.connect()).collect();
    let (mut served, mut refused) = (0, 0);
    if model.concurrent() {
        // Every client is answered (a hang would time out the read): served or refused.
        for (i, c) in clients.iter_mut().enumerate() {
            match answer(c, &format!("x{i}")) {
                Answer::Served => served += 1,
                Answer::Refused => refused += 1,
            }
        }
    } else {
        // Iterative: the first is served; the next ones are admitted and wait their turn
        // (legitimately silent) until descriptors run out; the rest are refused. Walk back
        // from the last: refusals come at once, the first silent one is a waiting client.
        for (i, c) in clients.iter_mut().enumerate().rev() {
            let _ = c.w.write_all(format!("x{i}\n").as_bytes());
            c.r.get_ref()
                .set_read_timeout(Some(Duration::from_secs(2)))
                .unwrap();
            let mut l = String::new();
            match c.r.read_line(&mut l) {
                Ok(_) if l == "busy\n" => {
                    c.expect_closed();
                    refused += 1;
                }
                Err(e) if e.kind() == ErrorKind::ConnectionReset => refused += 1,
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => break,
                r => panic!("unexpected {r:?} {l:?}"),
            }
        }
        served = 1;
        assert_eq!(answer(&mut clients[0], "x0"), Answer::Served);
    }
    if model.concurrent() {
        // Prefork: a worker process out of descriptors may still win the race for a newcomer
        // its sibling could have served, so the sibling may have room left. Top up until
        // newcomers are refused, every one of 20 in a row.
        let mut in_a_row = 0;
        let mut extra = 0;
        while in_a_row < 20 {
            let mut c = srv.connect();
            extra += 1;
            assert!(extra < 300, "descriptors never ran out in every process");
            if answer(&mut c, "more") == Answer::Served {
                in_a_row = 0;
                served += 1;
                clients.push(c);
            } else {
                in_a_row += 1;
                refused += 1;
            }
        }
    }
    eprintln!("{model}: {served} served, {refused} refused");
    assert!(
        refused >= 20,
        "descriptors never ran out ({refused} refused)"
    );
    assert!(served >= 1, "nobody was served ({refused} refused)");

    // Still exhausted: newcomers keep being refused at once, and the server is not spinning.
    let ticks = cpu_ticks(pid);
    let t = Instant::now();
    for i in 0..20 {
        let mut c = srv.connect();
        assert_eq!(answer(&mut c, &format!("late{i}")), Answer::Refused);
        std::thread::sleep(Duration::from_millis(100));
    }
    let spent = cpu_ticks(pid) - ticks;
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    let elapsed = t.elapsed();
    eprintln!("{model}: {spent} ticks of CPU in {elapsed:?} while exhausted");
    assert!(
        spent * 1000 / hz < 500,
        "the server burned {} ms of CPU in {elapsed:?} while out of descriptors",
        spent * 1000 / hz
    );

    // Clients leave: descriptors come back and a newcomer is served again.
    drop(clients);
    let start = Instant::now();
    loop {
        let mut c = srv.connect();
        let _ = c.w.write_all(b"again\n");
        let mut l = String::new();
        match c.r.read_line(&mut l) {
            Ok(_) if l == "again\n" => break,
            Ok(_) => assert!(l == "busy\n" || l.is_empty(), "unexpected {l:?}"),
            Err(e) => assert_eq!(e.kind(), ErrorKind::ConnectionReset),
        }
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "descriptors never came back"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(srv.stop().success());
    let log = srv.log();
    let warned = log
        .iter()
        .filter(|l| l.contains("refusing new connections until descriptors are freed"))
        .count();
    assert_eq!(
        warned,
        1,
        "one warning for one episode; the log:\n{}",
        log.join("\n")
    );
    assert!(
        log.iter().any(|l| l.contains("RLIMIT_NOFILE allows 64")),
        "no warning at start that max_connections cannot fit; the log:\n{}",
        log.join("\n")
    );
}
