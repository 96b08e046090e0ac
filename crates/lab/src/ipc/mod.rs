//! `bingfa lab ipc`: bingfa-mp's IPC measured on this machine, beside CPython's
//! `multiprocessing` doing the same work in the same run (python/ipc_bench.py).
//!
//! Every figure is the median of several rounds, which alternate the order of the sides.
//! Message benchmarks start the peer with the default start method (spawn), wait until it is
//! ready, then time only the traffic. Servo's ipc-channel is measured as a Rust peer on the
//! message rows it can do ([`peer`]).

mod bingfa;
mod peer;

use std::time::Duration;

use bingfa_mp::StartMethod;
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
    /// Servo's ipc-channel doing the same (`None`: not measured for this row).
    pub ipc_channel: Option<f64>,
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

const PY_SCRIPT: &str = include_str!("../../python/ipc_bench.py");
const PY_POOL_SCRIPT: &str = include_str!("../../python/pool_bench.py");

/// Run one round of the CPython anchors (each figure once); `None` (with a note on stderr) when
/// python3 is missing or fails.
pub fn cpython(quick: bool) -> Option<serde_json::Value> {
    let mut args = vec![String::from("--once")];
    if quick {
        args.push("--quick".into());
    }
    let mut ipc =
        crate::python::run_script_args("ipc_bench.py", PY_SCRIPT, &args, Duration::from_secs(600))?;
    let pool = crate::python::run_script_args(
        "pool_bench.py",
        PY_POOL_SCRIPT,
        &args,
        Duration::from_secs(600),
    );
    if let (Some(obj), Some(serde_json::Value::Object(pool))) = (ipc.as_object_mut(), pool) {
        obj.extend(pool);
    }
    Some(ipc)
}

/// The machine's load averages (1, 5, 15 minutes), as /proc/loadavg says.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

/// One row: how to measure it on each Rust side (`quick` in).
struct Row {
    key: &'static str,
    what: &'static str,
    unit: &'static str,
    higher_is_better: bool,
    target: Option<f64>,
    bingfa: Box<dyn Fn(bool) -> f64>,
    ipc_channel: Option<Box<dyn Fn(bool) -> f64>>,
}

fn rows() -> Vec<Row> {
    let k = |q: bool, full: u64, quick: u64| if q { quick } else { full };
    let row = |key, what, unit, higher_is_better, target, f: Box<dyn Fn(bool) -> f64>| Row {
        key,
        what,
        unit,
        higher_is_better,
        target,
        bingfa: f,
        ipc_channel: None,
    };
    vec![
        Row {
            ipc_channel: Some(Box::new(move |q| peer::msgs_per_s(k(q, 200_000, 20_000)))),
            ..row(
                "queue_msgs_per_s",
                "Queue, 1 producer → 1 consumer, u64 messages",
                "msg/s",
                true,
                Some(100.0),
                Box::new(move |q| bingfa::queue_msgs_per_s(k(q, 2_000_000, 200_000))),
            )
        },
        row(
            "queue_mpmc_msgs_per_s",
            "Queue, 4 producers → 4 consumers, u64 messages",
            "msg/s",
            true,
            None,
            Box::new(move |q| bingfa::queue_mpmc_msgs_per_s(k(q, 4_000_000, 400_000))),
        ),
        row(
            "queue_roundtrip_us",
            "Queue pair round trip (there and back)",
            "µs",
            false,
            None,
            Box::new(move |q| bingfa::queue_roundtrip_us(k(q, 50_000, 5_000))),
        ),
        row(
            "pipe_msgs_per_s",
            "Pipe (simplex), u64 messages",
            "msg/s",
            true,
            None,
            Box::new(move |q| bingfa::pipe_msgs_per_s(k(q, 2_000_000, 200_000))),
        ),
        Row {
            ipc_channel: Some(Box::new(move |q| peer::roundtrip_us(k(q, 20_000, 2_000)))),
            ..row(
                "pipe_roundtrip_us",
                "Pipe (duplex) round trip",
                "µs",
                false,
                Some(5.0),
                Box::new(move |q| bingfa::pipe_roundtrip_us(k(q, 50_000, 5_000))),
            )
        },
        row(
            "idle_receiver_cpu_percent",
            "CPU of a receiver waiting with nothing to read",
            "% core",
            false,
            None,
            Box::new(|q| bingfa::idle_cpu_percent(Duration::from_secs(if q { 2 } else { 5 }))),
        ),
        row(
            "pipe_bulk_bytes_per_s",
            "Pipe bulk, 1 MiB messages",
            "B/s",
            true,
            Some(3.0),
            Box::new(move |q| bingfa::pipe_bulk_bytes_per_s(k(q, 1024, 128))),
        ),
        row(
            "spawn_start_join_per_s",
            "Process start + join, spawn",
            "proc/s",
            true,
            Some(20.0),
            Box::new(move |q| bingfa::start_join_per_s(StartMethod::Spawn, k(q, 200, 20) as u32)),
        ),
        row(
            "fork_start_join_per_s",
            "Process start + join, fork",
            "proc/s",
            true,
            Some(3.0),
            Box::new(move |q| bingfa::start_join_per_s(StartMethod::Fork, k(q, 1000, 100) as u32)),
        ),
        row(
            "pool_apply_async_tasks_per_s",
            "Pool.apply_async, trivial tasks, cpu_count() workers",
            "task/s",
            true,
            Some(10.0),
            Box::new(move |q| {
                crate::pool_bench::apply_async_tasks_per_sec(k(q, 500_000, 50_000) as usize)
            }),
        ),
        row(
            "pool_map_chunksize1_tasks_per_s",
            "Pool.map(chunksize=1), trivial tasks",
            "task/s",
            true,
            Some(10.0),
            Box::new(move |q| {
                crate::pool_bench::map_chunksize1_tasks_per_sec(k(q, 500_000, 50_000) as usize)
            }),
        ),
    ]
}

/// Measure everything: rounds (3 quick, 5 full) that alternate which side goes first (the
/// Rust sides, bingfa-mp then ipc-channel, or CPython), so a machine that slows down or speeds
/// up in the middle touches both; every figure is the median of its rounds.
pub fn run(opts: Options) -> Vec<Figure> {
    let q = opts.quick;
    let rows = rows();
    let rounds = if q { 3 } else { 5 };
    let mut ours: Vec<Vec<f64>> = vec![Vec::new(); rows.len()];
    let mut peers: Vec<Vec<f64>> = vec![Vec::new(); rows.len()];
    let mut py: Vec<Vec<f64>> = vec![Vec::new(); rows.len()];
    let rust_round = |ours: &mut Vec<Vec<f64>>, peers: &mut Vec<Vec<f64>>| {
        for (i, r) in rows.iter().enumerate() {
            ours[i].push((r.bingfa)(q));
            if let Some(f) = &r.ipc_channel {
                peers[i].push(f(q));
            }
        }
    };
    let keys: Vec<&str> = rows.iter().map(|r| r.key).collect();
    let python_round = |py: &mut Vec<Vec<f64>>| {
        if opts.no_python {
            return;
        }
        if let Some(v) = cpython(q) {
            for (i, key) in keys.iter().enumerate() {
                if let Some(x) = v.get(*key).and_then(|v| v.as_f64()) {
                    py[i].push(x);
                }
            }
        }
    };
    for round in 0..rounds {
        if round % 2 == 0 {
            rust_round(&mut ours, &mut peers);
            python_round(&mut py);
        } else {
            python_round(&mut py);
            rust_round(&mut ours, &mut peers);
        }
    }
    let opt_median = |v: &Vec<f64>| (!v.is_empty()).then(|| median(v.clone()));
    rows.iter()
        .enumerate()
        .map(|(i, r)| Figure {
            key: r.key,
            what: r.what,
            unit: r.unit,
            bingfa: median(ours[i].clone()),
            ipc_channel: opt_median(&peers[i]),
            cpython: opt_median(&py[i]),
            higher_is_better: r.higher_is_better,
            target: r.target,
        })
        .collect()
}
