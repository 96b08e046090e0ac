//! The room's input rules against the real binary, as an attacker's clients would try them:
//! raw sockets (what `nc` sends), the WebSocket (`bingfa_testkit::ws`), TLS (rustls, with and without
//! ALPN), and Redis publishing straight onto the room's channel. Per model where the path is
//! per model (every face's session runs under each), with `bingfa_testkit::for_each_model!` below.
//!
//! - control, bidi and blank-padding bytes in a message reach no one, on every face;
//! - names are NFKC and unique by skeleton (`аlice` in Cyrillic is `alice`);
//! - no amplification: one reply per WebSocket message, nameless lines rate-limited, a few
//!   refusals in a row close the connection;
//! - an HTTP request never joins: its first line closes the connection, and the TLS line port
//!   refuses a client that offers only HTTP in ALPN (ALPACA).

#[path = "chat_redis/support.rs"]
#[allow(dead_code)]
mod redis_support;

#[path = "chat_input/support.rs"]
mod support;

use bingfa_net::Model;
use bingfa_testkit::ws;
use std::io::{BufRead, Read, Write};
use std::net::TcpStream;
use std::time::Duration;
use support::{Server, Tls, GREETING};

// ---------------------------------------------------------------------------------------------
// Scenarios, each written once
// ---------------------------------------------------------------------------------------------

/// What an attacker puts in a message to take over other members' terminals or to pose as
/// the server, each refused with the reason, on the line port and over WebSocket; a marker
/// line after each shows that nothing of the refused one reached the others.
fn control_bytes(model: Model, edge: bool) {
    let srv = Server::start(model, edge, &["--web", "127.0.0.1:0", "--rate", "0"]);
    // `iterative` serves one connection at a time: there the sender is checked alone.
    let mut bob = model.concurrent().then(|| srv.join("bob"));
    let mut eve = srv.join("eve");
    if let Some(b) = &mut bob {
        b.expect("* eve joined");
    }
    let attacks: [(&[u8], &str); 8] = [
        (b"\x1b[2J\x1b[H", "control character U+001B"),
        (b"\x1b]52;c;cHduZWQ=\x07", "control character U+001B"),
        (
            b"hi\r* admin: log in again at evil.example",
            "control character U+000D",
        ),
        (b"erase\x08\x08\x08\x08\x08", "control character U+0008"),
        (b"nul\x00", "control character U+0000"),
        ("csi\u{9b}2J".as_bytes(), "control character U+009B"),
        (
            "\u{202e}niaga ni gol".as_bytes(),
            "bidi control character U+202E",
        ),
        (
            format!("hi{}* bob left", "\u{a0}".repeat(70))
                .as_bytes()
                .to_vec()
                .leak(),
            "more than 8 blank columns in a row",
        ),
    ];
    for (i, (bytes, why)) in attacks.iter().enumerate() {
        eve.raw(&[*bytes, b"\n"].concat());
        eve.expect(&format!("! message refused: {why}"));
        eve.send(&format!("marker {i}"));
        if let Some(b) = &mut bob {
            b.expect(&format!("eve: marker {i}"));
        }
    }
    if bob.is_none() {
        drop(eve);
    }
    // The same rule over WebSocket, and a message with line breaks is one line, refused once.
    let mut w = ws::Ws::connect(srv.web.unwrap());
    w.expect(GREETING);
    w.send("wendy");
    // Under fork/prefork a marker eve said before wendy came may still reach her after her
    // claim (the relay's order); those are not what is looked at here.
    let reply = |w: &mut ws::Ws| loop {
        match w.next_event() {
            Some(bingfa_chat::ws::Event::Text(t)) if t.starts_with("eve: marker") => {}
            Some(bingfa_chat::ws::Event::Text(t)) => return t,
            other => panic!("{other:?}"),
        }
    };
    assert!(reply(&mut w).starts_with("* you are wendy; online: "));
    if let Some(b) = &mut bob {
        b.expect("* wendy joined");
    }
    for (bytes, why) in &attacks {
        w.send(std::str::from_utf8(bytes).unwrap());
        assert_eq!(reply(&mut w), format!("! message refused: {why}"));
        w.send("ok");
        if let Some(b) = &mut bob {
            b.expect("wendy: ok");
        }
    }
    w.send("one\ntwo\nthree");
    assert_eq!(reply(&mut w), "! message refused: control character U+000A");
    w.send("/who");
    assert!(reply(&mut w).starts_with("* online ("), "still a member");
}

/// Names: NFKC, letters/digits, unique by confusable skeleton, never invisible.
fn names(model: Model, edge: bool) {
    let srv = Server::start(model, edge, &["--rate", "0"]);
    let mut a = srv.connect();
    let refused = "! a name is letters, digits and _ - . only; try another name";
    for bad in ["alice\u{200b}", "\u{202e}", "\u{2800}", "bo\u{feff}b"] {
        a.send(bad);
        a.expect(refused);
    }
    a.send("ａｌｉｃｅ");
    a.expect("* you are alice; online: alice");
    if model.concurrent() {
        let mut b = srv.connect();
        for same in ["аlice", "ALICE", "аlісе"] {
            b.send(same);
            b.expect("! name taken; try another name");
        }
        b.send("bob");
        b.expect("* you are bob; online: alice, bob");
        a.expect("* bob joined");
    }
}

/// No reply amplification before a name: 1,000 empty lines get five answers and the
/// connection is closed; a 64 KiB WebSocket message of newlines gets one answer.
fn amplification(model: Model, edge: bool) {
    let srv = Server::start(model, edge, &["--web", "127.0.0.1:0"]);
    let mut c = srv.connect();
    c.raw(&b"\n".repeat(1000));
    let sorry = "! a name is 1 to 32 characters; try another name\n";
    assert_eq!(
        c.rest(),
        sorry.repeat(5) + "! too many refused lines in a row, closing\n"
    );
    drop(c);
    let mut w = ws::Ws::connect(srv.web.unwrap());
    w.expect(GREETING);
    w.send(&"\n".repeat(64 * 1024 - 1));
    w.expect("! line too long (at most 1024 bytes), dropped");
    w.send(&"\n".repeat(1000));
    w.expect("! a name is 1 to 32 characters; try another name");
    w.send("a\nb");
    w.expect("! a name is letters, digits and _ - . only; try another name");
    w.send("zoë");
    w.expect("* you are zoë; online: zoë");
    w.close();
    // Nameless lines count against the rate like a member's: a burst beyond it is answered
    // once with `too fast`, not once per line.
    let mut n = srv.connect();
    for _ in 0..4 {
        n.send("a b");
        n.expect("! a name is letters, digits and _ - . only; try another name");
    }
    n.send("nina");
    assert!(n.line().starts_with("* you are nina; online: "));
    n.raw(&"x\n".repeat(40).into_bytes());
    let mut saw = Vec::new();
    n.w.shutdown(std::net::Shutdown::Write).unwrap();
    loop {
        let mut l = String::new();
        if n.r.read_line(&mut l).unwrap_or(0) == 0 {
            break;
        }
        saw.push(l);
    }
    assert_eq!(
        saw.iter().filter(|l| l.starts_with("! too fast")).count(),
        1,
        "{saw:?}"
    );
}

/// A browser's request, sent to the line port by another page, never joins the room: the
/// request line closes the connection, so neither the headers nor the form become a name or
/// a message.
fn http_request(model: Model, edge: bool) {
    let srv = Server::start(model, edge, &[]);
    let mut c = srv.connect();
    c.raw(
        b"POST /login HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\n\
          Content-Length: 21\r\n\r\nuser=ann&pass=hunter2",
    );
    assert_eq!(
        c.rest(),
        "! this is a chat room, not an HTTP server; closing\n"
    );
    drop(c);
    let mut a = srv.join("alice");
    a.send("/who");
    a.expect("* online (1): alice");
}

/// The TLS line port: a client offering only HTTP protocols in ALPN gets no TLS session; one
/// offering none (openssl s_client, ncat --ssl) is a member, under the same rules.
fn tls_line(model: Model, edge: bool) {
    let dir = std::env::temp_dir().join(format!(
        "bingfa-chat-input-tls-{}-{}{}",
        std::process::id(),
        model.name(),
        if edge { "-et" } else { "" }
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let made = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let (cert, key) = (dir.join("c.pem"), dir.join("c.key"));
    std::fs::write(&cert, made.cert.pem()).unwrap();
    std::fs::write(&key, made.key_pair.serialize_pem()).unwrap();
    let srv = Server::start(
        model,
        edge,
        &[
            "--web",
            "127.0.0.1:0",
            "--tls-bind",
            "127.0.0.1:0",
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
        ],
    );
    let ca = made.cert.der().to_vec();
    // What a browser offers.
    for alpn in [&[&b"h2"[..], b"http/1.1"][..], &[b"http/1.1"]] {
        let mut t = Tls::connect(srv.tls.unwrap(), &ca, alpn);
        let r = t.read_line();
        assert!(r.is_err(), "[{model}] a browser got a TLS session: {r:?}");
    }
    // The web face still speaks HTTP/1.1 to browsers.
    let mut t = Tls::connect(srv.web.unwrap(), &ca, &[b"h2", b"http/1.1"]);
    t.write(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    assert!(t.read_line().unwrap().starts_with("HTTP/1.1 200"));
    assert_eq!(t.alpn(), Some(b"http/1.1".to_vec()));
    // No ALPN: a member, with no protocol agreed; an HTTP request line over TLS closes too.
    let mut t = Tls::connect(srv.tls.unwrap(), &ca, &[]);
    assert_eq!(t.read_line().unwrap(), GREETING);
    assert_eq!(t.alpn(), None);
    t.write(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n");
    assert_eq!(
        t.read_line().unwrap(),
        "! this is a chat room, not an HTTP server; closing"
    );
    let mut t = Tls::connect(srv.tls.unwrap(), &ca, &[]);
    assert_eq!(t.read_line().unwrap(), GREETING);
    t.write("tina\n".as_bytes());
    assert_eq!(t.read_line().unwrap(), "* you are tina; online: tina");
    t.write(b"\x1b[2Jcleared\n");
    assert_eq!(
        t.read_line().unwrap(),
        "! message refused: control character U+001B"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

bingfa_testkit::for_each_model! {
    #[test] fn control_bytes() { super::control_bytes(M, E) }
    #[test] fn names() { super::names(M, E) }
    #[test] fn amplification() { super::amplification(M, E) }
    #[test] fn http_request() { super::http_request(M, E) }
    #[test] fn tls_line() { super::tls_line(M, E) }
}

// ---------------------------------------------------------------------------------------------
// The Redis backplane: what arrives from Redis is held to the same rules
// ---------------------------------------------------------------------------------------------

/// `PUBLISH channel payload` with a binary payload (RESP), straight to Redis, as anyone who
/// can reach the Redis can.
fn publish(port: u16, channel: &str, payload: &[u8]) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut req = format!(
        "*3\r\n$7\r\nPUBLISH\r\n${}\r\n{channel}\r\n${}\r\n",
        channel.len(),
        payload.len()
    )
    .into_bytes();
    req.extend_from_slice(payload);
    req.extend_from_slice(b"\r\n");
    s.write_all(&req).unwrap();
    let mut reply = [0u8; 64];
    let n = s.read(&mut reply).unwrap();
    assert!(reply[..n].starts_with(b":"), "{:?}", &reply[..n]);
}

#[test]
fn what_arrives_from_redis_follows_the_rooms_rules() {
    let redis = redis_support::Redis::start();
    let s1 = redis_support::Server::start("epoll", &redis);
    let s2 = redis_support::Server::start("prefork", &redis);
    redis.wait_subscribers(2);
    let (mut alice, _) = redis_support::Member::join(&s1, "alice");
    // Room-wide, names are one by their skeleton too.
    for same in ["аlice", "ＡＬＩＣＥ"] {
        let (_, w) = redis_support::Member::join(&s2, same);
        assert_eq!(w, "! name taken; try another name");
    }
    let port: u16 = redis.url().rsplit(':').next().unwrap().parse().unwrap();
    let channel = "bingfa:chat:lobby:stream";
    let from = "00000000000000ff 1 room\n";
    for forged in [
        &b"Meve: \x1b]52;c;cHduZWQ=\x07\n"[..],
        b"Meve: hi\r* admin: log in again at evil.example\n",
        "Meve: \u{202e}txet\n".as_bytes(),
        "Mal\u{200b}ice: it is me\n".as_bytes(),
        b"A* admin: \x1b[2J\n",
        b"N* room link lost, messages stay local\n",
    ] {
        publish(port, channel, &[from.as_bytes(), forged].concat());
    }
    publish(port, channel, format!("{from}Meve: only this\n").as_bytes());
    assert_eq!(alice.line(), "eve: only this");
    // A member record written straight into Redis with a name the room refuses is not listed.
    redis.cmd("HSET bingfa:chat:lobby:members x \"1 00000000000000ff 9 e\x1b[2Jve\"");
    alice.say("/who");
    assert_eq!(alice.line(), "* online (1): alice");
}
