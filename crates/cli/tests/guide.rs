//! docs/GUIDE.md's commands work as written: each sequence a reader follows is taken from the
//! guide's text (not copied here), run, and checked, so the guide and the binary can't drift
//! apart. Only the port changes: the guide's 127.0.0.1:2121 becomes a free one.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_bingfa");
const GUIDE: &str = include_str!("../../../docs/GUIDE.md");

/// The guide's inline commands (between backticks) that start with `prefix`.
fn commands(prefix: &str) -> Vec<&'static str> {
    GUIDE
        .split('`')
        .skip(1)
        .step_by(2)
        .filter(|c| c.starts_with(prefix))
        .collect()
}

/// The FTP row: `bingfa ftp serve --root DIR …`, then `bingfa ftp shell ftp://…/` lists DIR.
#[test]
fn ftp_serve_then_ftp_shell_as_the_guide_says() {
    let serve = commands("bingfa ftp serve --root DIR");
    assert_eq!(serve.len(), 1, "{serve:?}");
    let shell = commands("bingfa ftp shell ftp://");
    assert_eq!(shell.len(), 1, "{shell:?}");

    let dir = std::env::temp_dir().join(format!("bingfa-guide-ftp-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("notes.txt"), "from the guide\n").unwrap();

    let args: Vec<String> = serve[0]
        .split_whitespace()
        .skip(1)
        .map(|w| {
            if w == "DIR" {
                dir.display().to_string()
            } else {
                w.to_string()
            }
        })
        .collect();
    let mut server = Command::new(BIN)
        .args(&args)
        .args(["--bind", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let out = server.stdout.take().unwrap();
    let err = server.stderr.take().unwrap();
    let server = Kill(server);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for l in BufReader::new(out).lines().map_while(Result::ok) {
            let _ = tx.send(l);
        }
    });
    let (etx, erx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let text: Vec<String> = BufReader::new(err).lines().map_while(Result::ok).collect();
        let _ = etx.send(text.join("\n"));
    });
    let addr = loop {
        let l = rx
            .recv_timeout(Duration::from_secs(20))
            .expect("the ftp server's ready line");
        if let Some(a) = l.strip_prefix("ftp listening on ") {
            break a.trim().to_string();
        }
    };

    let shell_args: Vec<String> = shell[0]
        .replace("127.0.0.1:2121", &addr)
        .split_whitespace()
        .skip(1)
        .map(String::from)
        .collect();
    let mut sh = Command::new("timeout")
        .arg("30")
        .arg(BIN)
        .args(&shell_args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    sh.stdin.take().unwrap().write_all(b"ls\nquit\n").unwrap();
    let got = sh.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&got.stdout);
    let stderr = String::from_utf8_lossy(&got.stderr);
    assert!(got.status.success(), "{shell_args:?}: {stdout}{stderr}");
    assert!(stdout.contains("notes.txt"), "{stdout}{stderr}");
    drop(server);
    // And the server did not warn that nobody can log in.
    let warned = erx
        .recv_timeout(Duration::from_secs(10))
        .unwrap_or_default();
    assert!(!warned.contains("nobody can log in"), "{warned}");
    let _ = std::fs::remove_dir_all(&dir);
}
