//! `bingfa lab efficiency`: the course's efficiency test (效率测试), measured.
//!
//! Ten CPU-bound jobs and ten IO-bound jobs, each run in one line (one after the other), on 10
//! threads, on 10 processes (bingfa-mp, spawn), on a pool of `cpu_count()` processes, and (IO
//! only) as 10 coroutines on one thread (tokio). The same experiment runs in CPython
//! (`python/efficiency.py`, embedded) when python3 is there, so the two sit side by side: in
//! CPython, threads don't speed up CPU-bound work (the GIL); in Rust they do, and only the
//! number of cores limits them. IO-bound jobs speed up with every mode that waits in parallel.
//!
//! The jobs are the same in both languages, sized so that each takes a similar time: the CPU
//! job is the course's `count` loop (Rust does 200× CPython's iterations), the IO job waits
//! 20 ms ten times (a network round trip) and writes and reads a 16 KiB file after each wait.
//!
//! Every mode is timed twice: on the wall clock, and in CPU time (this process and the children
//! it reaped, user + system), so a reader sees *why* a mode is faster: a CPU-bound mode can only
//! go faster by spending the same CPU time on more cores at once (CPU ÷ wall is the cores it kept
//! busy, at most the machine's), an IO-bound one by waiting in parallel.
//!
//! The Rust CPU job keeps its counters in registers. It used to force them through memory
//! (`black_box` on each step), which made each iteration a store-to-load round trip whose cost
//! depends on where the stack slots fall: on this machine (AMD EPYC, KVM) 0.44 or 0.55 ns per
//! iteration by the slots' address modulo 32. The main thread's stack and a spawned thread's
//! fell on different sides, so the "one line" run was 1.2–1.5× slower per job than the
//! threaded ones, and 10 threads showed a 3.1× speed-up on 2 cores.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use bingfa_mp::{Pool, Process};
use serde::Serialize;

use crate::stats::Spread;

/// Jobs per mode.
pub const JOBS: usize = 10;
const RUST_CPU_ITERS: u64 = 400_000_000;
const IO_STEPS: u32 = 10;
const IO_WAIT: Duration = Duration::from_millis(20);
const BLOCK: usize = 16 * 1024;

/// The ways the jobs are run, in table order.
pub const MODES: [&str; 5] = [
    "one line",
    "10 threads",
    "10 processes",
    "pool",
    "coroutines",
];

/// What to run.
#[derive(Debug, Clone)]
pub struct Options {
    /// Runs per mode (the figures are medians).
    pub rounds: usize,
    /// Smaller jobs: a smoke run, not a measurement.
    pub quick: bool,
    /// Skip the CPython side.
    pub no_python: bool,
}

/// One mode of one kind of job, in both languages (seconds for all ten jobs).
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    /// The kind of job.
    pub kind: &'static str,
    /// How the jobs were run (one of [`MODES`]).
    pub mode: &'static str,
    /// bingfa-mp's time.
    pub rust: Spread,
    /// CPython's time (`None`: not run).
    pub python: Option<Spread>,
    /// bingfa-mp's CPU time (user + system, this process and its reaped children).
    pub rust_cpu: Spread,
    /// CPython's CPU time, measured the same way (`None`: not run).
    pub python_cpu: Option<Spread>,
}

/// The whole experiment.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// One row per kind and mode.
    pub rows: Vec<Row>,
    /// Iterations of the Rust CPU job.
    pub rust_cpu_iters: u64,
    /// Iterations of the Python CPU job (`None`: not run).
    pub python_cpu_iters: Option<u64>,
    /// Steps of the I/O job (wait, then write and read back a small file).
    pub io_steps: u32,
    /// Cores this machine has (`cpu_count()`): the bound on any CPU-bound speed-up.
    pub cores: usize,
    /// Worker processes of the pool mode (Rust's `Pool` and CPython's `Pool` alike).
    pub pool_size: usize,
    /// CPython's `os.cpu_count()` and pool size, when it ran (the same machine, so the same).
    pub python_pool_size: Option<u64>,
}

impl Report {
    /// Seconds of the "one line" run of the same kind and language, to express speedups.
    pub fn baseline(&self, kind: &str, python: bool) -> Option<f64> {
        let r = self
            .rows
            .iter()
            .find(|r| r.kind == kind && r.mode == "one line")?;
        if python {
            r.python.map(|s| s.median)
        } else {
            Some(r.rust.median)
        }
    }
}

/// The course's `count(x, y)`: a loop the optimiser may not remove, whose counters stay in
/// registers, so its speed is the core's and not the stack's (see the module doc).
pub fn cpu_job(iters: u64) -> u64 {
    let (mut x, mut y, mut c) = (0u64, 0u64, 0u64);
    while c < iters {
        x += 1;
        y += 1;
        opaque(&mut x);
        opaque(&mut y);
        c += 1;
    }
    x + y
}

/// Hide a value from the optimiser (so it can't fold the loop into `x + iters`) without sending
/// it through memory, as `std::hint::black_box` does.
#[inline(always)]
fn opaque(v: &mut u64) {
    #[cfg(any(
        target_arch = "x86_64",
        target_arch = "aarch64",
        target_arch = "riscv64",
        target_arch = "loongarch64"
    ))]
    // SAFETY: the template is only a comment: no instruction runs, no memory or stack is
    // touched and the flags are kept; the compiler merely forgets what the register holds.
    unsafe {
        std::arch::asm!(
            "/* {0} */",
            inout(reg) * v,
            options(nomem, nostack, preserves_flags)
        )
    };
    #[cfg(not(any(
        target_arch = "x86_64",
        target_arch = "aarch64",
        target_arch = "riscv64",
        target_arch = "loongarch64"
    )))]
    {
        *v = std::hint::black_box(*v);
    }
}

/// CPU seconds (user + system) of this process and of the children it has reaped.
fn cpu_seconds() -> f64 {
    let secs = |who| {
        // SAFETY: all-zero is a valid `rusage` (plain integers).
        let mut r: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: a valid `who` and a pointer to a live `rusage`.
        unsafe { libc::getrusage(who, &mut r) };
        let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
        tv(r.ru_utime) + tv(r.ru_stime)
    };
    secs(libc::RUSAGE_SELF) + secs(libc::RUSAGE_CHILDREN)
}

/// Wait, then write and read back a small file, `steps` times.
pub fn io_job((i, steps, dir): (usize, u32, PathBuf)) -> usize {
    let path = dir.join(format!("job-{i}-{}", std::process::id()));
    let block = vec![b'x'; BLOCK];
    let mut back = Vec::with_capacity(BLOCK);
    for _ in 0..steps {
        std::thread::sleep(IO_WAIT);
        io_step(&path, &block, &mut back);
    }
    let _ = std::fs::remove_file(&path);
    i
}

fn io_step(path: &std::path::Path, block: &[u8], back: &mut Vec<u8>) {
    std::fs::File::create(path)
        .and_then(|mut f| f.write_all(block))
        .expect("write the job's file");
    back.clear();
    std::fs::File::open(path)
        .and_then(|mut f| f.read_to_end(back))
        .expect("read the job's file");
}

/// The same IO job as a coroutine: the waits are tokio's, the small file operations stay
/// synchronous (as on the CPython side).
async fn io_coroutine(i: usize, steps: u32, dir: PathBuf) -> usize {
    let path = dir.join(format!("co-{i}"));
    let block = vec![b'x'; BLOCK];
    let mut back = Vec::with_capacity(BLOCK);
    for _ in 0..steps {
        tokio::time::sleep(IO_WAIT).await;
        io_step(&path, &block, &mut back);
    }
    let _ = std::fs::remove_file(&path);
    i
}

/// Run one mode for ten jobs of one kind; the wall-clock and CPU seconds it took (every child
/// and pool worker is reaped inside the window, so their CPU time counts).
fn run_mode(
    kind: &str,
    mode: &str,
    cpu_iters: u64,
    steps: u32,
    dir: &std::path::Path,
) -> (f64, f64) {
    let io_args = |i: usize| (i, steps, dir.to_path_buf());
    let cpu = cpu_seconds();
    let t = Instant::now();
    match (kind, mode) {
        ("cpu", "one line") => (0..JOBS).for_each(|_| {
            cpu_job(cpu_iters);
        }),
        ("io", "one line") => (0..JOBS).for_each(|i| {
            io_job(io_args(i));
        }),
        (_, "10 threads") => {
            let handles: Vec<_> = (0..JOBS)
                .map(|i| {
                    let a = io_args(i);
                    let cpu = kind == "cpu";
                    std::thread::spawn(move || {
                        if cpu {
                            cpu_job(cpu_iters) as usize
                        } else {
                            io_job(a)
                        }
                    })
                })
                .collect();
            handles.into_iter().for_each(|h| {
                h.join().expect("job thread");
            });
        }
        (_, "10 processes") => {
            let procs: Vec<Process<usize>> = (0..JOBS)
                .map(|i| {
                    let b = Process::builder();
                    if kind == "cpu" {
                        b.spawn(cpu_proc, cpu_iters)
                    } else {
                        b.spawn(io_job, io_args(i))
                    }
                    .expect("start a job process")
                })
                .collect();
            procs.into_iter().for_each(|p| {
                p.join().expect("job process");
            });
        }
        (_, "pool") => {
            let pool = Pool::new(pool_size()).expect("start the pool");
            if kind == "cpu" {
                pool.map_chunked(cpu_proc, vec![cpu_iters; JOBS], 1)
            } else {
                pool.map_chunked(io_job, (0..JOBS).map(io_args), 1)
            }
            .expect("pool jobs");
        }
        ("io", "coroutines") => {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_time()
                .build()
                .expect("tokio runtime");
            rt.block_on(async {
                let tasks: Vec<_> = (0..JOBS)
                    .map(|i| tokio::spawn(io_coroutine(i, steps, dir.to_path_buf())))
                    .collect();
                for t in tasks {
                    t.await.expect("coroutine");
                }
            });
        }
        _ => unreachable!("no {mode} for {kind}"),
    }
    (t.elapsed().as_secs_f64(), cpu_seconds() - cpu)
}

/// The pool mode's worker count: one per core, as CPython's `Pool()` picks.
pub fn pool_size() -> usize {
    bingfa_mp::cpu_count()
}

fn cpu_proc(iters: u64) -> usize {
    cpu_job(iters) as usize
}

/// The (kind, mode) pairs of the experiment, in table order.
pub fn plan() -> Vec<(&'static str, &'static str)> {
    let mut v = Vec::new();
    for kind in ["cpu", "io"] {
        for mode in MODES {
            if !(kind == "cpu" && mode == "coroutines") {
                v.push((kind, mode));
            }
        }
    }
    v
}

/// Run the experiment. `tick` is called after each measured run (for a progress bar).
pub fn run(opts: &Options, mut tick: impl FnMut(&str)) -> Report {
    let rounds = opts.rounds.max(1);
    let cpu_iters = if opts.quick {
        RUST_CPU_ITERS / 10
    } else {
        RUST_CPU_ITERS
    };
    let steps = if opts.quick { 3 } else { IO_STEPS };
    let dir = std::env::temp_dir().join(format!("bingfa-eff-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temporary directory");
    crate::spawn::scratch(&dir);
    let python = if opts.no_python {
        None
    } else {
        tick("CPython");
        let mut args = vec!["--rounds".to_string(), rounds.to_string()];
        if opts.quick {
            args.push("--quick".into());
        }
        crate::python::run_script_args(
            "efficiency.py",
            include_str!("../python/efficiency.py"),
            &args,
            Duration::from_secs(600),
        )
    };
    let mut rows = Vec::new();
    for (kind, mode) in plan() {
        let (wall, cpu): (Vec<f64>, Vec<f64>) = (0..rounds)
            .map(|_| {
                let s = run_mode(kind, mode, cpu_iters, steps, &dir);
                tick(&format!("{kind} / {mode}"));
                s
            })
            .unzip();
        let py = |key: &str| {
            let v: Vec<f64> = python.as_ref()?[key][kind][mode]
                .as_array()?
                .iter()
                .filter_map(|x| x.as_f64())
                .collect();
            Spread::of(&v)
        };
        rows.push(Row {
            kind,
            mode,
            rust: Spread::of(&wall).expect("at least one round"),
            python: py("wall"),
            rust_cpu: Spread::of(&cpu).expect("at least one round"),
            python_cpu: py("cpu_time"),
        });
    }
    let _ = std::fs::remove_dir_all(&dir);
    Report {
        rows,
        rust_cpu_iters: cpu_iters,
        python_cpu_iters: python.as_ref().and_then(|p| p["cpu_iters"].as_u64()),
        io_steps: steps,
        cores: bingfa_mp::cpu_count(),
        pool_size: pool_size(),
        python_pool_size: python.as_ref().and_then(|p| p["pool_size"].as_u64()),
    }
}
