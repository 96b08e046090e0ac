//! The load generator: N members on a few tokio threads, S of them sending, every member
//! counting what reaches it and how late (each message carries its send time).
//!
//! Members read in 64 KiB chunks and count locally; shared atomics are touched once per chunk,
//! so the generator stays cheap next to the server on a 2-core machine.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::TcpStream;
use tokio::sync::{oneshot, watch, Semaphore};

use super::hist::{expected_deliveries, expected_joins, Tally};
use super::target::Wire;

/// The shape of one run.
#[derive(Debug, Clone)]
pub struct Load {
    /// Members that join.
    pub members: usize,
    /// How many of them send.
    pub senders: usize,
    /// Messages per sender.
    pub messages: usize,
    /// Total messages per second over all senders; None = as fast as they can.
    pub rate: Option<f64>,
    /// Hard bound on the whole run (joining, sending, draining).
    pub timeout: Duration,
    /// Worker threads of the generator's runtime.
    pub threads: usize,
}

/// What one run measured.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    /// What the members received.
    pub tally: Tally,
    /// Deliveries a lossless room would make (each message to every member but its sender).
    pub expected: u64,
    /// Members that got their welcome.
    pub joined: usize,
    /// Seconds from the first connect until every member had its welcome and the join notices
    /// had settled.
    pub join_secs: f64,
    /// Seconds from the first send to the last delivery.
    pub send_secs: f64,
    /// Server RSS (KiB) while holding every member, before sending; and after the run.
    pub rss_joined_kib: u64,
    /// Server RSS (KiB) after the run.
    pub rss_end_kib: u64,
    /// The servers' peak RSS over the run (KiB), sampled by the caller before they stop.
    pub rss_peak_kib: u64,
}

impl std::fmt::Debug for Tally {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Tally({} delivered)", self.delivered)
    }
}

/// Progress the controller watches; members add to it once per read.
#[derive(Default)]
struct Progress {
    ready: AtomicUsize,
    failed: AtomicUsize,
    joined: AtomicU64,
    delivered: AtomicU64,
}

/// The length of the text every message carries: its send time, zero-padded microseconds.
const STAMP: usize = 20;

/// Run `load` against the servers at `addrs` (member `i` joins `addrs[i % len]`, so members
/// and senders are spread over them); `rss` samples the servers' memory.
pub fn run(addrs: &[SocketAddr], wire: Wire, load: &Load, rss: impl Fn() -> u64) -> Outcome {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(load.threads.max(1))
        .enable_all()
        .build()
        .expect("tokio runtime");
    rt.block_on(drive(addrs.to_vec(), wire, load.clone(), &rss))
}

async fn drive(addrs: Vec<SocketAddr>, wire: Wire, load: Load, rss: &dyn Fn() -> u64) -> Outcome {
    let addr = addrs[0];
    let base = Instant::now();
    let deadline = base + load.timeout;
    let prog = Arc::new(Progress::default());
    let (stop_tx, stop_rx) = watch::channel(false);
    // Connections still in their handshake; bounded so the listen backlog never overflows.
    let gate = Arc::new(Semaphore::new(128));
    let mut members = Vec::with_capacity(load.members);
    let mut writers = Vec::new();
    for i in 0..load.members {
        let (wtx, wrx) = oneshot::channel();
        if i < load.senders {
            writers.push(wrx);
        }
        let m = Member {
            i,
            addr: addrs[i % addrs.len()],
            wire,
            base,
            prog: prog.clone(),
            stop: stop_rx.clone(),
            gate: gate.clone(),
            writer: (i < load.senders && wire == Wire::Room).then_some(wtx),
        };
        members.push(tokio::spawn(m.run()));
    }
    let mut out = Outcome {
        expected: expected_deliveries(load.members, load.senders, load.messages),
        ..Outcome::default()
    };

    // Join: every member welcomed (or failed), then the join notices settled.
    let joins = if wire == Wire::Room {
        expected_joins(load.members)
    } else {
        0
    };
    wait_until(deadline, Duration::from_secs(10), || {
        let done = prog.ready.load(Relaxed) + prog.failed.load(Relaxed) >= load.members;
        (
            done && prog.joined.load(Relaxed) >= joins,
            prog.joined.load(Relaxed) + prog.ready.load(Relaxed) as u64,
        )
    })
    .await;
    out.joined = prog.ready.load(Relaxed);
    out.join_secs = base.elapsed().as_secs_f64();
    out.rss_joined_kib = rss();

    // Send.
    let t0 = base.elapsed().as_micros() as u64;
    let mut sending = Vec::new();
    for (j, w) in writers.into_iter().enumerate() {
        let conn = match wire {
            // A sender that was never welcomed (a server that serves one member at a time,
            // or one that stalled) never hands its writer over: don't wait for it for good.
            Wire::Room => tokio::time::timeout(Duration::from_secs(1), w)
                .await
                .ok()
                .and_then(|r| r.ok())
                .flatten(),
            // Redis: a subscribed connection can't PUBLISH, so each sender has its own.
            Wire::Redis => publisher(addr).await,
        };
        let Some(conn) = conn else { continue };
        sending.push(tokio::spawn(send(
            conn,
            j,
            wire,
            load.clone(),
            base,
            stop_rx.clone(),
        )));
    }
    wait_until(deadline, Duration::from_secs(5), || {
        let d = prog.delivered.load(Relaxed);
        (d >= out.expected, d)
    })
    .await;
    out.rss_end_kib = rss();
    let _ = stop_tx.send(true);
    for s in sending {
        s.abort();
    }
    // One bound for all of them: a member stuck in its connect (a server that never accepts
    // it) is given up with the rest, not waited for one by one.
    let collect_end = tokio::time::Instant::now() + Duration::from_secs(5);
    for m in members {
        let abort = m.abort_handle();
        match tokio::time::timeout_at(collect_end, m).await {
            Ok(Ok(t)) => out.tally.merge(&t),
            _ => abort.abort(),
        }
    }
    out.send_secs = out.tally.last_us.saturating_sub(t0) as f64 / 1e6;
    out
}

/// Poll `check` (done?, progress counter) every 10 ms until done, the deadline, or `quiet`
/// without progress.
async fn wait_until(deadline: Instant, quiet: Duration, mut check: impl FnMut() -> (bool, u64)) {
    let mut last = (0u64, Instant::now());
    loop {
        let (done, p) = check();
        let now = Instant::now();
        if done || now >= deadline {
            return;
        }
        if p != last.0 {
            last = (p, now);
        } else if now - last.1 >= quiet {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

struct Member {
    i: usize,
    addr: SocketAddr,
    wire: Wire,
    base: Instant,
    prog: Arc<Progress>,
    stop: watch::Receiver<bool>,
    gate: Arc<Semaphore>,
    /// A sender hands its write half to its sending task once welcomed.
    writer: Option<oneshot::Sender<Option<Conn>>>,
}

/// What a sending task writes on.
enum Conn {
    Room(OwnedWriteHalf),
    Redis(TcpStream),
}

#[derive(PartialEq)]
enum Phase {
    /// Waiting for the server's `* ` name prompt (room) or the `subscribe` reply (Redis).
    Greeting,
    /// Name sent, waiting for the `* ` welcome.
    Naming,
    Member,
}

impl Member {
    async fn run(mut self) -> Tally {
        let mut t = Tally::default();
        // Waiting for a handshake slot and the connect itself end when the run does.
        let mut stop = self.stop.clone();
        let gate = self.gate.clone();
        let connected = tokio::select! {
            c = async {
                let permit = gate.acquire_owned().await.ok();
                (permit, TcpStream::connect(self.addr).await)
            } => Some(c),
            _ = stop.changed() => None,
        };
        let Some((permit, Ok(s))) = connected else {
            self.prog.failed.fetch_add(1, Relaxed);
            t.dropped = 1;
            return t;
        };
        let _ = s.set_nodelay(true);
        let (mut r, mut w) = s.into_split();
        let name = format!("m{}", self.i);
        let first = match self.wire {
            Wire::Room => w.write_all(format!("{name}\n").as_bytes()).await,
            Wire::Redis => w.write_all(b"SUBSCRIBE room\r\n").await,
        };
        if first.is_err() {
            self.prog.failed.fetch_add(1, Relaxed);
            t.dropped = 1;
            return t;
        }
        // The name goes out before the prompt is read: the server reads it after its prompt
        // either way, and it saves a round trip per member.
        let mut phase = Phase::Greeting;
        let mut permit = permit;
        let mut w = Some(w);
        let mut buf = vec![0u8; 64 * 1024];
        let mut have = 0usize;
        let mut ended = false;
        loop {
            if have == buf.len() {
                buf.resize(buf.len() * 2, 0); // a long welcome (the online list at 10k members)
            }
            let n = tokio::select! {
                r = r.read(&mut buf[have..]) => r.unwrap_or(0),
                _ = self.stop.changed() => break,
            };
            if n == 0 {
                // Once the run is over, a sender's connection ends when its sending task is
                // stopped, maybe before this reader hears the stop: that is not a drop.
                ended = !*self.stop.borrow();
                break;
            }
            have += n;
            let now = self.base.elapsed().as_micros() as u64;
            let (before, joined_before) = (t.delivered, t.joined);
            let mut start = 0;
            while let Some(nl) = buf[start..have].iter().position(|&b| b == b'\n') {
                let line = &buf[start..start + nl];
                let line = line.strip_suffix(b"\r").unwrap_or(line);
                self.line(line, &name, now, &mut phase, &mut t);
                start += nl + 1;
            }
            buf.copy_within(start..have, 0);
            have -= start;
            if phase == Phase::Member && permit.is_some() {
                permit = None;
                self.prog.ready.fetch_add(1, Relaxed);
                if let Some(tx) = self.writer.take() {
                    let _ = tx.send(w.take().map(Conn::Room));
                }
            }
            if t.delivered != before {
                self.prog.delivered.fetch_add(t.delivered - before, Relaxed);
            }
            if t.joined != joined_before {
                self.prog
                    .joined
                    .fetch_add(t.joined - joined_before, Relaxed);
            }
        }
        if ended {
            t.dropped = 1;
            if phase != Phase::Member {
                self.prog.failed.fetch_add(1, Relaxed);
            }
        }
        drop(w);
        t
    }

    fn line(&self, line: &[u8], name: &str, now: u64, phase: &mut Phase, t: &mut Tally) {
        match self.wire {
            Wire::Room => {
                if let Some(rest) = line.strip_prefix(b"* ") {
                    match phase {
                        Phase::Greeting => *phase = Phase::Naming,
                        Phase::Naming => *phase = Phase::Member,
                        Phase::Member if rest.ends_with(b" joined") => t.joined += 1,
                        Phase::Member => {}
                    }
                } else if line.starts_with(b"! ") {
                    t.errors += 1;
                } else if let Some(p) = line.windows(2).position(|w| w == b": ") {
                    self.delivery(&line[p + 2..], now, t);
                } else {
                    t.errors += 1;
                }
            }
            Wire::Redis => {
                // RESP elements are \r\n lines (payloads hold no newline): `*3`, `$7`,
                // `message`, `$4`, `room`, `$N`, then the payload `NAME STAMP`.
                if line == b"subscribe" {
                    *phase = Phase::Member;
                } else if let Some(sp) = line.iter().position(|&b| b == b' ') {
                    // Redis also delivers a sender's own message to its subscription; the room
                    // doesn't, so it is not counted (deliveries mean "to someone else").
                    if &line[..sp] != name.as_bytes() {
                        self.delivery(&line[sp + 1..], now, t);
                    }
                } else if line.starts_with(b"-") {
                    t.errors += 1;
                }
            }
        }
    }

    fn delivery(&self, stamp: &[u8], now: u64, t: &mut Tally) {
        match parse_stamp(stamp) {
            Some(sent) => {
                t.delivered += 1;
                t.latency.record(now.saturating_sub(sent));
                t.last_us = now;
            }
            None => t.errors += 1,
        }
    }
}

/// The send time a message carries, or None if the text isn't one of ours.
pub fn parse_stamp(s: &[u8]) -> Option<u64> {
    if s.len() != STAMP || !s.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(s.iter().fold(0u64, |a, &b| a * 10 + u64::from(b - b'0')))
}

async fn publisher(addr: SocketAddr) -> Option<Conn> {
    let s = TcpStream::connect(addr).await.ok()?;
    let _ = s.set_nodelay(true);
    Some(Conn::Redis(s))
}

/// Sender `j`: `messages` messages, unpaced or at its share of the total rate.
async fn send(
    conn: Conn,
    j: usize,
    wire: Wire,
    load: Load,
    base: Instant,
    mut stop: watch::Receiver<bool>,
) {
    let interval = load
        .rate
        .map(|r| Duration::from_secs_f64(load.senders as f64 / r));
    // Stagger the senders across one interval so the total rate is smooth.
    let start =
        Instant::now() + interval.map_or(Duration::ZERO, |i| i * j as u32 / load.senders as u32);
    let (mut w, mut drain) = match conn {
        Conn::Room(w) => (w, None),
        Conn::Redis(s) => {
            // PUBLISH answers with a count; read and drop the answers so they never back up.
            let (mut r, w) = s.into_split();
            let d = tokio::spawn(async move {
                let mut b = vec![0u8; 16 * 1024];
                while matches!(r.read(&mut b).await, Ok(n) if n > 0) {}
            });
            (w, Some(d))
        }
    };
    let name = format!("m{j}");
    let mut msg = Vec::with_capacity(96);
    for k in 0..load.messages {
        if let Some(iv) = interval {
            tokio::time::sleep_until((start + iv * k as u32).into()).await;
        }
        let stamp = format!("{:0width$}", base.elapsed().as_micros(), width = STAMP);
        msg.clear();
        match wire {
            Wire::Room => {
                msg.extend_from_slice(stamp.as_bytes());
                msg.push(b'\n');
            }
            Wire::Redis => {
                let payload = format!("{name} {stamp}");
                let len = payload.len();
                let cmd = format!("*3\r\n$7\r\nPUBLISH\r\n$4\r\nroom\r\n${len}\r\n{payload}\r\n");
                msg.extend_from_slice(cmd.as_bytes());
            }
        }
        if w.write_all(&msg).await.is_err() {
            break;
        }
    }
    // Hold the connection until the run ends: dropping the write half would shut it down, and
    // the sender, a member, would leave the room (and stop receiving) before the others drain.
    let _ = stop.changed().await;
    if let Some(d) = drain.take() {
        d.abort();
    }
    drop(w);
}

#[cfg(test)]
mod tests {
    use super::parse_stamp;

    #[test]
    fn stamps() {
        assert_eq!(parse_stamp(b"00000000000000001234"), Some(1234));
        assert_eq!(parse_stamp(b"1234"), None);
        assert_eq!(parse_stamp(b"0000000000000000123x"), None);
    }
}
