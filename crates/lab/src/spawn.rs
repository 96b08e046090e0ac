//! Starting a bingfa server as a child process for a measurement, and stopping it: the binary
//! is this one (`current_exe`), the address is the one its ready line announces, and the child
//! is stopped (SIGTERM, then SIGKILL after a grace period) when the handle is dropped, so no run
//! leaves a server behind. Also reads a process tree's peak memory from /proc.
//!
//! Every child any lab command starts goes through [`guard`] and [`Guarded`]: it leads a process
//! group of its own and is registered, so [`stop_children_on_signals`] can stop every one of
//! them (and their workers) when the lab is interrupted, and dropping it ends its whole group.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Mutex};
use std::time::{Duration, Instant};

/// Process groups (= leader pids) of the children running now, for the signal watcher.
static RUNNING: Mutex<Vec<i32>> = Mutex::new(Vec::new());
/// Scratch directories of this run, removed by the signal watcher (their owners remove them
/// on a normal end).
static SCRATCH: Mutex<Vec<std::path::PathBuf>> = Mutex::new(Vec::new());

/// Note `dir` as this run's scratch: an interrupted lab removes it before it exits.
pub fn scratch(dir: &std::path::Path) {
    let mut s = SCRATCH.lock().unwrap_or_else(|e| e.into_inner());
    if !s.iter().any(|d| d == dir) {
        s.push(dir.to_path_buf());
    }
}

/// Prepare `cmd` so that what it starts can always be stopped: the child leads a process group
/// of its own (a server's workers stay in it, so one `kill(-pgid)` reaches them all, and a
/// terminal's Ctrl-C reaches only the lab, which then stops its servers in order), and it gets
/// SIGKILL if the lab dies without a chance to clean up (`PR_SET_PDEATHSIG`, which fires when
/// the *thread* that spawned it ends: spawn from a thread that outlives the child, as the lab's
/// main thread does). Register the spawned child with [`Guarded::new`].
pub fn guard(cmd: &mut Command) -> &mut Command {
    cmd.process_group(0);
    // SAFETY: prctl is async-signal-safe, the only call made between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        })
    }
}

/// A child started with [`guard`], registered with the signal watcher while it lives; its
/// group is stopped on drop (SIGTERM, then SIGKILL after `grace`).
pub struct Guarded {
    /// The child (the leader of its process group).
    pub child: Child,
    /// How long it gets to exit after SIGTERM on drop.
    pub grace: Duration,
    /// Stopped (and reaped) already: the group id may belong to someone else now.
    stopped: bool,
}

impl Guarded {
    /// Register `child` (the leader of its own process group) with the signal watcher.
    pub fn new(child: Child, grace: Duration) -> Guarded {
        lock_running().push(child.id() as i32);
        Guarded {
            child,
            grace,
            stopped: false,
        }
    }

    /// Stop the child's group now: true if the leader exited by itself within `grace`. Only
    /// the first call acts (later ones return true): once reaped, its pid may be reused.
    pub fn stop_within(&mut self, grace: Duration) -> bool {
        if std::mem::replace(&mut self.stopped, true) {
            return true;
        }
        stop(&mut self.child, grace)
    }

    /// The child's process id.
    pub fn id(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Guarded {
    fn drop(&mut self) {
        self.stop_within(self.grace);
    }
}

fn lock_running() -> std::sync::MutexGuard<'static, Vec<i32>> {
    RUNNING.lock().unwrap_or_else(|e| e.into_inner())
}

/// Stop a child started with [`guard`] (once: see [`Guarded`]) and its whole process group: SIGTERM (a graceful stop:
/// in-flight work ends, workers are told in order), then SIGKILL to whatever is left after
/// `grace`. Returns whether the leader exited within the grace.
fn stop(child: &mut Child, grace: Duration) -> bool {
    let pgid = child.id() as i32;
    let mut clean = true;
    if !matches!(child.try_wait(), Ok(Some(_))) {
        // SAFETY: kill(2) on our own child's group; a gone group gets ESRCH.
        unsafe { libc::kill(-pgid, libc::SIGTERM) };
        let end = Instant::now() + grace;
        clean = false;
        while Instant::now() < end {
            if matches!(child.try_wait(), Ok(Some(_))) {
                clean = true;
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    // Workers that outlive their leader (or a leader past its grace) go now.
    // SAFETY: as above.
    unsafe { libc::kill(-pgid, libc::SIGKILL) };
    let _ = child.wait();
    lock_running().retain(|&p| p != pgid);
    clean
}

/// On SIGINT, SIGTERM or SIGHUP, stop every registered child's group (SIGTERM, up to 3 s,
/// then SIGKILL), remove the [`scratch`] directories, and exit with 128 + the signal's number, so an interrupted lab leaves no
/// server behind. Call once, early in `main` of a lab command.
pub fn stop_children_on_signals() {
    static PIPE_W: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(-1);
    extern "C" fn on_signal(sig: libc::c_int) {
        let fd = PIPE_W.load(std::sync::atomic::Ordering::Relaxed);
        let b = sig as u8;
        // SAFETY: write(2) is async-signal-safe; the pipe is non-blocking.
        unsafe { libc::write(fd, (&b as *const u8).cast(), 1) };
    }
    let mut fds = [0; 2];
    // SAFETY: pipe2 with a valid two-int array.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC | libc::O_NONBLOCK) } != 0 {
        return;
    }
    let (r, w) = (fds[0], fds[1]);
    if PIPE_W
        .compare_exchange(
            -1,
            w,
            std::sync::atomic::Ordering::AcqRel,
            std::sync::atomic::Ordering::Acquire,
        )
        .is_err()
    {
        // SAFETY: closing the two descriptors just made.
        unsafe {
            libc::close(r);
            libc::close(w);
        }
        return; // installed already
    }
    std::thread::spawn(move || {
        let sig = loop {
            let mut p = libc::pollfd {
                fd: r,
                events: libc::POLLIN,
                revents: 0,
            };
            let mut b = 0u8;
            // SAFETY: poll and read on our own pipe, with valid pointers.
            unsafe {
                libc::poll(&mut p, 1, -1);
                if libc::read(r, (&mut b as *mut u8).cast(), 1) == 1 {
                    break i32::from(b);
                }
            }
        };
        let groups: Vec<i32> = lock_running().clone();
        for &g in &groups {
            // SAFETY: kill(2) on the groups of our own children.
            unsafe { libc::kill(-g, libc::SIGTERM) };
        }
        let end = Instant::now() + Duration::from_secs(3);
        while Instant::now() < end && groups.iter().any(|&g| group_alive(g)) {
            std::thread::sleep(Duration::from_millis(20));
        }
        for &g in &groups {
            // SAFETY: as above.
            unsafe { libc::kill(-g, libc::SIGKILL) };
        }
        for d in SCRATCH.lock().unwrap_or_else(|e| e.into_inner()).iter() {
            let _ = std::fs::remove_dir_all(d);
        }
        std::process::exit(128 + sig);
    });
    for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
        // SAFETY: a plain handler that only calls write(2); SA_RESTART so no syscall elsewhere
        // sees EINTR because of it.
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as usize;
            sa.sa_flags = libc::SA_RESTART;
            libc::sigemptyset(&mut sa.sa_mask);
            libc::sigaction(sig, &sa, std::ptr::null_mut());
        }
    }
}

/// Whether any process of group `g` is still running (not a zombie). Reaps the leader, our
/// child, if it has exited.
fn group_alive(g: i32) -> bool {
    let mut status = 0;
    // SAFETY: waitpid on our own child, non-blocking, valid status pointer.
    unsafe { libc::waitpid(g, &mut status, libc::WNOHANG) };
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return false;
    };
    dir.flatten().any(|e| {
        let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else {
            return false;
        };
        let Some((_, rest)) = stat.rsplit_once(')') else {
            return false;
        };
        let f: Vec<&str> = rest.split_whitespace().collect();
        // Fields after the name: state, ppid, pgrp.
        f.len() > 2 && f[0] != "Z" && f[2] == g.to_string()
    })
}

/// A running server.
pub struct ServerProcess {
    child: Guarded,
    /// `(service, address)` from each ready line, in order.
    pub listening: Vec<(String, SocketAddr)>,
}

impl ServerProcess {
    /// Run `bingfa ARGS…` and wait (up to `timeout`) for `ready` ready lines
    /// (`<service> listening on <ip>:<port>`).
    pub fn start(args: &[String], ready: usize, timeout: Duration) -> Result<Self, String> {
        let exe = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
        let child = guard(&mut Command::new(exe))
            .args(args)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("starting the server: {e}"))?;
        let mut child = Guarded::new(child, Duration::from_secs(5));
        let stdout = child.child.stdout.take().expect("piped");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut server = ServerProcess {
            child,
            listening: Vec::new(),
        };
        let end = Instant::now() + timeout;
        while server.listening.len() < ready {
            let left = end.saturating_duration_since(Instant::now());
            let line = rx
                .recv_timeout(left)
                .map_err(|_| format!("no ready line from `bingfa {}`", args.join(" ")))?;
            if let Some((svc, addr)) = line.split_once(" listening on ") {
                if let Ok(a) = addr.trim().parse() {
                    server.listening.push((svc.to_string(), a));
                }
            }
        }
        Ok(server)
    }

    /// The server's process id (the leader of its group).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The first address announced for `service`.
    pub fn addr(&self, service: &str) -> Option<SocketAddr> {
        self.listening
            .iter()
            .find(|(s, _)| s == service)
            .map(|(_, a)| *a)
    }

    /// Peak resident memory (KiB) of the server and all its descendants.
    pub fn peak_rss_kib(&self) -> u64 {
        tree(self.pid()).iter().map(|&p| vm_hwm_kib(p)).sum()
    }

    /// SIGTERM its group, wait up to `grace`, then SIGKILL. Returns whether it exited by itself.
    pub fn stop(&mut self, grace: Duration) -> bool {
        self.child.stop_within(grace)
    }
}

/// `pid` and every descendant, from /proc's parent links.
pub fn tree(pid: u32) -> Vec<u32> {
    let mut parent_of = Vec::new();
    if let Ok(dir) = std::fs::read_dir("/proc") {
        for e in dir.flatten() {
            let Some(p) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
                continue;
            };
            let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else {
                continue;
            };
            let ppid = stat
                .rsplit_once(')')
                .and_then(|(_, r)| r.split_whitespace().nth(1))
                .and_then(|s| s.parse::<u32>().ok());
            if let Some(pp) = ppid {
                parent_of.push((p, pp));
            }
        }
    }
    let mut out = vec![pid];
    let mut i = 0;
    while i < out.len() {
        let me = out[i];
        out.extend(
            parent_of
                .iter()
                .filter(|(_, pp)| *pp == me)
                .map(|(p, _)| *p),
        );
        i += 1;
    }
    out
}

/// VmHWM (peak resident set) of one process, in KiB; 0 if it is gone.
pub fn vm_hwm_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|n| n.parse().ok())
        })
        .unwrap_or(0)
}
