//! The faces of a server beyond one TCP listener, and the hub seen from outside: publishing
//! from outside any session (`Server::injector`, in the one order), a refusal per listener, a
//! Unix-domain listener (0600, `SO_PEERCRED` in `ConnInfo`, a stale file replaced, a live one
//! refused, the file removed at exit), a Unix-domain connection served while every TCP place is
//! taken (`max_local`, its own budget), and a subscriber that never reads again evicted when its
//! inbox overflows (seen by a watcher through the hub's `on_overflow` publication).

use crate::harness::{Client, Spec, TestServer};
use crate::protocols::Echo;
use bingfa_net::{Config, Model};
use std::io::{BufRead, BufReader, Read, Write};
use std::sync::Arc;
use std::time::Duration;

/// Publishing from outside any session (`Server::injector`) joins the room's one order: under
/// fork/prefork through the relay, elsewhere through the shared hub.
pub(crate) fn injector(model: Model, edge: bool) {
    let mut spec = Spec::new(model, edge, "chat");
    spec.inject = true;
    let mut srv = TestServer::start(&spec);
    let mut inject = |line: &str| {
        let stdin = srv.stdin.as_mut().unwrap();
        stdin.write_all(format!("{line}\n").as_bytes()).unwrap();
        stdin.flush().unwrap();
    };
    if !model.concurrent() {
        let mut a = Client::connect(srv.addr);
        assert!(a.line().starts_with("welcome "));
        inject("from outside");
        a.expect("from outside");
        drop(a);
        assert!(srv.stop().success());
        return;
    }
    let mut cs: Vec<Client> = (0..3).map(|_| Client::connect(srv.addr)).collect();
    for c in &mut cs {
        assert!(c.line().starts_with("welcome "));
    }
    cs[0].send("a1");
    cs[1].expect("a1");
    inject("announce 1");
    cs[1].expect("announce 1");
    cs[0].send("a2");
    cs[1].expect("a2");
    cs[2].expect("a1");
    cs[2].expect("announce 1");
    cs[2].expect("a2");
    cs[0].expect("announce 1");
    drop(cs);
    assert!(srv.stop().success());
}

/// Each listener's refusal is its own (`Protocol::refusal_on`): chat's line port and web page.
pub(crate) fn refusal_per_listener(model: Model, edge: bool) {
    let mut spec = Spec::new(model, edge, "echo");
    spec.web = true;
    spec.max = 1;
    let mut srv = TestServer::start(&spec);
    let mut c = srv.connect();
    c.send("in");
    c.expect("in");
    let mut w = Client::connect(srv.web.unwrap());
    w.expect("busy (web)");
    w.expect_closed();
    let mut d = srv.connect();
    d.expect("busy");
    d.expect_closed();
    drop(c);
    assert!(srv.stop().success());
}

/// A Unix-domain listener: 0600, the peer's credentials in `ConnInfo`, a stale file replaced,
/// a live one refused, the file removed when the server stops.
pub(crate) fn unix_listener(model: Model, edge: bool) {
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::net::{UnixListener, UnixStream};
    let path = std::env::temp_dir().join(format!(
        "bingfa-net-unix-{}-{model}-{edge}.sock",
        std::process::id()
    ));
    let _ = std::fs::remove_file(&path);
    drop(UnixListener::bind(&path).unwrap()); // a stale socket file: nobody listens
    let mut spec = Spec::new(model, edge, "echo");
    spec.unix = path.to_string_lossy().into_owned();
    let mut srv = TestServer::start(&spec);
    let mode = std::fs::metadata(&path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    for _ in 0..2 {
        let s = UnixStream::connect(&path).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut r = BufReader::new(s.try_clone().unwrap());
        let mut line = String::new();
        r.read_line(&mut line).unwrap();
        // SAFETY: getuid has no preconditions.
        let uid = unsafe { libc::getuid() };
        assert_eq!(
            line,
            format!("listener 1 pid {} uid {uid}\n", std::process::id())
        );
        (&s).write_all(b"over unix\n").unwrap();
        line.clear();
        r.read_line(&mut line).unwrap();
        assert_eq!(line, "over unix\n");
    }
    // TCP still works beside it.
    let mut c = srv.connect();
    c.send("tcp");
    c.expect("tcp");
    // A second server cannot take a live socket's path.
    let mut config = Config::new("echo", "127.0.0.1:0".parse().unwrap());
    config.model = Model::Poll;
    config.unix.push(("admin".into(), path.clone()));
    assert!(matches!(
        bingfa_net::Server::bind(config, Echo),
        Err(bingfa_net::Error::BindUnix { .. })
    ));
    drop(c);
    assert!(srv.stop().success());
    assert!(!path.exists(), "the socket file is removed on exit");
}

/// Unix-domain connections (an admin socket) have a budget of their own (`max_local`): with
/// every TCP place taken, one is still served; nor does it take a TCP client's place.
pub(crate) fn unix_outside_the_budget(model: Model, edge: bool) {
    use std::os::unix::net::UnixStream;
    if !model.concurrent() {
        return; // one connection at a time: the admin tool waits its turn like anyone
    }
    let path = std::env::temp_dir().join(format!(
        "bingfa-net-budget-{}-{model}-{edge}.sock",
        std::process::id()
    ));
    let mut spec = Spec::new(model, edge, "echo");
    spec.max = 1;
    spec.unix = path.to_string_lossy().into_owned();
    let mut srv = TestServer::start(&spec);
    let mut a = srv.connect();
    a.send("a");
    a.expect("a");
    let mut b = srv.connect();
    b.expect("busy");
    b.expect_closed();
    let s = UnixStream::connect(&path).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut r = BufReader::new(s.try_clone().unwrap());
    let mut line = String::new();
    r.read_line(&mut line).unwrap();
    assert!(line.starts_with("listener 1 pid "), "{line:?}");
    (&s).write_all(b"admin\n").unwrap();
    line.clear();
    r.read_line(&mut line).unwrap();
    assert_eq!(line, "admin\n");
    // It took no TCP place: once `a` leaves, a TCP newcomer gets in while it stays.
    drop(a);
    let end = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let mut c = srv.connect();
        // A refused client may find its write cut short: only the answer matters.
        let _ = c.w.write_all(b"c\n");
        if c.r.read_line(&mut line).is_ok() && std::mem::take(&mut line) == "c\n" {
            break;
        }
        assert!(
            std::time::Instant::now() < end,
            "the freed place never came back"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    drop(s);
    assert!(srv.stop().success());
}

/// A subscriber that stops reading is evicted when its inbox overflows, even though its
/// output sits above high water (it never reads again), and is told so where it fits.
pub(crate) fn slow_receiver_evicted(model: Model, edge: bool) {
    if !model.concurrent() {
        return;
    }
    let mut spec = Spec::new(model, edge, "chat");
    spec.tight = true;
    spec.workers = spec.workers.max(3);
    let mut srv = TestServer::start(&spec);
    let mut slow = srv.connect();
    let mut watch = srv.connect();
    let mut sender = srv.connect();
    for c in [&mut slow, &mut watch, &mut sender] {
        assert!(c.line().starts_with("welcome "));
    }
    watch.send("WATCH");
    watch.expect("watching");
    // Publish far more than the slow client's kernel buffers, high water and 1 MiB inbox
    // hold; it reads nothing meanwhile. Stop as soon as the watcher sees the eviction.
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let d2 = done.clone();
    let mut w = sender.w.try_clone().unwrap();
    let flood = std::thread::spawn(move || {
        let line = format!("{}\n", "y".repeat(999));
        for _ in 0..40_000 {
            if d2.load(std::sync::atomic::Ordering::Relaxed)
                || w.write_all(line.as_bytes()).is_err()
            {
                break;
            }
        }
    });
    watch
        .r
        .get_ref()
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    watch.expect("evicted");
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    flood.join().unwrap();
    // The slow client now finds its connection closed after what it was sent.
    let mut sink = Vec::new();
    let r = slow.r.read_to_end(&mut sink);
    assert!(r.is_ok() || r.unwrap_err().kind() == std::io::ErrorKind::ConnectionReset);
    drop((slow, watch, sender));
    assert!(srv.stop().success());
}
