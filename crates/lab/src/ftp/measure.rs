//! The four measurements of `lab ftp`, each against one running server with the lab's own
//! client: single-stream RETR and STOR throughput, anonymous logins per second, many clients
//! downloading at once, and the memory held by idle logged-in sessions. Every socket wait has
//! a timeout, so a stuck server fails a measurement instead of hanging the run.

use std::fs::File;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use super::client::Control;
use super::target::Mem;

/// A logged-in binary-mode session for the throughput measurements, kept across transfers.
pub fn session(addr: SocketAddr, timeout: Duration) -> io::Result<Control> {
    let mut c = Control::connect(addr, timeout)?;
    c.login_anonymous()?;
    c.binary()?;
    Ok(c)
}

/// Bytes per second of one RETR of `path` (`size` bytes), timed from the RETR command to the
/// server's 226.
pub fn retr(c: &mut Control, path: &str, size: u64) -> io::Result<f64> {
    let (n, took) = c.retr(path)?;
    if n != size {
        return Err(io::Error::other(format!(
            "RETR {path}: {n} bytes, not {size}"
        )));
    }
    Ok(n as f64 / took.as_secs_f64())
}

/// Bytes per second of one STOR of `size` bytes of `src` as `path`, timed from the STOR
/// command to the server's 226 (the server has written and named the file by then).
pub fn stor(c: &mut Control, path: &str, src: &File, size: u64) -> io::Result<f64> {
    let took = c.stor(path, src, size)?;
    Ok(size as f64 / took.as_secs_f64())
}

/// What the login storm did.
#[derive(Debug, Clone, Copy)]
pub struct Logins {
    /// Logins completed.
    pub done: u64,
    /// Logins that failed.
    pub errors: u64,
    /// How long the storm lasted.
    pub secs: f64,
}

/// `clients` threads each connect, log in anonymously and QUIT, again and again, for `secs`.
pub fn logins(addr: SocketAddr, clients: usize, secs: f64, timeout: Duration) -> Logins {
    let done = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let end = start + Duration::from_secs_f64(secs);
    let handles: Vec<_> = (0..clients.max(1))
        .map(|_| {
            let (done, errors) = (done.clone(), errors.clone());
            std::thread::spawn(move || {
                while Instant::now() < end {
                    let r = Control::connect(addr, timeout).and_then(|mut c| {
                        c.login_anonymous()?;
                        c.quit()
                    });
                    match r {
                        Ok(()) => done.fetch_add(1, Ordering::Relaxed),
                        Err(_) => errors.fetch_add(1, Ordering::Relaxed),
                    };
                }
            })
        })
        .collect();
    for h in handles {
        let _ = h.join();
    }
    Logins {
        done: done.load(Ordering::Relaxed),
        errors: errors.load(Ordering::Relaxed),
        secs: start.elapsed().as_secs_f64(),
    }
}

/// What the many-downloads run did.
#[derive(Debug, Clone)]
pub struct Crowd {
    /// From the first connect to the last client logged in (or failed).
    pub login_secs: f64,
    /// From the go signal (every client logged in) to the last 226.
    pub wall_secs: f64,
    /// CPU seconds (user + system) over the same span: the server's (its process tree), and
    /// the lab's (all the clients). On loopback the kernel's work for a connection lands on
    /// whichever side's thread happens to run it, so the two are best read together.
    pub server_cpu_s: f64,
    /// CPU seconds of the lab's clients over the same span.
    pub client_cpu_s: f64,
    /// Clients whose download completed.
    pub ok: usize,
    /// What went wrong for the others.
    pub failed: Vec<String>,
}

/// Logins in flight at once while the crowd gathers: vsftpd listens with a backlog of 32, and
/// 300 simultaneous connects overflow it (the kernel then drops handshakes and the clients
/// wait out SYN-ACK retransmissions for up to a minute). The gathering is not what is timed,
/// so it is paced for every server alike.
const GATHERING: usize = 16;

/// `clients` clients connect and log in (at most `GATHERING` at a time), then all at once
/// download `path` (`size` bytes). `server_cpu` reads the server's CPU seconds so far.
pub fn crowd(
    addr: SocketAddr,
    clients: usize,
    path: &str,
    size: u64,
    timeout: Duration,
    server_cpu: impl Fn() -> f64,
) -> Crowd {
    let gate = Arc::new(Gate::default());
    let slots = Arc::new(Slots::new(GATHERING));
    let start = Instant::now();
    let mut handles = Vec::with_capacity(clients);
    let mut failed = Vec::new();
    for _ in 0..clients {
        let gate = gate.clone();
        let slots = slots.clone();
        let path = path.to_string();
        let h = std::thread::Builder::new()
            // Hundreds of threads: keep their stacks small (the buffer is on the heap).
            .stack_size(128 << 10)
            .spawn(move || -> Result<(), String> {
                slots.take();
                let session = Control::connect(addr, timeout).and_then(|mut c| {
                    c.login_anonymous()?;
                    c.binary()?;
                    Ok(c)
                });
                slots.give();
                // Every thread reaches the gate, logged in or not, so none can hang it.
                gate.arrive_and_wait();
                let mut c = session.map_err(|e| format!("login: {e}"))?;
                let (n, _) = c.retr(&path).map_err(|e| e.to_string())?;
                let _ = c.quit();
                if n != size {
                    return Err(format!("{n} bytes, not {size}"));
                }
                Ok(())
            });
        match h {
            Ok(h) => handles.push(h),
            // The threads already started still get their go signal below.
            Err(e) => failed.push(format!("spawning a client thread: {e}")),
        }
    }
    gate.open_when(handles.len());
    let login_secs = start.elapsed().as_secs_f64();
    let (server0, client0) = (server_cpu(), own_cpu());
    let t = Instant::now();
    let mut ok = 0;
    for h in handles {
        match h.join() {
            Ok(Ok(())) => ok += 1,
            Ok(Err(e)) => failed.push(e),
            Err(_) => failed.push("client thread panicked".into()),
        }
    }
    let wall_secs = t.elapsed().as_secs_f64();
    let client_cpu_s = own_cpu() - client0;
    // A forking server's finished sessions count once their parent has reaped them.
    std::thread::sleep(Duration::from_millis(200));
    Crowd {
        login_secs,
        wall_secs,
        server_cpu_s: server_cpu() - server0,
        client_cpu_s,
        ok,
        failed,
    }
}

/// This process's CPU seconds so far (user + system, all threads).
fn own_cpu() -> f64 {
    // SAFETY: a zeroed rusage is a valid out-parameter.
    let mut r: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: RUSAGE_SELF and a valid pointer.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut r) };
    let t = |v: libc::timeval| v.tv_sec as f64 + v.tv_usec as f64 / 1e6;
    t(r.ru_utime) + t(r.ru_stime)
}

/// A start line: the clients arrive one by one, and all are let go together once as many as
/// were started have arrived (a barrier whose count is known only after the spawning).
#[derive(Default)]
struct Gate {
    state: Mutex<(usize, bool)>,
    cv: Condvar,
}

impl Gate {
    fn arrive_and_wait(&self) {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        s.0 += 1;
        self.cv.notify_all();
        while !s.1 {
            s = self.cv.wait(s).unwrap_or_else(|e| e.into_inner());
        }
    }

    fn open_when(&self, arrived: usize) {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        while s.0 < arrived {
            s = self.cv.wait(s).unwrap_or_else(|e| e.into_inner());
        }
        s.1 = true;
        self.cv.notify_all();
    }
}

/// A counting semaphore: `take` waits for a free slot, `give` frees one.
struct Slots {
    free: Mutex<usize>,
    cv: Condvar,
}

impl Slots {
    fn new(n: usize) -> Slots {
        Slots {
            free: Mutex::new(n),
            cv: Condvar::new(),
        }
    }

    fn take(&self) {
        let mut f = self.free.lock().unwrap_or_else(|e| e.into_inner());
        while *f == 0 {
            f = self.cv.wait(f).unwrap_or_else(|e| e.into_inner());
        }
        *f -= 1;
    }

    fn give(&self) {
        *self.free.lock().unwrap_or_else(|e| e.into_inner()) += 1;
        self.cv.notify_one();
    }
}

/// Log `clients` sessions in (one after the other), let the server settle, and read `mem`
/// while they sit idle. Errors if any session could not log in.
pub fn idle(
    addr: SocketAddr,
    clients: usize,
    timeout: Duration,
    mem: impl Fn() -> Mem,
) -> io::Result<Mem> {
    let mut held = Vec::with_capacity(clients);
    for _ in 0..clients {
        let mut c = Control::connect(addr, timeout)?;
        c.login_anonymous()?;
        held.push(c);
    }
    std::thread::sleep(Duration::from_millis(500));
    let m = mem();
    // Closing without QUIT: the servers must clean up a dropped session anyway.
    drop(held);
    Ok(m)
}
