//! Scenarios about a server's life: graceful shutdown (SIGTERM, exit 0, in-flight sessions told,
//! no zombies, no child outliving the server), a parent killed with SIGKILL (its children
//! follow), a child killed with SIGKILL (reaped, its place freed, a prefork worker replaced), the
//! protocol's `on_process_exit` messages reaching another process after such a kill, and two
//! named listeners.

use crate::harness::*;
use bingfa_net::Model;
use std::net::TcpStream;
use std::time::{Duration, Instant};

pub(crate) fn shutdown(model: Model, edge: bool) {
    let mut srv = TestServer::start(&Spec::new(model, edge, "echo"));
    let pid = srv.pid();
    let mut clients = Vec::new();
    for i in 0..3 {
        let mut c = srv.connect();
        if model.concurrent() || i == 0 {
            c.send("hi");
            c.expect("hi");
        }
        clients.push(c);
        if !model.concurrent() {
            break;
        }
    }
    if model.multi_process() {
        // Finished connections leave no zombie behind.
        drop(clients.pop());
        let end = Instant::now() + Duration::from_secs(5);
        loop {
            let zombies = children_of(pid).iter().filter(|(_, s)| *s == 'Z').count();
            if zombies == 0 {
                break;
            }
            assert!(Instant::now() < end, "{zombies} zombie children");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    let kids: Vec<i32> = children_of(pid).into_iter().map(|(p, _)| p).collect();
    let t = Instant::now();
    let status = srv.stop();
    assert!(status.success(), "exit status {status:?}");
    assert!(
        t.elapsed() < Duration::from_secs(8),
        "shutdown took {:?} (the grace period is 2 s)",
        t.elapsed()
    );
    // In-flight sessions were told (on_shutdown) and closed after flushing.
    for c in &mut clients {
        c.expect("bye shutdown");
        c.expect_closed();
    }
    for k in kids {
        let stat = std::fs::read_to_string(format!("/proc/{k}/stat")).unwrap_or_default();
        assert!(
            stat.is_empty(),
            "child {k} of the server outlived it: {stat}"
        );
    }
    // Nothing listens any more.
    assert!(TcpStream::connect_timeout(&srv.addr, Duration::from_secs(2)).is_err());
}

/// A child killed outright (SIGKILL) is reaped, its place is freed, and under `prefork` a new
/// worker replaces it: the server keeps serving, with no zombie.
pub(crate) fn child_killed(model: Model, edge: bool) {
    if !model.multi_process() {
        return;
    }
    let mut spec = Spec::new(model, edge, "echo");
    spec.max = 1;
    let mut srv = TestServer::start(&spec);
    let pid = srv.pid();
    let mut c = srv.connect();
    c.send("hi");
    c.expect("hi");
    let before: Vec<i32> = children_of(pid).into_iter().map(|(p, _)| p).collect();
    // Under fork the only child serves `c`; under prefork, kill every worker (one serves `c`).
    for &k in &before {
        // SAFETY: signalling processes this test started.
        unsafe { libc::kill(k, libc::SIGKILL) };
    }
    c.expect_closed();
    let end = Instant::now() + Duration::from_secs(10);
    loop {
        let kids = children_of(pid);
        let zombies = kids.iter().filter(|(_, s)| *s == 'Z').count();
        let fresh = kids
            .iter()
            .filter(|(p, s)| *s != 'Z' && !before.contains(p))
            .count();
        let want = if model == Model::Prefork {
            spec.workers
        } else {
            0
        };
        if zombies == 0 && fresh == want {
            break;
        }
        assert!(
            Instant::now() < end,
            "children now {kids:?} (killed {before:?})"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // The killed connection's place (max = 1) is free again, and the server serves.
    let mut d = srv.connect();
    d.send("again");
    d.expect("again");
    drop(d);
    assert!(srv.stop().success());
}

/// A `fork` child or `prefork` worker killed outright: once the parent reaps it, what the
/// protocol's `on_process_exit` returns reaches the other processes' subscribers (chat says
/// its members `left` this way). In-process models lose no process: nothing to check.
pub(crate) fn process_exit_reported(model: Model, edge: bool) {
    if !model.multi_process() {
        return;
    }
    let mut spec = Spec::new(model, edge, "chat");
    spec.workers = 2;
    let mut srv = TestServer::start(&spec);
    let welcome_pid = |c: &mut Client| -> i32 {
        let l = c.line();
        l.strip_prefix("welcome ")
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("{l}"))
    };
    let mut victim = srv.connect();
    let pid = welcome_pid(&mut victim);
    // A watcher in another process (prefork: whichever worker accepts it).
    let mut watcher = (0..40)
        .find_map(|_| {
            let mut w = srv.connect();
            (welcome_pid(&mut w) != pid).then_some(w)
        })
        .expect("every connection landed in the victim's process");
    watcher.send("WATCH EXITS");
    watcher.expect("watching exits");
    // SAFETY: signalling a process of the server this test started.
    unsafe { libc::kill(pid, libc::SIGKILL) };
    watcher.expect(&format!("gone {pid}"));
    victim.expect_closed();
    drop(watcher);
    assert!(srv.stop().success());
}

/// Two listeners with their own service names; the session learns which one it came from.
pub(crate) fn two_listeners(model: Model, edge: bool) {
    let mut spec = Spec::new(model, edge, "echo");
    spec.web = true;
    let mut srv = TestServer::start(&spec);
    let web = srv.web.expect("a web listener was announced");
    assert_ne!(web, srv.addr);
    for _ in 0..2 {
        let mut w = Client::connect(web);
        w.expect("listener 1");
        w.send("via web");
        w.expect("via web");
        drop(w);
        let mut c = srv.connect();
        c.send("via main");
        c.expect("via main");
    }
    assert!(srv.stop().success());
}

/// A `fork`/`prefork` parent killed outright (SIGKILL, no chance to clean up) does not leave
/// its children serving: they get SIGTERM from the kernel and shut down.
pub(crate) fn parent_killed(model: Model, edge: bool) {
    if !model.multi_process() {
        return;
    }
    let mut srv = TestServer::start(&Spec::new(model, edge, "echo"));
    let mut c = srv.connect();
    c.send("hi");
    c.expect("hi");
    let kids: Vec<i32> = children_of(srv.pid()).into_iter().map(|(p, _)| p).collect();
    assert!(!kids.is_empty());
    srv.proc.child_mut().kill().unwrap();
    srv.proc.child_mut().wait().unwrap();
    let end = Instant::now() + Duration::from_secs(10);
    let alive = |k: i32| {
        let stat = std::fs::read_to_string(format!("/proc/{k}/stat")).unwrap_or_default();
        let state = stat.rfind(')').and_then(|i| stat[i + 2..].chars().next());
        !stat.is_empty() && state != Some('Z')
    };
    while kids.iter().any(|&k| alive(k)) && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(20));
    }
    let survivors: Vec<i32> = kids.into_iter().filter(|&k| alive(k)).collect();
    for &k in &survivors {
        // Leave nothing behind even when failing.
        // SAFETY: signalling processes this test started.
        unsafe { libc::kill(k, libc::SIGKILL) };
    }
    assert!(
        survivors.is_empty(),
        "children {survivors:?} outlived their killed parent"
    );
}
