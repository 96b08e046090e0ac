//! Pipes under both start methods: messages both ways, EOF, timeouts, raw bytes, limits, and a
//! child dying in the middle of a message.

mod common;

use std::time::{Duration, Instant};

use bingfa_mp::{Connection, IpcError, Pipe, Process, Receiver, Sender, StartMethod};

bingfa_mp::spawn_entry!();

fn echo_upper(mut c: Connection<String>) -> usize {
    let mut n = 0;
    while let Ok(s) = c.recv() {
        c.send(&s.to_uppercase()).unwrap();
        n += 1;
    }
    n
}

fn duplex_ping_pong(m: StartMethod) {
    let (mut a, b) = Pipe::duplex::<String>().unwrap();
    let p = Process::builder()
        .start_method(m)
        .spawn(echo_upper, b)
        .unwrap();
    for word in ["ping", "pong", "并发"] {
        a.send(&word.to_string()).unwrap();
        assert_eq!(
            a.recv_timeout(Duration::from_secs(10)).unwrap(),
            word.to_uppercase()
        );
    }
    drop(a); // the child's recv now sees EOF and returns its count
    assert_eq!(p.join().unwrap(), 3);
}

fn produce(args: (Sender<u64>, u64)) {
    let (mut tx, n) = args;
    for i in 0..n {
        tx.send(&i).unwrap();
    }
}

fn simplex_eof_after_writer_exits(m: StartMethod) {
    let (mut rx, tx) = Pipe::simplex::<u64>().unwrap();
    let p = Process::builder()
        .start_method(m)
        .spawn(produce, (tx, 10_000))
        .unwrap();
    let mut expect = 0;
    loop {
        match rx.recv() {
            Ok(v) => {
                assert_eq!(v, expect);
                expect += 1;
            }
            Err(IpcError::Eof) => break,
            Err(e) => panic!("unexpected {e}"),
        }
    }
    assert_eq!(expect, 10_000);
    p.join().unwrap();
    // EOF is sticky.
    assert!(matches!(rx.recv(), Err(IpcError::Eof)));
}

fn consume_all(mut rx: Receiver<u32>) -> u64 {
    let mut sum = 0u64;
    while let Ok(v) = rx.recv() {
        sum += v as u64;
    }
    sum
}

fn child_reader_sees_eof_when_parent_drops_writer(m: StartMethod) {
    // The fork child inherits every descriptor of the parent, including the write end the
    // parent keeps: bingfa-mp closes it in the child so EOF still arrives.
    let (rx, mut tx) = Pipe::simplex::<u32>().unwrap();
    let p = Process::builder()
        .start_method(m)
        .spawn(consume_all, rx)
        .unwrap();
    for v in 1..=100 {
        tx.send(&v).unwrap();
    }
    drop(tx);
    let mut p = p;
    assert_eq!(p.join_timeout(Duration::from_secs(10)).unwrap(), 5050);
}

fn raw_bytes_and_poll(m: StartMethod) {
    fn bounce(mut c: Connection<()>) {
        let b = c.recv_bytes().unwrap();
        c.send_bytes(&b.iter().rev().copied().collect::<Vec<_>>())
            .unwrap();
    }
    let (mut a, b) = Pipe::duplex::<()>().unwrap();
    let p = Process::builder().start_method(m).spawn(bounce, b).unwrap();
    assert!(!a.poll(Duration::from_millis(20)).unwrap());
    a.send_bytes(b"abc\0def").unwrap();
    assert!(a.poll(Duration::from_secs(10)).unwrap());
    assert_eq!(a.recv_bytes().unwrap(), b"fed\0cba");
    p.join().unwrap();
}

fn bulk_megabytes(m: StartMethod) {
    fn sum_bytes(mut rx: Receiver<Vec<u8>>) -> (usize, u64) {
        let (mut n, mut s) = (0, 0u64);
        while let Ok(v) = rx.recv() {
            n += v.len();
            s += v.iter().map(|&b| b as u64).sum::<u64>();
        }
        (n, s)
    }
    let (rx, mut tx) = Pipe::simplex::<Vec<u8>>().unwrap();
    let p = Process::builder()
        .start_method(m)
        .spawn(sum_bytes, rx)
        .unwrap();
    let chunk: Vec<u8> = (0..(1 << 20)).map(|i| (i % 7) as u8).collect();
    let per: u64 = chunk.iter().map(|&b| b as u64).sum();
    for _ in 0..8 {
        tx.send(&chunk).unwrap();
    }
    drop(tx);
    assert_eq!(p.join().unwrap(), (8 << 20, per * 8));
}

fn die_mid_message(mut tx: Sender<Vec<u8>>) {
    // Write a frame header promising 1000 bytes, 10 bytes of it, then die.
    let _ = &mut tx;
    use std::os::fd::AsRawFd;
    let mut frame = 1000u32.to_le_bytes().to_vec();
    frame.extend_from_slice(&[7; 10]);
    // SAFETY: `tx` keeps its fd open for the call, and write reads `frame.len()` bytes from
    // `frame`, which is alive until it returns. Writing behind the Sender's back is the point:
    // this frame is deliberately cut short.
    unsafe { libc::write(tx.as_raw_fd(), frame.as_ptr().cast(), frame.len()) };
    // SAFETY: _exit ends this child at once, skipping destructors, so nothing finishes the
    // frame: the reader must see it torn.
    unsafe { libc::_exit(0) };
}

fn child_dies_mid_message(m: StartMethod) {
    let (mut rx, tx) = Pipe::simplex::<Vec<u8>>().unwrap();
    let p = Process::builder()
        .start_method(m)
        .spawn(die_mid_message, tx)
        .unwrap();
    let _ = p.join();
    match rx.recv_timeout(Duration::from_secs(10)) {
        Err(IpcError::Corrupt(_)) => {}
        other => panic!("expected Corrupt, got {other:?}"),
    }
}

fn errors_are_typed(_m: StartMethod) {
    let (mut a, mut b) = Pipe::duplex::<u8>().unwrap();
    let t = Instant::now();
    assert!(matches!(
        a.recv_timeout(Duration::from_millis(30)),
        Err(IpcError::Timeout)
    ));
    assert!(t.elapsed() >= Duration::from_millis(30));
    a.close();
    assert!(matches!(a.send(&1), Err(IpcError::Closed)));
    assert!(matches!(a.recv(), Err(IpcError::Closed)));
    assert!(matches!(b.recv(), Err(IpcError::Eof)));
    assert!(matches!(b.send(&1), Err(IpcError::BrokenPipe)));

    // Too large: refused before anything is written.
    let (_rx, mut tx) = Pipe::simplex::<()>().unwrap();
    let huge = vec![0u8; bingfa_mp::MAX_MESSAGE + 1];
    assert!(matches!(
        tx.send_bytes(&huge),
        Err(IpcError::MessageTooLarge { .. })
    ));

    // A header claiming more than the maximum is corruption, not an allocation of gigabytes.
    let (mut rx, tx) = Pipe::simplex::<u8>().unwrap();
    use std::os::fd::AsRawFd;
    let bogus = u32::MAX.to_le_bytes();
    // SAFETY: `tx` keeps its fd open for the call, and `bogus` is 4 live bytes.
    unsafe { libc::write(tx.as_raw_fd(), bogus.as_ptr().cast(), 4) };
    assert!(matches!(rx.recv(), Err(IpcError::Corrupt(_))));

    // Ends refuse to serialize outside spawn arguments.
    let (c, _d) = Pipe::duplex::<u8>().unwrap();
    assert!(postcard::to_stdvec(&c).is_err());
}

fn recv_bytes_into_reuses_buffer(m: StartMethod) {
    fn send_sizes(mut tx: Sender<()>) {
        for size in [10usize, 70_000, 3 << 20, 5, 200_000] {
            tx.send_bytes(&vec![(size % 256) as u8; size]).unwrap();
        }
    }
    let (mut rx, tx) = Pipe::simplex::<()>().unwrap();
    let p = Process::builder()
        .start_method(m)
        .spawn(send_sizes, tx)
        .unwrap();
    let mut buf = Vec::new();
    for size in [10usize, 70_000, 3 << 20, 5, 200_000] {
        assert_eq!(rx.recv_bytes_into(&mut buf).unwrap(), size);
        assert_eq!(buf.len(), size);
        assert!(buf.iter().all(|&b| b == (size % 256) as u8));
    }
    p.join().unwrap();
}

fn writer_dies_inside_large_message(m: StartMethod) {
    // The receiver is not reading, so the 16 MiB body fills the 4 MiB lane and the writer
    // blocks inside send; we kill it there. The reader must be told the message is torn, not
    // hang.
    fn big_send(mut tx: Sender<()>) {
        tx.send_bytes(&vec![1u8; 16 << 20]).unwrap();
    }
    let (mut rx, tx) = Pipe::simplex::<()>().unwrap();
    let p = Process::builder()
        .start_method(m)
        .spawn(big_send, tx)
        .unwrap();
    // Kill it only once its message has begun (a fixed sleep raced a slow child start on a
    // loaded machine: the reader then saw a clean end of file, not a torn message).
    assert!(
        rx.poll(Duration::from_secs(10)).unwrap(),
        "the writer never began"
    );
    std::thread::sleep(Duration::from_millis(50));
    p.kill().unwrap();
    let _ = p.join();
    match rx.recv_bytes() {
        Err(IpcError::Torn) => {}
        other => panic!("expected Torn, got {:?}", other.map(|v| v.len())),
    }
}

fn reader_dies_while_writer_blocked(m: StartMethod) {
    fn read_a_little(rx: Receiver<()>) {
        let _ = rx.poll(Duration::from_secs(5));
        // SAFETY: _exit ends this child at once; the reading end closes with it, which is
        // what the blocked writer must notice.
        unsafe { libc::_exit(0) };
    }
    let (rx, mut tx) = Pipe::simplex::<()>().unwrap();
    let p = Process::builder()
        .start_method(m)
        .spawn(read_a_little, rx)
        .unwrap();
    // 16 MiB cannot fit the lane; the reader exits without reading: send must fail, not hang.
    let r = tx.send_bytes(&vec![2u8; 16 << 20]);
    assert!(matches!(r, Err(IpcError::BrokenPipe)), "{r:?}");
    let _ = p.join();
}

both_methods!(
    recv_bytes_into_reuses_buffer,
    writer_dies_inside_large_message,
    reader_dies_while_writer_blocked,
    duplex_ping_pong,
    simplex_eof_after_writer_exits,
    child_reader_sees_eof_when_parent_drops_writer,
    raw_bytes_and_poll,
    bulk_megabytes,
    child_dies_mid_message,
    errors_are_typed,
);

/// CPU time (user + system) a process has used so far, from /proc/PID/stat.
fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // The fields after the command name (which may hold spaces) start after the last ')'.
    let rest = stat.rsplit_once(')').unwrap().1;
    let f: Vec<u64> = rest
        .split_whitespace()
        .skip(11)
        .take(2)
        .map(|x| x.parse().unwrap())
        .collect();
    // SAFETY: sysconf takes no pointer.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as u64;
    Duration::from_nanos((f[0] + f[1]) * 1_000_000_000 / hz)
}

fn wait_idle(args: (Receiver<u64>, bingfa_mp::Queue<u64>)) -> (u64, u64) {
    let (mut rx, q) = args;
    (rx.recv().unwrap(), q.get().unwrap())
}

/// A receiver with nothing to read spins only briefly, then sleeps: waiting costs (almost) no
/// CPU. A resource bound, not a speed test: the bound is 5% of the wall time, far above the
/// spin's few microseconds per wait and far below a spinning core's 100%.
#[test]
fn an_idle_receiver_uses_no_cpu() {
    let (rx, mut tx) = Pipe::simplex::<u64>().unwrap();
    let q = bingfa_mp::Queue::new().unwrap();
    let p = Process::builder()
        .spawn(wait_idle, (rx, q.clone()))
        .unwrap();
    // Let the child start (its start-up is not idle time).
    std::thread::sleep(Duration::from_millis(300));
    let (t, before) = (Instant::now(), cpu_time(p.pid()));
    std::thread::sleep(Duration::from_millis(800));
    tx.send(&1).unwrap(); // from the pipe's recv to the queue's get
    std::thread::sleep(Duration::from_millis(800));
    let (used, wall) = (cpu_time(p.pid()) - before, t.elapsed());
    q.put(2).unwrap();
    assert_eq!(p.join().unwrap(), (1, 2));
    assert!(
        used < wall / 20,
        "an idle receiver used {used:?} of CPU in {wall:?}"
    );
}
