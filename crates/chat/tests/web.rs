//! `WebSession` over real sockets under every bingfa-net model: the page, the upgrade, frames
//! both ways (ping, fragments, multi-line messages), protocol errors, and two WebSocket members
//! plus a plain TCP member sharing one room through the hub. Written once, instantiated per
//! model by a macro (the same shape as bingfa-net's `tests/models.rs`).

mod common;

use bingfa_chat::ws::{Event, Opcode};
use bingfa_net::Model;
use common::{http, TestServer, Ws};
use std::io::{BufRead, BufReader, Write};

/// Not a test: the server child process's entry (see `common`).
#[test]
fn server_main() {
    common::server_main();
}

fn page(model: Model, edge: bool) {
    let srv = TestServer::start(model, edge);
    let page = bingfa_chat::web::PAGE;
    let got = http(
        srv.web,
        "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    let head = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\n\
         Cache-Control: no-cache\r\nX-Content-Type-Options: nosniff\r\n\
         Content-Security-Policy: {}\r\nReferrer-Policy: no-referrer\r\n\
         Connection: close\r\n\r\n",
        page.len(),
        bingfa_chat::web::origin::policy(page)
    );
    assert_eq!(got, format!("{head}{page}"));
    let got = http(srv.web, "GET /nope HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(got.starts_with("HTTP/1.1 404 Not Found\r\n"), "{got}");
    let got = http(srv.web, "DELETE /ws HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(
        got.starts_with("HTTP/1.1 405 Method Not Allowed\r\n"),
        "{got}"
    );
    let got = http(srv.web, "GET /ws HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(got.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{got}");
    let huge = format!("GET / HTTP/1.1\r\nX: {}\r\n\r\n", "a".repeat(9000));
    assert!(http(srv.web, &huge).starts_with("HTTP/1.1 431 "));
}

fn frames(model: Model, edge: bool) {
    let srv = TestServer::start(model, edge);
    let mut a = Ws::connect(srv.web);
    a.expect("* welcome! what is your name?");
    a.send("bad name");
    a.expect("! invalid name, try another");
    // The name in three fragments with a ping in the middle: the pong comes first.
    a.frame(Opcode::Text, false, b"al");
    a.frame(Opcode::Ping, true, b"still there?");
    a.frame(Opcode::Continuation, false, b"i");
    a.frame(Opcode::Continuation, true, b"ce");
    assert_eq!(a.next(), Some(Event::Pong(b"still there?".to_vec())));
    a.expect("* you are alice; online: alice");
    a.send("/quit");
    a.expect("* bye");
    a.expect_close(1000);
}

fn protocol_errors(model: Model, edge: bool) {
    let srv = TestServer::start(model, edge);
    let mut a = Ws::connect(srv.web);
    a.expect("* welcome! what is your name?");
    a.raw(b"\x81\x02hi"); // unmasked
    a.expect_close(1002);
    drop(a); // the iterative model lingers until the peer closes
    let mut b = Ws::connect(srv.web);
    b.expect("* welcome! what is your name?");
    b.frame(Opcode::Text, true, &[b'a', 0xff]);
    b.expect_close(1007);
    drop(b);
    let mut c = Ws::connect(srv.web);
    c.expect("* welcome! what is your name?");
    c.send(&"x".repeat(70_000)); // over the default 64 KiB
    c.expect_close(1009);
}

fn one_room(model: Model, edge: bool) {
    if model == Model::Iterative {
        // One connection at a time: members cannot meet. The other scenarios cover it.
        return;
    }
    let srv = TestServer::start(model, edge);
    let mut a = Ws::connect(srv.web);
    a.expect("* welcome! what is your name?");
    a.send("alice");
    a.expect("* you are alice; online: alice");
    let mut b = Ws::connect(srv.web);
    b.expect_after_joins("* welcome! what is your name?", &["alice"]);
    b.send("bob\n"); // one trailing newline is not an extra line
    b.expect_after_joins("* you are bob; online: bob", &["alice"]);
    a.expect("* bob joined");
    // A plain TCP member of the same room.
    let tcp = common::connect(srv.chat);
    let mut t = BufReader::new(tcp.try_clone().unwrap());
    let mut w = tcp;
    let mut line = String::new();
    // Skipping late join notices, as `Ws::expect_after_joins` does.
    let next_line = |t: &mut BufReader<std::net::TcpStream>, line: &mut String| loop {
        line.clear();
        t.read_line(line).unwrap();
        if line != "* alice joined\n" && line != "* bob joined\n" {
            break;
        }
    };
    next_line(&mut t, &mut line);
    assert_eq!(line, "* welcome! what is your name?\n");
    w.write_all(b"carol\n").unwrap();
    next_line(&mut t, &mut line);
    assert_eq!(line, "* you are carol; online: carol\n");
    a.expect("* carol joined");
    b.expect_after_joins("* carol joined", &["alice"]);
    // A two-line message is two lines; everyone else sees both, in order.
    a.send("hello\nsecond line");
    b.expect("alice: hello");
    b.expect("alice: second line");
    for want in ["alice: hello\n", "alice: second line\n"] {
        next_line(&mut t, &mut line);
        assert_eq!(line, want);
    }
    w.write_all("héllo from tcp\n".as_bytes()).unwrap();
    a.expect("carol: héllo from tcp");
    b.expect("carol: héllo from tcp");
    // bob closes politely: the server echoes the close and the others see him leave.
    b.frame(Opcode::Close, true, &1000u16.to_be_bytes());
    b.expect_close(1000);
    a.expect("* bob left");
    line.clear();
    t.read_line(&mut line).unwrap();
    assert_eq!(line, "* bob left\n");
}

bingfa_testkit::for_each_model! {
    #[test] fn page() { super::page(M, E) }
    #[test] fn frames() { super::frames(M, E) }
    #[test] fn protocol_errors() { super::protocol_errors(M, E) }
    #[test] fn one_room() { super::one_room(M, E) }
}
