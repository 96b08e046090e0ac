//! What the packages ship beside the binary, checked from the binary itself: `--version` names
//! the git revision, `bingfa completions` gives scripts each shell parses, `bingfa man` writes a
//! page per command that groff renders without a warning. (scripts/deb-check.sh checks the
//! .deb that carries them.)

#[path = "support/tools.rs"]
mod tools;

use std::path::Path;
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_bingfa");

fn run(args: &[&str]) -> Output {
    let out = Command::new(BIN).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "bingfa {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// `bingfa 0.1.0 (1a2b3c4)`: the crate's version and the commit this checkout is at (build.rs
/// reruns when HEAD moves), `-dirty` never on a clean tree.
#[test]
fn version_names_the_git_revision() {
    let out = String::from_utf8(run(&["--version"]).stdout).unwrap();
    let line = out.trim_end();
    let prefix = format!("bingfa {} (", env!("CARGO_PKG_VERSION"));
    let rev = line
        .strip_prefix(&prefix)
        .and_then(|r| r.strip_suffix(')'))
        .unwrap_or_else(|| panic!("{line:?} is not `{prefix}REV)`"));
    if std::env::var_os("BINGFA_GIT_REV").is_some() {
        return; // a packager said which revision; build.rs takes it as given
    }
    let Some(head) = git(&["rev-parse", "HEAD"]) else {
        assert_eq!(rev, "unknown", "not in a git checkout");
        return;
    };
    let (hash, dirty) = match rev.strip_suffix("-dirty") {
        Some(h) => (h, true),
        None => (rev, false),
    };
    assert!(
        hash.len() >= 7 && head.starts_with(hash),
        "{line:?}: the revision is not HEAD ({head})"
    );
    let clean = git(&["status", "--porcelain", "--untracked-files=no"]).unwrap();
    if clean.is_empty() {
        assert!(!dirty, "{line:?} says dirty, but the tree is clean");
    }
    // `-V` is the same line.
    assert_eq!(String::from_utf8(run(&["-V"]).stdout).unwrap(), out);
}

/// The top-level commands, as `bingfa --help` lists them (clap's own `help` left out).
fn subcommands(path: &[&str]) -> Vec<String> {
    let mut args = path.to_vec();
    args.push("--help");
    let help = String::from_utf8(run(&args).stdout).unwrap();
    let Some(list) = help.split("Commands:\n").nth(1) else {
        return Vec::new();
    };
    list.lines()
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|n| *n != "help")
        .map(str::to_string)
        .collect()
}

/// Every command path, `["bingfa"]`, `["bingfa", "http"]`, `["bingfa", "http", "serve"]`...
fn command_paths() -> Vec<Vec<String>> {
    let mut all = Vec::new();
    let mut todo = vec![Vec::<String>::new()];
    while let Some(path) = todo.pop() {
        let args: Vec<&str> = path.iter().map(String::as_str).collect();
        for sub in subcommands(&args) {
            let mut p = path.clone();
            p.push(sub);
            todo.push(p);
        }
        all.push(path);
    }
    all
}

/// A shell parses the completion script without running it. `bash` is always there; zsh and
/// fish are in scripts/deps.sh (a skip elsewhere, a failure under BINGFA_REQUIRE_TOOLS).
#[test]
fn completions_parse_in_each_shell() {
    let dir = tempdir("completions");
    let top = subcommands(&[]);
    assert!(
        top.iter().any(|s| s == "serve") && top.iter().any(|s| s == "man"),
        "{top:?}"
    );
    for (shell, check) in [
        ("bash", &["-n"][..]),
        ("zsh", &["-n"][..]),
        ("fish", &["--no-execute"][..]),
    ] {
        let script = run(&["completions", shell]).stdout;
        let text = String::from_utf8(script.clone()).unwrap();
        // Every top-level command is offered.
        for sub in &top {
            assert!(text.contains(sub.as_str()), "{shell}: no {sub} in\n{text}");
        }
        let file = dir.join(format!("bingfa.{shell}"));
        std::fs::write(&file, &script).unwrap();
        let out = match Command::new(shell).args(check).arg(&file).output() {
            Ok(out) => out,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                tools::missing(
                    "completions_parse_in_each_shell",
                    shell,
                    "apt-get install zsh fish",
                );
                continue;
            }
            Err(e) => panic!("{shell}: {e}"),
        };
        assert!(
            out.status.success() && out.stderr.is_empty(),
            "{shell} {check:?} on the completions: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // An unknown shell is refused with the choices.
    let out = Command::new(BIN)
        .args(["completions", "tcsh"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("bash"));
}

/// `bingfa man --out DIR` writes exactly one page per command (named `bingfa-http-serve.1`,
/// showing `bingfa http serve` in its synopsis), and groff renders each without a warning.
#[test]
fn man_pages_for_every_command_render_cleanly() {
    let dir = tempdir("man");
    let listed = String::from_utf8(run(&["man", "--out", dir.to_str().unwrap()]).stdout).unwrap();
    let mut written: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    written.sort();
    let mut expected: Vec<String> = command_paths()
        .iter()
        .map(|p| {
            let mut name = vec!["bingfa".to_string()];
            name.extend(p.iter().cloned());
            format!("{}.1", name.join("-"))
        })
        .collect();
    expected.sort();
    assert_eq!(written, expected);
    assert_eq!(listed.lines().count(), expected.len(), "{listed}");
    assert!(
        expected.len() > 15,
        "the tree is deeper than that: {expected:?}"
    );
    for path in command_paths() {
        let page_name = std::iter::once("bingfa")
            .chain(path.iter().map(String::as_str))
            .collect::<Vec<_>>();
        let file = dir.join(format!("{}.1", page_name.join("-")));
        let page = std::fs::read_to_string(&file).unwrap();
        for section in [".SH NAME", ".SH SYNOPSIS", ".SH DESCRIPTION"] {
            assert!(page.contains(section), "{}: no {section}", file.display());
        }
        let synopsis = format!("\\fB{}\\fR", page_name.join(" ").replace('-', "\\-"));
        assert!(
            page.contains(&synopsis),
            "{}: synopsis lacks {synopsis}",
            file.display()
        );
        // The page lists each of its subcommands.
        let args: Vec<&str> = path.iter().map(String::as_str).collect();
        for sub in subcommands(&args) {
            assert!(page.contains(&sub), "{}: no {sub}", file.display());
        }
        groff_is_quiet(&file);
    }
    // Without --out, the top page goes to standard output, the same bytes as bingfa.1.
    let top = run(&["man"]).stdout;
    assert_eq!(top, std::fs::read(dir.join("bingfa.1")).unwrap());
}

/// groff with every warning on (`-ww`), input through preconv (`-k`) as man(1) does for UTF-8
/// pages: nothing on stderr.
fn groff_is_quiet(page: &Path) {
    let out = Command::new("groff")
        .args(["-k", "-man", "-Tutf8", "-ww", "-z"])
        .arg(page)
        .env("LC_ALL", "C.UTF-8")
        .output()
        .expect("groff (groff-base) is in scripts/deps.sh");
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "groff on {}: {}",
        page.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A fresh directory under the target dir's tmp (removed first if a previous run left it).
fn tempdir(name: &str) -> std::path::PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("packaging-{name}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
