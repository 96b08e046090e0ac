//! `bingfa lab models`: the same server under each concurrency model, driven by the same load
//! generator, side by side: rate, p50/p99 latency, errors, peak memory.
//!
//! Each model runs in a fresh server process (this binary, `http serve` or `chat serve`) on
//! 127.0.0.1:0, loaded for `duration`, then stopped. Rounds go through the models forwards and
//! backwards in turn, so a machine that slows down as it warms up does not always penalise the
//! same models; figures are the medians of the rounds.

use std::path::PathBuf;
use std::time::Duration;

use bingfa_net::Model;
use serde::Serialize;

use crate::load::{self, LoadResult};
use crate::spawn::ServerProcess;
use crate::stats::Spread;

/// Which server to load.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum App {
    /// A 1 KiB static file over keep-alive connections.
    Http,
}

/// What `lab models` runs.
#[derive(Debug, Clone)]
pub struct Options {
    /// The application served.
    pub app: App,
    /// The models, in table order.
    pub models: Vec<Model>,
    /// Keep-alive connections of the load.
    pub connections: usize,
    /// How long each run sends.
    pub duration: Duration,
    /// Runs per model (the figures are medians).
    pub rounds: usize,
    /// `--workers` for the models that use them.
    pub workers: usize,
    /// Load-generator threads.
    pub threads: usize,
}

/// One model's figures over the rounds.
#[derive(Debug, Clone, Serialize)]
pub struct ModelRow {
    /// The model.
    pub model: String,
    /// Requests (or deliveries) per second.
    pub rate: Spread,
    /// Median latency, microseconds.
    pub p50_us: Spread,
    /// 99th percentile latency, microseconds.
    pub p99_us: Spread,
    /// Errors over all rounds.
    pub errors: u64,
    /// Highest peak RSS of the server's process tree over the rounds, KiB.
    pub peak_rss_kib: u64,
    /// Every run's result.
    pub runs: Vec<LoadResult>,
}

/// A small site in a temporary directory, removed on drop.
struct Site(PathBuf);

impl Site {
    fn new() -> std::io::Result<Site> {
        let dir = std::env::temp_dir().join(format!("bingfa-lab-site-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        crate::spawn::scratch(&dir);
        let body: Vec<u8> = (0..1024u32).map(|i| b'a' + (i % 26) as u8).collect();
        std::fs::write(dir.join("small.html"), body)?;
        Ok(Site(dir))
    }
}

impl Drop for Site {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn run_one(opts: &Options, model: Model, site: &Site) -> Result<(LoadResult, u64), String> {
    let mut args: Vec<String> = ["http", "serve", "--bind", "127.0.0.1:0", "--root"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    args.push(site.0.display().to_string());
    args.extend(["--model".into(), model.to_string()]);
    args.extend(["--workers".into(), opts.workers.to_string()]);
    let mut server = ServerProcess::start(&args, 1, Duration::from_secs(20))?;
    let addr = server.addr("http").ok_or("no http ready line")?;
    let r = load::http::run(&load::http::HttpLoad {
        addr,
        path: "/small.html".into(),
        connections: opts.connections,
        threads: opts.threads,
        duration: opts.duration,
    });
    let rss = server.peak_rss_kib();
    server.stop(Duration::from_secs(5));
    Ok((r, rss))
}

/// Run every model `rounds` times. `tick` is called after each run.
pub fn run(opts: &Options, mut tick: impl FnMut(&str)) -> Result<Vec<ModelRow>, String> {
    let site = Site::new().map_err(|e| format!("making the test site: {e}"))?;
    let mut runs: Vec<Vec<(LoadResult, u64)>> = vec![Vec::new(); opts.models.len()];
    for round in 0..opts.rounds.max(1) {
        let mut order: Vec<usize> = (0..opts.models.len()).collect();
        if round % 2 == 1 {
            order.reverse();
        }
        for i in order {
            let m = opts.models[i];
            runs[i].push(run_one(opts, m, &site)?);
            tick(&format!("{m} (round {})", round + 1));
        }
    }
    Ok(opts
        .models
        .iter()
        .zip(runs)
        .map(|(m, rs)| {
            let col = |f: &dyn Fn(&LoadResult) -> f64| {
                Spread::of(&rs.iter().map(|(r, _)| f(r)).collect::<Vec<_>>()).expect("a run")
            };
            ModelRow {
                model: m.to_string(),
                rate: col(&|r| r.per_second()),
                p50_us: col(&|r| r.p50_us),
                p99_us: col(&|r| r.p99_us),
                errors: rs.iter().map(|(r, _)| r.errors).sum(),
                peak_rss_kib: rs.iter().map(|(_, k)| *k).max().unwrap_or(0),
                runs: rs.into_iter().map(|(r, _)| r).collect(),
            }
        })
        .collect())
}
