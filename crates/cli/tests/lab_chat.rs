//! Smoke test of `bingfa lab chat`: a small room, one round, every message counted, bounded in
//! time. Redis joins in where redis-server is installed (required under scripts/test.sh and CI).

#[path = "support/tools.rs"]
mod tools;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn has_redis() -> bool {
    Command::new("redis-server")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

#[test]
fn lab_chat_counts_every_delivery() {
    let mut models = "epoll,tokio-chat".to_string();
    if has_redis() {
        models.push_str(",redis");
    } else {
        tools::missing(
            "lab chat's Redis anchor",
            "redis-server",
            "apt-get install redis-server",
        );
    }
    let mut child = Command::new(env!("CARGO_BIN_EXE_bingfa"))
        .args([
            "lab",
            "chat",
            "--members",
            "6",
            "--senders",
            "2",
            "--messages",
            "50",
        ])
        .args([
            "--rounds",
            "1",
            "--timeout",
            "20",
            "--json",
            "--models",
            &models,
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            child.kill().unwrap();
            panic!("lab chat did not finish within 60 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), models.split(',').count());
    for r in rows {
        // 2 senders × 50 messages, each to the 5 other members.
        assert_eq!(r["expected"], 500, "{r}");
        assert_eq!(r["delivered"], 500, "{r}");
        assert_eq!(r["joined"], 6, "{r}");
        assert_eq!(r["errors"], 0, "{r}");
        assert!(
            r["p99_ms"].as_f64().unwrap() >= r["p50_ms"].as_f64().unwrap(),
            "{r}"
        );
    }
}
