//! `bingfa lab` smoke tests: each experiment runs end to end on small sizes and reports every
//! row it promises (the figures themselves live in BENCHMARKS.md, not in assertions).

#[path = "support/procs.rs"]
mod procs;
#[path = "support/tools.rs"]
mod tools;
use procs::processes_mentioning;

use std::process::Command;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_bingfa");

#[test]
fn efficiency_reports_every_mode_and_draws_a_chart() {
    let dir = std::env::temp_dir().join(format!("bingfa-lab-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let chart = dir.join("eff.svg");
    let out = Command::new(BIN)
        .args([
            "lab",
            "efficiency",
            "--quick",
            "--rounds",
            "1",
            "--no-python",
            "--json",
        ])
        .arg("--chart")
        .arg(&chart)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let rows = v["rows"].as_array().unwrap();
    let got: Vec<(String, String)> = rows
        .iter()
        .map(|r| {
            (
                r["kind"].as_str().unwrap().to_string(),
                r["mode"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let mut want = Vec::new();
    for kind in ["cpu", "io"] {
        for mode in [
            "one line",
            "10 threads",
            "10 processes",
            "pool",
            "coroutines",
        ] {
            if !(kind == "cpu" && mode == "coroutines") {
                want.push((kind.to_string(), mode.to_string()));
            }
        }
    }
    assert_eq!(got, want);
    for r in rows {
        let secs = r["rust"]["median"].as_f64().unwrap();
        assert!(secs > 0.0 && secs < 60.0, "{r}");
        assert!(r["python"].is_null());
    }
    // The IO-bound jobs wait 3 × 20 ms each: ten in one line can't take less than 0.6 s (a
    // check that the jobs really ran; how much faster the other modes are is BENCHMARKS.md's).
    let io = |mode: &str| {
        rows.iter()
            .find(|r| r["kind"] == "io" && r["mode"] == mode)
            .unwrap()["rust"]["median"]
            .as_f64()
            .unwrap()
    };
    assert!(io("one line") >= 0.6);
    // CPU time counts the work wherever it ran: the CPU-bound jobs cost about the same CPU time
    // in a process per job or a pool as in one line (children's time included, once reaped),
    // while IO-bound jobs in one line spend most of their wall time waiting, not computing.
    let cpu_time = |kind: &str, mode: &str| {
        rows.iter()
            .find(|r| r["kind"] == kind && r["mode"] == mode)
            .unwrap()["rust_cpu"]["median"]
            .as_f64()
            .unwrap()
    };
    let one_line = cpu_time("cpu", "one line");
    assert!(one_line > 0.0);
    for mode in ["10 threads", "10 processes", "pool"] {
        let c = cpu_time("cpu", mode);
        assert!(
            c >= one_line * 0.5,
            "{mode}: {c} s of CPU vs {one_line} s in one line"
        );
    }
    assert!(cpu_time("io", "one line") < io("one line") * 0.5);
    let svg = std::fs::read_to_string(&chart).unwrap();
    assert!(svg.starts_with("<svg") && svg.contains("IO-bound jobs"));
    // The speed-ups can be judged: the core count and the pool's size are stated.
    let cores = v["cores"].as_u64().unwrap();
    assert!(cores >= 1);
    assert_eq!(v["pool_size"], cores);
    assert!(svg.contains(&format!("10 jobs on {cores} cores (pool of {cores})")));
    let _ = std::fs::remove_dir_all(&dir);
}

/// With CPython beside it, in a private TMPDIR: the table states the cores and the pool size,
/// and nothing is left in the temporary directory (CPython's spawned children made a scratch
/// directory each, and left it).
#[test]
fn efficiency_with_python_states_cores_and_leaves_no_temporary_files() {
    if Command::new("python3").arg("--version").output().is_err() {
        tools::missing(
            "efficiency beside CPython",
            "python3",
            "apt-get install python3",
        );
        return;
    }
    let tmp = std::env::temp_dir().join(format!("bingfa-lab-eff-tmp-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).unwrap();
    let out = Command::new(BIN)
        .args(["lab", "efficiency", "--quick", "--rounds", "1"])
        .env("TMPDIR", &tmp)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let cores = std::thread::available_parallelism().unwrap().get();
    assert!(
        text.contains(&format!("This machine has {cores} cores"))
            && text.contains(&format!(
                "the pool has {cores} worker processes in Rust and in CPython"
            )),
        "{text}"
    );
    // Every CPython row was measured.
    let cpython_rows = text
        .lines()
        .filter(|l| l.starts_with("| ") && l.contains("-bound") && !l.contains("| -  "))
        .count();
    assert_eq!(cpython_rows, 9, "{text}");
    assert!(text.contains("CPU time"), "{text}");
    let left: Vec<_> = std::fs::read_dir(&tmp)
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    let _ = std::fs::remove_dir_all(&tmp);
    assert!(left.is_empty(), "left in TMPDIR: {left:?}");
}

#[test]
fn models_loads_each_model_and_stops_every_server() {
    let child = Command::new(BIN)
        .args([
            "lab",
            "models",
            "--app",
            "http",
            "--duration",
            "0.5",
            "--rounds",
            "2",
        ])
        .args([
            "--models",
            "epoll,prefork,thread",
            "--connections",
            "4",
            "--json",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let lab_pid = child.id();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let rows = rows.as_array().unwrap();
    let names: Vec<&str> = rows.iter().map(|r| r["model"].as_str().unwrap()).collect();
    assert_eq!(names, ["epoll", "prefork", "thread"]);
    for r in rows {
        assert_eq!(r["runs"].as_array().unwrap().len(), 2, "{r}");
        assert_eq!(r["errors"], 0, "{r}");
        for run in r["runs"].as_array().unwrap() {
            assert!(run["requests"].as_u64().unwrap() > 0, "{r}");
            // Every answer is the 1 KiB file.
            assert_eq!(
                run["bytes"].as_u64().unwrap(),
                run["requests"].as_u64().unwrap() * 1024
            );
        }
        assert!(r["peak_rss_kib"].as_u64().unwrap() > 0);
    }
    // The servers it started (their --root names the lab's pid) are all gone.
    let left = processes_mentioning(&format!("bingfa-lab-site-{lab_pid}"));
    assert!(left.is_empty(), "servers left running: {left:?}");
}

#[test]
fn models_app_chat_delivers_every_line_under_each_model() {
    let out = Command::new(BIN)
        .args([
            "lab",
            "models",
            "--app",
            "chat",
            "--connections",
            "5",
            "--messages",
            "20",
        ])
        .args(["--rounds", "2", "--models", "epoll,fork,prefork", "--json"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    // A clean run stops its servers cleanly: no error or warning from them (a fork worker's
    // relay link ending with the worker is no failure).
    assert!(
        !stderr.contains("ERROR") && !stderr.contains("WARN"),
        "{stderr}"
    );
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 3);
    for r in rows {
        // 4 senders × 20 messages, each to the 4 other members.
        assert_eq!(r["expected"], 4 * 20 * 4, "{r}");
        assert_eq!(r["delivered"], r["expected"], "{r}");
        assert_eq!(r["joined"], 5, "{r}");
        // The peak is never below what the server held at any sample (under fork the
        // members' processes are gone by the end of the run).
        let peak = r["rss_peak_kib"].as_f64().unwrap();
        assert!(peak >= r["rss_joined_kib"].as_f64().unwrap(), "{r}");
        assert!(peak >= r["rss_end_kib"].as_f64().unwrap(), "{r}");
    }
}

#[test]
fn ftp_measures_bingfa_end_to_end_and_stops_it() {
    let dir = std::env::temp_dir().join(format!("bingfa-lab-ftp-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let chart = dir.join("ftp.svg");
    let child = Command::new(BIN)
        .args([
            "lab",
            "ftp",
            "--servers",
            "bingfa",
            "--rounds",
            "1",
            "--json",
        ])
        .args([
            "--size-mib",
            "2",
            "--crowd",
            "6",
            "--crowd-mib",
            "1",
            "--idle",
            "5",
            "--transfers",
            "2",
        ])
        .args([
            "--login-clients",
            "2",
            "--login-secs",
            "0.3",
            "--timeout",
            "20",
        ])
        .arg("--chart")
        .arg(&chart)
        .env_remove("BINGFA_FTP_BIN")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let lab_pid = child.id();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let rows = v["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 1);
    let r = &rows[0];
    assert_eq!(r["server"], "bingfa");
    assert!(r["skipped"].is_null(), "{r}");
    assert_eq!(r["errors"].as_array().unwrap().len(), 0, "{r}");
    for k in [
        "retr_bytes_per_s",
        "stor_bytes_per_s",
        "logins_per_s",
        "crowd_wall_s",
        "idle_rss_kib",
    ] {
        assert!(r[k]["median"].as_f64().unwrap() > 0.0, "{k}: {r}");
    }
    // Every timed transfer is a sample (the warm-up is not).
    assert_eq!(r["retr_bytes_per_s"]["runs"], 2, "{r}");
    assert_eq!(r["stor_bytes_per_s"]["runs"], 2, "{r}");
    for k in ["crowd_server_cpu_s", "crowd_client_cpu_s"] {
        assert!(r[k]["median"].as_f64().unwrap() >= 0.0, "{k}: {r}");
    }
    // No anchors ran, so no floor can be checked.
    assert_eq!(v["floors"].as_array().unwrap().len(), 0);
    assert!(std::fs::read_to_string(&chart).unwrap().starts_with("<svg"));
    // The server it started (its --root names the lab's pid) is gone.
    let left = processes_mentioning(&format!("bingfa-lab-ftp-{lab_pid}"));
    assert!(left.is_empty(), "servers left running: {left:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn models_app_chat_says_iterative_cannot_hold_the_room_and_finishes() {
    let mut child = Command::new(BIN)
        .args(["lab", "models", "--app", "chat", "--connections", "4"])
        .args([
            "--messages",
            "10",
            "--rounds",
            "1",
            "--models",
            "iterative,epoll",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(90);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("lab models --app chat with iterative did not finish within 90 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let row = text
        .lines()
        .find(|l| l.contains("iterative"))
        .unwrap_or_else(|| panic!("no iterative row:\n{text}"));
    assert!(row.contains("one member at a time"), "{text}");
    assert!(text.lines().any(|l| l.contains("epoll")), "{text}");
}

/// `pid`'s descendants (not `pid` itself), from /proc's parent links.
fn descendants(pid: u32) -> Vec<u32> {
    let links: Vec<(u32, u32)> = std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| {
            let p: u32 = e.file_name().to_str()?.parse().ok()?;
            let stat = std::fs::read_to_string(e.path().join("stat")).ok()?;
            let pp = stat
                .rsplit_once(')')?
                .1
                .split_whitespace()
                .nth(1)?
                .parse()
                .ok()?;
            Some((p, pp))
        })
        .collect();
    let mut out = vec![pid];
    let mut i = 0;
    while i < out.len() {
        let me = out[i];
        out.extend(links.iter().filter(|l| l.1 == me).map(|l| l.0));
        i += 1;
    }
    out.remove(0);
    out
}

/// Whether `pid` still runs the same program (not a zombie; its command line still mentions
/// `needle`, so a reused pid doesn't count).
fn still_running(pid: u32, needle: &str) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    let zombie = stat
        .rsplit_once(')')
        .is_some_and(|(_, r)| r.trim_start().starts_with('Z'));
    let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    !zombie && String::from_utf8_lossy(&cmd).contains(needle)
}

/// Start a lab command, wait until it runs a server (a descendant whose command line has
/// `serve`) with workers of its own, send `sig` to the lab alone, and check that it exits and
/// that no process it started survives.
fn signal_leaves_no_server(args: &[&str], sig: i32) {
    let mut lab = Command::new(BIN)
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let lab_pid = lab.id();
    let deadline = Instant::now() + Duration::from_secs(60);
    let seen = loop {
        let kids = descendants(lab_pid);
        let servers = kids.iter().filter(|&&p| still_running(p, "serve")).count();
        // The server and at least one worker (fork: a member's process; prefork: the pool).
        if servers >= 2 {
            break kids;
        }
        if Instant::now() > deadline || lab.try_wait().unwrap().is_some() {
            let _ = lab.kill();
            let _ = lab.wait();
            panic!("the lab never ran a server with workers ({args:?})");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    // Let the load start (members joining, requests flowing).
    std::thread::sleep(Duration::from_millis(500));
    let seen: Vec<u32> = seen.into_iter().chain(descendants(lab_pid)).collect();
    // SAFETY: kill(2) on the child this test started.
    unsafe { libc::kill(lab_pid as i32, sig) };
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(s) = lab.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = lab.kill();
            panic!("the lab did not exit within 30 s of signal {sig}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status).or(status.code().map(|c| c - 128)),
        Some(sig),
        "{status:?}"
    );
    // Its scratch directories went with it.
    let tmp = std::env::temp_dir();
    for name in ["bingfa-lab-site", "bingfa-lab", "bingfa-eff"] {
        let d = tmp.join(format!("{name}-{lab_pid}"));
        assert!(!d.exists(), "{} left behind", d.display());
    }
    // Everything it started is gone (give the kernel a moment to finish SIGKILLs).
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left: Vec<u32> = seen
            .iter()
            .copied()
            .filter(|&p| still_running(p, "bingfa") || still_running(p, "python"))
            .collect();
        if left.is_empty() {
            break;
        }
        if Instant::now() > deadline {
            for &p in &left {
                // SAFETY: cleaning up what the test found running.
                unsafe { libc::kill(p as i32, libc::SIGKILL) };
            }
            panic!("processes left running after signal {sig}: {left:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn sigint_to_lab_chat_leaves_no_server_running() {
    signal_leaves_no_server(
        &[
            "lab",
            "chat",
            "--models",
            "fork",
            "--members",
            "4",
            "--senders",
            "2",
            "--messages",
            "100000000",
            "--rounds",
            "1",
            "--timeout",
            "600",
        ],
        libc::SIGINT,
    );
}

#[test]
fn sigterm_to_lab_models_leaves_no_server_running() {
    signal_leaves_no_server(
        &[
            "lab",
            "models",
            "--app",
            "http",
            "--models",
            "prefork",
            "--workers",
            "2",
            "--connections",
            "2",
            "--duration",
            "600",
            "--rounds",
            "1",
        ],
        libc::SIGTERM,
    );
}
