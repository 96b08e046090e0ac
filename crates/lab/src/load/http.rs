//! A closed-loop HTTP/1.1 keep-alive load generator, in the manner of wrk: `threads` threads,
//! each an epoll loop over its share of `connections`, each connection sending `GET path` again
//! as soon as the previous answer (status line, headers, `Content-Length` body) is complete.
//! Hand-written on epoll rather than on an async runtime so that the generator costs about
//! what wrk costs: on a 2-core machine it shares the cores with the server it measures.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use super::LoadResult;

/// What to send and for how long.
#[derive(Debug, Clone)]
pub struct HttpLoad {
    /// The server.
    pub addr: SocketAddr,
    /// The path every request asks for.
    pub path: String,
    /// Keep-alive connections, over all threads.
    pub connections: usize,
    /// Generator threads (each runs its own epoll loop).
    pub threads: usize,
    /// How long to send.
    pub duration: Duration,
}

struct Conn {
    stream: Option<TcpStream>,
    sent_at: Instant,
    answer: Answer,
    status_ok: bool,
    /// The current answer's body length.
    body_len: usize,
}

/// Where the current answer is.
#[derive(Debug, PartialEq)]
enum Answer {
    /// The head so far.
    Head(Vec<u8>),
    /// Body bytes still to come.
    Body(usize),
    Done,
}

#[derive(Default)]
struct Tally {
    requests: u64,
    errors: u64,
    bytes: u64,
    lat: Vec<u32>,
}

/// Run the load and return what was measured.
pub fn run(load: &HttpLoad) -> LoadResult {
    let threads = load.threads.clamp(1, load.connections.max(1));
    let start = Instant::now();
    let end = start + load.duration;
    let request = format!(
        "GET {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: bingfa-lab\r\n\r\n",
        load.path, load.addr
    );
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let n = load.connections / threads + usize::from(t < load.connections % threads);
            let addr = load.addr;
            let req = request.clone().into_bytes();
            std::thread::spawn(move || worker(addr, n, &req, end))
        })
        .collect();
    let mut total = Tally::default();
    for h in handles {
        let t = h.join().unwrap_or_default();
        total.requests += t.requests;
        total.errors += t.errors;
        total.bytes += t.bytes;
        total.lat.extend(t.lat);
    }
    let secs = start
        .elapsed()
        .as_secs_f64()
        .min(load.duration.as_secs_f64());
    LoadResult::from_samples(
        total.requests,
        total.errors,
        total.bytes,
        secs,
        &mut total.lat,
    )
}

fn connect(addr: SocketAddr) -> Option<TcpStream> {
    let s = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    s.set_nodelay(true).ok()?;
    s.set_nonblocking(true).ok()?;
    Some(s)
}

fn epoll_ctl(ep: i32, op: i32, fd: i32, token: u64) {
    let mut ev = libc::epoll_event {
        events: libc::EPOLLIN as u32,
        u64: token,
    };
    // SAFETY: `ev` is a valid epoll_event for the call; bad fds only make it fail.
    unsafe { libc::epoll_ctl(ep, op, fd, &mut ev) };
}

/// Send the request on a fresh or kept-alive connection; false if it failed.
fn send(c: &mut Conn, req: &[u8]) -> bool {
    let Some(s) = c.stream.as_mut() else {
        return false;
    };
    c.answer = Answer::Head(Vec::with_capacity(512));
    c.sent_at = Instant::now();
    // A request this small goes out in one write on a connection whose previous answer was
    // read in full (nothing of ours is queued), so a short write means the peer is gone.
    matches!(s.write(req), Ok(n) if n == req.len())
}

fn worker(addr: SocketAddr, n: usize, req: &[u8], end: Instant) -> Tally {
    let mut tally = Tally {
        lat: Vec::with_capacity(1 << 16),
        ..Tally::default()
    };
    // SAFETY: no pointers; the fd is this worker's and closed at its end.
    let ep = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
    let mut conns: Vec<Conn> = (0..n)
        .map(|_| Conn {
            stream: None,
            sent_at: Instant::now(),
            answer: Answer::Done,
            status_ok: false,
            body_len: 0,
        })
        .collect();
    let open = |c: &mut Conn, i: usize, tally: &mut Tally| {
        c.stream = connect(addr);
        match &c.stream {
            Some(s) => {
                epoll_ctl(ep, libc::EPOLL_CTL_ADD, s.as_raw_fd(), i as u64);
                if !send(c, req) {
                    tally.errors += 1;
                    c.stream = None;
                }
            }
            None => tally.errors += 1,
        }
    };
    for (i, c) in conns.iter_mut().enumerate() {
        open(c, i, &mut tally);
    }
    let mut events = vec![libc::epoll_event { events: 0, u64: 0 }; 256];
    let mut buf = vec![0u8; 256 * 1024];
    while Instant::now() < end {
        let left = end.saturating_duration_since(Instant::now());
        let ms = left.as_millis().clamp(1, 100) as i32;
        // SAFETY: the kernel writes at most `events.len()` entries into `events`.
        let k = unsafe { libc::epoll_wait(ep, events.as_mut_ptr(), events.len() as i32, ms) };
        // Reconnect what failed (connection refused by a busy server, closed by a limit).
        for (i, c) in conns.iter_mut().enumerate() {
            if c.stream.is_none() && Instant::now() < end {
                open(c, i, &mut tally);
            }
        }
        for ev in events.iter().take(k.max(0) as usize) {
            let i = ev.u64 as usize;
            let c = &mut conns[i];
            while let Some(s) = c.stream.as_mut() {
                match s.read(&mut buf) {
                    Ok(0) => {
                        tally.errors += 1;
                        c.stream = None;
                        break;
                    }
                    Ok(got) => {
                        if !take(c, &buf[..got]) {
                            tally.errors += 1;
                            c.stream = None;
                            break;
                        }
                        if c.answer == Answer::Done {
                            // Complete: record, and go again.
                            if c.status_ok {
                                tally.requests += 1;
                                tally.bytes += c.body_len as u64;
                                let us = c.sent_at.elapsed().as_micros().min(u32::MAX as u128);
                                tally.lat.push(us as u32);
                            } else {
                                tally.errors += 1;
                            }
                            if Instant::now() >= end || !send(c, req) {
                                break;
                            }
                        }
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(_) => {
                        tally.errors += 1;
                        c.stream = None;
                        break;
                    }
                }
            }
        }
    }
    // SAFETY: `ep` is this worker's epoll fd, closed once, here.
    unsafe { libc::close(ep) };
    tally
}

/// Feed received bytes into the connection's current answer. False: malformed (or more than
/// one answer to one request). The answer is complete when `c.answer` is `Done`.
fn take(c: &mut Conn, mut data: &[u8]) -> bool {
    while !data.is_empty() {
        match &mut c.answer {
            Answer::Head(head) => {
                head.extend_from_slice(data);
                let Some(end) = find(head, b"\r\n\r\n") else {
                    return head.len() <= 64 * 1024;
                };
                let Some((ok, len)) = parse_head(&head[..end + 4]) else {
                    return false;
                };
                let rest = head.split_off(end + 4);
                c.status_ok = ok;
                c.body_len = len;
                c.answer = if len == 0 {
                    Answer::Done
                } else {
                    Answer::Body(len)
                };
                return rest.is_empty() || take(c, &rest);
            }
            Answer::Body(left) => {
                let n = (*left).min(data.len());
                *left -= n;
                data = &data[n..];
                if *left == 0 {
                    c.answer = Answer::Done;
                }
            }
            Answer::Done => return false,
        }
    }
    true
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// `(status is 2xx, Content-Length)` of a response head.
fn parse_head(head: &[u8]) -> Option<(bool, usize)> {
    let text = std::str::from_utf8(head).ok()?;
    let mut lines = text.split("\r\n");
    let status: u16 = lines.next()?.split(' ').nth(1)?.parse().ok()?;
    let mut len = 0usize;
    for l in lines {
        if let Some((k, v)) = l.split_once(':') {
            if k.trim().eq_ignore_ascii_case("content-length") {
                len = v.trim().parse().ok()?;
            }
        }
    }
    Some(((200..300).contains(&status), len))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conn() -> Conn {
        Conn {
            stream: None,
            sent_at: Instant::now(),
            answer: Answer::Head(Vec::new()),
            status_ok: false,
            body_len: 0,
        }
    }

    #[test]
    fn answers_split_anywhere_complete_once() {
        let answer = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello";
        for cut in 1..answer.len() {
            let mut c = conn();
            assert!(take(&mut c, &answer[..cut]));
            assert_ne!(c.answer, Answer::Done, "done early at {cut}");
            assert!(take(&mut c, &answer[cut..]));
            assert!(c.answer == Answer::Done && c.status_ok);
            assert_eq!(c.body_len, 5);
        }
    }

    #[test]
    fn empty_bodies_errors_and_garbage() {
        let mut c = conn();
        assert!(take(
            &mut c,
            b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n"
        ));
        assert!(c.answer == Answer::Done && !c.status_ok);
        let mut c = conn();
        assert!(!take(
            &mut c,
            b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n"
        ));
        let mut c = conn();
        assert!(!take(
            &mut c,
            b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nab"
        ));
    }
}
