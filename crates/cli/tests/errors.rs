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

/// A kernel or sandbox that refuses io_uring: `--model uring` stops at start with the model's
/// name and the reason, exit status 1, and never announces itself. The refusal is made real
/// with a seccomp filter on the child that answers `io_uring_setup` with EPERM, as a container
/// runtime's default profile does.
#[cfg(target_arch = "x86_64")]
#[test]
fn a_refused_io_uring_is_an_error_at_start() {
    use std::os::unix::process::CommandExt;
    const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
    let insn = |code: u32, jt: u8, jf: u8, k: u32| libc::sock_filter {
        code: code as u16,
        jt,
        jf,
        k,
    };
    let filter = [
        // seccomp_data.arch (offset 4): another ABI is let through untouched.
        insn(libc::BPF_LD | libc::BPF_W | libc::BPF_ABS, 0, 0, 4),
        insn(
            libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K,
            0,
            3,
            AUDIT_ARCH_X86_64,
        ),
        // seccomp_data.nr (offset 0): io_uring_setup gets EPERM, everything else runs.
        insn(libc::BPF_LD | libc::BPF_W | libc::BPF_ABS, 0, 0, 0),
        insn(
            libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K,
            0,
            1,
            libc::SYS_io_uring_setup as u32,
        ),
        insn(
            libc::BPF_RET | libc::BPF_K,
            0,
            0,
            libc::SECCOMP_RET_ERRNO | libc::EPERM as u32,
        ),
        insn(libc::BPF_RET | libc::BPF_K, 0, 0, libc::SECCOMP_RET_ALLOW),
    ];
    let mut cmd = Command::new(BIN);
    cmd.args(["http", "serve", "--bind", "127.0.0.1:0", "--model", "uring"])
        .arg("--root")
        .arg(std::env::temp_dir());
    // SAFETY: the closure runs in the forked child before exec and only calls prctl(2) (async-
    // signal-safe) with pointers to `filter`, which the closure owns and which outlives the
    // calls; the kernel copies the program.
    unsafe {
        cmd.pre_exec(move || {
            let prog = libc::sock_fprog {
                len: filter.len() as u16,
                filter: filter.as_ptr() as *mut libc::sock_filter,
            };
            if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0
                || libc::prctl(
                    libc::PR_SET_SECCOMP,
                    libc::SECCOMP_MODE_FILTER,
                    &prog as *const libc::sock_fprog,
                ) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Bounded: a server that started anyway would never exit on its own.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            child.kill().unwrap();
            child.wait().unwrap();
            panic!("--model uring started although io_uring_setup was refused");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(out.stdout.is_empty(), "announced: {:?}", out.stdout);
    let errors: Vec<_> = err.lines().filter(|l| l.starts_with("error: ")).collect();
    assert_eq!(errors.len(), 1, "{err}");
    assert!(
        errors[0].contains("--model uring cannot run here: io_uring_setup was refused (EPERM)"),
        "{err}"
    );
}
