//! Build script of the `bingfa` binary: finds the git revision it is built from, for
//! `bingfa --version` (`bingfa 0.1.0 (1a2b3c4)`, `-dirty` when tracked files differ from that
//! commit), so a bug report or a running service names the exact source.
//!
//! Where the revision comes from, first found wins:
//! 1. `BINGFA_GIT_REV` in the environment (a distribution building from a tarball says it);
//! 2. `.cargo_vcs_info.json`, which `cargo package` writes into a published crate, so
//!    `cargo install bingfa` from crates.io still knows its commit (checked before git: an
//!    unpacked crate may sit inside some other checkout);
//! 3. `git` in the checkout (`git rev-parse --short HEAD`, `git status` for `-dirty`);
//! 4. otherwise `unknown`.
//!
//! The script reruns when HEAD moves (a commit, a checkout) or the index changes (`git add`,
//! and `git status` refreshing it), not on every edit: `-dirty` is as of the last of those.

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=BINGFA_GIT_REV");
    println!("cargo:rerun-if-changed=build.rs");
    let rev = std::env::var("BINGFA_GIT_REV")
        .ok()
        .filter(|r| !r.trim().is_empty())
        .map(|r| r.trim().to_string())
        .or_else(from_vcs_info)
        .or_else(from_git)
        .unwrap_or_else(|| "unknown".to_string());
    println!("cargo:rustc-env=BINGFA_GIT_REV={rev}");
}

/// `git` output of a command run in this crate's directory, trimmed; None if git is missing,
/// fails (not a checkout) or says nothing.
fn git(args: &[&str]) -> Option<String> {
    let dir = std::env::var_os("CARGO_MANIFEST_DIR")?;
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (!text.is_empty()).then_some(text)
}

fn from_git() -> Option<String> {
    let short = git(&["rev-parse", "--short", "HEAD"])?;
    // Rerun when HEAD moves: HEAD itself (a checkout), the branch it points to (a commit; in a
    // worktree HEAD is per worktree, branches are in the common dir, `--git-path` knows which),
    // packed refs, and the index (staging; `git status` refreshes it after edits).
    let mut watch = vec![
        "HEAD".to_string(),
        "index".to_string(),
        "packed-refs".to_string(),
    ];
    if let Some(branch) = git(&["symbolic-ref", "-q", "HEAD"]) {
        watch.push(branch);
    }
    for name in watch {
        if let Some(path) = git(&["rev-parse", "--git-path", &name]) {
            let path = absolute(PathBuf::from(path));
            // A path that does not exist would make cargo rerun the script on every build.
            if path.exists() {
                println!("cargo:rerun-if-changed={}", path.display());
            }
        }
    }
    // Tracked files only: a stray untracked file does not make the build "dirty".
    let dirty = git(&["status", "--porcelain", "--untracked-files=no"]).is_some();
    Some(if dirty {
        format!("{short}-dirty")
    } else {
        short
    })
}

/// `git rev-parse --git-path` answers relative to the directory git ran in.
fn absolute(path: PathBuf) -> PathBuf {
    if path.is_absolute() {
        return path;
    }
    match std::env::var_os("CARGO_MANIFEST_DIR") {
        Some(dir) => Path::new(&dir).join(path),
        None => path,
    }
}

/// The commit `cargo package` recorded: `{"git": {"sha1": "<40 hex>", "dirty": true}, ...}`.
fn from_vcs_info() -> Option<String> {
    let dir = std::env::var_os("CARGO_MANIFEST_DIR")?;
    let path = Path::new(&dir).join(".cargo_vcs_info.json");
    let text = std::fs::read_to_string(&path).ok()?;
    println!("cargo:rerun-if-changed={}", path.display());
    let after = &text[text.find("\"sha1\"")? + "\"sha1\"".len()..];
    let start = after.find('"')? + 1;
    let sha: String = after[start..]
        .chars()
        .take_while(|c| c.is_ascii_hexdigit())
        .collect();
    if sha.len() < 7 {
        return None;
    }
    let dirty = text.contains("\"dirty\": true") || text.contains("\"dirty\":true");
    Some(format!(
        "{}{}",
        &sha[..7],
        if dirty { "-dirty" } else { "" }
    ))
}
