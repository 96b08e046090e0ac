//! Running the CPython anchor scripts kept in the repo (crates/lab/python). The script is
//! embedded in the binary and written to a temporary directory, because multiprocessing's
//! spawn start method needs the main module to be a real file it can re-import.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Run `python3 <script> [--quick]` and parse the last stdout line as JSON.
pub fn run_script(
    name: &str,
    source: &str,
    quick: bool,
    timeout: Duration,
) -> Option<serde_json::Value> {
    let args: &[String] = if quick {
        &[String::from("--quick")]
    } else {
        &[]
    };
    run_script_args(name, source, args, timeout)
}

/// Run `python3 <script> ARGS…` and parse the last stdout line as JSON; `None` (with a note on
/// stderr) when python3 is missing, fails or runs past `timeout`.
pub fn run_script_args(
    name: &str,
    source: &str,
    args: &[String],
    timeout: Duration,
) -> Option<serde_json::Value> {
    let dir = std::env::temp_dir().join(format!("bingfa-lab-{}", std::process::id()));
    std::fs::create_dir_all(&dir).ok()?;
    crate::spawn::scratch(&dir);
    let path = dir.join(name);
    std::fs::write(&path, source).ok()?;
    let mut cmd = Command::new("python3");
    crate::spawn::guard(&mut cmd)
        .arg(&path)
        // The script's own temporary files go in here too, so they go with it whatever
        // becomes of the script.
        .env("TMPDIR", &dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    cmd.args(args);
    let out = (|| {
        let child = match cmd.spawn() {
            Ok(c) => c,
            Err(e) => {
                eprintln!("note: python3 not available ({e}); CPython column left empty");
                return None;
            }
        };
        // Registered so an interrupted lab stops it (and its multiprocessing children).
        let mut child = crate::spawn::Guarded::new(child, Duration::ZERO);
        let mut stdout = child.child.stdout.take()?;
        let reader = std::thread::spawn(move || {
            let mut v = Vec::new();
            let _ = std::io::Read::read_to_end(&mut stdout, &mut v);
            v
        });
        let start = Instant::now();
        loop {
            if child.child.try_wait().ok()?.is_some() {
                break;
            }
            if start.elapsed() > timeout {
                child.stop_within(Duration::ZERO);
                eprintln!("note: {name} took longer than {timeout:?}; CPython column left empty");
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        // The script has exited; its multiprocessing children, if any are left, go with the
        // group when `child` drops.
        let out = reader.join().ok()?;
        let text = String::from_utf8_lossy(&out);
        let line = text.lines().last()?;
        serde_json::from_str(line).ok()
    })();
    let _ = std::fs::remove_dir_all(&dir);
    out
}
