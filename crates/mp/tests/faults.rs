//! bingfa-mp under faults: processes killed or stopped at the worst moment, and forks taken while
//! other threads are busy. Each test here failed (hung, or returned a wrong `Ok`) before the fix
//! it names.

mod common;

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use bingfa_mp::{
    AsyncResult, Barrier, IpcError, Pipe, Pool, PoolError, Process, ProcessError, Sender,
};
use bingfa_mp::{StartMethod, SyncError, Value};
use common::eventually;

bingfa_mp::spawn_entry!();

const BIG: usize = 8 << 20;

// ---- 1. A shared sending end, and a writer killed inside a large message -------------------

static SHARED: OnceLock<(Mutex<Sender<()>>, Value<u32>)> = OnceLock::new();

fn keep_sender(args: (Sender<()>, Value<u32>)) {
    let _ = SHARED.set((Mutex::new(args.0), args.1));
}

/// Announce this worker's pid, then send `BIG` bytes of `fill` on the shared end.
fn send_big(fill: u8) -> u32 {
    let (tx, pid) = SHARED.get().expect("initializer ran");
    // Everything that could block or sleep is done before the pid is announced: from then on
    // the only place this process sleeps is inside `send`, waiting for room in the lane.
    let body = vec![fill; BIG];
    let mut tx = tx.lock().unwrap();
    pid.set(std::process::id());
    tx.send_bytes(&body).unwrap();
    std::process::id()
}

/// Start `send_big(fill)` on the pool and return the pid of the worker running it, once it
/// has filled the lane and blocked inside `send`.
fn start_writer(pool: &Pool, pid: &Value<u32>, fill: u8) -> (AsyncResult<u32>, u32) {
    // Cleared first: any earlier send_big (an untracked one too) left its own pid here.
    pid.set(0);
    let task = pool.apply_async(send_big, fill);
    (task, sender_pid(pid))
}

/// Wait until a worker has announced itself in `pid` and has blocked inside `send`.
fn sender_pid(pid: &Value<u32>) -> u32 {
    assert!(eventually(Duration::from_secs(10), || pid.get() != 0));
    let p = pid.get();
    // Asleep means blocked in `send` waiting for room in the lane (see `send_big`; it wakes
    // every 20 ms slice to look at the reader, so it is not asleep at every look); a loaded
    // machine may take a while to get there, so look rather than guess a delay.
    assert!(
        eventually(Duration::from_secs(20), || process_state(p) == Some('S')),
        "the sender never blocked inside send"
    );
    p
}

/// The state letter of a process (`R`, `S`, `T`, …) from /proc.
fn process_state(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(')')?.1.trim_start().chars().next()
}

fn assert_whole(body: &[u8], fill: u8) {
    assert_eq!(body.len(), BIG);
    assert!(
        body.iter().all(|&b| b == fill),
        "message {fill} is not intact"
    );
}

fn shared_sender_survives_a_killed_writer(m: StartMethod) {
    let (mut rx, tx) = Pipe::simplex::<()>().unwrap();
    let pid = Value::new(0u32).unwrap();
    let pool = Pool::builder()
        .processes(2)
        .start_method(m)
        .initializer(keep_sender, (tx, pid.clone()))
        .build()
        .unwrap();

    // A writer stopped half-way: a timed receive honours its deadline, and a later receive
    // carries on and gets the whole message.
    let (a, writer) = start_writer(&pool, &pid, 1);
    // SAFETY: kill touches no memory. `writer` is a pool worker, a child of this process not
    // yet reaped (it was just seen asleep in `send`), so its pid cannot have been reused.
    unsafe { libc::kill(writer as i32, libc::SIGSTOP) };
    let t = Instant::now();
    let r = rx.recv_bytes_timeout(Duration::from_millis(300));
    assert!(matches!(r, Err(IpcError::Timeout)), "{r:?}");
    assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
    // SAFETY: as above: a stopped child of ours is not reaped, so the pid is still its.
    unsafe { libc::kill(writer as i32, libc::SIGCONT) };
    assert_whole(&rx.recv_bytes().unwrap(), 1);
    a.get().unwrap();

    // A writer killed half-way, then another worker sends before we read: the torn message is
    // an error, and the next one arrives whole.
    let (a, writer) = start_writer(&pool, &pid, 2);
    // SAFETY: kill touches no memory. `writer` is a pool worker, a child of this process not
    // yet reaped (it was just seen asleep in `send`), so its pid cannot have been reused.
    unsafe { libc::kill(writer as i32, libc::SIGKILL) };
    assert!(matches!(a.get(), Err(PoolError::WorkerLost { .. })));
    let b = pool.apply_async(send_big, 3);
    let r = rx.recv_bytes_timeout(Duration::from_secs(20));
    assert!(matches!(r, Err(IpcError::Torn)), "{:?}", r.map(|v| v.len()));
    assert_whole(&rx.recv_bytes_timeout(Duration::from_secs(20)).unwrap(), 3);
    b.get().unwrap();

    // Killed half-way with nobody sending after it: the reader finds out by itself (the pool
    // still holds a copy of the sending end, so the pipe never reports a hang-up).
    let (a, writer) = start_writer(&pool, &pid, 4);
    // SAFETY: kill touches no memory. `writer` is a pool worker, a child of this process not
    // yet reaped (it was just seen asleep in `send`), so its pid cannot have been reused.
    unsafe { libc::kill(writer as i32, libc::SIGKILL) };
    assert!(matches!(a.get(), Err(PoolError::WorkerLost { .. })));
    let t = Instant::now();
    let r = rx.recv_bytes_timeout(Duration::from_secs(20));
    assert!(matches!(r, Err(IpcError::Torn)), "{:?}", r.map(|v| v.len()));
    assert!(t.elapsed() < Duration::from_secs(5));
    // And the lane is usable again.
    let b = pool.apply_async(send_big, 5);
    assert_whole(&rx.recv_bytes_timeout(Duration::from_secs(20)).unwrap(), 5);
    b.get().unwrap();
    // With nothing in flight, a timed receive just times out.
    assert!(matches!(
        rx.recv_bytes_timeout(Duration::from_millis(50)),
        Err(IpcError::Timeout)
    ));
}

/// A writer killed after its token but before any byte: the reader reports the lost message
/// (it never waits for bytes that cannot come) and the next one is delivered.
fn writer_killed_between_token_and_body(m: StartMethod) {
    // Stop the writer as soon as it has the lock: raise SIGSTOP on ourselves from inside a
    // message this size can't do, so instead fill the lane first with a message nobody reads,
    // and let the second message block before its first byte.
    let (mut rx, tx) = Pipe::simplex::<()>().unwrap();
    let pid = Value::new(0u32).unwrap();
    let pool = Pool::builder()
        .processes(2)
        .start_method(m)
        .initializer(keep_sender, (tx, pid.clone()))
        .build()
        .unwrap();
    // 4 MiB exactly minus the record prefix fills the lane to the brim...
    fn fill_lane(_: ()) {
        let (tx, _) = SHARED.get().unwrap();
        tx.lock()
            .unwrap()
            .send_bytes(&vec![9u8; (4 << 20) - 16])
            .unwrap();
    }
    pool.apply(fill_lane, ()).unwrap();
    // ...so the next writer sends its token, then waits for room before its first byte.
    let (a, writer) = start_writer(&pool, &pid, 6);
    // SAFETY: kill touches no memory. `writer` is a pool worker, a child of this process not
    // yet reaped (it was just seen asleep in `send`), so its pid cannot have been reused.
    unsafe { libc::kill(writer as i32, libc::SIGKILL) };
    assert!(matches!(a.get(), Err(PoolError::WorkerLost { .. })));
    let first = rx.recv_bytes_timeout(Duration::from_secs(20)).unwrap();
    assert_eq!(first.len(), (4 << 20) - 16);
    let r = rx.recv_bytes_timeout(Duration::from_secs(20));
    assert!(matches!(r, Err(IpcError::Torn)), "{:?}", r.map(|v| v.len()));
    let b = pool.apply_async(send_big, 7);
    assert_whole(&rx.recv_bytes_timeout(Duration::from_secs(20)).unwrap(), 7);
    b.get().unwrap();
}

// ---- 2 and 3. Fork while other threads print, or ask who they are ---------------------------

fn hello(n: u32) -> String {
    println!("child {n} says hello");
    print!("and leaves a line without its newline");
    bingfa_mp::current_process().name
}

/// Start `n` fork children while `busy` runs on four threads; every child must finish.
fn fork_under_busy_threads(n: u32, busy: fn()) {
    let stop = Arc::new(AtomicBool::new(false));
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    busy();
                }
            })
        })
        .collect();
    for i in 0..n {
        let mut p = Process::builder()
            .start_method(StartMethod::Fork)
            .name(format!("kid-{i}"))
            .spawn(hello, i)
            .unwrap();
        match p.join_timeout(Duration::from_secs(10)) {
            Ok(name) => assert_eq!(name, format!("kid-{i}")),
            Err(e) => {
                let _ = p.kill();
                panic!("fork child {i} did not finish: {e}");
            }
        }
    }
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        t.join().unwrap();
    }
}

#[test]
fn fork_while_threads_print() {
    // The child's own output must still appear: send this process's stdout to a file.
    let path = std::env::temp_dir().join(format!("bingfa-fork-print-{}", std::process::id()));
    let file = std::fs::File::create(&path).unwrap();
    use std::os::fd::AsRawFd;
    std::io::stdout().flush().unwrap();
    // SAFETY: dup only duplicates fd 1 (open for the whole test run) and touches no memory.
    let saved = unsafe { libc::dup(1) };
    // SAFETY: `file` is open for the call; dup2 atomically points fd 1 at it, so threads that
    // write to stdout meanwhile write to one file or the other, never to a closed fd.
    unsafe { libc::dup2(file.as_raw_fd(), 1) };
    fork_under_busy_threads(100, || {
        // Hold the stdout lock most of the time, as a thread inside a slow `println!` does.
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "parent thread");
        let t = Instant::now();
        while t.elapsed() < Duration::from_micros(200) {
            std::hint::spin_loop();
        }
    });
    std::io::stdout().flush().unwrap();
    // SAFETY: `saved` is the duplicate of the original stdout made above, still open; dup2
    // puts it back on fd 1 atomically.
    unsafe { libc::dup2(saved, 1) };
    let text = std::fs::read_to_string(&path).unwrap();
    let _ = std::fs::remove_file(&path);
    for i in 0..100 {
        assert!(
            text.contains(&format!("child {i} says hello")),
            "child {i}'s output is missing"
        );
    }
    assert_eq!(
        text.matches("and leaves a line without its newline")
            .count(),
        100
    );
}

#[test]
fn fork_while_threads_call_current_process() {
    fork_under_busy_threads(200, || {
        for _ in 0..100 {
            std::hint::black_box(bingfa_mp::current_process());
            std::hint::black_box(bingfa_mp::parent_process());
        }
    });
}

// ---- 4. join_timeout once the result has arrived but the child has not exited --------------

/// Return at once, but leave the exit path stuck: stdout is a full pipe nobody reads, and a
/// byte waits in the stdout buffer for the flush at exit.
fn result_then_stuck(_: ()) -> u64 {
    let mut fds = [0; 2];
    // SAFETY: `fds` is a live array of two ints, as pipe2 wants to write.
    unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_NONBLOCK) };
    let chunk = [b'x'; 4096];
    // SAFETY: write reads `chunk.len()` bytes from `chunk`, which is alive for the call.
    while unsafe { libc::write(fds[1], chunk.as_ptr().cast(), chunk.len()) } > 0 {}
    // SAFETY: fcntl and dup2 on descriptors of this process touch no memory; replacing fd 1
    // is the point (this child's stdout becomes the full pipe), and Rust's stdout just writes
    // to whatever fd 1 is.
    unsafe {
        let fl = libc::fcntl(fds[1], libc::F_GETFL);
        libc::fcntl(fds[1], libc::F_SETFL, fl & !libc::O_NONBLOCK);
        libc::dup2(fds[1], 1);
    }
    print!("!");
    42
}

fn join_timeout_keeps_its_deadline(m: StartMethod) {
    let mut p = Process::builder()
        .start_method(m)
        .spawn(result_then_stuck, ())
        .unwrap();
    let t = Instant::now();
    let r = p.join_timeout(Duration::from_secs(1));
    assert!(matches!(r, Err(ProcessError::Timeout)), "{r:?}");
    assert!(t.elapsed() < Duration::from_secs(4), "{:?}", t.elapsed());
    // Still there, stuck; once it is gone, join gives the result it had sent.
    assert!(p.is_alive());
    p.kill().unwrap();
    assert_eq!(p.join().unwrap(), 42);
}

// ---- Barrier: a party that dies breaks it for everyone --------------------------------------

fn party(args: (Barrier, bool)) -> u32 {
    let (b, die) = args;
    b.wait().unwrap();
    if die {
        // Killed (or crashing) between rounds, holding its handle.
        // SAFETY: _exit ends this child at once, skipping destructors: the barrier handle is
        // never released, as if the process had been killed.
        unsafe { libc::_exit(3) };
    }
    b.wait().unwrap()
}

fn dead_party_breaks_barrier(m: StartMethod) {
    let b = Barrier::new(3).unwrap();
    let ok = Process::builder()
        .start_method(m)
        .spawn(party, (b.clone(), false))
        .unwrap();
    let dies = Process::builder()
        .start_method(m)
        .spawn(party, (b.clone(), true))
        .unwrap();
    b.wait().unwrap();
    // Round two: one party is gone. Both survivors must be released with BrokenBarrier.
    let t = Instant::now();
    assert!(matches!(b.wait(), Err(SyncError::BrokenBarrier)));
    assert!(t.elapsed() < Duration::from_secs(5));
    assert!(matches!(ok.join(), Err(ProcessError::Panicked { .. })));
    assert!(matches!(dies.join(), Err(ProcessError::Exited { code: 3 })));
}

fn finish(args: (Barrier, u32)) -> u32 {
    let (b, rounds) = args;
    for _ in 0..rounds {
        b.wait().unwrap();
    }
    rounds
}

/// A party that finished its rounds and exited normally is not a dead party.
fn finished_party_is_not_dead(m: StartMethod) {
    let b = Barrier::new(2).unwrap();
    let p = Process::builder()
        .start_method(m)
        .spawn(finish, (b.clone(), 2))
        .unwrap();
    b.wait().unwrap();
    b.wait().unwrap();
    assert_eq!(p.join().unwrap(), 2);
    // A new partner takes its place for two more rounds.
    let q = Process::builder()
        .start_method(m)
        .spawn(finish, (b.clone(), 2))
        .unwrap();
    std::thread::sleep(Duration::from_millis(150));
    b.wait().unwrap();
    b.wait().unwrap();
    assert_eq!(q.join().unwrap(), 2);
    assert!(!b.broken());
}

both_methods!(
    shared_sender_survives_a_killed_writer,
    writer_killed_between_token_and_body,
    join_timeout_keeps_its_deadline,
    dead_party_breaks_barrier,
    finished_party_is_not_dead,
);
