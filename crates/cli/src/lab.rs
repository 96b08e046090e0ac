//! `bingfa lab`: experiments and benchmarks, printed as a table or as JSON.

use bingfa_lab::{chart, efficiency, ipc, load, models, progress, table};
use bingfa_net::Model;
use std::path::PathBuf;

/// Arguments of `bingfa lab`.
#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    what: Lab,
}

#[derive(clap::Subcommand)]
enum Lab {
    /// The same server under each concurrency model, driven by the lab's own load generator:
    /// rate, p50/p99 latency, errors and peak RSS per model.
    Models {
        /// Which server: `http` (a 1 KiB file over keep-alive connections).
        #[arg(long, default_value = "http")]
        app: AppArg,
        /// Concurrent connections.
        #[arg(long, default_value_t = 50)]
        connections: usize,
        /// Seconds of load per model and round.
        #[arg(long, default_value_t = 3.0)]
        duration: f64,
        /// Comma-separated models (default: all nine).
        #[arg(long, value_delimiter = ',')]
        models: Vec<Model>,
        /// Rounds (alternating the order); figures are medians with the range.
        #[arg(long, default_value_t = 3)]
        rounds: usize,
        /// `--workers` of the servers.
        #[arg(long, default_value_t = 2)]
        workers: usize,
        /// Load-generator threads.
        #[arg(long, default_value_t = 2)]
        threads: usize,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
        /// Write an SVG chart here.
        #[arg(long)]
        chart: Option<PathBuf>,
    },
    /// The course's efficiency test: 10 CPU-bound and 10 IO-bound jobs in one line, on
    /// threads, on processes, on a pool and as coroutines, beside CPython (the GIL, measured).
    Efficiency {
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
    },
    /// bingfa-mp's IPC (queues, pipes, process start) beside CPython's multiprocessing.
    Ipc {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
        /// Fewer iterations: a smoke run, not a measurement.
        #[arg(long)]
        quick: bool,
        /// Don't run the CPython anchor.
        #[arg(long)]
        no_python: bool,
    },
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum AppArg {
    Http,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    match args.what {
        Lab::Models {
            app,
            connections,
            duration,
            models,
            rounds,
            workers,
            threads,
            json,
            chart,
        } => {
            anyhow::ensure!(
                duration > 0.0 && duration <= 600.0,
                "--duration: between 0 and 600 seconds"
            );
            let opts = models::Options {
                app: match app {
                    AppArg::Http => models::App::Http,
                },
                models: if models.is_empty() {
                    Model::ALL.to_vec()
                } else {
                    models
                },
                connections: connections.max(1),
                duration: std::time::Duration::from_secs_f64(duration),
                rounds: rounds.max(1),
                workers,
                threads,
            };
            run_models(&opts, json, chart)
        }
        Lab::Efficiency {
            rounds,
            quick,
            no_python,
            json,
            chart,
        } => run_efficiency(
            efficiency::Options {
                rounds,
                quick,
                no_python,
            },
            json,
            chart,
        ),
        Lab::Ipc {
            json,
            quick,
            no_python,
        } => {
            let figs = ipc::run(ipc::Options { quick, no_python });
            if json {
                println!("{}", serde_json::to_string_pretty(&figs)?);
                return Ok(());
            }
            let mut rows = vec![vec![
                "measure".to_string(),
                "bingfa".into(),
                "CPython".into(),
                "ratio".into(),
                "target".into(),
            ]];
            for f in &figs {
                rows.push(vec![
                    f.what.to_string(),
                    table::human(f.bingfa, f.unit),
                    f.cpython.map_or("-".into(), |c| table::human(c, f.unit)),
                    f.speedup().map_or("-".into(), |s| format!("{s:.1}×")),
                    f.target.map_or("-".into(), |t| format!("≥ {t}×")),
                ]);
            }
            print!("{}", table::render(&rows));
            Ok(())
        }
    }
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
        chart::bars(
            path,
            "10 jobs: speedup over running them in one line",
            "speedup (×)",
            &panels,
        )
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
        "speedup".into(),
        "CPython".into(),
        "speedup".into(),
    ]];
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
            speed(false, r.rust.median),
            r.python.map_or("-".into(), |p| p.show(secs)),
            r.python.map_or("-".into(), |p| speed(true, p.median)),
        ]);
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
    Ok(())
}

fn run_models(
    opts: &models::Options,
    json: bool,
    chart_path: Option<PathBuf>,
) -> anyhow::Result<()> {
    let pb = progress::bar((opts.models.len() * opts.rounds) as u64, "models");
    let rows = models::run(opts, |what| {
        pb.set_message(what.to_string());
        pb.inc(1);
    })
    .map_err(|e| anyhow::anyhow!(e))?;
    pb.finish_and_clear();
    if let Some(path) = &chart_path {
        let labels: Vec<String> = rows.iter().map(|r| r.model.clone()).collect();
        let panels = [
            chart::Panel {
                title: "requests/s (median)".into(),
                labels: labels.clone(),
                series: vec![(
                    "bingfa".into(),
                    rows.iter().map(|r| Some(r.rate.median)).collect(),
                )],
            },
            chart::Panel {
                title: "latency, ms (median of rounds)".into(),
                labels,
                series: vec![
                    (
                        "p50".into(),
                        rows.iter().map(|r| Some(r.p50_us.median / 1e3)).collect(),
                    ),
                    (
                        "p99".into(),
                        rows.iter().map(|r| Some(r.p99_us.median / 1e3)).collect(),
                    ),
                ],
            },
        ];
        let title = format!(
            "HTTP, 1 KiB file, {} keep-alive connections, {} workers",
            opts.connections, opts.workers
        );
        chart::bars(path, &title, "", &panels)
            .map_err(|e| anyhow::anyhow!("writing {}: {e}", path.display()))?;
        eprintln!("chart written to {}", path.display());
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(());
    }
    let mut table_rows = vec![vec![
        "model".to_string(),
        "requests/s".into(),
        "p50".into(),
        "p99".into(),
        "errors".into(),
        "peak RSS".into(),
    ]];
    for r in &rows {
        table_rows.push(vec![
            r.model.clone(),
            r.rate.show(|x| format!("{x:.0}")),
            load::micros(r.p50_us.median),
            load::micros(r.p99_us.median),
            r.errors.to_string(),
            format!("{} KiB", r.peak_rss_kib),
        ]);
    }
    print!("{}", table::render(&table_rows));
    println!(
        "{} connections, {} s per run, {} rounds (median, range in brackets), {} load threads.",
        opts.connections,
        opts.duration.as_secs_f64(),
        opts.rounds,
        opts.threads
    );
    Ok(())
}
