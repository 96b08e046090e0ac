//! rclone's FTP backend (Go, jlaffaye/ftp: MLSD listings, EPSV, a pool of connections) against
//! the server, in the clear and over explicit FTPS with `--tls-required` (so every data
//! connection must be `PROT P`): a 200-file tree of hostile names — spaces inside and at the
//! start, leading dashes, quotes, shell metacharacters, `%`, glob characters, backslashes,
//! Unicode (NFC and NFD, right-to-left, emoji), a 200-byte name, nested directories with
//! such names, an empty file and a 3 MiB one — goes up with `rclone copy --transfers 8`,
//! `rclone check` finds no difference, the server's disk holds it byte for byte, and it comes
//! back down (`--transfers 8` again) byte for byte. `rclone check --download` compares the
//! bytes (FTP has no hashes).
//!
//! rclone is installed from Debian (`apt-get install rclone`); it runs with a temporary
//! `RCLONE_CONFIG` and the connection in the remote's name (`:ftp,host=…,pass=OBSCURED:`),
//! and with one try (`--retries 1 --low-level-retries 1`) so a failure is not retried away.
//! A missing rclone fails the test when CI or BINGFA_REQUIRE_FTP_SERVERS is set, else skips
//! it with a note.
//!
//! Over TLS the server is started with no `--tls-session-reuse` option: rclone (Go's
//! crypto/tls, `tls_cache_size` 32) offers to resume the control connection's session on each
//! data connection.
//!
//! The full tree runs under three models of different families ([`FULL`]: epoll, the default
//! event loop; prefork, processes; async), both ways: under all ten variants it took ~170 s
//! of test time (85 s wall on 2 shared cores). The other models run the same round trip on a
//! smaller tree (two directories, 67 files, no 3 MiB file), still with 8 transfers: 20 tests,
//! ~125 s of test time, 65 s wall.
//! `iterative` serves one control connection at a time, so there rclone gets one connection
//! (`concurrency=1`, `--transfers 1 --checkers 1`).

use super::transport::Transport;
use super::*;
use std::collections::BTreeMap;

/// File names, each stored in every directory of [`DIRS`]. No control characters (the server
/// refuses or hides them), no trailing space (rclone's FTP encoding rewrites it) and no
/// leading dot (hidden files are the server's business).
const NAMES: &[&str] = &[
    "a b  c.txt",
    " leading space.txt",
    "-rf",
    "--help",
    "-",
    "-n x.txt",
    "it's.txt",
    "\"quoted\".txt",
    "`tick`",
    "$HOME",
    "semi;colon",
    "a&b|c>d",
    "#hash",
    "100%.txt",
    "50%20off",
    "日本語.txt",
    "émoji 🎉.txt",
    "e\u{301} nfd.txt",
    "Ω≈ç√",
    "עברית.txt",
    "star*.txt",
    "question?.txt",
    "[bracket].txt",
    "{brace}",
    "back\\slash.txt",
    "~tilde",
    "@at",
    "!bang",
    "a=b,c",
    "colon:name.txt",
    "<angle>",
    "trailing.dot.",
];

/// The models (and edge-triggering) that run the full tree; the others a smaller one.
const FULL: &[(Model, bool)] = &[
    (Model::Epoll, false),
    (Model::Prefork, false),
    (Model::Async, false),
];

/// The directories ("" is the top), nested ones included.
const DIRS: &[&str] = &[
    "",
    "dir with spaces",
    "-dashdir",
    "ünïcödé dir",
    "deep/er/-est",
    "[d]",
];

fn payload(n: usize, seed: usize) -> Vec<u8> {
    (0..n)
        .map(|i| (i.wrapping_mul(2654435761).wrapping_add(seed * 7919) >> 11) as u8)
        .collect()
}

/// Writes the tree under `root`: every name in every directory of `dirs`, a 200-byte name,
/// an empty file and, when `big`, a 3 MiB file.
fn make_tree(root: &Path, dirs: &[&str], big: bool) {
    let long = "x".repeat(200);
    let mut seed = 0;
    for d in dirs {
        std::fs::create_dir_all(root.join(d)).unwrap();
        for n in NAMES.iter().copied().chain([long.as_str()]) {
            seed += 1;
            std::fs::write(root.join(d).join(n), payload(seed * 997 % 5000, seed)).unwrap();
        }
    }
    std::fs::write(root.join("empty"), b"").unwrap();
    if big {
        std::fs::write(root.join("big.bin"), payload(3 * 1024 * 1024 + 5, 1)).unwrap();
    }
}

/// Every file and directory under `root`, by relative path: the bytes of each file, `None`
/// for a directory.
fn snapshot(root: &Path) -> BTreeMap<PathBuf, Option<Vec<u8>>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            let rel = p.strip_prefix(root).unwrap().to_path_buf();
            if p.is_dir() {
                out.insert(rel, None);
                stack.push(p);
            } else {
                out.insert(rel, Some(std::fs::read(&p).unwrap()));
            }
        }
    }
    out
}

fn assert_same(want: &Path, got: &Path, what: &str) {
    let (w, g) = (snapshot(want), snapshot(got));
    let missing: Vec<_> = w.keys().filter(|k| !g.contains_key(*k)).collect();
    let extra: Vec<_> = g.keys().filter(|k| !w.contains_key(*k)).collect();
    let differ: Vec<_> = w
        .iter()
        .filter(|(k, v)| g.get(*k).is_some_and(|x| x != *v))
        .map(|(k, _)| k)
        .collect();
    assert!(
        missing.is_empty() && extra.is_empty() && differ.is_empty(),
        "{what}: missing {missing:?}, extra {extra:?}, different bytes {differ:?}"
    );
}

/// Whether rclone is here; when it is not and CI or BINGFA_REQUIRE_FTP_SERVERS is set, a
/// failure.
fn rclone_present() -> bool {
    if Command::new("rclone")
        .arg("version")
        .output()
        .is_ok_and(|o| o.status.success())
    {
        return true;
    }
    let set = |v: &str| std::env::var(v).is_ok_and(|x| !x.is_empty() && x != "0" && x != "false");
    assert!(
        !set("CI") && !set("BINGFA_REQUIRE_FTP_SERVERS"),
        "rclone is required (CI or BINGFA_REQUIRE_FTP_SERVERS is set) and is not installed: \
         apt-get install rclone"
    );
    eprintln!("SKIPPED rclone: not installed (apt-get install rclone)");
    false
}

/// One rclone run with its own config and cache; panics with its output unless it exits 0.
/// Every ERROR it logs must be the one for the server's missing MFMT (modification times
/// cannot be set), which does not touch the bytes.
fn rclone(tree: &Tree, args: &[&str], what: &str) -> String {
    let conf = tree.path("rclone.conf");
    if !conf.exists() {
        std::fs::write(&conf, "").unwrap();
    }
    let out = run_timeout(
        Command::new("rclone")
            .env("RCLONE_CONFIG", &conf)
            .env("RCLONE_CACHE_DIR", tree.path("rclone-cache"))
            .env("XDG_CACHE_HOME", tree.path("rclone-cache"))
            .args(args)
            .args(["--retries", "1", "--low-level-retries", "1"])
            .args(["--contimeout", "20s", "--timeout", "60s"]),
        Duration::from_secs(180),
    );
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        out.status.success(),
        "rclone {what}: {:?}\n{}\n{stderr}",
        out.status,
        String::from_utf8_lossy(&out.stdout)
    );
    let errors: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("ERROR") && !l.contains("SetModTime is not supported"))
        .collect();
    assert!(
        errors.is_empty(),
        "rclone {what} logged errors: {errors:#?}"
    );
    stderr
}

/// The tree up, checked, and down again, in the clear or over explicit FTPS.
pub(crate) fn round_trip(model: Model, edge: bool, t: Transport) {
    if !rclone_present() {
        return;
    }
    let tree = Tree::new("rclone");
    // The iterative server serves one connection at a time: rclone gets one.
    let one = model == Model::Iterative;
    let extra: &[&str] = match t {
        Plain => &[],
        // With one connection rclone's data connections resume their own control session,
        // as the server demands by default. With several, its one session cache (shared by
        // every connection) hands a data connection another control connection's session,
        // which that rule refuses: the README says to relax it for rclone's parallel mode.
        Tls if one => &["--tls-required"],
        Tls => &["--tls-required", "--tls-session-reuse", "optional"],
    };
    let mut srv = t.start(model, edge, &tree, extra);
    let full = FULL.contains(&(model, edge));
    let src = tree.path("src");
    let dirs = if full { DIRS } else { &DIRS[..2] };
    make_tree(&src, dirs, full);

    let obscured = {
        let out = run_timeout(
            Command::new("rclone").args(["obscure", PASSWORD]),
            Duration::from_secs(30),
        );
        assert!(out.status.success());
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    };
    let mut remote = format!(
        ":ftp,host={},port={},user=ann,pass={obscured}",
        srv.addr.ip(),
        srv.addr.port()
    );
    if t == Tls {
        remote.push_str(",explicit_tls=true,no_check_certificate=true");
    }
    if one {
        remote.push_str(",concurrency=1");
    }
    let up = format!("{remote}:up");
    let transfers: &[&str] = if one {
        &["--transfers", "1", "--checkers", "1"]
    } else {
        &["--transfers", "8"]
    };
    let src_s = src.to_str().unwrap();
    let down = tree.path("down");
    let down_s = down.to_str().unwrap();

    rclone(
        &tree,
        &[&["copy", src_s, &up][..], transfers].concat(),
        "copy up",
    );
    assert_same(&src, &tree.path("ann/up"), "on the server's disk");
    // --download: rclone compares the bytes itself (FTP has no hashes to compare).
    let check = rclone(
        &tree,
        &[&["check", "--download", src_s, &up][..], transfers].concat(),
        "check",
    );
    assert!(check.contains(" 0 differences found"), "{check}");
    rclone(
        &tree,
        &[&["copy", &up, down_s][..], transfers].concat(),
        "copy down",
    );
    assert_same(&src, &down, "downloaded");
    assert_eq!(tree.names("ann"), ["out", "up"], "only the tree was added");
    assert!(srv.stop().success());
}
