//! The chat room's limits under every model (see `chat.rs` for the suite): burst and rate,
//! `--max-line`, invalid UTF-8 and `--max-members`; a slow reader evicted while a reading member
//! gets all 20,000 lines in order; the name and head timeouts.

#[path = "support/chat_room.rs"]
mod room;

use bingfa_net::Model;
use room::*;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// Bad input gets a `! ` line and the member stays; the member over --max-members is closed.
fn limits(model: Model, edge: bool) {
    let mut srv = Server::start(
        model,
        edge,
        &[
            "--max-line",
            "16",
            "--rate",
            "1",
            "--burst",
            "3",
            "--max-members",
            "2",
        ],
    );
    let mut a = srv.join("alice");
    let mut b = model.concurrent().then(|| srv.join("bob"));
    if b.is_some() {
        a.expect("* bob joined");
    }
    // A burst of 6 at once: the bucket holds 3, the rest are refused (1 token a second). The
    // name took a token too (every line counts): let the bucket fill first.
    std::thread::sleep(Duration::from_millis(3100));
    let burst: String = (0..6).map(|i| format!("m{i}\n")).collect();
    a.send_raw(burst.as_bytes());
    // Said once; the other two are dropped in silence (no reply per line refused).
    a.expect("! too fast (at most 1 lines a second), line dropped");
    if let Some(b) = b.as_mut() {
        for i in 0..3 {
            b.expect(&format!("alice: m{i}"));
        }
    }
    // Every line counts against the bucket: let it refill for the three below.
    std::thread::sleep(Duration::from_millis(3100));
    a.send(&"x".repeat(17));
    a.expect("! line too long (at most 16 bytes), dropped");
    // Far longer than a line may be, arriving before its newline: still one error.
    a.send_raw(&vec![b'y'; 5000]);
    a.send_raw(b"\n");
    a.expect("! line too long (at most 16 bytes), dropped");
    a.send_raw(b"\xff\xfe ok\n");
    a.expect("! invalid UTF-8, line dropped");
    // The member stayed: once the bucket refills, lines go through again.
    std::thread::sleep(Duration::from_millis(1100));
    a.send("/who");
    if model.concurrent() {
        a.expect("* online (2): alice, bob");
        // Over --max-members.
        let mut c = srv.connect();
        c.expect_greeting();
        c.send("carol");
        c.expect("! room is full");
        c.expect_closed();
    } else {
        a.expect("* online (1): alice");
    }
    assert!(srv.stop().success());
}

/// A member that stops reading is evicted once its queue is full; the others get everything.
fn slow_reader(model: Model, edge: bool) {
    if !model.concurrent() {
        return;
    }
    let mut srv = Server::start(model, edge, &["--rate", "0", "--max-line", "2000"]);
    let slow = srv.join("slow");
    let mut sender = srv.join("sender");
    let mut reader = srv.join("reader");
    sender.expect("* reader joined");
    let pad = "p".repeat(1000);
    // Paced by the reader (batches in lock-step) so only `slow` falls behind; 20 MB is more
    // than its kernel buffers, high water and hub queue hold together.
    let (batches, per) = (200, 100);
    let mut left = false;
    for b in 0..batches {
        let burst: String = (b * per..(b + 1) * per)
            .map(|i| format!("{i} {pad}\n"))
            .collect();
        sender.send_raw(burst.as_bytes());
        let mut i = b * per;
        while i < (b + 1) * per {
            let l = reader.line();
            if l == "* slow left" {
                left = true;
                continue;
            }
            assert_eq!(l, format!("sender: {i} {pad}"));
            i += 1;
        }
    }
    if !left {
        reader.expect("* slow left");
    }
    drop(slow);
    assert!(srv.stop().success());
}

/// A connection that never chooses a name is closed after `--name-timeout` (a `! ` line says
/// why) while members, who never time out, stay; on the web face a connection that sends no
/// request, half a request head, or (over TLS) half a handshake is closed after
/// `--head-timeout`. Under `iterative` this is what frees the server from a silent client.
fn timeouts(model: Model, edge: bool) {
    let args = [
        "--web",
        "127.0.0.1:0",
        "--name-timeout",
        "1",
        "--head-timeout",
        "1",
    ];
    let mut srv = Server::start(model, edge, &args);
    let mut member = model.concurrent().then(|| srv.join("ann"));
    let mut silent = srv.connect();
    silent.expect_greeting();
    let t = Instant::now();
    silent.expect("! no name chosen within 1 s, closing");
    silent.expect_closed();
    assert!(t.elapsed() < Duration::from_secs(8), "{:?}", t.elapsed());
    if let Some(m) = &mut member {
        m.send("/who");
        m.expect("* online (1): ann");
        m.send("/quit");
        m.expect("* bye");
    }
    let web = srv.web.unwrap();
    let raw = |head: &[u8]| {
        let mut c = TcpStream::connect_timeout(&web, Duration::from_secs(5)).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        c.write_all(head).unwrap();
        let mut got = Vec::new();
        c.read_to_end(&mut got)
            .expect("the web face closes a stalled connection");
        String::from_utf8_lossy(&got).into_owned()
    };
    assert_eq!(raw(b""), "", "[{model}] no request: closed, nothing said");
    let half = raw(b"GET / HTTP/1.1\r\nHost: x\r\n");
    assert!(
        half.starts_with("HTTP/1.1 408 Request Timeout\r\n"),
        "[{model}] {half:?}"
    );
    // A page answered, then the kept-alive connection goes quiet: closed after the page.
    let page = raw(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(
        page.starts_with("HTTP/1.1 200 OK\r\n"),
        "[{model}] {:.80?}",
        page
    );
    assert!(
        page.ends_with("</html>\n"),
        "[{model}] the page, then the close"
    );
    // The room still serves.
    let mut b = srv.join("bob");
    b.send("/who");
    b.expect("* online (1): bob");
    assert!(srv.stop().success());

    // Over TLS: a handshake that stalls after 9 bytes is closed by the same timer.
    let mut srv = Server::start(model, edge, &[&args[..], &["--tls-self-signed"]].concat());
    let web = srv.web.unwrap();
    let mut c = TcpStream::connect_timeout(&web, Duration::from_secs(5)).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    c.write_all(&[0x16, 0x03, 0x01, 0x00, 0x80, 0x01, 0x00, 0x00, 0x7c])
        .unwrap();
    let mut got = Vec::new();
    c.read_to_end(&mut got).expect("closed by the head timeout");
    assert!(got.is_empty() || got[0] == 0x15, "[{model}] {got:?}");
    let mut b = srv.join("bob");
    b.send("/who");
    b.expect("* online (1): bob");
    assert!(srv.stop().success());
}

bingfa_testkit::for_each_model! {
    #[test] fn limits() { super::limits(M, E) }
    #[test] fn slow_reader() { super::slow_reader(M, E) }
    #[test] fn timeouts() { super::timeouts(M, E) }
}
