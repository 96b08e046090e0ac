//! `bingfa lab chat`: fan-out on the chat room beside Redis and a tokio-chat baseline.

use bingfa_lab::{chat, table};
use std::time::Duration;

/// Arguments of `bingfa lab chat`.
#[derive(clap::Args)]
pub(super) struct Args {
    /// Comma-separated: bingfa models, `MODEL+redis2` (two servers on one Redis backplane,
    /// members spread over them), `redis`, `tokio-chat`.
    #[arg(long, value_delimiter = ',', default_value = "epoll,redis,tokio-chat")]
    models: Vec<String>,
    /// Members connected to the room.
    #[arg(long, default_value_t = 100)]
    members: usize,
    /// How many of the members send.
    #[arg(long, default_value_t = 4)]
    senders: usize,
    /// Messages each sender sends.
    #[arg(long, default_value_t = 2000)]
    messages: usize,
    /// Total messages per second over all senders (default: unpaced).
    #[arg(long)]
    rate: Option<f64>,
    /// Rounds per model (medians are reported); the order alternates between rounds.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Seconds one run may take at most (join, send, drain).
    #[arg(long, default_value_t = 60)]
    timeout: u64,
    /// Threads of the load generator.
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// `--workers` for the bingfa servers (default: the room's own, one loop under epoll).
    #[arg(long)]
    workers: Option<usize>,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
    /// Write an SVG chart here.
    #[arg(long)]
    chart: Option<std::path::PathBuf>,
}

pub(super) fn run(a: Args) -> anyhow::Result<()> {
    lab_chat(a)
}

fn lab_chat(a: Args) -> anyhow::Result<()> {
    if a.members < 2 || a.senders > a.members {
        anyhow::bail!("--members must be at least 2 and --senders at most --members");
    }
    let json = a.json;
    let opts = chat::Options {
        models: a.models,
        rounds: a.rounds,
        workers: a.workers,
        load: chat::Load {
            members: a.members,
            senders: a.senders,
            messages: a.messages,
            rate: a.rate.filter(|r| *r > 0.0),
            timeout: Duration::from_secs(a.timeout.max(1)),
            threads: a.threads,
        },
    };
    report(&opts, json, a.chart.as_deref())
}

/// Run `opts` and print the table (or JSON): shared with `lab models --app chat`.
pub(super) fn report(
    opts: &chat::Options,
    json: bool,
    chart_path: Option<&std::path::Path>,
) -> anyhow::Result<()> {
    let pb = bingfa_lab::progress::spinner("chat");
    let rows = chat::run(opts, |line| pb.set_message(line.to_string()));
    pb.finish_and_clear();
    if let Some(path) = chart_path {
        let shown: Vec<&chat::Row> = rows.iter().filter(|r| r.skipped.is_none()).collect();
        let labels: Vec<String> = shown.iter().map(|r| r.model.clone()).collect();
        let panels = [
            bingfa_lab::chart::Panel {
                title: "deliveries/s (median)".into(),
                labels: labels.clone(),
                series: vec![(
                    "".into(),
                    shown.iter().map(|r| r.deliveries_per_s).collect(),
                )],
            },
            bingfa_lab::chart::Panel {
                title: "delivery latency, ms".into(),
                labels,
                series: vec![
                    ("p50".into(), shown.iter().map(|r| r.p50_ms).collect()),
                    ("p99".into(), shown.iter().map(|r| r.p99_ms).collect()),
                ],
            },
        ];
        let title = format!(
            "chat fan-out: {} members, {} senders × {} messages",
            opts.load.members, opts.load.senders, opts.load.messages
        );
        bingfa_lab::chart::bars(path, &title, "", &panels)
            .map_err(|e| anyhow::anyhow!("writing {}: {e}", path.display()))?;
        eprintln!("chart written to {}", path.display());
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(());
    }
    let redis = rows.iter().find(|r| r.model == chat::target::REDIS);
    let ratio = |a: Option<f64>, b: Option<f64>| match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => format!("{:.2}×", a / b),
        _ => "-".into(),
    };
    let ms = |v: Option<f64>| v.map_or("-".into(), |v| format!("{v:.2} ms"));
    let kib = |v: Option<f64>| v.map_or("-".into(), |v| format!("{v:.0} KiB"));
    let mut out = vec![[
        "model",
        "deliveries/s",
        "vs redis",
        "p50",
        "p99",
        "p99 vs redis",
        "delivered",
        "joined",
        "join",
        "errors",
        "RSS joined",
        "RSS end",
        "RSS peak",
    ]
    .map(String::from)
    .to_vec()];
    for r in &rows {
        if let Some(why) = &r.skipped {
            out.push(vec![r.model.clone(), format!("skipped: {why}")]);
            continue;
        }
        out.push(vec![
            r.model.clone(),
            r.deliveries_per_s
                .map_or("-".into(), |v| table::human(v, "/s")),
            ratio(r.deliveries_per_s, redis.and_then(|x| x.deliveries_per_s)),
            ms(r.p50_ms),
            ms(r.p99_ms),
            ratio(r.p99_ms, redis.and_then(|x| x.p99_ms)),
            format!("{}/{}", r.delivered, r.expected),
            format!("{}/{}", r.joined, r.members),
            r.join_s.map_or("-".into(), |v| format!("{v:.2} s")),
            format!("{}+{} dropped", r.errors, r.dropped),
            kib(r.rss_joined_kib),
            kib(r.rss_end_kib),
            kib(r.rss_peak_kib),
        ]);
    }
    println!(
        "{} members, {} senders × {} messages, {}; medians of {} rounds",
        opts.load.members,
        opts.load.senders,
        opts.load.messages,
        opts.load
            .rate
            .map_or("unpaced".into(), |r| format!("{r} msgs/s total")),
        opts.rounds
    );
    print!("{}", table::render(&out));
    for r in rows.iter().filter(|r| r.skipped.is_none()) {
        if r.joined < r.members {
            println!(
                "{}: only {} of {} members were welcomed within the timeout; its figures cover them.",
                r.model, r.joined, r.members
            );
        } else if r.delivered < r.expected {
            println!(
                "{}: {} of {} deliveries arrived within the timeout.",
                r.model, r.delivered, r.expected
            );
        }
    }
    Ok(())
}
