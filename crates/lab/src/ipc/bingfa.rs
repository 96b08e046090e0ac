//! bingfa-mp's side of `lab ipc`: each function starts its peer process(es), waits until
//! they are ready, times only the traffic and returns one figure.

use std::time::{Duration, Instant};

use bingfa_mp::{Barrier, Connection, Pipe, Process, Queue, Receiver, Sender, StartMethod};

fn queue_producer(args: (Queue<Option<u64>>, Sender<bool>, Receiver<bool>, u64)) {
    let (q, mut ready, mut go, n) = args;
    ready.send(&true).unwrap();
    go.recv().unwrap();
    for i in 0..n {
        q.put(Some(i)).unwrap();
    }
    q.put(None).unwrap();
}

/// Messages per second through a `Queue`, one producer process, one consumer.
pub(super) fn queue_msgs_per_s(n: u64) -> f64 {
    let q: Queue<Option<u64>> = Queue::new().unwrap();
    let (mut ready_r, ready_w) = Pipe::simplex().unwrap();
    let (go_r, mut go_w) = Pipe::simplex().unwrap();
    let p = Process::builder()
        .spawn(queue_producer, (q.clone(), ready_w, go_r, n))
        .unwrap();
    ready_r.recv().unwrap();
    let t = Instant::now();
    go_w.send(&true).unwrap();
    let mut got = 0u64;
    while q.get().unwrap().is_some() {
        got += 1;
    }
    let dt = t.elapsed();
    assert_eq!(got, n);
    p.join().unwrap();
    n as f64 / dt.as_secs_f64()
}

fn pipe_producer(args: (Sender<Option<u64>>, Sender<bool>, Receiver<bool>, u64)) {
    let (mut w, mut ready, mut go, n) = args;
    ready.send(&true).unwrap();
    go.recv().unwrap();
    for i in 0..n {
        w.send(&Some(i)).unwrap();
    }
    w.send(&None).unwrap();
}

/// Messages per second through a simplex `Pipe`.
pub(super) fn pipe_msgs_per_s(n: u64) -> f64 {
    let (mut r, w) = Pipe::simplex::<Option<u64>>().unwrap();
    let (mut ready_r, ready_w) = Pipe::simplex().unwrap();
    let (go_r, mut go_w) = Pipe::simplex().unwrap();
    let p = Process::builder()
        .spawn(pipe_producer, (w, ready_w, go_r, n))
        .unwrap();
    ready_r.recv().unwrap();
    let t = Instant::now();
    go_w.send(&true).unwrap();
    let mut got = 0u64;
    while r.recv().unwrap().is_some() {
        got += 1;
    }
    let dt = t.elapsed();
    assert_eq!(got, n);
    p.join().unwrap();
    n as f64 / dt.as_secs_f64()
}

fn echo(mut c: Connection<u64>) {
    while let Ok(x) = c.recv() {
        if c.send(&x).is_err() {
            break;
        }
    }
}

/// Mean round trip over a duplex `Pipe`, in microseconds.
pub(super) fn pipe_roundtrip_us(n: u64) -> f64 {
    let (mut a, b) = Pipe::duplex::<u64>().unwrap();
    let p = Process::builder().spawn(echo, b).unwrap();
    for i in 0..1000 {
        a.send(&i).unwrap();
        a.recv().unwrap();
    }
    let t = Instant::now();
    for i in 0..n {
        a.send(&i).unwrap();
        assert_eq!(a.recv().unwrap(), i);
    }
    let dt = t.elapsed();
    drop(a);
    p.join().unwrap();
    dt.as_secs_f64() / n as f64 * 1e6
}

fn bulk_sink(args: (Receiver<()>, Sender<bool>, u64)) -> u64 {
    let (mut r, mut ready, n) = args;
    ready.send(&true).unwrap();
    let (mut total, mut buf) = (0, Vec::new());
    for _ in 0..n {
        total += r.recv_bytes_into(&mut buf).unwrap() as u64;
    }
    total
}

/// Bytes per second of 1 MiB messages through a simplex `Pipe`: `send_bytes` and
/// `recv_bytes_into` a reused buffer, as the CPython script does.
pub(super) fn pipe_bulk_bytes_per_s(n: u64) -> f64 {
    let chunk = vec![b'x'; 1 << 20];
    let (r, mut w) = Pipe::simplex::<()>().unwrap();
    let (mut ready_r, ready_w) = Pipe::simplex().unwrap();
    let p = Process::builder()
        .spawn(bulk_sink, (r, ready_w, n))
        .unwrap();
    ready_r.recv().unwrap();
    let t = Instant::now();
    for _ in 0..n {
        w.send_bytes(&chunk).unwrap();
    }
    let total = p.join().unwrap();
    let dt = t.elapsed();
    assert_eq!(total, n << 20);
    total as f64 / dt.as_secs_f64()
}

fn noop(_: ()) {}

/// Processes started and joined per second with `method`.
pub(super) fn start_join_per_s(method: StartMethod, n: u32) -> f64 {
    let t = Instant::now();
    for _ in 0..n {
        Process::builder()
            .start_method(method)
            .spawn(noop, ())
            .unwrap()
            .join()
            .unwrap();
    }
    n as f64 / t.elapsed().as_secs_f64()
}

fn queue_echo(args: (Queue<Option<u64>>, Queue<Option<u64>>)) {
    let (inbox, outbox) = args;
    while let Ok(Some(x)) = inbox.get() {
        outbox.put(Some(x)).unwrap();
    }
}

/// Mean round trip through a pair of `Queue`s (there and back), in microseconds.
pub(super) fn queue_roundtrip_us(n: u64) -> f64 {
    let (there, back) = (Queue::new().unwrap(), Queue::new().unwrap());
    let p = Process::builder()
        .spawn(queue_echo, (there.clone(), back.clone()))
        .unwrap();
    for i in 0..1000 {
        there.put(Some(i)).unwrap();
        back.get().unwrap();
    }
    let t = Instant::now();
    for i in 0..n {
        there.put(Some(i)).unwrap();
        assert_eq!(back.get().unwrap(), Some(i));
    }
    let dt = t.elapsed();
    there.put(None).unwrap();
    p.join().unwrap();
    dt.as_secs_f64() / n as f64 * 1e6
}

/// Producers and consumers of the MPMC figure.
pub(super) const MPMC: u64 = 4;

fn mpmc_producer(args: (Queue<Option<u64>>, Barrier, u64)) {
    let (q, start, n) = args;
    start.wait().unwrap();
    for i in 0..n {
        q.put(Some(i)).unwrap();
    }
    q.put(None).unwrap();
}

fn mpmc_consumer(args: (Queue<Option<u64>>, Barrier)) -> u64 {
    let (q, start) = args;
    start.wait().unwrap();
    let mut got = 0;
    // Each producer ends with one None; a consumer stops at its first, so each takes one.
    while q.get().unwrap().is_some() {
        got += 1;
    }
    got
}

/// Messages per second through one `Queue` shared by [`MPMC`] producer processes and
/// [`MPMC`] consumer processes; `n` messages in all. Timed from the start barrier to the
/// last consumer's exit.
pub(super) fn queue_mpmc_msgs_per_s(n: u64) -> f64 {
    let q: Queue<Option<u64>> = Queue::new().unwrap();
    let start = Barrier::new(2 * MPMC as u32 + 1).unwrap();
    let consumers: Vec<_> = (0..MPMC)
        .map(|_| {
            Process::builder()
                .spawn(mpmc_consumer, (q.clone(), start.clone()))
                .unwrap()
        })
        .collect();
    let producers: Vec<_> = (0..MPMC)
        .map(|_| {
            Process::builder()
                .spawn(mpmc_producer, (q.clone(), start.clone(), n / MPMC))
                .unwrap()
        })
        .collect();
    start.wait().unwrap();
    let t = Instant::now();
    let got: u64 = consumers.into_iter().map(|p| p.join().unwrap()).sum();
    let dt = t.elapsed();
    for p in producers {
        p.join().unwrap();
    }
    assert_eq!(got, n / MPMC * MPMC);
    got as f64 / dt.as_secs_f64()
}

/// CPU time (user + system) a process has used, from /proc/PID/stat.
fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<u64> = rest
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|x| x.parse().ok())
        .collect();
    // SAFETY: sysconf takes no pointer.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    Duration::from_nanos(f.iter().sum::<u64>() * 1_000_000_000 / hz)
}

fn idle_receiver(args: (Receiver<u64>, Queue<u64>)) {
    let (mut r, q) = args;
    r.recv().unwrap();
    q.get().unwrap();
}

/// CPU used by a receiver that waits `wait` for a message that does not come, as a percentage
/// of that time: first blocked in a pipe's `recv` (half the time), then in a queue's `get`.
pub(super) fn idle_cpu_percent(wait: Duration) -> f64 {
    let (r, mut w) = Pipe::simplex::<u64>().unwrap();
    let q = Queue::new().unwrap();
    let p = Process::builder()
        .spawn(idle_receiver, (r, q.clone()))
        .unwrap();
    // Let it start and settle into its wait (its start-up CPU is not idle time).
    std::thread::sleep(Duration::from_millis(300));
    let before = cpu_time(p.pid());
    std::thread::sleep(wait / 2);
    w.send(&1).unwrap();
    std::thread::sleep(wait / 2);
    let used = cpu_time(p.pid()) - before;
    q.put(1).unwrap();
    p.join().unwrap();
    used.as_secs_f64() / wait.as_secs_f64() * 100.0
}
