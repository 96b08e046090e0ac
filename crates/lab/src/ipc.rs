//! `bingfa lab ipc`: bingfa-mp's IPC measured on this machine, beside CPython's
//! `multiprocessing` doing the same work in the same run (python/ipc_bench.py).
//!
//! Every figure is the median of several runs. Message benchmarks start the peer with the
//! default start method (spawn), wait until it is ready, then time only the traffic.

use std::time::{Duration, Instant};

use bingfa_mp::{Connection, Pipe, Process, Queue, Receiver, Sender, StartMethod};
use serde::Serialize;

/// One measured quantity.
#[derive(Debug, Clone, Serialize)]
pub struct Figure {
    /// Stable key, shared with the CPython script's JSON.
    pub key: &'static str,
    /// What was measured, for the table.
    pub what: &'static str,
    /// Its unit.
    pub unit: &'static str,
    /// bingfa-mp's figure.
    pub bingfa: f64,
    /// CPython's (`None`: not run).
    pub cpython: Option<f64>,
    /// True when a larger number is better (rates); false for latencies.
    pub higher_is_better: bool,
    /// The floor for `speedup`, if any.
    pub target: Option<f64>,
}

impl Figure {
    /// How many times better than CPython (>1 is better), whichever way the unit points.
    pub fn speedup(&self) -> Option<f64> {
        let c = self.cpython?;
        Some(if self.higher_is_better {
            self.bingfa / c
        } else {
            c / self.bingfa
        })
    }
}

/// Options for a run.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// Fewer iterations, for a smoke run.
    pub quick: bool,
    /// Skip the CPython anchor.
    pub no_python: bool,
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn repeat(quick: bool, f: impl Fn() -> f64) -> f64 {
    median((0..if quick { 3 } else { 5 }).map(|_| f()).collect())
}

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
pub fn queue_msgs_per_s(n: u64) -> f64 {
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
pub fn pipe_msgs_per_s(n: u64) -> f64 {
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
pub fn pipe_roundtrip_us(n: u64) -> f64 {
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
pub fn pipe_bulk_bytes_per_s(n: u64) -> f64 {
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
pub fn start_join_per_s(method: StartMethod, n: u32) -> f64 {
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

const PY_SCRIPT: &str = include_str!("../python/ipc_bench.py");
const PY_POOL_SCRIPT: &str = include_str!("../python/pool_bench.py");

/// Run the CPython anchors; `None` (with a note on stderr) when python3 is missing or fails.
pub fn cpython(quick: bool) -> Option<serde_json::Value> {
    let mut ipc =
        crate::python::run_script("ipc_bench.py", PY_SCRIPT, quick, Duration::from_secs(600))?;
    let pool = crate::python::run_script(
        "pool_bench.py",
        PY_POOL_SCRIPT,
        quick,
        Duration::from_secs(600),
    );
    if let (Some(obj), Some(serde_json::Value::Object(pool))) = (ipc.as_object_mut(), pool) {
        obj.extend(pool);
    }
    Some(ipc)
}

/// Measure everything.
pub fn run(opts: Options) -> Vec<Figure> {
    let q = opts.quick;
    let k = |full: u64, quick: u64| if q { quick } else { full };
    let mut figs = vec![
        Figure {
            key: "queue_msgs_per_s",
            what: "Queue, 1 producer → 1 consumer, u64 messages",
            unit: "msg/s",
            bingfa: repeat(q, || queue_msgs_per_s(k(2_000_000, 200_000))),
            cpython: None,
            higher_is_better: true,
            target: Some(25.0),
        },
        Figure {
            key: "pipe_msgs_per_s",
            what: "Pipe (simplex), u64 messages",
            unit: "msg/s",
            bingfa: repeat(q, || pipe_msgs_per_s(k(2_000_000, 200_000))),
            cpython: None,
            higher_is_better: true,
            target: None,
        },
        Figure {
            key: "pipe_roundtrip_us",
            what: "Pipe (duplex) round trip",
            unit: "µs",
            bingfa: repeat(q, || pipe_roundtrip_us(k(50_000, 5_000))),
            cpython: None,
            higher_is_better: false,
            target: Some(5.0),
        },
        Figure {
            key: "pipe_bulk_bytes_per_s",
            what: "Pipe bulk, 1 MiB messages",
            unit: "B/s",
            bingfa: repeat(q, || pipe_bulk_bytes_per_s(k(1024, 128))),
            cpython: None,
            higher_is_better: true,
            target: Some(3.0),
        },
        Figure {
            key: "spawn_start_join_per_s",
            what: "Process start + join, spawn",
            unit: "proc/s",
            bingfa: repeat(q, || {
                start_join_per_s(StartMethod::Spawn, k(200, 20) as u32)
            }),
            cpython: None,
            higher_is_better: true,
            target: Some(20.0),
        },
        Figure {
            key: "fork_start_join_per_s",
            what: "Process start + join, fork",
            unit: "proc/s",
            bingfa: repeat(q, || {
                start_join_per_s(StartMethod::Fork, k(1000, 100) as u32)
            }),
            cpython: None,
            higher_is_better: true,
            target: Some(3.0),
        },
        Figure {
            key: "pool_apply_async_tasks_per_s",
            what: "Pool.apply_async, trivial tasks, cpu_count() workers",
            unit: "task/s",
            bingfa: repeat(q, || {
                crate::pool_bench::apply_async_tasks_per_sec(k(500_000, 50_000) as usize)
            }),
            cpython: None,
            higher_is_better: true,
            target: Some(10.0),
        },
        Figure {
            key: "pool_map_chunksize1_tasks_per_s",
            what: "Pool.map(chunksize=1), trivial tasks",
            unit: "task/s",
            bingfa: repeat(q, || {
                crate::pool_bench::map_chunksize1_tasks_per_sec(k(500_000, 50_000) as usize)
            }),
            cpython: None,
            higher_is_better: true,
            target: Some(10.0),
        },
    ];
    if !opts.no_python {
        if let Some(py) = cpython(q) {
            for f in &mut figs {
                f.cpython = py.get(f.key).and_then(|v| v.as_f64());
            }
        }
    }
    figs
}
