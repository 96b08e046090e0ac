//! scripts/deps.sh is the one list of outside tools the tests drive (scripts/test.sh and .ci/run
//! install from it): every program a test starts by name is on it, so a new one can't be
//! forgotten there and then be missing on a fresh machine.

use std::path::Path;

const DEPS: &str = include_str!("../../../scripts/deps.sh");

/// Every `Command::new("NAME")` in the test sources under `dir`.
fn programs(dir: &Path, out: &mut Vec<(String, String)>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            programs(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            let text = std::fs::read_to_string(&p).unwrap();
            for part in text.split("Command::new(\"").skip(1) {
                let name = part.split('"').next().unwrap();
                let program_name = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
                if name.chars().all(|c| program_name(c) || "/._-".contains(c)) {
                    out.push((name.to_string(), p.display().to_string()));
                }
            }
        }
    }
}

#[test]
fn every_program_a_test_runs_is_in_scripts_deps_sh() {
    let crates = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let mut found = Vec::new();
    for c in std::fs::read_dir(crates).unwrap().flatten() {
        let tests = c.path().join("tests");
        if tests.is_dir() {
            programs(&tests, &mut found);
        }
    }
    assert!(found.iter().any(|(n, _)| n == "curl"), "{found:?}");
    let listed: Vec<&str> = DEPS
        .lines()
        .filter_map(|l| l.trim().strip_prefix('"'))
        .filter_map(|l| l.split(':').next())
        .collect();
    for (name, file) in found {
        if name.starts_with("/proc/") || name == "umount" {
            continue; // this binary itself; umount comes with mount
        }
        assert!(
            listed
                .iter()
                .any(|l| *l == name || l.ends_with(&format!("/{name}"))),
            "{file} runs {name:?}, which scripts/deps.sh does not list"
        );
    }
}
