//! `bingfa lab chat`: fan-out load on the chat room, per model, beside Redis PUBLISH/SUBSCRIBE
//! and a tokio `examples/chat.rs`-style baseline, in the same run.
//!
//! Each round starts every server in turn (alternating the order between rounds, so a noisy
//! neighbour doesn't always hit the same one), runs the same load against it and kills it.
//! Figures are medians over the rounds. Reading order: `hist.rs` (counting, percentiles),
//! `target.rs` (the servers), `load.rs` (the members), `baseline.rs` (the tokio-chat room).

pub mod baseline;
pub mod hist;
pub mod load;
pub mod target;

use std::time::Duration;

use serde::Serialize;

pub use load::Load;
use target::Target;

/// Options for `lab chat`.
#[derive(Debug, Clone)]
pub struct Options {
    /// bingfa models, `MODEL+redis2` (two servers sharing a Redis backplane, members spread
    /// over them) and the pseudo-models `redis` and `tokio-chat`.
    pub models: Vec<String>,
    /// The shape of each run.
    pub load: Load,
    /// Runs per model (the figures are medians).
    pub rounds: usize,
    /// `--workers` for the bingfa servers (`None`: the room's default).
    pub workers: Option<usize>,
}

/// One model's figures, medians over the rounds.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    /// The model (or pseudo-model) measured.
    pub model: String,
    /// Rounds run.
    pub rounds: usize,
    /// Members per run.
    pub members: usize,
    /// Senders per run.
    pub senders: usize,
    /// Messages per sender.
    pub messages: usize,
    /// The asked send rate, messages per second (`None`: as fast as they can).
    pub rate: Option<f64>,
    /// Deliveries to members other than the sender, per second, first send to last delivery.
    pub deliveries_per_s: Option<f64>,
    /// Median delivery latency, milliseconds.
    pub p50_ms: Option<f64>,
    /// 99th percentile delivery latency, milliseconds.
    pub p99_ms: Option<f64>,
    /// Of the median round: delivered / expected.
    pub delivered: u64,
    /// Deliveries a lossless room makes in that round.
    pub expected: u64,
    /// Members welcomed (lowest over the rounds).
    pub joined: usize,
    /// Seconds until every member was welcomed.
    pub join_s: Option<f64>,
    /// `! ` lines, and members whose connection ended early, summed over the rounds.
    pub errors: u64,
    /// Members whose connection ended early, summed over the rounds.
    pub dropped: u64,
    /// Server RSS holding every member before sending, KiB.
    pub rss_joined_kib: Option<f64>,
    /// Server RSS after the run, KiB.
    pub rss_end_kib: Option<f64>,
    /// Peak RSS over the run (the join storm's height, at 10,000 members).
    pub rss_peak_kib: Option<f64>,
    /// Why the model could not run, if it couldn't.
    pub skipped: Option<String>,
}

/// Raise RLIMIT_NOFILE to its hard limit: 10,000 members are 10,000 sockets here and as many in
/// the server, which inherits the limit.
pub fn raise_nofile() -> u64 {
    // SAFETY: getrlimit/setrlimit with a valid pointer to a local struct.
    unsafe {
        let mut r = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) != 0 {
            return 0;
        }
        r.rlim_cur = r.rlim_max;
        libc::setrlimit(libc::RLIMIT_NOFILE, &r);
        r.rlim_cur
    }
}

/// Run every model for `rounds` rounds; `progress` hears one line per finished run.
pub fn run(opts: &Options, mut progress: impl FnMut(&str)) -> Vec<Row> {
    let nofile = raise_nofile();
    if (nofile as usize) < opts.load.members + 64 {
        progress(&format!(
            "warning: RLIMIT_NOFILE is {nofile}, fewer than {} members need",
            opts.load.members + 64
        ));
    }
    let mut runs: Vec<Vec<load::Outcome>> = vec![Vec::new(); opts.models.len()];
    let mut skipped: Vec<Option<String>> = vec![None; opts.models.len()];
    for round in 0..opts.rounds.max(1) {
        let mut order: Vec<usize> = (0..opts.models.len()).collect();
        if round % 2 == 1 {
            order.reverse();
        }
        for i in order {
            if skipped[i].is_some() {
                continue;
            }
            let model = &opts.models[i];
            if let Some(why) = cannot_hold(model, opts.load.members) {
                progress(&format!("{model}: skipped: {why}"));
                skipped[i] = Some(why);
                continue;
            }
            let t = match Target::start(model, opts.load.members, opts.workers) {
                Ok(t) => t,
                Err(e) => {
                    progress(&format!("{model}: skipped: {e}"));
                    skipped[i] = Some(e);
                    continue;
                }
            };
            // The peak is sampled with every RSS sample too: under fork each member's process
            // ends with the run, taking its VmHWM along, so a reading at the end alone would
            // show a peak below the memory held while everyone was joined.
            let peak = std::cell::Cell::new(0u64);
            let mut o = load::run(&t.addrs(), t.wire, &opts.load, || {
                peak.set(peak.get().max(t.rss_peak_kib()));
                t.rss_kib()
            });
            o.rss_peak_kib = peak
                .get()
                .max(t.rss_peak_kib())
                .max(o.rss_joined_kib)
                .max(o.rss_end_kib);
            drop(t);
            progress(&format!(
                "round {} {model}: {}/{} delivered in {:.2} s, {} joined",
                round + 1,
                o.tally.delivered,
                o.expected,
                o.send_secs,
                o.joined
            ));
            runs[i].push(o);
            // Let the killed server's sockets leave TIME_WAIT pressure behind before the next.
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    opts.models
        .iter()
        .zip(runs)
        .zip(skipped)
        .map(|((m, r), s)| row(m, opts, &r, s))
        .collect()
}

/// Why `model` cannot hold a room of `members` at once, if it can't: under `iterative` the
/// server serves one connection at a time, so the second member waits (unwelcomed) until the
/// first leaves, and a fan-out run would only measure that wait.
pub fn cannot_hold(model: &str, members: usize) -> Option<String> {
    let base = model.strip_suffix(target::REDIS2).unwrap_or(model);
    (base == "iterative" && members > 1)
        .then(|| format!("iterative serves one member at a time; a room of {members} can't meet"))
}

fn row(model: &str, opts: &Options, runs: &[load::Outcome], skipped: Option<String>) -> Row {
    let med = |f: &dyn Fn(&load::Outcome) -> Option<f64>| {
        hist::median(runs.iter().filter_map(f).collect())
    };
    let rate =
        |o: &load::Outcome| (o.send_secs > 0.0).then(|| o.tally.delivered as f64 / o.send_secs);
    let q =
        |q: f64| move |o: &load::Outcome| o.tally.latency.quantile(q).map(|us| us as f64 / 1000.0);
    // The round whose delivery rate is the median one, for the counts.
    let mid = hist::median(runs.iter().filter_map(rate).collect())
        .and_then(|m| runs.iter().find(|o| rate(o) == Some(m)))
        .or(runs.first());
    let l = &opts.load;
    Row {
        model: model.into(),
        rounds: runs.len(),
        members: l.members,
        senders: l.senders,
        messages: l.messages,
        rate: l.rate,
        deliveries_per_s: med(&rate),
        p50_ms: med(&q(0.5)),
        p99_ms: med(&q(0.99)),
        delivered: mid.map_or(0, |o| o.tally.delivered),
        expected: mid.map_or(0, |o| o.expected),
        joined: runs.iter().map(|o| o.joined).min().unwrap_or(0),
        join_s: med(&|o| Some(o.join_secs)),
        errors: runs.iter().map(|o| o.tally.errors).sum(),
        dropped: runs.iter().map(|o| o.tally.dropped).sum(),
        rss_joined_kib: med(&|o| Some(o.rss_joined_kib as f64)),
        rss_end_kib: med(&|o| Some(o.rss_end_kib as f64)),
        rss_peak_kib: med(&|o| Some(o.rss_peak_kib as f64)),
        skipped,
    }
}
