//! `bingfa lab ftp`: bingfa's FTP server beside vsftpd and pyftpdlib (issue 10's floors).

use bingfa_lab::ftp::{self, Report, Row};
use bingfa_lab::stats::Spread;
use bingfa_lab::{chart, table};

/// Arguments of `bingfa lab ftp`.
#[derive(clap::Args)]
pub(super) struct Args {
    /// Comma-separated: `bingfa`, `vsftpd`, `pyftpdlib`.
    #[arg(long, value_delimiter = ',', default_value = "bingfa,vsftpd,pyftpdlib")]
    servers: Vec<String>,
    /// bingfa's concurrency model (default: the server's default).
    #[arg(long)]
    model: Option<String>,
    /// bingfa's `--workers`.
    #[arg(long)]
    workers: Option<usize>,
    /// MiB of the file each RETR and STOR moves.
    #[arg(long, default_value_t = 64)]
    size_mib: u64,
    /// Timed RETRs and STORs per server and round (after one warm-up RETR), interleaved
    /// between the servers.
    #[arg(long, default_value_t = 5)]
    transfers: usize,
    /// Clients downloading at once.
    #[arg(long, default_value_t = 300)]
    crowd: usize,
    /// MiB of the file each of them downloads.
    #[arg(long, default_value_t = 10)]
    crowd_mib: u64,
    /// Idle logged-in sessions whose memory is read.
    #[arg(long, default_value_t = 300)]
    idle: usize,
    /// Concurrent clients logging in and out.
    #[arg(long, default_value_t = 8)]
    login_clients: usize,
    /// Seconds the login storm lasts.
    #[arg(long, default_value_t = 3.0)]
    login_secs: f64,
    /// Rounds (medians are reported); the order of the servers alternates between rounds.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Seconds any one socket wait may take (connect, a reply, a read of a transfer).
    #[arg(long, default_value_t = 60)]
    timeout: u64,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
    /// Write an SVG chart here.
    #[arg(long)]
    chart: Option<std::path::PathBuf>,
}

pub(super) fn run(a: Args) -> anyhow::Result<()> {
    if a.crowd == 0 || a.idle == 0 || a.size_mib == 0 || a.crowd_mib == 0 {
        anyhow::bail!("--crowd, --idle, --size-mib and --crowd-mib must be at least 1");
    }
    let opts = ftp::Options {
        servers: a.servers,
        bingfa: ftp::BingfaOpts {
            model: a.model,
            workers: a.workers,
        },
        sizes: ftp::Sizes {
            big_bytes: a.size_mib << 20,
            transfers: a.transfers.max(1),
            crowd: a.crowd,
            crowd_bytes: a.crowd_mib << 20,
            idle: a.idle,
            login_clients: a.login_clients.max(1),
            login_secs: a.login_secs.max(0.1),
            timeout_secs: a.timeout.max(1),
        },
        rounds: a.rounds.max(1),
    };
    let pb = bingfa_lab::progress::spinner("ftp");
    let report = ftp::run(&opts, |l| pb.set_message(l.to_string()));
    pb.finish_and_clear();
    let report = report.map_err(anyhow::Error::msg)?;
    if let Some(path) = &a.chart {
        draw(path, &report)?;
        eprintln!("chart written to {}", path.display());
    }
    if a.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", render(&report));
    }
    Ok(())
}

fn med(s: Option<Spread>) -> Option<f64> {
    s.map(|s| s.median)
}

fn draw(path: &std::path::Path, r: &Report) -> anyhow::Result<()> {
    let shown: Vec<&Row> = r.rows.iter().filter(|x| x.skipped.is_none()).collect();
    let labels: Vec<String> = shown.iter().map(|x| x.server.clone()).collect();
    let panel = |title: &str, series: Vec<(String, Vec<Option<f64>>)>| chart::Panel {
        title: title.into(),
        labels: labels.clone(),
        series,
    };
    let col = |f: fn(&Row) -> Option<f64>| shown.iter().map(|x| f(x)).collect::<Vec<_>>();
    let panels = [
        panel(
            "MB/s, one 64 MiB-class file",
            vec![
                (
                    "RETR".into(),
                    col(|x| med(x.retr_bytes_per_s).map(|v| v / 1e6)),
                ),
                (
                    "STOR".into(),
                    col(|x| med(x.stor_bytes_per_s).map(|v| v / 1e6)),
                ),
            ],
        ),
        panel(
            "anonymous logins/s",
            vec![("".into(), col(|x| med(x.logins_per_s)))],
        ),
        panel(
            &format!("{} clients downloading, s", r.sizes.crowd),
            vec![("".into(), col(|x| med(x.crowd_wall_s)))],
        ),
        panel(
            &format!("{} idle sessions, MiB", r.sizes.idle),
            vec![
                (
                    "RSS".into(),
                    col(|x| med(x.idle_rss_kib).map(|v| v / 1024.0)),
                ),
                (
                    "PSS".into(),
                    col(|x| med(x.idle_pss_kib).map(|v| v / 1024.0)),
                ),
            ],
        ),
    ];
    chart::bars(
        path,
        "FTP on loopback: bingfa beside vsftpd and pyftpdlib",
        "",
        &panels,
    )
    .map_err(|e| anyhow::anyhow!("writing {}: {e}", path.display()))
}

fn render(r: &Report) -> String {
    let s = &r.sizes;
    let mbs = |v: Option<Spread>| v.map_or("-".into(), |v| v.show(|x| table::human(x, "B/s")));
    let num = |v: Option<Spread>, unit: &'static str| {
        v.map_or("-".into(), move |v| v.show(|x| table::human(x, unit)))
    };
    let secs = |v: Option<Spread>| v.map_or("-".into(), |v| v.show(|x| format!("{x:.2} s")));
    let kib = |v: Option<Spread>| v.map_or("-".into(), |v| v.show(|x| format!("{x:.0}")));
    let mut rows = vec![[
        "server",
        "RETR",
        "STOR",
        "logins",
        "crowd wall",
        "crowd login",
        "crowd CPU s server / clients",
        "idle RSS KiB",
        "idle PSS KiB",
        "procs",
        "errors",
    ]
    .map(String::from)
    .to_vec()];
    for x in &r.rows {
        if let Some(why) = &x.skipped {
            rows.push(vec![x.server.clone(), format!("skipped: {why}")]);
            continue;
        }
        rows.push(vec![
            x.server.clone(),
            mbs(x.retr_bytes_per_s),
            mbs(x.stor_bytes_per_s),
            num(x.logins_per_s, "/s"),
            secs(x.crowd_wall_s),
            secs(x.crowd_login_s),
            match (x.crowd_server_cpu_s, x.crowd_client_cpu_s) {
                (Some(a), Some(b)) => format!("{:.2} / {:.2}", a.median, b.median),
                _ => "-".into(),
            },
            kib(x.idle_rss_kib),
            kib(x.idle_pss_kib),
            x.idle_processes.to_string(),
            if x.errors.is_empty() {
                "0".into()
            } else {
                x.errors.join("; ")
            },
        ]);
    }
    let mut out = format!(
        "{} MiB RETR/STOR ({} each per round, interleaved; medians (min–max) of all), {} logins \
         clients × {} s, {} clients × {} MiB, {} idle sessions; bingfa model {}; the rest: \
         medians (min–max) of {} rounds; load {} → {}\n",
        s.big_bytes >> 20,
        s.transfers,
        s.login_clients,
        s.login_secs,
        s.crowd,
        s.crowd_bytes >> 20,
        s.idle,
        r.bingfa_model.as_deref().unwrap_or("default"),
        r.rows.iter().map(|x| x.rounds).max().unwrap_or(0),
        r.load_before,
        r.load_after,
    );
    out.push_str(&table::render(&rows));
    if !r.floors.is_empty() {
        let mut f = vec![["floor", "bingfa", "anchor", "ratio", "target", "met"]
            .map(String::from)
            .to_vec()];
        for x in &r.floors {
            let v = |v: f64| match x.what.as_str() {
                "RETR" | "STOR" => table::human(v, "B/s"),
                "idle RSS" => format!("{v:.0} KiB"),
                "crowd wall time" => format!("{v:.2} s"),
                _ => format!("{v:.0}/s"),
            };
            f.push(vec![
                x.what.clone(),
                v(x.bingfa),
                format!("{} {}", x.anchor, v(x.anchor_value)),
                format!("{:.2}×", x.ratio),
                x.target.clone(),
                if x.met { "yes" } else { "NO" }.into(),
            ]);
        }
        out.push_str(&table::render(&f));
    }
    out
}
