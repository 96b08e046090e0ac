//! `bingfa lab ftp`: bingfa's FTP server beside vsftpd and pyftpdlib on loopback, in the same
//! run: RETR and STOR throughput of one big file, anonymous logins per second, many clients
//! downloading at once, and the memory of idle logged-in sessions (issue 10's floors).
//!
//! Each round starts every server (in an order that alternates between rounds), reads each
//! one's idle memory while it is fresh, then runs the transfers interleaved — one warm-up RETR
//! each, then `transfers` times a RETR from every server, then a STOR to every server, the
//! starting server rotating — so a load that comes and goes hits them alike; then each
//! server's login storm and crowd in turn; then kills them all. RETR and STOR figures are
//! medians over every transfer of every round, the others medians over the rounds. Reading
//! order: `client.rs` (the protocol the lab speaks), `target.rs` (the servers), `measure.rs`
//! (the measurements).

pub mod client;
pub mod measure;
pub mod target;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;

use crate::stats::Spread;
pub use target::BingfaOpts;
use target::{Target, BINGFA, PYFTPDLIB, VSFTPD};

/// Sizes and durations of one run.
#[derive(Debug, Clone, Serialize)]
pub struct Sizes {
    /// The RETR/STOR file.
    pub big_bytes: u64,
    /// Timed RETRs (and STORs) per server and round.
    pub transfers: usize,
    /// Clients downloading at once, and the file each downloads.
    pub crowd: usize,
    /// The file each crowd client downloads, bytes.
    pub crowd_bytes: u64,
    /// Idle logged-in sessions whose memory is read.
    pub idle: usize,
    /// Concurrent clients of the login storm, and how long it lasts.
    pub login_clients: usize,
    /// How long the login storm lasts, seconds.
    pub login_secs: f64,
    /// The longest any socket wait may take.
    pub timeout_secs: u64,
}

/// Options for `lab ftp`.
#[derive(Debug, Clone)]
pub struct Options {
    /// `bingfa`, `vsftpd`, `pyftpdlib`.
    pub servers: Vec<String>,
    /// The bingfa server's settings.
    pub bingfa: BingfaOpts,
    /// What to transfer and how many clients.
    pub sizes: Sizes,
    /// Runs per server (the figures are medians).
    pub rounds: usize,
}

/// One server's figures, medians over the rounds.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    /// The server measured.
    pub server: String,
    /// Rounds run.
    pub rounds: usize,
    /// Download throughput, bytes per second.
    pub retr_bytes_per_s: Option<Spread>,
    /// Upload throughput, bytes per second.
    pub stor_bytes_per_s: Option<Spread>,
    /// Logins per second in the storm.
    pub logins_per_s: Option<Spread>,
    /// The crowd: every client logged in, to the last one's 226.
    pub crowd_wall_s: Option<Spread>,
    /// The crowd's connect and login, before the go signal.
    pub crowd_login_s: Option<Spread>,
    /// CPU seconds during the crowd: the server's process tree, and the lab's clients.
    pub crowd_server_cpu_s: Option<Spread>,
    /// CPU seconds of the lab's clients during the crowd.
    pub crowd_client_cpu_s: Option<Spread>,
    /// Idle sessions: the server tree's summed VmRSS and Pss, and how many processes it had.
    pub idle_rss_kib: Option<Spread>,
    /// Idle sessions: the server tree's summed Pss, KiB.
    pub idle_pss_kib: Option<Spread>,
    /// Idle sessions: how many processes the server tree had.
    pub idle_processes: usize,
    /// Failures, each once with a count of rounds (a failed measurement leaves no sample).
    pub errors: Vec<String>,
    /// Why the server could not run, if it couldn't.
    pub skipped: Option<String>,
}

/// One of issue 10's floors, checked on this run's medians.
#[derive(Debug, Clone, Serialize)]
pub struct Floor {
    /// The figure (e.g. RETR throughput).
    pub what: String,
    /// bingfa's median.
    pub bingfa: f64,
    /// The server it is held against.
    pub anchor: String,
    /// That server's median.
    pub anchor_value: f64,
    /// bingfa / anchor.
    pub ratio: f64,
    /// The floor the ratio must reach, as text.
    pub target: String,
    /// Whether it did.
    pub met: bool,
}

/// The whole run.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The sizes used.
    pub sizes: Sizes,
    /// bingfa's `--model`, if one was given.
    pub bingfa_model: Option<String>,
    /// /proc/loadavg before and after: how busy the machine was.
    pub load_before: String,
    /// /proc/loadavg after the run.
    pub load_after: String,
    /// One row per server.
    pub rows: Vec<Row>,
    /// The floors, checked.
    pub floors: Vec<Floor>,
}

/// One round's samples for one server.
#[derive(Default)]
struct Sample {
    /// Every timed transfer of the round.
    retr: Vec<f64>,
    stor: Vec<f64>,
    logins: Option<f64>,
    crowd_wall: Option<f64>,
    crowd_login: Option<f64>,
    crowd_server_cpu: Option<f64>,
    crowd_client_cpu: Option<f64>,
    idle_rss: Option<f64>,
    idle_pss: Option<f64>,
    idle_processes: usize,
    errors: Vec<String>,
}

const BIG: &str = "big.bin";
const EACH: &str = "each.bin";

/// The served directory, removed on drop.
struct Root(PathBuf);

impl Drop for Root {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn write_file(path: &Path, size: u64) -> std::io::Result<()> {
    let chunk: Vec<u8> = (0..1usize << 20).map(|i| (i * 131 + 17) as u8).collect();
    let mut f = std::io::BufWriter::new(std::fs::File::create(path)?);
    let mut left = size;
    while left > 0 {
        let k = left.min(chunk.len() as u64) as usize;
        f.write_all(&chunk[..k])?;
        left -= k as u64;
    }
    f.flush()
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// Run every server for `rounds` rounds; `progress` hears one line per finished step.
pub fn run(opts: &Options, mut progress: impl FnMut(&str)) -> Result<Report, String> {
    let s = &opts.sizes;
    // A client is two sockets here (control, data) and as many in a single-process server,
    // which inherits the limit.
    let nofile = crate::chat::raise_nofile();
    let need = 2 * s.crowd.max(s.idle) as u64 + 64;
    if nofile < need {
        progress(&format!(
            "warning: RLIMIT_NOFILE is {nofile}, fewer than the {need} the clients need"
        ));
    }
    let root = Root(std::env::temp_dir().join(format!("bingfa-lab-ftp-{}", std::process::id())));
    let _ = std::fs::remove_dir_all(&root.0);
    std::fs::create_dir_all(&root.0).map_err(|e| format!("{}: {e}", root.0.display()))?;
    crate::spawn::scratch(&root.0);
    for (name, size) in [(BIG, s.big_bytes), (EACH, s.crowd_bytes)] {
        write_file(&root.0.join(name), size).map_err(|e| format!("writing {name}: {e}"))?;
    }
    let src = std::fs::File::open(root.0.join(BIG)).map_err(|e| format!("{BIG}: {e}"))?;
    let load_before = loadavg();
    let timeout = Duration::from_secs(s.timeout_secs.max(1));
    let n = opts.servers.len();
    let mut samples: Vec<Vec<Sample>> = (0..n).map(|_| Vec::new()).collect();
    let mut skipped: Vec<Option<String>> = vec![None; n];
    for round in 0..opts.rounds.max(1) {
        let mut order: Vec<usize> = (0..n).filter(|&i| skipped[i].is_none()).collect();
        if round % 2 == 1 {
            order.reverse();
        }
        let mut running: Vec<(usize, Target)> = Vec::new();
        for i in order {
            let name = &opts.servers[i];
            match Target::start(name, &root.0, s.crowd.max(s.idle), &opts.bingfa) {
                Ok(t) => running.push((i, t)),
                Err(e) => {
                    progress(&format!("{name}: skipped: {e}"));
                    skipped[i] = Some(e);
                }
            }
        }
        let mut round_samples: Vec<Sample> = running.iter().map(|_| Sample::default()).collect();
        let mut say =
            |t: &Target, l: &str| progress(&format!("round {} {}: {l}", round + 1, t.name));
        for ((_, t), out) in running.iter().zip(&mut round_samples) {
            idle(t, s, timeout, out, &mut say);
        }
        let ts: Vec<&Target> = running.iter().map(|(_, t)| t).collect();
        transfers(
            &ts,
            s,
            &src,
            &root.0,
            round,
            timeout,
            &mut round_samples,
            &mut say,
        );
        for ((_, t), out) in running.iter().zip(&mut round_samples) {
            logins_and_crowd(t, s, timeout, out, &mut say);
        }
        for ((i, t), sample) in running.into_iter().zip(round_samples) {
            drop(t);
            samples[i].push(sample);
        }
        // Let the killed servers' sockets close before the next round starts.
        std::thread::sleep(Duration::from_millis(300));
    }
    let rows: Vec<Row> = opts
        .servers
        .iter()
        .zip(samples)
        .zip(skipped)
        .map(|((name, ss), skip)| row(name, &ss, skip))
        .collect();
    Ok(Report {
        sizes: s.clone(),
        bingfa_model: opts.bingfa.model.clone(),
        load_before,
        load_after: loadavg(),
        floors: floors(&rows),
        rows,
    })
}

/// Idle memory, on a fresh server (before the transfers have grown any buffers).
fn idle(
    t: &Target,
    s: &Sizes,
    timeout: Duration,
    out: &mut Sample,
    say: &mut dyn FnMut(&Target, &str),
) {
    match measure::idle(t.addr, s.idle, timeout, || t.mem()) {
        Ok(m) => {
            say(
                t,
                &format!(
                    "{} idle sessions: {} KiB RSS, {} KiB PSS in {} processes",
                    s.idle, m.rss_kib, m.pss_kib, m.processes
                ),
            );
            out.idle_rss = Some(m.rss_kib as f64);
            out.idle_pss = Some(m.pss_kib as f64);
            out.idle_processes = m.processes;
        }
        Err(e) => out.errors.push(format!("idle: {e}")),
    }
}

/// The RETRs and STORs of one round, interleaved between the servers: per repetition one RETR
/// from each, then one STOR to each, the first server rotating. The first repetition is a
/// warm-up and is not recorded. Every STOR goes to a new name, removed right after (outside
/// the timing), so no server replaces a file or finds dirty pages of an earlier upload.
#[allow(clippy::too_many_arguments)]
fn transfers(
    ts: &[&Target],
    s: &Sizes,
    src: &std::fs::File,
    root: &Path,
    round: usize,
    timeout: Duration,
    out: &mut [Sample],
    say: &mut dyn FnMut(&Target, &str),
) {
    let n = ts.len();
    let mut sessions: Vec<Option<client::Control>> = (0..n).map(|_| None).collect();
    for rep in 0..=s.transfers {
        let timed = rep > 0;
        for stor in [false, true] {
            for k in (0..n).map(|j| (j + rep) % n) {
                let t = ts[k];
                let c = match sessions[k].take() {
                    Some(c) => c,
                    None => match measure::session(t.addr, timeout) {
                        Ok(c) => c,
                        Err(e) => {
                            out[k].errors.push(format!("transfer login: {e}"));
                            continue;
                        }
                    },
                };
                let mut c = c;
                let (what, r) = if stor {
                    let up = format!("up-{}-{round}-{rep}.bin", t.name);
                    let r = measure::stor(&mut c, &up, src, s.big_bytes);
                    let _ = std::fs::remove_file(root.join(&up));
                    ("STOR", r)
                } else {
                    ("RETR", measure::retr(&mut c, BIG, s.big_bytes))
                };
                match r {
                    Ok(v) => {
                        sessions[k] = Some(c);
                        if timed {
                            say(t, &format!("{what} {:.0} MB/s", v / 1e6));
                            if stor {
                                out[k].stor.push(v);
                            } else {
                                out[k].retr.push(v);
                            }
                        }
                    }
                    // The session is dropped: the next transfer logs in afresh.
                    Err(e) => out[k].errors.push(format!("{what}: {e}")),
                }
            }
        }
    }
    for c in sessions.into_iter().flatten() {
        let _ = c.quit();
    }
}

/// The login storm, then the crowd.
fn logins_and_crowd(
    t: &Target,
    s: &Sizes,
    timeout: Duration,
    out: &mut Sample,
    say: &mut dyn FnMut(&Target, &str),
) {
    let l = measure::logins(t.addr, s.login_clients, s.login_secs, timeout);
    say(
        t,
        &format!("{} logins ({} failed) in {:.2} s", l.done, l.errors, l.secs),
    );
    if l.errors > 0 {
        out.errors.push(format!("logins: {} failed", l.errors));
    }
    if l.done > 0 && l.secs > 0.0 {
        out.logins = Some(l.done as f64 / l.secs);
    }
    let c = measure::crowd(t.addr, s.crowd, EACH, s.crowd_bytes, timeout, || {
        t.cpu_secs()
    });
    say(
        t,
        &format!(
            "{} clients downloading: {}/{} done in {:.2} s (logins took {:.2} s)",
            s.crowd, c.ok, s.crowd, c.wall_secs, c.login_secs
        ),
    );
    if let Some(e) = c.failed.first() {
        out.errors.push(format!(
            "crowd: {} of {} failed, first: {e}",
            c.failed.len(),
            s.crowd
        ));
    } else {
        out.crowd_wall = Some(c.wall_secs);
        out.crowd_login = Some(c.login_secs);
        out.crowd_server_cpu = Some(c.server_cpu_s);
        out.crowd_client_cpu = Some(c.client_cpu_s);
    }
}

fn row(name: &str, ss: &[Sample], skipped: Option<String>) -> Row {
    let spread =
        |f: fn(&Sample) -> Option<f64>| Spread::of(&ss.iter().filter_map(f).collect::<Vec<_>>());
    let pooled = |f: fn(&Sample) -> &Vec<f64>| {
        Spread::of(
            &ss.iter()
                .flat_map(|x| f(x).iter().copied())
                .collect::<Vec<_>>(),
        )
    };
    let mut errors: Vec<String> = Vec::new();
    for e in ss.iter().flat_map(|s| &s.errors) {
        if !errors.contains(e) {
            errors.push(e.clone());
        }
    }
    Row {
        server: name.into(),
        rounds: ss.len(),
        retr_bytes_per_s: pooled(|s| &s.retr),
        stor_bytes_per_s: pooled(|s| &s.stor),
        logins_per_s: spread(|s| s.logins),
        crowd_wall_s: spread(|s| s.crowd_wall),
        crowd_login_s: spread(|s| s.crowd_login),
        crowd_server_cpu_s: spread(|s| s.crowd_server_cpu),
        crowd_client_cpu_s: spread(|s| s.crowd_client_cpu),
        idle_rss_kib: spread(|s| s.idle_rss),
        idle_pss_kib: spread(|s| s.idle_pss),
        idle_processes: ss.iter().map(|s| s.idle_processes).max().unwrap_or(0),
        errors,
        skipped,
    }
}

/// Issue 10's floors on the medians: throughput ≥ 1.0× the faster anchor, logins ≥ 2×
/// pyftpdlib, crowd wall time ≤ the faster anchor's, idle RSS ≤ pyftpdlib's.
pub fn floors(rows: &[Row]) -> Vec<Floor> {
    let get = |name: &str, f: fn(&Row) -> Option<Spread>| {
        rows.iter()
            .find(|r| r.server == name)
            .and_then(f)
            .map(|s| s.median)
    };
    let Some(_) = rows.iter().find(|r| r.server == BINGFA) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    // `higher`: bigger is better. The anchor is the better of those measured.
    let mut check = |what: &str,
                     f: fn(&Row) -> Option<Spread>,
                     anchors: &[&str],
                     higher: bool,
                     factor: f64,
                     target: &str| {
        let Some(b) = get(BINGFA, f) else { return };
        let best = anchors
            .iter()
            .filter_map(|a| get(a, f).map(|v| (*a, v)))
            .reduce(|x, y| match (higher, y.1 > x.1) {
                (true, true) | (false, false) => y,
                _ => x,
            });
        let Some((anchor, v)) = best else { return };
        let ratio = if v > 0.0 { b / v } else { f64::INFINITY };
        out.push(Floor {
            what: what.into(),
            bingfa: b,
            anchor: anchor.into(),
            anchor_value: v,
            ratio,
            target: target.into(),
            met: if higher {
                ratio >= factor
            } else {
                ratio <= factor
            },
        });
    };
    let both = [VSFTPD, PYFTPDLIB];
    check(
        "RETR",
        |r| r.retr_bytes_per_s,
        &both,
        true,
        1.0,
        "≥ 1.0× the faster",
    );
    check(
        "STOR",
        |r| r.stor_bytes_per_s,
        &both,
        true,
        1.0,
        "≥ 1.0× the faster",
    );
    check(
        "logins/s",
        |r| r.logins_per_s,
        &[PYFTPDLIB],
        true,
        2.0,
        "≥ 2× pyftpdlib",
    );
    check(
        "crowd wall time",
        |r| r.crowd_wall_s,
        &both,
        false,
        1.0,
        "≤ the faster",
    );
    check(
        "idle RSS",
        |r| r.idle_rss_kib,
        &[PYFTPDLIB],
        false,
        1.0,
        "≤ pyftpdlib",
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(server: &str, retr: f64, crowd: f64, rss: f64) -> Row {
        let one = |v: f64| Spread::of(&[v]);
        Row {
            server: server.into(),
            rounds: 1,
            retr_bytes_per_s: one(retr),
            stor_bytes_per_s: None,
            logins_per_s: one(retr),
            crowd_wall_s: one(crowd),
            crowd_login_s: None,
            crowd_server_cpu_s: None,
            crowd_client_cpu_s: None,
            idle_rss_kib: one(rss),
            idle_pss_kib: None,
            idle_processes: 1,
            errors: Vec::new(),
            skipped: None,
        }
    }

    #[test]
    fn floors_compare_with_the_better_anchor_in_the_right_direction() {
        let rows = [
            row(BINGFA, 150.0, 2.0, 10.0),
            row(VSFTPD, 100.0, 1.0, 500.0),
            row(PYFTPDLIB, 120.0, 3.0, 20.0),
        ];
        let f = floors(&rows);
        let get = |w: &str| f.iter().find(|x| x.what == w).unwrap();
        // Throughput: the faster anchor (pyftpdlib's 120), higher is better.
        assert_eq!(get("RETR").anchor, PYFTPDLIB);
        assert!(get("RETR").met);
        // Logins: 150 against pyftpdlib's 120 is not 2×.
        assert!(!get("logins/s").met);
        // Wall time: the faster anchor is the lower time (vsftpd's 1 s); 2 s misses it.
        assert_eq!(get("crowd wall time").anchor, VSFTPD);
        assert!(!get("crowd wall time").met);
        assert!(get("idle RSS").met);
        // STOR was not measured: no floor for it.
        assert!(f.iter().all(|x| x.what != "STOR"));
        // Without bingfa, nothing to check.
        assert!(floors(&rows[1..]).is_empty());
    }
}
