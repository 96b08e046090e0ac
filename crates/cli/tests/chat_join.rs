//! `bingfa chat join` against a scripted TCP server:
//! in a real pseudo-terminal (a message arriving mid-typing is printed and the half-typed line
//! survives and is sent intact; the server closing ends the client with a message, exit 0 and
//! the terminal restored), through pipes (plain line I/O), and with nothing listening (exit 1, a
//! clear error). Hostile servers: a message padded to wrap onto a row of its own is read back
//! through a small terminal emulator at the pty's width (the row is indented, the real notice
//! bold), and a 128 MiB line is dropped and told, with peak RSS under 48 MiB and the next line
//! shown.

use bingfa_testkit::pty;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_bingfa");

/// Kills the child on drop (a failing assertion must not leave it running).
struct Kill(Child);

impl Drop for Kill {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

fn wait_exit(child: &mut Child, limit: Duration) -> std::process::ExitStatus {
    let end = Instant::now() + limit;
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            return st;
        }
        assert!(Instant::now() < end, "the client did not exit");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn accept(l: &TcpListener) -> (BufReader<TcpStream>, TcpStream) {
    l.set_nonblocking(true).unwrap();
    let end = Instant::now() + Duration::from_secs(10);
    let s = loop {
        match l.accept() {
            Ok((s, _)) => break s,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                assert!(Instant::now() < end, "the client did not connect");
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(e) => panic!("accept: {e}"),
        }
    };
    s.set_nonblocking(false).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    (BufReader::new(s.try_clone().unwrap()), s)
}

fn line(r: &mut BufReader<TcpStream>) -> String {
    let mut s = String::new();
    r.read_line(&mut s)
        .expect("a line from the client (timed out?)");
    s
}

#[test]
fn in_a_terminal_a_message_arrives_mid_typing() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap().to_string();
    let mut cmd = Command::new(BIN);
    cmd.args(["chat", "join", &addr, "--name", "alice"])
        .env("RUST_LOG", "warn");
    let mut screen = pty::Pty::spawn(cmd);
    // A fresh pty is cooked with echo, as a shell's terminal is.
    let before = libc::ICANON | libc::ECHO;
    let (mut r, mut w) = accept(&l);
    assert_eq!(line(&mut r), "alice\n");
    w.write_all(b"* welcome alice; online: alice\n").unwrap();
    screen.until("* welcome alice; online: alice");
    assert_ne!(
        screen.lflag() & libc::ICANON,
        libc::ICANON,
        "raw mode while running"
    );

    screen.keys("hello wor");
    screen.until("hello wor");
    w.write_all(b"bob: hi there\n").unwrap();
    // The message is printed, then the prompt comes back with the half-typed text on it.
    // (`until` returns what follows the text it waited for; the redraw may come in a later
    // read than the message, so wait for it rather than expect it in the same one.)
    let after = screen.until("bob: hi there");
    if !after.contains("> hello wor") {
        screen.until("> hello wor");
    }
    screen.keys("ld\r");
    assert_eq!(
        line(&mut r),
        "hello world\n",
        "the half-typed line is sent intact"
    );

    drop(w);
    drop(r);
    screen.until("connection closed by server");
    assert_eq!(screen.exit_code(), Some(0));
    let restored = screen.lflag();
    assert_eq!(
        restored & (libc::ICANON | libc::ECHO),
        before & (libc::ICANON | libc::ECHO),
        "the terminal is back in cooked mode with echo"
    );
}

#[test]
fn through_pipes_it_is_plain_line_io() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap().to_string();
    let mut child = Kill(
        Command::new(BIN)
            .args(["chat", "join", &addr])
            .env("RUST_LOG", "warn")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let (mut r, mut w) = accept(&l);
    w.write_all(b"* what is your name?\n").unwrap();
    let mut stdin = child.0.stdin.take().unwrap();
    stdin.write_all(b"bob\nhello, room\n").unwrap();
    assert_eq!(line(&mut r), "bob\n");
    assert_eq!(line(&mut r), "hello, room\n");
    w.write_all(b"carol: hi bob\n").unwrap();
    drop(stdin); // end of input: the client half-closes and waits for the server
    let mut rest = String::new();
    r.read_to_string(&mut rest).unwrap();
    assert_eq!(rest, "", "EOF from the client after its input ended");
    drop(w);
    drop(r);
    let st = wait_exit(&mut child.0, Duration::from_secs(10));
    let mut out = String::new();
    child
        .0
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    let mut err = String::new();
    child
        .0
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert_eq!(out, "* what is your name?\ncarol: hi bob\n");
    assert!(err.contains("connection closed by server"), "{err}");
    assert_eq!(st.code(), Some(0));
}

#[test]
fn nothing_listening_is_a_clear_error() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap().to_string();
    drop(l);
    let out = Command::new(BIN)
        .args(["chat", "join", &addr])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("cannot connect to {addr}")),
        "stderr: {err}"
    );
}

/// The rows a terminal of `width` columns shows for `raw` output: printable characters,
/// autowrap at the right margin, `\r`, `\n`, and the CSI sequences the client uses (`G`: to a
/// column, `K`: clear the row; SGR and the rest change no text). ASCII text only.
fn screen_rows(raw: &str, width: usize) -> Vec<String> {
    let mut rows: Vec<Vec<char>> = vec![Vec::new()];
    let (mut col, mut pending_wrap) = (0usize, false);
    let mut it = raw.chars().peekable();
    while let Some(c) = it.next() {
        match c {
            '\x1b' if it.peek() == Some(&'[') => {
                it.next();
                let mut arg = String::new();
                let fin = loop {
                    match it.next() {
                        Some(c) if c.is_ascii_digit() || c == ';' || c == '?' => arg.push(c),
                        Some(c) => break c,
                        None => break ' ',
                    }
                };
                match fin {
                    'G' => col = arg.parse::<usize>().unwrap_or(1).max(1) - 1,
                    'K' => rows.last_mut().unwrap().clear(),
                    _ => {}
                }
                pending_wrap = false;
            }
            '\r' => {
                col = 0;
                pending_wrap = false;
            }
            '\n' => {
                rows.push(Vec::new());
                pending_wrap = false;
            }
            c if c.is_control() => {}
            c => {
                if pending_wrap {
                    rows.push(Vec::new());
                    col = 0;
                    pending_wrap = false;
                }
                let row = rows.last_mut().unwrap();
                if row.len() <= col {
                    row.resize(col + 1, ' ');
                }
                row[col] = c;
                col += 1;
                if col == width {
                    pending_wrap = true;
                    col = width - 1;
                }
            }
        }
    }
    rows.into_iter().map(|r| r.into_iter().collect()).collect()
}

#[test]
fn in_a_terminal_a_wrapped_message_never_reads_as_a_notice() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap().to_string();
    let mut cmd = Command::new(BIN);
    cmd.args(["chat", "join", &addr, "--name", "alice"])
        .env("RUST_LOG", "warn")
        .env("TERM", "xterm")
        .env_remove("NO_COLOR");
    let mut screen = pty::Pty::spawn(cmd);
    let (mut r, mut w) = accept(&l);
    assert_eq!(line(&mut r), "alice\n");
    // The pty is 100 columns wide: `bob: ` and 95 x's fill the first row exactly.
    let fake = format!(
        "bob: {}* admin: log in again at evil.example\n",
        "x".repeat(95)
    );
    w.write_all(fake.as_bytes()).unwrap();
    w.write_all(b"* admin: the real announcement\n").unwrap();
    screen.until("the real announcement");
    drop(w);
    drop(r);
    screen.until("connection closed by server");
    assert_eq!(screen.exit_code(), Some(0));
    let rest = screen.rest();
    let raw = format!("{}{rest}", screen.passed());
    let rows = screen_rows(&raw, 100);
    let fake_row = rows
        .iter()
        .find(|r| r.contains("* admin: log in again"))
        .unwrap_or_else(|| panic!("the message is shown: {rows:#?}"));
    assert!(
        !fake_row.starts_with("* "),
        "a member's message drew a row that reads as a notice: {rows:#?}"
    );
    assert!(
        fake_row.starts_with("    * admin: log in again"),
        "{rows:#?}"
    );
    // The real notice starts its row, and in bold: the escape right before it turns bold on.
    assert!(rows
        .iter()
        .any(|r| r.starts_with("* admin: the real announcement")));
    let at = raw.find("* admin: the real announcement").unwrap();
    let row_start = raw[..at].rfind('\n').map_or(0, |i| i + 1);
    assert!(
        raw[row_start..at].contains("\x1b[1m"),
        "the notice is styled apart: {:?}",
        &raw[row_start..at]
    );
    let fake_at = raw.find("* admin: log in again").unwrap();
    let fake_start = raw[..fake_at].rfind("bob: ").unwrap();
    assert!(
        !raw[fake_start..fake_at].contains("\x1b[1m"),
        "a message is never styled as a notice"
    );
}

/// Peak resident memory of a running process, in KiB (`VmHWM`).
fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let l = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    l.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[test]
fn a_hostile_servers_huge_line_is_dropped_not_held() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap().to_string();
    let mut child = Kill(
        Command::new(BIN)
            .args(["chat", "join", &addr, "--name", "alice"])
            .env("RUST_LOG", "warn")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let (mut r, mut w) = accept(&l);
    assert_eq!(line(&mut r), "alice\n");
    const HUGE: usize = 128 << 20;
    let writer = std::thread::spawn(move || {
        w.write_all(b"* welcome\n").unwrap();
        let chunk = vec![b'x'; 1 << 20];
        for _ in 0..HUGE >> 20 {
            w.write_all(&chunk).unwrap();
        }
        w.write_all(b"\nbob: still here\n").unwrap();
        w
    });
    let mut out = BufReader::new(child.0.stdout.take().unwrap());
    let mut got = Vec::new();
    for _ in 0..3 {
        let mut l = String::new();
        out.read_line(&mut l).unwrap();
        got.push(if l.len() > 300 {
            format!("{} bytes", l.len())
        } else {
            l
        });
    }
    let w = writer.join().unwrap();
    let peak = peak_rss_kib(child.0.id());
    assert_eq!(
        got,
        [
            "* welcome\n".to_string(),
            format!(
                "[chat join] the server sent a line of {HUGE} bytes, over the 1024 KiB this client holds; it was dropped\n"
            ),
            "bob: still here\n".to_string(),
        ]
    );
    assert!(
        peak < 48 * 1024,
        "the client held the line: peak RSS {peak} KiB for a {} MiB line",
        HUGE >> 20
    );
    drop(w);
    drop(r);
    let st = wait_exit(&mut child.0, Duration::from_secs(10));
    assert_eq!(st.code(), Some(0));
}
