//! Process lifecycle under both start methods: results, panics, signals, exit codes, names,
//! daemon children, custom process types, and no zombies.

mod common;

use std::time::Duration;

use bingfa_mp::{Process, ProcessError, Run, StartMethod};
use common::{eventually, pid_alive, zombies};
use serde::{Deserialize, Serialize};

bingfa_mp::spawn_entry!();

fn square(x: u64) -> u64 {
    x * x
}

fn whoami(_: ()) -> (u32, String, Option<u32>, Option<String>) {
    let me = bingfa_mp::current_process();
    let parent = bingfa_mp::parent_process();
    (
        me.pid,
        me.name,
        parent.as_ref().map(|p| p.pid),
        parent.map(|p| p.name),
    )
}

fn boom(msg: String) -> u8 {
    panic!("{}", msg)
}

fn sleep_ms(ms: u64) {
    std::thread::sleep(Duration::from_millis(ms));
}

fn exit_with(code: i32) {
    std::process::exit(code)
}

fn concat(args: (String, Vec<u32>)) -> String {
    format!("{}{:?}", args.0, args.1)
}

fn big_result(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i % 251) as u8).collect()
}

fn returns_value(m: StartMethod) {
    let p = Process::builder()
        .start_method(m)
        .spawn(square, 12)
        .unwrap();
    assert_eq!(p.join().unwrap(), 144);
    let p = Process::builder()
        .start_method(m)
        .spawn(concat, ("abc".to_string(), vec![1, 2, 3]))
        .unwrap();
    assert_eq!(p.join().unwrap(), "abc[1, 2, 3]");
}

fn identity_and_parent(m: StartMethod) {
    let p = Process::builder()
        .name("worker-7")
        .start_method(m)
        .spawn(whoami, ())
        .unwrap();
    let pid = p.pid();
    assert_eq!(p.name(), "worker-7");
    let (child_pid, name, ppid, pname) = p.join().unwrap();
    assert_eq!(child_pid, pid);
    assert_ne!(child_pid, std::process::id());
    assert_eq!(name, "worker-7");
    assert_eq!(ppid, Some(std::process::id()));
    assert_eq!(pname.as_deref(), Some("MainProcess"));
    assert_eq!(bingfa_mp::current_process().name, "MainProcess");
    assert!(bingfa_mp::parent_process().is_none());
}

fn default_names_count_up(m: StartMethod) {
    let a = Process::builder().start_method(m).spawn(square, 1).unwrap();
    let b = Process::builder().start_method(m).spawn(square, 2).unwrap();
    let (na, nb) = (a.name().to_string(), b.name().to_string());
    assert!(
        na.starts_with("Process-") && nb.starts_with("Process-"),
        "{na} {nb}"
    );
    assert_ne!(na, nb);
    a.join().unwrap();
    b.join().unwrap();
}

fn panic_is_reported(m: StartMethod) {
    let p = Process::builder()
        .start_method(m)
        .spawn(boom, "card declined".into())
        .unwrap();
    match p.join() {
        Err(ProcessError::Panicked { message }) => assert_eq!(message, "card declined"),
        other => panic!("expected a panic error, got {other:?}"),
    }
}

fn exitcode_and_signals(m: StartMethod) {
    let mut p = Process::builder()
        .start_method(m)
        .spawn(sleep_ms, 10_000)
        .unwrap();
    assert!(p.is_alive());
    assert_eq!(p.exitcode(), None);
    assert!(matches!(
        p.join_timeout(Duration::from_millis(50)),
        Err(ProcessError::Timeout)
    ));
    p.terminate().unwrap();
    assert!(eventually(Duration::from_secs(5), || !p.is_alive()));
    assert_eq!(p.exitcode(), Some(-libc::SIGTERM));
    assert!(matches!(p.join(), Err(ProcessError::Killed { signal }) if signal == libc::SIGTERM));

    let p = Process::builder()
        .start_method(m)
        .spawn(sleep_ms, 10_000)
        .unwrap();
    p.kill().unwrap();
    assert!(matches!(p.join(), Err(ProcessError::Killed { signal: 9 })));

    let p = Process::builder()
        .start_method(m)
        .spawn(exit_with, 3)
        .unwrap();
    let mut p = p;
    assert!(matches!(
        p.join_timeout(Duration::from_secs(10)),
        Err(ProcessError::Exited { code: 3 })
    ));
    assert_eq!(p.exitcode(), Some(3));
    assert!(matches!(
        p.join_timeout(Duration::from_secs(1)),
        Err(ProcessError::AlreadyJoined)
    ));
}

fn large_result_does_not_block_exit(m: StartMethod) {
    // 8 MiB is far beyond a socket buffer: the child must still be able to finish and exit
    // before anyone reads the result.
    let p = Process::builder()
        .start_method(m)
        .spawn(big_result, 8 << 20)
        .unwrap();
    assert!(eventually(Duration::from_secs(10), || !p.is_alive()));
    assert_eq!(p.exitcode(), Some(0));
    let v = p.join().unwrap();
    assert_eq!(v.len(), 8 << 20);
    assert!(v.iter().enumerate().all(|(i, &b)| b == (i % 251) as u8));
}

fn no_zombies(m: StartMethod) {
    let mut handles = Vec::new();
    for i in 0..8 {
        handles.push(Process::builder().start_method(m).spawn(square, i).unwrap());
    }
    // Half joined, half dropped while perhaps still running.
    for (i, p) in handles.into_iter().enumerate() {
        if i % 2 == 0 {
            assert_eq!(p.join().unwrap(), (i * i) as u64);
        }
    }
    let dropped = Process::builder()
        .start_method(m)
        .spawn(sleep_ms, 100)
        .unwrap();
    drop(dropped);
    assert!(eventually(Duration::from_secs(10), || zombies() == 0
        && bingfa_mp::active_children().is_empty()));
    assert_eq!(zombies(), 0);
}

fn active_children_lists_running(m: StartMethod) {
    let p = Process::builder()
        .name("sleeper")
        .start_method(m)
        .spawn(sleep_ms, 10_000)
        .unwrap();
    let kids = bingfa_mp::active_children();
    assert!(kids.iter().any(|k| k.pid == p.pid() && k.name == "sleeper"));
    p.kill().unwrap();
    let _ = p.join();
    assert!(!bingfa_mp::active_children()
        .iter()
        .any(|k| k.name == "sleeper"));
}

#[derive(Serialize, Deserialize)]
struct Counter {
    start: u32,
    steps: u32,
}

impl Run for Counter {
    type Output = Vec<u32>;
    fn run(self) -> Vec<u32> {
        (self.start..self.start + self.steps).collect()
    }
}

fn custom_process_type(m: StartMethod) {
    let p = Process::builder()
        .start_method(m)
        .start(Counter { start: 5, steps: 3 })
        .unwrap();
    assert_eq!(p.join().unwrap(), vec![5, 6, 7]);
}

/// A daemon grandchild must die when its parent (our child) is SIGKILLed.
fn spawn_daemon_then_report(m: StartMethod) -> u32 {
    let d = Process::builder()
        .daemon(true)
        .start_method(m)
        .spawn(sleep_ms, 60_000)
        .unwrap();
    let pid = d.pid();
    std::mem::forget(d);
    pid
}

fn middle(m: StartMethod) {
    let (mut rx, tx) = bingfa_mp::Pipe::simplex::<u32>().unwrap();
    let p = Process::builder()
        .start_method(m)
        .spawn(
            |(m, mut tx): (StartMethod, bingfa_mp::Sender<u32>)| {
                let pid = spawn_daemon_then_report(m);
                tx.send(&pid).unwrap();
                sleep_ms(60_000);
            },
            (m, tx),
        )
        .unwrap();
    let grandchild = rx.recv_timeout(Duration::from_secs(10)).unwrap();
    assert!(pid_alive(grandchild));
    p.kill().unwrap();
    assert!(matches!(p.join(), Err(ProcessError::Killed { signal: 9 })));
    assert!(
        eventually(Duration::from_secs(10), || !pid_alive(grandchild)),
        "daemon grandchild {grandchild} outlived its SIGKILLed parent"
    );
}

fn daemon_dies_with_killed_parent(m: StartMethod) {
    middle(m)
}

fn cpu_count_is_positive(_m: StartMethod) {
    assert!(bingfa_mp::cpu_count() >= 1);
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

fn no_descriptor_leak_per_child(m: StartMethod) {
    // Warm up (lazily created threads, caches), then many start+join cycles.
    Process::builder()
        .start_method(m)
        .spawn(square, 1)
        .unwrap()
        .join()
        .unwrap();
    let before = open_fds();
    for i in 0..40 {
        let p = Process::builder().start_method(m).spawn(square, i).unwrap();
        assert_eq!(p.join().unwrap(), i * i);
    }
    for i in 0..10 {
        let p = Process::builder().start_method(m).spawn(square, i).unwrap();
        assert!(eventually(Duration::from_secs(10), || !p.is_alive()));
        drop(p);
    }
    assert!(
        open_fds() <= before + 1,
        "{} descriptors before, {} after",
        before,
        open_fds()
    );
}

both_methods!(
    no_descriptor_leak_per_child,
    returns_value,
    identity_and_parent,
    default_names_count_up,
    panic_is_reported,
    exitcode_and_signals,
    large_result_does_not_block_exit,
    no_zombies,
    active_children_lists_running,
    custom_process_type,
    daemon_dies_with_killed_parent,
    cpu_count_is_positive,
);
