//! `bingfa chat join` against a scripted TCP server:
//! in a real pseudo-terminal (a message arriving mid-typing is printed and the half-typed line
//! survives and is sent intact; the server closing ends the client with a message, exit 0 and
//! the terminal restored), through pipes (plain line I/O), and with nothing listening.

#[path = "support/pty.rs"]
mod pty;

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
