//! Issue 19's login and permission items that need the real binary: the resident memory of a
//! server after many logins (one argon2 block per checking thread), per-address bans after
//! failed logins (one count across processes), a flood of guesses from one address not
//! starving another's login, the users file's refusals, timing that does not tell unknown users
//! from known ones, and hidden names on every face of `bingfa serve`. The login rules of one
//! connection, the upload-only anonymous mode and hidden names in FTP need no real client:
//! `crates/ftp/tests/auth.rs` and `perm.rs`, on the rig.

use super::*;

/// A control connection from a chosen local address, reading replies line by line.
struct Raw {
    r: BufReader<TcpStream>,
    w: TcpStream,
}

impl Raw {
    fn from(ip: &str, to: SocketAddr) -> Raw {
        let s = super::security::connect_from(ip, to);
        Raw {
            r: BufReader::new(s.try_clone().unwrap()),
            w: s,
        }
    }
    /// The next line without CRLF; "" at EOF or reset.
    fn line(&mut self) -> String {
        let mut l = String::new();
        match self.r.read_line(&mut l) {
            Ok(_) => l.trim_end_matches(['\r', '\n']).to_string(),
            Err(_) => String::new(),
        }
    }
    fn cmd(&mut self, c: &str) -> String {
        if self.w.write_all(format!("{c}\r\n").as_bytes()).is_err() {
            return String::new();
        }
        self.line()
    }
    fn closed(&mut self) -> bool {
        self.line().is_empty()
    }
}

const BANNED: &str = "421 Too many failed logins from your address, try again later.";

/// Resident set sizes (KiB) of `pid` and its descendants (prefork's workers).
fn rss_tree(pid: i32) -> Vec<(i32, u64)> {
    let mut out = Vec::new();
    let mut todo = vec![pid];
    while let Some(p) = todo.pop() {
        let Ok(status) = std::fs::read_to_string(format!("/proc/{p}/status")) else {
            continue;
        };
        let kib = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0);
        out.push((p, kib));
        if let Ok(tasks) = std::fs::read_dir(format!("/proc/{p}/task")) {
            for t in tasks.flatten() {
                if let Ok(c) = std::fs::read_to_string(t.path().join("children")) {
                    todo.extend(c.split_whitespace().filter_map(|x| x.parse::<i32>().ok()));
                }
            }
        }
    }
    out
}

/// 40 logins, good and failed (wrong password, unknown user), four at a time: no process of
/// the server grows by more than 64 MiB. Under `fork` each session is a process of its own
/// that ends with it (at most `max_failures` checks), so there is no long-lived process to
/// grow; the others are measured, every process of them.
pub(crate) fn memory_stays_bounded(model: Model, edge: bool) {
    let tree = Tree::new("rss");
    let srv = Server::start(
        model,
        edge,
        &tree,
        &["--login-delay-ms", "0", "--ban-after", "0"],
    );
    // One anonymous login first: the session machinery is warm, no password checked yet.
    let mut c = srv.control();
    c.greeting();
    c.login("anonymous", "x");
    drop(c);
    std::thread::sleep(Duration::from_millis(200));
    let idle = rss_tree(srv.pid());
    let addr = srv.addr;
    let clients: Vec<_> = (0..4)
        .map(|t| {
            std::thread::spawn(move || {
                for i in 0..10 {
                    let mut c = Control::connect(addr);
                    c.greeting();
                    let (user, pass, want) = match (t + i) % 3 {
                        0 => ("ann", PASSWORD, "230 Login successful."),
                        1 => ("ann", "wrong", "530 Login incorrect."),
                        _ => ("nobody", "wrong", "530 Login incorrect."),
                    };
                    assert_eq!(
                        c.cmd(&format!("USER {user}")),
                        "331 Please specify the password."
                    );
                    assert_eq!(c.cmd(&format!("PASS {pass}")), want);
                }
            })
        })
        .collect();
    for c in clients {
        c.join().unwrap();
    }
    std::thread::sleep(Duration::from_millis(200));
    let after = rss_tree(srv.pid());
    for (pid, kib) in &after {
        let before = idle.iter().find(|(p, _)| p == pid).map_or(0, |x| x.1);
        let grown = kib.saturating_sub(before);
        assert!(
            grown < 64 * 1024,
            "{model}: process {pid} grew from {before} KiB to {kib} KiB over 40 logins"
        );
        eprintln!("{model}: process {pid}: {before} KiB idle, {kib} KiB after 40 logins");
    }
}

/// Failed logins from one address add up across its connections (and, under fork and
/// prefork, across processes): the 4th bans it for 3 s, its next login and its new
/// connections get 421 and are closed, another address still gets in; after the ban it may
/// log in again, and a repeat ban lasts twice as long.
pub(crate) fn bans(model: Model, edge: bool) {
    let tree = Tree::new("ban");
    let srv = Server::start(
        model,
        edge,
        &tree,
        &[
            "--login-delay-ms",
            "0",
            "--ban-after",
            "4",
            "--ban-time",
            "3",
        ],
    );
    let fail = |c: &mut Raw| {
        assert_eq!(c.cmd("USER ann"), "331 Please specify the password.");
        c.cmd("PASS wrong")
    };
    let mut c = Raw::from("127.0.0.1", srv.addr);
    assert_eq!(c.line(), "220 bingfa FTP server ready.");
    for _ in 0..3 {
        assert_eq!(fail(&mut c), "530 Login incorrect.");
    }
    assert_eq!(c.line(), "421 Too many failed logins, closing.");
    assert!(c.closed());
    let mut c = Raw::from("127.0.0.1", srv.addr);
    assert_eq!(c.line(), "220 bingfa FTP server ready.");
    // The 4th failure is answered as any other; it bans the address.
    assert_eq!(fail(&mut c), "530 Login incorrect.");
    let at = Instant::now();
    assert_eq!(c.cmd("USER ann"), "331 Please specify the password.");
    assert_eq!(c.cmd(&format!("PASS {PASSWORD}")), BANNED);
    assert!(c.closed());
    let mut c = Raw::from("127.0.0.1", srv.addr);
    assert_eq!(c.line(), BANNED);
    assert!(c.closed());
    if model != Model::Iterative {
        let mut other = Raw::from("127.0.0.2", srv.addr);
        assert_eq!(other.line(), "220 bingfa FTP server ready.");
        assert_eq!(other.cmd("USER ann"), "331 Please specify the password.");
        assert_eq!(
            other.cmd(&format!("PASS {PASSWORD}")),
            "230 Login successful."
        );
    }
    std::thread::sleep(Duration::from_millis(3300).saturating_sub(at.elapsed()));
    let mut c = Raw::from("127.0.0.1", srv.addr);
    assert_eq!(c.line(), "220 bingfa FTP server ready.");
    assert_eq!(c.cmd("USER ann"), "331 Please specify the password.");
    assert_eq!(c.cmd(&format!("PASS {PASSWORD}")), "230 Login successful.");
    drop(c);
    // Banned again: for 6 s this time, so still after 4.
    let mut c = Raw::from("127.0.0.1", srv.addr);
    assert_eq!(c.line(), "220 bingfa FTP server ready.");
    for _ in 0..3 {
        assert_eq!(fail(&mut c), "530 Login incorrect.");
    }
    drop(c);
    let mut c = Raw::from("127.0.0.1", srv.addr);
    assert_eq!(c.line(), "220 bingfa FTP server ready.");
    assert_eq!(fail(&mut c), "530 Login incorrect.");
    drop(c);
    std::thread::sleep(Duration::from_secs(4));
    let mut c = Raw::from("127.0.0.1", srv.addr);
    assert_eq!(c.line(), BANNED, "the repeat ban was not doubled");
}

/// 200 connections from 127.0.0.1 guessing passwords as fast as they are answered (bans off,
/// no per-address connection limit): a correct login from 127.0.0.2 takes under 200 ms at the
/// median and never over 1 s (the bound issue 19 demands). `iterative` serves one connection
/// at a time, so any flood holds it whole: skipped there.
pub(crate) fn a_flood_does_not_starve_others(model: Model, edge: bool) {
    let tree = Tree::new("flood");
    let srv = Server::start(
        model,
        edge,
        &tree,
        &[
            "--ban-after",
            "0",
            "--max-per-ip",
            "0",
            "--login-delay-ms",
            "100",
        ],
    );
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let guesses = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let addr = srv.addr;
    let flood: Vec<_> = (0..200)
        .map(|_| {
            let (stop, guesses) = (stop.clone(), guesses.clone());
            std::thread::spawn(move || {
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let mut c = Raw::from("127.0.0.1", addr);
                    if c.line().is_empty() {
                        continue;
                    }
                    loop {
                        if stop.load(std::sync::atomic::Ordering::Relaxed)
                            || c.cmd("USER ann").is_empty()
                        {
                            break;
                        }
                        let r = c.cmd("PASS guess");
                        guesses.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        if r != "530 Login incorrect." {
                            break;
                        }
                    }
                }
            })
        })
        .collect();
    // Let the flood fill the server's queue first.
    std::thread::sleep(Duration::from_secs(2));
    // Rounds of 9 logins; one within the bound passes (a shared test machine may stall any
    // one round), three that are not fail.
    let mut rounds = Vec::new();
    let good = (0..3).any(|_| {
        let mut times = Vec::new();
        for _ in 0..9 {
            let mut c = Raw::from("127.0.0.2", addr);
            assert_eq!(c.line(), "220 bingfa FTP server ready.");
            assert_eq!(c.cmd("USER ann"), "331 Please specify the password.");
            let at = Instant::now();
            assert_eq!(c.cmd(&format!("PASS {PASSWORD}")), "230 Login successful.");
            times.push(at.elapsed());
            drop(c);
            std::thread::sleep(Duration::from_millis(100));
        }
        times.sort();
        let ok = times[times.len() / 2] < Duration::from_millis(200)
            && times[times.len() - 1] < Duration::from_secs(1);
        rounds.push(times);
        ok
    });
    let during = guesses.load(std::sync::atomic::Ordering::Relaxed);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for t in flood {
        t.join().unwrap();
    }
    eprintln!("{model}: correct logins during the flood ({during} guesses): {rounds:?}");
    assert!(
        during >= 20,
        "{model}: the flood made only {during} guesses"
    );
    assert!(
        good,
        "{model}: logins from another address took {rounds:?} during the flood"
    );
}

/// A listing (NLST -a) over the data connection.
fn listing(c: &mut Control, cmd: &str) -> String {
    let s = c.passive();
    let first = c.cmd(cmd);
    assert!(first.starts_with("150"), "{cmd}: {first}");
    let mut d = c.data(s);
    let mut v = Vec::new();
    d.read_to_end(&mut v).unwrap();
    assert_eq!(c.line(), "226 Transfer complete.");
    String::from_utf8_lossy(&v).into_owned()
}

/// `bingfa serve --root DIR`: what HTTP hides, FTP hides too; `--hidden` shows both.
#[test]
fn serve_hides_dotfiles_on_every_face() {
    let tree = Tree::new("serve-hidden");
    std::fs::write(tree.path("pub/.env"), "SECRET=1\n").unwrap();
    for hidden in [false, true] {
        let mut cmd = Command::new(BIN);
        cmd.args(["serve", "--root"]).arg(tree.path("pub"));
        for (flag, v) in [
            ("--http-bind", "127.0.0.1:0"),
            ("--chat-bind", "127.0.0.1:0"),
            ("--web-bind", "127.0.0.1:0"),
            ("--ftp-bind", "127.0.0.1:0"),
            ("--ftp-anonymous", "read"),
            ("--model", "epoll"),
        ] {
            cmd.args([flag, v]);
        }
        if hidden {
            cmd.arg("--hidden");
        }
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let out = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for l in BufReader::new(out).lines().map_while(Result::ok) {
                if let Some((svc, a)) = l.split_once(" listening on ") {
                    let _ = tx.send((svc.to_string(), a.parse::<SocketAddr>().unwrap()));
                }
            }
        });
        let mut at = std::collections::HashMap::new();
        while at.len() < 4 {
            let (svc, a) = rx
                .recv_timeout(Duration::from_secs(30))
                .expect("serve's ready lines");
            at.insert(svc, a);
        }
        let mut h = transport::tcp(at["http"]);
        write!(
            h,
            "GET /.env HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut resp = String::new();
        let _ = h.read_to_string(&mut resp);
        let status = if hidden {
            "HTTP/1.1 200"
        } else {
            "HTTP/1.1 404"
        };
        assert!(resp.starts_with(status), "{resp}");
        let mut c = Control::connect(at["ftp"]);
        c.greeting();
        c.login("anonymous", "guest@");
        assert_eq!(listing(&mut c, "NLST -a").contains(".env"), hidden);
        let r = c.cmd("SIZE .env");
        assert_eq!(r == "550 No such file or directory.", !hidden, "{r}");
        // SAFETY: our own child.
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        let end = Instant::now() + Duration::from_secs(20);
        while child.try_wait().unwrap().is_none() {
            if Instant::now() > end {
                let _ = child.kill();
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.wait();
    }
}

/// `bingfa ftp serve` with `users` as the users file (mode `mode`), `extra` flags: whether it
/// started (then it is stopped here) and its stderr, or its exit code.
fn try_serve(tree: &Tree, users: &str, mode: u32, extra: &[&str]) -> (Result<(), i32>, String) {
    use std::os::unix::fs::PermissionsExt;
    let path = tree.path("users.toml");
    std::fs::write(&path, users).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
    let mut child = Command::new(BIN)
        .args(["ftp", "serve", "--bind", "127.0.0.1:0", "--users"])
        .arg(&path)
        .arg("--root")
        .arg(tree.path("pub"))
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut err = child.stderr.take().unwrap();
    let errs = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let mut line = String::new();
    let _ = out.read_line(&mut line);
    let started = line.starts_with("ftp listening on ");
    if started {
        // SAFETY: our own child.
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    }
    let st = child.wait().unwrap();
    let e = errs.join().unwrap();
    if started {
        assert!(st.success(), "{e}");
        return (Ok(()), e);
    }
    (Err(st.code().unwrap_or(-1)), e)
}

fn user(name: &str, hash: &str, home: &Path) -> String {
    format!(
        "[[user]]\nname = \"{name}\"\npassword = \"{hash}\"\nhome = \"{}\"\n",
        home.display()
    )
}

#[test]
fn users_file_refusals() {
    let tree = Tree::new("usersfile");
    let home = tree.path("ann");
    let good = user("ann", hash(), &home);
    let refused = |users: &str, extra: &[&str], want: &str| {
        let (r, err) = try_serve(&tree, users, 0o600, extra);
        assert_eq!(r, Err(1), "{users}: {err}");
        assert!(err.contains(want), "wanted {want:?} in: {err}");
    };
    // Another algorithm: well-formed, but could never log in. Named with its line.
    let pbkdf2 = "$pbkdf2-sha256$i=600000$c2FsdHNhbHQ$YWJjZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXowMTIzNDU";
    refused(
        &format!("{good}\n{}", user("bob", pbkdf2, &home)),
        &[],
        "line 8: user \"bob\": the password is not a usable argon2 hash (algorithm \"pbkdf2-sha256\"",
    );
    refused(
        &user("", hash(), &home),
        &[],
        "line 2: a user with an empty name",
    );
    let huge = "$argon2id$v=19$m=4194304,t=1000,p=1$c2FsdHNhbHQ$YWJjZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXowMTIzNDU";
    refused(&user("ann", huge, &home), &[], "past the bounds");
    // A user anonymous access would shadow: refused while it is on, fine when off.
    for name in ["ftp", "Anonymous"] {
        let users = format!("{good}\n{}", user(name, hash(), &home));
        refused(
            &users,
            &["--anonymous", "read"],
            &format!("user {name:?} is shadowed by anonymous access"),
        );
        let (r, err) = try_serve(&tree, &users, 0o600, &["--anonymous", "off"]);
        assert_eq!(r, Ok(()), "{err}");
    }
    // Readable by others: starts, with a warning naming the mode.
    let warned = "is readable by others than its owner";
    let (r, err) = try_serve(&tree, &good, 0o600, &[]);
    assert!(r.is_ok() && !err.contains(warned), "{err}");
    let (r, err) = try_serve(&tree, &good, 0o644, &[]);
    assert!(
        r.is_ok() && err.contains(warned) && err.contains("mode 644"),
        "{err}"
    );
}

/// With the file's hashes at RFC 9106's second recommended set (64 MiB, t=3, p=4), a wrong
/// password for a known user and any password for an unknown one take as long (medians of
/// interleaved samples within a factor of 2, for a loaded machine; before, the unknown user's
/// check used the default 19 MiB, t=2: about 5 times faster).
#[test]
fn unknown_users_take_as_long_as_known_ones() {
    let tree = Tree::new("timing");
    let h = bingfa_ftp::users::hash_with(PASSWORD, 65536, 3, 4);
    std::fs::write(tree.path("users.toml"), user("ann", &h, &tree.path("ann"))).unwrap();
    let srv = Server::start(
        Model::Epoll,
        false,
        &tree,
        &["--login-delay-ms", "0", "--ban-after", "0"],
    );
    let time = |name: &str| {
        let mut c = srv.control();
        c.greeting();
        assert_eq!(
            c.cmd(&format!("USER {name}")),
            "331 Please specify the password."
        );
        let at = Instant::now();
        assert_eq!(c.cmd("PASS wrong"), "530 Login incorrect.");
        at.elapsed()
    };
    let (mut known, mut unknown) = (Vec::new(), Vec::new());
    for _ in 0..11 {
        known.push(time("ann"));
        unknown.push(time("nobody"));
    }
    known.sort();
    unknown.sort();
    let (k, u) = (known[5].as_secs_f64(), unknown[5].as_secs_f64());
    eprintln!("known user, wrong password: {known:?}; unknown user: {unknown:?}");
    assert!(
        u / k > 0.5 && u / k < 2.0,
        "median {u:.3} s for an unknown user, {k:.3} s for a known one"
    );
}
