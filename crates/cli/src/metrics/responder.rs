//! The metrics endpoint's HTTP: a tiny responder that answers `GET /metrics` and nothing else.
//! It may be reachable by strangers, so everything it gives is bounded: one request per
//! connection, its head at most [`MAX_HEAD`] bytes read within [`DEADLINE`], at most
//! [`MAX_CONNS`] connections at once and [`MAX_PER_IP`] from one address (more are closed at
//! once), and the answer is made fresh per request (nothing is cached for a caller to grow).
//! A thread per connection: they are few, short, and this process never forks.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{IpAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Connections served at once.
pub(crate) const MAX_CONNS: usize = 16;
/// Connections from one address at once.
pub(crate) const MAX_PER_IP: usize = 4;
/// The longest request head read.
pub(crate) const MAX_HEAD: usize = 4096;
/// How long a connection may take to send its request and read the answer.
pub(crate) const DEADLINE: Duration = Duration::from_secs(5);

/// What answers a scrape: the body and its content type, or an error for a 503.
pub(crate) type Render = dyn Fn() -> Result<(String, &'static str), String> + Send + Sync;

/// Who holds a place now: the total and per address.
#[derive(Default)]
struct Places {
    total: usize,
    per_ip: HashMap<IpAddr, usize>,
}

impl Places {
    fn take(&mut self, ip: IpAddr) -> bool {
        let n = self.per_ip.get(&ip).copied().unwrap_or(0);
        if self.total >= MAX_CONNS || n >= MAX_PER_IP {
            return false;
        }
        self.total += 1;
        self.per_ip.insert(ip, n + 1);
        true
    }

    fn give(&mut self, ip: IpAddr) {
        self.total -= 1;
        match self.per_ip.get_mut(&ip) {
            Some(n) if *n > 1 => *n -= 1,
            _ => {
                self.per_ip.remove(&ip);
            }
        }
    }
}

/// Serve `listener` until the process ends.
pub(crate) fn serve(listener: TcpListener, render: Arc<Render>) -> ! {
    let places = Arc::new(Mutex::new(Places::default()));
    loop {
        let (stream, peer) = match listener.accept() {
            Ok(c) => c,
            Err(_) => {
                // Out of descriptors or an aborted handshake: try again shortly.
                std::thread::sleep(Duration::from_millis(50));
                continue;
            }
        };
        let ip = peer.ip();
        if !places.lock().unwrap_or_else(|e| e.into_inner()).take(ip) {
            // Over a bound: closed at once (no thread, no reading).
            let _ = stream.set_nonblocking(true);
            let _ = (&stream).write(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
            continue;
        }
        let (places2, render) = (places.clone(), render.clone());
        let spawned = std::thread::Builder::new()
            .name("metrics".into())
            .spawn(move || {
                answer(stream, &*render);
                places2.lock().unwrap_or_else(|e| e.into_inner()).give(ip);
            });
        if spawned.is_err() {
            places.lock().unwrap_or_else(|e| e.into_inner()).give(ip);
        }
    }
}

/// Read one request head and answer it; every error just closes.
fn answer(mut s: TcpStream, render: &Render) {
    let end = Instant::now() + DEADLINE;
    let mut head = Vec::with_capacity(512);
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let left = end.saturating_duration_since(Instant::now());
        if left.is_zero() || head.len() >= MAX_HEAD {
            return reply(
                &mut s,
                end,
                "400 Bad Request",
                "text/plain",
                b"bad request\n",
            );
        }
        if s.set_read_timeout(Some(left)).is_err() {
            return;
        }
        let want = (MAX_HEAD - head.len()).min(buf.len());
        match s.read(&mut buf[..want]) {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    let line = head.split(|&b| b == b'\r').next().unwrap_or_default();
    let mut parts = line.split(|&b| b == b' ');
    let (method, target, version) = (parts.next(), parts.next(), parts.next());
    let ok_version = matches!(version, Some(v) if v.starts_with(b"HTTP/1."));
    if !ok_version || parts.next().is_some() {
        return reply(
            &mut s,
            end,
            "400 Bad Request",
            "text/plain",
            b"bad request\n",
        );
    }
    let path = target
        .unwrap_or_default()
        .split(|&b| b == b'?')
        .next()
        .unwrap_or_default();
    let head_only = method == Some(b"HEAD");
    if path != b"/metrics" {
        return reply(
            &mut s,
            end,
            "404 Not Found",
            "text/plain",
            b"not found; try /metrics\n",
        );
    }
    if method != Some(b"GET") && !head_only {
        return reply(
            &mut s,
            end,
            "405 Method Not Allowed",
            "text/plain",
            b"GET only\n",
        );
    }
    match render() {
        Ok((body, ctype)) => {
            let body = if head_only { &b""[..] } else { body.as_bytes() };
            reply(&mut s, end, "200 OK", ctype, body)
        }
        Err(e) => reply(
            &mut s,
            end,
            "503 Service Unavailable",
            "text/plain",
            format!("{e}\n").as_bytes(),
        ),
    }
}

fn reply(s: &mut TcpStream, end: Instant, status: &str, ctype: &str, body: &[u8]) {
    let left = end.saturating_duration_since(Instant::now());
    if left.is_zero() || s.set_write_timeout(Some(left)).is_err() {
        return;
    }
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let _ = s
        .write_all(head.as_bytes())
        .and_then(|()| s.write_all(body));
    let _ = s.shutdown(std::net::Shutdown::Write);
    // Drain what the client still sends (briefly), so closing does not reset the answer.
    let _ = s.set_read_timeout(Some(Duration::from_millis(200)));
    let mut sink = [0u8; 512];
    let stop = Instant::now() + Duration::from_millis(500);
    while Instant::now() < stop && matches!(s.read(&mut sink), Ok(n) if n > 0) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn places_are_bounded_in_total_and_per_address() {
        let mut p = Places::default();
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        for _ in 0..MAX_PER_IP {
            assert!(p.take(a));
        }
        assert!(!p.take(a), "one address holds at most MAX_PER_IP");
        for i in 0..(MAX_CONNS - MAX_PER_IP) {
            assert!(p.take(IpAddr::from([10, 0, 1, i as u8])));
        }
        assert!(
            !p.take("10.0.2.1".parse().unwrap()),
            "at most MAX_CONNS in all"
        );
        p.give(a);
        assert!(p.take("10.0.2.1".parse().unwrap()));
        assert!(!p.take(a), "the total is full again");
    }
}
