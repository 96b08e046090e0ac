//! Outside tools the tests drive (curl, lftp, redis-server, pyftpdlib…; scripts/deps.sh lists
//! them). Where the run must have every one (BINGFA_REQUIRE_TOOLS=1, which scripts/test.sh and
//! .ci/run set, or CI) a missing tool fails the test; elsewhere the test says SKIPPED on stderr.
#![allow(dead_code)] // each test binary uses its part

/// Whether this run must have every outside tool.
pub(crate) fn required() -> bool {
    let set = |k: &str| std::env::var(k).is_ok_and(|v| !v.is_empty() && v != "0" && v != "false");
    set("BINGFA_REQUIRE_TOOLS") || set("CI")
}

/// `what` (a test, or the part of one) can't run because `tool` is missing: a failure when
/// required, else a loud skip. The caller then returns.
pub(crate) fn missing(what: &str, tool: &str, install: &str) {
    assert!(
        !required(),
        "{what}: {tool} is required (BINGFA_REQUIRE_TOOLS/CI) but missing: {install}"
    );
    eprintln!("SKIPPED {what}: {tool} is not installed ({install})");
}
