//! `bingfa lab efficiency`: the course's efficiency test, beside CPython.

use bingfa_lab::{chart, efficiency, progress, table};
use std::path::PathBuf;

#[derive(clap::Args)]
pub(super) struct Args {
    /// Runs of each mode; figures are medians with the range.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Smaller jobs: a smoke run, not a measurement.
    #[arg(long)]
    quick: bool,
    /// Don't run the CPython side.
    #[arg(long)]
    no_python: bool,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
    /// Write an SVG chart of the speedups here.
    #[arg(long)]
    chart: Option<PathBuf>,
}

pub(super) fn run(a: Args) -> anyhow::Result<()> {
    run_efficiency(
        efficiency::Options {
            rounds: a.rounds,
            quick: a.quick,
            no_python: a.no_python,
        },
        a.json,
        a.chart,
    )
}

fn run_efficiency(
    opts: efficiency::Options,
    json: bool,
    chart_path: Option<PathBuf>,
) -> anyhow::Result<()> {
    let steps = efficiency::plan().len() * opts.rounds.max(1) + usize::from(!opts.no_python);
    let pb = progress::bar(steps as u64, "efficiency");
    let report = efficiency::run(&opts, |what| {
        pb.set_message(what.to_string());
        pb.inc(1);
    });
    pb.finish_and_clear();
    if let Some(path) = &chart_path {
        let panels = ["cpu", "io"]
            .into_iter()
            .map(|kind| {
                let modes: Vec<&str> = efficiency::plan()
                    .into_iter()
                    .filter(|(k, _)| *k == kind)
                    .map(|(_, m)| m)
                    .collect();
                let speedups = |python: bool| -> Vec<Option<f64>> {
                    let base = report.baseline(kind, python);
                    modes
                        .iter()
                        .map(|m| {
                            let row = report
                                .rows
                                .iter()
                                .find(|r| r.kind == kind && r.mode == *m)?;
                            let secs = if python {
                                row.python?.median
                            } else {
                                row.rust.median
                            };
                            Some(base? / secs)
                        })
                        .collect()
                };
                chart::Panel {
                    title: if kind == "cpu" {
                        "CPU-bound jobs"
                    } else {
                        "IO-bound jobs"
                    }
                    .into(),
                    labels: modes.iter().map(|m| m.to_string()).collect(),
                    series: vec![
                        ("Rust (bingfa)".into(), speedups(false)),
                        ("CPython".into(), speedups(true)),
                    ],
                }
            })
            .collect::<Vec<_>>();
        let title = format!(
            "10 jobs on {} cores (pool of {}): speedup over running them in one line",
            report.cores, report.pool_size
        );
        chart::bars(path, &title, "speedup (×)", &panels)
            .map_err(|e| anyhow::anyhow!("writing {}: {e}", path.display()))?;
        eprintln!("chart written to {}", path.display());
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    let secs = |x: f64| format!("{x:.2} s");
    let mut rows = vec![vec![
        "jobs".to_string(),
        "mode".into(),
        "Rust".into(),
        "CPU time".into(),
        "speedup".into(),
        "CPython".into(),
        "CPU time".into(),
        "speedup".into(),
    ]];
    // A CPU-bound speed-up beyond the cores means the measurement was disturbed (a busy machine
    // during the one-line run); say so rather than print an impossible figure silently.
    let mut beyond_cores = Vec::new();
    for r in &report.rows {
        let speed = |python: bool, s: f64| {
            report
                .baseline(r.kind, python)
                .map_or("-".into(), |b| format!("{:.1}×", b / s))
        };
        rows.push(vec![
            if r.kind == "cpu" {
                "CPU-bound"
            } else {
                "IO-bound"
            }
            .into(),
            r.mode.into(),
            r.rust.show(secs),
            secs(r.rust_cpu.median),
            speed(false, r.rust.median),
            r.python.map_or("-".into(), |p| p.show(secs)),
            r.python_cpu.map_or("-".into(), |p| secs(p.median)),
            r.python.map_or("-".into(), |p| speed(true, p.median)),
        ]);
        for (python, wall) in [(false, Some(r.rust)), (true, r.python)] {
            let over = report
                .baseline(r.kind, python)
                .zip(wall)
                .is_some_and(|(b, w)| b / w.median > report.cores as f64 * 1.1);
            if r.kind == "cpu" && over {
                beyond_cores.push(format!(
                    "{} {}",
                    if python { "CPython" } else { "Rust" },
                    r.mode
                ));
            }
        }
    }
    print!("{}", table::render(&rows));
    println!(
        "CPU job: the `count` loop, {} iterations in Rust, {} in CPython; IO job: {} × (20 ms wait, \
         write + read 16 KiB). Medians of the rounds (range in brackets).",
        report.rust_cpu_iters,
        report
            .python_cpu_iters
            .map_or("-".to_string(), |n| n.to_string()),
        report.io_steps
    );
    println!(
        "This machine has {} cores: no mode can speed CPU-bound jobs up more than {}×. \
         10 threads and 10 processes run one job each; the pool has {} worker processes{}.",
        report.cores,
        report.cores,
        report.pool_size,
        match report.python_pool_size {
            Some(n) if n as usize != report.pool_size => format!(" (CPython's: {n})"),
            _ => " in Rust and in CPython".to_string(),
        }
    );
    Ok(())
}
