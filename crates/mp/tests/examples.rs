//! The runnable examples run to completion and print what they promise. Cargo builds examples
//! alongside integration tests, so they sit next to this test binary's directory.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn example(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    // target/<profile>/deps/examples-HASH -> target/<profile>/examples/NAME
    exe.parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("examples")
        .join(name)
}

/// Run an example with a timeout; return its stdout. Panics on a non-zero exit.
fn run(name: &str) -> String {
    let path = example(name);
    assert!(path.exists(), "{} not built", path.display());
    let mut child = Command::new(&path).stdout(Stdio::piped()).spawn().unwrap();
    let start = Instant::now();
    loop {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if start.elapsed() > Duration::from_secs(60) {
            child.kill().unwrap();
            child.wait().unwrap();
            panic!("{name} did not finish in 60 s");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{name} exited with {}", out.status);
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn parent_child() {
    let out = run("parent_child");
    assert!(out.contains("[Spawn] I am child-spawn"), "{out}");
    assert!(out.contains("[Fork] I am child-fork"), "{out}");
}

#[test]
fn join() {
    let out = run("join");
    assert!(out.contains("with the child's result 300"), "{out}");
    // Both children finished: the un-joined one was joined at exit.
    assert_eq!(out.matches("done after 300 ms").count(), 2, "{out}");
}

#[test]
fn daemon() {
    let out = run("daemon");
    assert!(out.contains("worker: tick 5"), "{out}");
    assert!(!out.contains("worker: tick 6"), "{out}");
}

#[test]
fn orphan_zombie() {
    let out = run("orphan_zombie");
    assert!(out.contains("its state is now Z"), "{out}");
    assert!(out.contains("after waitpid: gone"), "{out}");
    assert!(out.contains(": gone\n3."), "{out}");
    let line = out
        .lines()
        .find(|l| l.contains("grandchild's parent was"))
        .unwrap();
    let nums: Vec<u32> = line
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|s| s.parse().ok())
        .collect();
    assert_ne!(nums[0], nums[1], "the orphan was not re-parented: {line}");
}

#[test]
fn queue_producer_consumer() {
    let out = run("queue_producer_consumer");
    assert!(out.contains("total: 10000 items, sum 50005000"), "{out}");
}

#[test]
fn pipe_pingpong() {
    let out = run("pipe_pingpong");
    assert!(out.contains("sent ping 2, got pong 2"), "{out}");
    assert!(out.contains("child answered 10000"), "{out}");
}
