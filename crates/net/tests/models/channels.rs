//! Data-channel scenarios FTP needs (issue 10), under every model: passive ports within a
//! range at random with an announced address; a passive listener that admits only the control
//! connection's IP; output and a close queued before the peer connects; pausing a channel's
//! input; `max_channels` refused before binding with its own event; `start_tls` and
//! `channel_tls` refused (connection or channel closed) where no TLS layer runs.

use crate::harness::{Client, Spec, TestServer};
use bingfa_net::Passive;
use bingfa_net::{ChannelEvent, ChannelId, ConnInfo, Context, Model, Protocol, Session};
use std::io::{Read, Write};
use std::net::IpAddr;
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// `PASV` opens a passive listener in the range, announcing 127.0.0.3; `RETR` queues the
/// payload and closes the last channel at once (usually before the client connected);
/// `STOR` pauses the channel's input as soon as it connects, `COUNT` says how many bytes came,
/// `RESUME` resumes; `MANY n` opens n listeners; `ABOR` aborts every channel; `TLSPASV` and
/// `STARTTLS` ask for TLS, which no driver does without the TLS layer.
pub(crate) struct Chans {
    pub(crate) ports: std::ops::RangeInclusive<u16>,
}

pub(crate) struct ChansSession {
    ports: std::ops::RangeInclusive<u16>,
    open: Vec<ChannelId>,
    upload: Option<u64>,
}

pub(crate) fn payload() -> Vec<u8> {
    (0..256 * 1024 + 3)
        .map(|i: u32| (i.wrapping_mul(2654435761) >> 24) as u8)
        .collect()
}

const ANNOUNCE: &str = "127.0.0.3";

impl ChansSession {
    fn passive(&mut self, cx: &mut Context) {
        let id = cx.listen_with(Passive {
            ports: Some(self.ports.clone()),
            announce: Some(ANNOUNCE.parse().unwrap()),
        });
        self.open.push(id);
    }
}

impl Session for ChansSession {
    fn on_data(&mut self, input: &[u8], cx: &mut Context) -> usize {
        let Some(i) = input.iter().position(|&b| b == b'\n') else {
            return 0;
        };
        let line = String::from_utf8_lossy(&input[..i]).trim().to_string();
        let last = self.open.last().copied();
        match line.as_str() {
            "PASV" => self.passive(cx),
            "RETR" => {
                let id = last.expect("PASV first");
                cx.channel_write(id, &payload());
                cx.channel_close(id);
            }
            "STOR" => {
                self.upload = Some(0);
                self.passive(cx);
            }
            "TLSPASV" => {
                self.passive(cx);
                cx.channel_tls(*self.open.last().expect("just opened"));
            }
            "STARTTLS" => {
                cx.write(b"234 go\n");
                cx.start_tls();
            }
            "COUNT" => cx.write(format!("count {}\n", self.upload.unwrap_or(0)).as_bytes()),
            "RESUME" => cx.channel_pause(last.expect("STOR first"), false),
            "ABOR" => {
                for id in self.open.drain(..) {
                    cx.channel_abort(id);
                }
            }
            l if l.starts_with("MANY ") => {
                for _ in 0..l[5..].parse::<usize>().unwrap() {
                    self.passive(cx);
                }
            }
            _ => cx.write(b"500 what\n"),
        }
        i + 1
    }

    fn on_channel(&mut self, id: ChannelId, ev: ChannelEvent<'_>, cx: &mut Context) {
        match ev {
            ChannelEvent::Listening(a) => {
                cx.write(format!("227 {} {}\n", a.ip(), a.port()).as_bytes())
            }
            ChannelEvent::Connected(peer) => {
                if self.upload.is_some() {
                    cx.channel_pause(id, true);
                    cx.write(b"150 paused\n");
                } else {
                    cx.write(format!("150 {}\n", peer.ip()).as_bytes());
                }
            }
            ChannelEvent::Data(b) => *self.upload.as_mut().expect("upload") += b.len() as u64,
            ChannelEvent::Eof => {
                cx.write(format!("226 got {}\n", self.upload.take().unwrap_or(0)).as_bytes());
                cx.channel_close(id);
            }
            ChannelEvent::Closed => {
                self.open.retain(|&c| c != id);
                cx.write(b"226 closed\n");
            }
            ChannelEvent::TooMany => cx.write(b"425 too many\n"),
            ChannelEvent::Error(k) => cx.write(format!("425 {k:?}\n").as_bytes()),
            _ => {}
        }
    }
}

impl Protocol for Chans {
    type Session = ChansSession;
    fn new_session(&self, _: &ConnInfo) -> ChansSession {
        ChansSession {
            ports: self.ports.clone(),
            open: Vec::new(),
            upload: None,
        }
    }
}

/// A port range of 300 for this test process (ports in use are skipped anyway).
fn range() -> (u16, u16) {
    let lo = 20000 + (std::process::id() % 100) as u16 * 300;
    (lo, lo + 299)
}

fn start(model: Model, edge: bool) -> TestServer {
    let mut spec = Spec::new(model, edge, "chans");
    let (lo, hi) = range();
    spec.file = format!("{lo}-{hi}");
    TestServer::start(&spec)
}

fn pasv(c: &mut Client) -> (IpAddr, u16) {
    let l = c.line();
    let f: Vec<&str> = l.split(' ').collect();
    assert_eq!(f[0], "227", "{l}");
    (f[1].parse().unwrap(), f[2].parse().unwrap())
}

/// Connects to 127.0.0.1:port from the local address `from`.
fn connect_from(from: &str, port: u16) -> TcpStream {
    use socket2::{Domain, Socket, Type};
    let s = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    s.bind(&SocketAddr::new(from.parse().unwrap(), 0).into())
        .unwrap();
    s.connect_timeout(
        &SocketAddr::from(([127, 0, 0, 1], port)).into(),
        Duration::from_secs(5),
    )
    .unwrap();
    let s: TcpStream = s.into();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s
}

pub(crate) fn passive_range(model: Model, edge: bool) {
    let mut srv = start(model, edge);
    let mut c = srv.connect();
    let (lo, hi) = range();
    let mut ports = std::collections::HashSet::new();
    c.send("MANY 4");
    for _ in 0..4 {
        let (ip, port) = pasv(&mut c);
        assert_eq!(
            ip.to_string(),
            ANNOUNCE,
            "the announced address, not the bound one"
        );
        assert!((lo..=hi).contains(&port), "{port} not in {lo}-{hi}");
        ports.insert(port);
    }
    assert!(ports.len() == 4);
    c.send("ABOR");
    for _ in 0..4 {
        c.expect("226 closed");
    }
    for p in ports {
        assert!(
            TcpStream::connect(("127.0.0.1", p)).is_err(),
            "aborted listeners are gone"
        );
    }
    // Over max_channels (4): refused with its own event, before anything is bound.
    c.send("MANY 5");
    let mut lines: Vec<String> = (0..5).map(|_| c.line()).collect();
    lines.sort();
    assert_eq!(
        lines.iter().filter(|l| l.starts_with("227 ")).count(),
        4,
        "{lines:?}"
    );
    assert_eq!(lines[4], "425 too many", "{lines:?}");
    drop(c);
    assert!(srv.stop().success());
}

pub(crate) fn passive_peer_only(model: Model, edge: bool) {
    let mut srv = start(model, edge);
    let mut c = srv.connect();
    for _ in 0..2 {
        c.send("PASV");
        let (_, port) = pasv(&mut c);
        // Queued and closed before anyone connected: must wait for the real client.
        c.send("RETR");
        // Another address connects first: turned away, the listener stays.
        let mut intruder = connect_from("127.0.0.2", port);
        let mut got = Vec::new();
        let _ = intruder.read_to_end(&mut got);
        assert!(got.is_empty(), "the intruder got {} bytes", got.len());
        let mut real = connect_from("127.0.0.1", port);
        real.read_to_end(&mut got).unwrap();
        assert!(
            got == payload(),
            "the client got {} of {} bytes",
            got.len(),
            payload().len()
        );
        c.expect("150 127.0.0.1");
        c.expect("226 closed");
    }
    drop(c);
    assert!(srv.stop().success());
}

pub(crate) fn channel_pause(model: Model, edge: bool) {
    let mut srv = start(model, edge);
    let mut c = srv.connect();
    c.send("STOR");
    let (_, port) = pasv(&mut c);
    let mut up = connect_from("127.0.0.1", port);
    c.expect("150 paused");
    let total = 4 * 1024 * 1024;
    let writer = std::thread::spawn(move || {
        up.write_all(&vec![7u8; total]).unwrap();
        up.shutdown(std::net::Shutdown::Write).unwrap();
    });
    std::thread::sleep(Duration::from_millis(300));
    c.send("COUNT");
    c.expect("count 0");
    assert!(
        !writer.is_finished(),
        "4 MiB cannot fit the socket buffers while paused"
    );
    c.send("RESUME");
    c.expect(&format!("226 got {total}"));
    c.expect("226 closed");
    writer.join().unwrap();
    drop(c);
    assert!(srv.stop().success());
}

/// Without the TLS layer a driver refuses what only the layer can do, rather than go on in
/// plaintext: a channel asked to speak TLS is closed (its listener with it), a connection that
/// asks for STARTTLS is aborted (its `234` dropped with it).
pub(crate) fn tls_without_layer(model: Model, edge: bool) {
    let mut srv = start(model, edge);
    let mut c = srv.connect();
    c.send("TLSPASV");
    let (_, port) = pasv(&mut c);
    c.expect("226 closed");
    assert!(
        TcpStream::connect(("127.0.0.1", port)).is_err(),
        "the listener is gone"
    );
    c.send("NOOP");
    c.expect("500 what");
    c.send("STARTTLS");
    c.expect_closed();
    drop(c);
    assert!(srv.stop().success());
    let log = srv.log();
    for what in [
        "channel_tls without the TLS layer",
        "start_tls without the TLS layer",
    ] {
        assert!(log.iter().any(|l| l.contains(what)), "{what}: {log:#?}");
    }
}
