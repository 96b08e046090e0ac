//! The chat room's integration suite, one scenario set run under all ten models plus
//! edge-triggered epoll (like `crates/net/tests/models.rs`). Each server is the real binary,
//! `bingfa chat serve`, in its own process, so fork/prefork put members in different processes
//! and shutdown is a real SIGTERM with a real exit status.
//!
//! Scenarios: names (each rule, exact `! ` lines, uniqueness regardless of case); messages
//! (exact bytes, no echo, `/quit` and disconnect give `* NAME left` and free the name); one order
//! (two interleaved senders, three readers, identical sequences); limits (burst and rate,
//! `--max-line`, invalid UTF-8, `--max-members`); a slow reader evicted while a reading member
//! gets all 20,000 lines in order; announcements (admin socket, `announce` exit codes, the one
//! order); shutdown (`* server shutting down`, exit 0, admin socket removed); a web member beside
//! a TCP member (`--web`, a WebSocket client on the crate's codec: name refusal, exact lines
//! both ways, an over-long web line refused with the member staying, `left` after a close
//! handshake and after a dropped connection); the name and head timeouts; a member over TLS
//! (`--tls-bind`).
//!
//! `iterative` serves one connection at a time (a second member waits, unserved, until the
//! first leaves) and `threadpool` serves `--workers` at once: multi-member scenarios are skipped
//! for `iterative`, and `iterative_one_at_a_time` / `threadpool_serves_more_members_than_workers`
//! test what those models do guarantee.
//!
//! This file: names, messages and the one order, and what `iterative` and `threadpool`
//! guarantee; limits, the slow reader and timeouts are in `chat_limits.rs`, announcements and
//! shutdown in `chat_announce.rs`, the web and TLS faces in `chat_faces.rs`; the server and
//! client helpers in `support/chat_room.rs`.

#[path = "support/chat_room.rs"]
mod room;

use bingfa_net::Model;
use room::*;
use std::io::Write;
use std::time::Duration;

// ---------------------------------------------------------------------------------------------
// Scenarios, each written once
// ---------------------------------------------------------------------------------------------

fn names(model: Model, edge: bool) {
    let mut srv = Server::start(model, edge, &[]);
    let chars = "! a name is letters, digits and _ - . only; try another name";
    let refused = [
        ("", "! a name is 1 to 32 characters; try another name"),
        (
            &"x".repeat(33),
            "! a name is 1 to 32 characters; try another name",
        ),
        ("a b", chars),
        ("a:b", chars),
        ("*x", chars),
        ("hey!", chars),
        ("ADMIN", "! the name admin is reserved; try another name"),
    ];
    // A few refusals in a row at most per connection (more close it: `chat_input.rs`).
    for some in refused.chunks(4) {
        let mut c = srv.connect();
        c.expect_greeting();
        for (bad, why) in some {
            c.send(bad);
            c.expect(why);
        }
    }
    let mut a = srv.connect();
    a.expect_greeting();
    a.send_raw(b"alice\r\n");
    a.expect("* you are alice; online: alice");
    a.send("/who");
    a.expect("* online (1): alice");
    a.send("/help");
    a.expect("* commands: /who (who is online), /help (this list), /quit (leave); any other line is said to the room");
    a.send("/dance now");
    a.expect("! unknown command /dance (try /help)");
    if model.concurrent() {
        let mut b = srv.connect();
        b.expect_greeting();
        b.send("ALICE");
        b.expect("! name taken; try another name");
        b.send("bob");
        b.expect("* you are bob; online: alice, bob");
        a.expect("* bob joined");
        a.send("/who");
        a.expect("* online (2): alice, bob");
        // Bob leaves before alice quits: dropping his connection at the end of this block
        // raced alice's `/quit` (both `* bob left` then `* bye` and the reverse are right).
        b.send("/quit");
        b.expect("* bye");
        a.expect("* bob left");
    }
    a.send("/quit");
    a.expect("* bye");
    a.expect_closed();
    assert!(srv.stop().success());
}

fn messages(model: Model, edge: bool) {
    if !model.concurrent() {
        return;
    }
    let mut srv = Server::start(model, edge, &[]);
    let mut a = srv.join("alice");
    let mut b = srv.join("bob");
    a.expect("* bob joined");
    let mut c = srv.join("carol");
    a.expect("* carol joined");
    b.expect("* carol joined");
    a.send("hello: there * !");
    b.expect("alice: hello: there * !");
    c.expect("alice: hello: there * !");
    b.send("hi alice");
    // No echo: alice's next line is bob's, not her own.
    a.expect("bob: hi alice");
    c.expect("bob: hi alice");
    // /quit and a plain disconnect both say `left`, exactly.
    b.send("/quit");
    b.expect("* bye");
    b.expect_closed();
    a.expect("* bob left");
    c.expect("* bob left");
    drop(c);
    a.expect("* carol left");
    // The name is free again.
    let mut b2 = srv.join("Bob");
    a.expect("* Bob joined");
    b2.send("/who");
    b2.expect("* online (2): alice, Bob");
    assert!(srv.stop().success());
}

/// Two senders interleaved, three readers: every member sees the room in one order.
fn one_order(model: Model, edge: bool) {
    if !model.concurrent() {
        return;
    }
    let mut srv = Server::start(model, edge, &["--rate", "0"]);
    let mut s1 = srv.join("s1");
    let mut s2 = srv.join("s2");
    let mut readers: Vec<Client> = ["r1", "r2", "r3"].iter().map(|n| srv.join(n)).collect();
    // Drain the join notices (the later members' joins), so all start from the same point.
    s1.expect("* s2 joined");
    for n in ["r1", "r2", "r3"] {
        s1.expect(&format!("* {n} joined"));
        s2.expect(&format!("* {n} joined"));
    }
    for (i, r) in readers.iter_mut().enumerate() {
        for n in ["r1", "r2", "r3"].iter().skip(i + 1) {
            r.expect(&format!("* {n} joined"));
        }
    }
    const N: usize = 300;
    let mut w1 = s1.stream().try_clone().unwrap();
    let mut w2 = s2.stream().try_clone().unwrap();
    let t1 = std::thread::spawn(move || {
        for i in 0..N {
            w1.write_all(format!("a{i}\n").as_bytes()).unwrap();
        }
    });
    let t2 = std::thread::spawn(move || {
        for i in 0..N {
            w2.write_all(format!("b{i}\n").as_bytes()).unwrap();
        }
    });
    t1.join().unwrap();
    t2.join().unwrap();
    let seqs: Vec<Vec<String>> = readers
        .iter_mut()
        .map(|r| (0..2 * N).map(|_| r.line()).collect())
        .collect();
    assert_eq!(seqs[0], seqs[1]);
    assert_eq!(seqs[0], seqs[2]);
    // Each sender's lines in its own order; each sender sees only the other, in room order.
    let from = |p: &str| -> Vec<String> {
        seqs[0]
            .iter()
            .filter(|l| l.starts_with(p))
            .cloned()
            .collect()
    };
    assert_eq!(
        from("s1: "),
        (0..N).map(|i| format!("s1: a{i}")).collect::<Vec<_>>()
    );
    let got2: Vec<String> = (0..N).map(|_| s1.line()).collect();
    assert_eq!(got2, from("s2: "));
    let got1: Vec<String> = (0..N).map(|_| s2.line()).collect();
    assert_eq!(got1, from("s1: "));
    assert!(srv.stop().success());
}

/// `iterative`: one member at a time; the next is served when the first leaves.
#[test]
fn iterative_one_at_a_time() {
    let mut srv = Server::start(Model::Iterative, false, &[]);
    let mut a = srv.join("alice");
    let mut b = srv.connect();
    b.expect_silence(Duration::from_millis(300));
    a.send("/quit");
    a.expect("* bye");
    b.expect_greeting();
    b.send("bob");
    b.expect("* you are bob; online: bob");
    assert!(srv.stop().success());
}

/// `threadpool`: members that are quiet hold no worker (they wait in the shared poller), so a
/// room of more members than `--workers` works; the workers bound how many are *processed* at
/// once.
#[test]
fn threadpool_serves_more_members_than_workers() {
    let mut srv = Server::start(Model::ThreadPool, false, &["--workers", "2"]);
    let mut a = srv.join("alice");
    let mut b = srv.join("bob");
    a.expect("* bob joined");
    let mut c = srv.join("carol");
    a.expect("* carol joined");
    b.expect("* carol joined");
    let mut d = srv.join("dave");
    for m in [&mut a, &mut b, &mut c] {
        m.expect("* dave joined");
    }
    d.send("hello from the fourth member");
    for m in [&mut a, &mut b, &mut c] {
        m.expect("dave: hello from the fourth member");
    }
    a.send("/quit");
    a.expect("* bye");
    for m in [&mut b, &mut c, &mut d] {
        m.expect("* alice left");
    }
    assert!(srv.stop().success());
}

bingfa_testkit::for_each_model! {
    #[test] fn names() { super::names(M, E) }
    #[test] fn messages() { super::messages(M, E) }
    #[test] fn one_order() { super::one_order(M, E) }
}
