//! What the binary says when something goes wrong, and how its logs look: an error's causes
//! are each said once, on one `error: …` line, with exit status 1; log lines carry colour
//! only on a terminal, and never with `NO_COLOR`.

use bingfa_testkit::pty;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_bingfa");

/// A loopback port nothing listens on (bound, then released).
fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

#[test]
fn an_errors_causes_are_said_once_on_one_line() {
    let port = closed_port();
    let out = Command::new(BIN)
        .args(["ftp", "ls", &format!("ftp://127.0.0.1:{port}/")])
        .env("RUST_BACKTRACE", "1") // a backtrace is for panics, not for a refused connection
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with(&format!("error: connecting to 127.0.0.1:{port}: ")),
        "{err}"
    );
    assert_eq!(err.matches("Connection refused").count(), 1, "{err}");
    assert!(
        !err.contains("Caused by") && !err.contains("backtrace"),
        "{err}"
    );
}

/// `cmd` made into `bingfa http serve` on a free port, logging at info.
fn http_serve_logging(mut cmd: Command) -> Command {
    let dir = std::env::temp_dir();
    cmd.args(["http", "serve", "--bind", "127.0.0.1:0", "--root"])
        .arg(&dir)
        .env("RUST_LOG", "info");
    cmd
}

#[test]
fn logs_to_a_pipe_have_no_colour_codes() {
    let mut child = http_serve_logging(Command::new(BIN))
        .env_remove("NO_COLOR")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let err = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut l = String::new();
        let _ = BufReader::new(err).read_line(&mut l);
        let _ = tx.send(l);
    });
    let line = rx.recv_timeout(Duration::from_secs(20));
    let _ = child.kill();
    let _ = child.wait();
    let line = line.expect("a log line within 20 s");
    assert!(line.contains("starting http server"), "{line:?}");
    assert!(!line.contains('\u{1b}'), "colour codes in a pipe: {line:?}");
}

#[test]
fn logs_on_a_terminal_are_coloured_unless_no_color() {
    for no_color in [false, true] {
        let mut cmd = http_serve_logging(Command::new(BIN));
        if no_color {
            cmd.env("NO_COLOR", "1");
        } else {
            cmd.env_remove("NO_COLOR");
        }
        let mut p = pty::Pty::spawn(cmd);
        let after = p.until("http listening on ");
        let screen = format!("{}{after}", p.passed());
        let _ = p.child.kill();
        assert!(screen.contains("starting http server"), "{screen:?}");
        assert_eq!(
            screen.contains('\u{1b}'),
            !no_color,
            "NO_COLOR={no_color}: {screen:?}"
        );
    }
}

/// `http serve`'s operator flags are checked before anything is served: a header field that
/// would split responses, one the server frames itself, an access log that can't be opened.
#[test]
fn bad_operator_flags_are_refused_at_start() {
    for (args, says) in [
        (&["--header", "X-A: b\r\nSet-Cookie: x=1"][..], "--header"),
        (&["--header", "X A: b"][..], "not a header field name"),
        (
            &["--header", "Content-Length: 5"][..],
            "set by the server itself",
        ),
        (&["--header", "no colon"][..], "expected `Name: value`"),
        (
            &["--access-log", "/nonexistent/dir/access.log"][..],
            "cannot open the access log",
        ),
    ] {
        let out = Command::new(BIN)
            .args(["http", "serve", "--bind", "127.0.0.1:0", "--root", "."])
            .args(args)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert!(
            err.starts_with("error: ") && err.contains(says),
            "{args:?}: {err}"
        );
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(out.stdout.is_empty(), "{args:?}: nothing was served");
    }
}
