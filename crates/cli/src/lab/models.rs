//! `bingfa lab models`: every model under the same load.

use bingfa_lab::{chart, load, models, progress, table};
use bingfa_net::Model;
use std::path::PathBuf;

#[derive(clap::Args)]
pub(super) struct Args {
    /// Which server: `http` (a 1 KiB file over keep-alive connections) or `chat` (fan-out:
    /// every member gets every other member's lines; the table is `lab chat`'s).
    #[arg(long, default_value = "http")]
    app: AppArg,
    /// Concurrent connections (chat: members).
    #[arg(long, default_value_t = 50)]
    connections: usize,
    /// Seconds of load per model and round (chat: the bound on one run, which ends when every
    /// message is delivered).
    #[arg(long, default_value_t = 3.0)]
    duration: f64,
    /// Chat only: messages each of the 4 senders sends, unpaced.
    #[arg(long, default_value_t = 1000)]
    messages: usize,
    /// Comma-separated models (default: all ten).
    #[arg(long, value_delimiter = ',', value_parser = crate::model_arg::ModelParser)]
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
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum AppArg {
    Http,
    Chat,
}

pub(super) fn run(a: Args) -> anyhow::Result<()> {
    anyhow::ensure!(
        a.duration > 0.0 && a.duration <= 600.0,
        "--duration: between 0 and 600 seconds"
    );
    let models = if a.models.is_empty() {
        Model::ALL.to_vec()
    } else {
        a.models
    };
    if let AppArg::Chat = a.app {
        anyhow::ensure!(a.connections >= 2, "--connections: a room needs 2 members");
        let opts = bingfa_lab::chat::Options {
            models: models.iter().map(|m| m.to_string()).collect(),
            rounds: a.rounds.max(1),
            // Every model side by side with the same number of workers.
            workers: Some(a.workers),
            load: bingfa_lab::chat::Load {
                members: a.connections,
                senders: a.connections.min(4),
                messages: a.messages.max(1),
                rate: None,
                timeout: std::time::Duration::from_secs_f64(a.duration.max(10.0)),
                threads: a.threads.max(1),
            },
        };
        return super::chat::report(&opts, a.json, a.chart.as_deref());
    }
    let opts = models::Options {
        app: models::App::Http,
        models,
        connections: a.connections.max(1),
        duration: std::time::Duration::from_secs_f64(a.duration),
        rounds: a.rounds.max(1),
        workers: a.workers,
        threads: a.threads,
    };
    run_models(&opts, a.json, a.chart)
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
