//! Scenarios about the contract's named timers and blocking-pool completions, under every model:
//! two timers firing in deadline order, one re-armed (moved), one cancelled; a pool task's end
//! told to an otherwise idle session that arms no timer (so only the wake-up can deliver it),
//! with input paused behind it; and a peer hanging up while its task runs (the job is cancelled,
//! nothing is told, the server goes on).
//!
//! The `tasks` protocol: `ARM a|b ms`, `CANCEL a|b` (its timers say `fired a|b`); `JOB ms`
//! (a job sleeping `ms`, input paused until `done ms`); `HOLD` (a job that appends `started` to
//! the spec's file, runs until it is cancelled, then appends `cancelled`: the fork and prefork
//! models run it in another process, so a file is what the test can read).

use crate::harness::*;
use bingfa_net::blocking::Task;
use bingfa_net::{ConnInfo, Context, Model, Protocol, Session, TaskId, Timer};
use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

const A: Timer = Timer("a");
const B: Timer = Timer("b");

pub(crate) struct Tasks {
    /// Where a cancelled `HOLD` job says so.
    pub(crate) log: PathBuf,
}

pub(crate) struct TasksSession {
    log: PathBuf,
    /// The running job and what it answers: `Some(ms)` for `JOB`, `None` for `HOLD`.
    job: Option<(Task<u64>, Option<u64>)>,
}

impl Session for TasksSession {
    fn on_data(&mut self, input: &[u8], cx: &mut Context) -> usize {
        let Some(i) = input.iter().position(|&b| b == b'\n') else {
            return 0;
        };
        let line = String::from_utf8_lossy(&input[..i]).trim().to_string();
        let words: Vec<&str> = line.split(' ').collect();
        let timer = |w: &str| if w == "a" { A } else { B };
        match words[..] {
            ["ARM", t, ms] => cx.set_timer(timer(t), Duration::from_millis(ms.parse().unwrap())),
            ["CANCEL", t] => cx.cancel_timer(timer(t)),
            ["JOB", ms] => {
                let ms: u64 = ms.parse().unwrap();
                let task = cx.spawn_blocking(move |_| {
                    std::thread::sleep(Duration::from_millis(ms));
                    ms
                });
                self.job = Some((task, Some(ms)));
                // Lines behind the job wait for its answer.
                cx.pause_input(true);
            }
            ["HOLD"] => {
                let log = self.log.clone();
                let task = cx.spawn_blocking(move |cancel| {
                    let say = |word: &str| {
                        let mut f = std::fs::OpenOptions::new()
                            .append(true)
                            .create(true)
                            .open(&log)
                            .unwrap();
                        f.write_all(word.as_bytes()).unwrap();
                    };
                    say("started\n");
                    let deadline = Instant::now() + Duration::from_secs(20);
                    while !cancel.is_cancelled() && Instant::now() < deadline {
                        std::thread::sleep(Duration::from_millis(1));
                    }
                    say(if cancel.is_cancelled() {
                        "cancelled\n"
                    } else {
                        "not cancelled\n"
                    });
                    0
                });
                self.job = Some((task, None));
                cx.write(b"holding\n");
            }
            _ => cx.write(format!("{line}\n").as_bytes()),
        }
        i + 1
    }
    fn on_timer(&mut self, timer: Timer, cx: &mut Context) {
        cx.write(format!("fired {}\n", timer.0).as_bytes());
    }
    fn on_task_done(&mut self, task: TaskId, cx: &mut Context) {
        let Some((t, _)) = &self.job else {
            return cx.write(b"done for no task\n");
        };
        if t.id() != task {
            return cx.write(b"done for another task\n");
        }
        let (t, ms) = self.job.take().unwrap();
        match (t.try_take(), ms) {
            (Ok(Some(v)), Some(ms)) if v == ms => cx.write(format!("done {v}\n").as_bytes()),
            (r, _) => cx.write(format!("wrong answer {r:?}\n").as_bytes()),
        }
        cx.pause_input(false);
    }
}

impl Protocol for Tasks {
    type Session = TasksSession;
    fn new_session(&self, _: &ConnInfo) -> TasksSession {
        TasksSession {
            log: self.log.clone(),
            job: None,
        }
    }
}

fn start(model: Model, edge: bool) -> (TestServer, PathBuf) {
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let log = std::env::temp_dir().join(format!(
        "bingfa-net-tasks-{}-{}",
        std::process::id(),
        N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    ));
    let _ = std::fs::remove_file(&log);
    let mut spec = Spec::new(model, edge, "tasks");
    spec.file = log.to_string_lossy().into_owned();
    (TestServer::start(&spec), log)
}

pub(crate) fn named_timers(model: Model, edge: bool) {
    let (srv, _) = start(model, edge);
    let mut c = srv.connect();
    // Two timers fire in deadline order, whatever order they were armed in. (Each step's
    // lines go in one write, so a loaded machine cannot fire a timer between them.)
    c.w.write_all(b"ARM a 300\nARM b 100\n").unwrap();
    c.expect("fired b");
    c.expect("fired a");
    // Re-arming one moves it (the other is untouched): `a` now fires after `b`.
    c.w.write_all(b"ARM a 100\nARM b 300\nARM a 600\n").unwrap();
    c.expect("fired b");
    c.expect("fired a");
    // A cancelled one never fires; the other still does.
    c.w.write_all(b"ARM a 100\nARM b 200\nCANCEL a\n").unwrap();
    c.expect("fired b");
    std::thread::sleep(Duration::from_millis(200));
    c.send("ping");
    c.expect("ping");
}

pub(crate) fn task_done(model: Model, edge: bool) {
    let (srv, _) = start(model, edge);
    let mut c = srv.connect();
    // The session arms no timer and the client says nothing more: only the pool's wake-up can
    // bring the answer. The line behind it waits (input paused) and comes after.
    c.w.write_all(b"JOB 150\nafter\n").unwrap();
    c.expect("done 150");
    c.expect("after");
    // Again on a connection that has been quiet a while, and one that ends at once.
    std::thread::sleep(Duration::from_millis(100));
    c.send("JOB 0");
    c.expect("done 0");
    c.send("still here");
    c.expect("still here");
}

pub(crate) fn task_after_hangup(model: Model, edge: bool) {
    let (srv, log) = start(model, edge);
    let mut c = srv.connect();
    c.send("HOLD");
    c.expect("holding");
    // Hang up once the job runs (one dropped before it starts would never run at all).
    assert_eq!(wait_for(&log, "started\n"), "started\n");
    drop(c);
    if model != Model::Fork {
        // The peer is gone: the session (and its task) are dropped, so the job sees the
        // cancellation and nothing is told. (A fork child exits with its one connection, and
        // its pool with it: the job ends with the process.)
        assert_eq!(
            wait_for(&log, "started\ncancelled\n"),
            "started\ncancelled\n"
        );
    }
    // The server goes on (the slot the dead connection held may be reused: a late wake-up
    // for it must not disturb the new one).
    let mut c = srv.connect();
    c.send("JOB 20");
    c.expect("done 20");
    c.send("ping");
    c.expect("ping");
    let _ = std::fs::remove_file(&log);
}

/// What `log` says once it says `want` (or after 15 s, whatever it says then).
fn wait_for(log: &std::path::Path, want: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let said = std::fs::read_to_string(log).unwrap_or_default();
        if said == want || Instant::now() > deadline {
            return said;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}
