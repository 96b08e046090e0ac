//! Scenario: a burst of 200 connections from four addresses, all connected before any is
//! answered, under a per-address limit of 10. Each address must get exactly 10 served and 40
//! refused: the accepts come in batches (under `uring`, many descriptors per turn from one
//! multishot accept, each address from getpeername), and every one of them must be admitted or
//! refused by its own address, none lost, none left hanging.

use crate::harness::*;
use bingfa_net::Model;
use std::io::{BufRead, BufReader, ErrorKind, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

pub(crate) fn accept_burst(model: Model, edge: bool) {
    if !model.concurrent() {
        return; // one at a time: the others wait (max_connections covers refusal)
    }
    const PER_IP: usize = 10;
    const EACH: usize = 50;
    let mut spec = Spec::new(model, edge, "echo");
    spec.per_ip = PER_IP;
    let mut srv = TestServer::start(&spec);
    let from = |ip: [u8; 4]| {
        use socket2::{Domain, Socket, Type};
        let s = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
        s.bind(&SocketAddr::from((ip, 0)).into()).unwrap();
        s.connect_timeout(&srv.addr.into(), Duration::from_secs(10))
            .unwrap();
        let s: TcpStream = s.into();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s
    };
    let mut clients = Vec::new();
    for n in 0..EACH {
        for last in 1..=4u8 {
            clients.push((last, n, from([127, 0, 0, last])));
        }
    }
    let mut served = [0usize; 5];
    let mut refused = [0usize; 5];
    for (last, n, s) in &clients {
        let line = format!("{last}.{n}");
        let _ = (&*s).write_all(format!("{line}\n").as_bytes());
        let mut r = BufReader::new(s);
        let mut got = String::new();
        match r.read_line(&mut got) {
            Ok(_) if got.trim_end() == line => served[*last as usize] += 1,
            Ok(_) if got == "busy\n" || got.is_empty() => refused[*last as usize] += 1,
            // Refused and closed before our line arrived: a reset.
            Err(e) if e.kind() == ErrorKind::ConnectionReset => refused[*last as usize] += 1,
            other => {
                panic!("127.0.0.{last} client {n}: neither echo nor refusal: {other:?} {got:?}")
            }
        }
    }
    for last in 1..=4 {
        assert_eq!(
            (served[last], refused[last]),
            (PER_IP, EACH - PER_IP),
            "127.0.0.{last}: (served, refused)"
        );
    }
    drop(clients);
    assert!(srv.stop().success());
}
