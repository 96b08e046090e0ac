//! `bingfa lab` smoke tests: each experiment runs end to end on small sizes and reports every
//! row it promises (the figures themselves live in BENCHMARKS.md, not in assertions).

#[path = "support/procs.rs"]
mod procs;
use procs::processes_mentioning;

use std::process::Command;

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
    let svg = std::fs::read_to_string(&chart).unwrap();
    assert!(svg.starts_with("<svg") && svg.contains("IO-bound jobs"));
    let _ = std::fs::remove_dir_all(&dir);
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
        .args(["--rounds", "1", "--models", "epoll,prefork", "--json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 2);
    for r in rows {
        // 4 senders × 20 messages, each to the 4 other members.
        assert_eq!(r["expected"], 4 * 20 * 4, "{r}");
        assert_eq!(r["delivered"], r["expected"], "{r}");
        assert_eq!(r["joined"], 5, "{r}");
    }
}

#[test]
fn ftp_measures_bingfa_end_to_end_and_stops_it() {
    // The FTP server may not be in this build yet (it lands on its own branch): then there is
    // nothing to measure.
    let has_server = Command::new(BIN)
        .args(["ftp", "serve", "--help"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !has_server {
        eprintln!("skipped: this bingfa has no `ftp serve`");
        return;
    }
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
