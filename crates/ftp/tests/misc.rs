//! The control connection itself, on the rig: a command line over the limit gets `500` and
//! the session goes on, whether it comes whole or in pieces (consumed as it comes, never
//! buffered); the idle timeout says `421` and closes. Moved from the binary's per-model suite
//! (`crates/cli/tests/ftp/security.rs`), where the scenario still runs over TLS, with the
//! timeout itself kept by each model's driver in real time.

mod common;

use common::{Server, Tree, PASSWORD};

#[test]
fn long_lines_and_idle() {
    let tree = Tree::new("lines");
    let srv = Server::start(&tree);
    let mut c = srv.session();
    c.send(&format!("NOOP {}", "x".repeat(5000)));
    c.expect("500 Command line too long.");
    assert_eq!(c.cmd("NOOP"), "200 NOOP ok.");
    // Far over the limit, in pieces: consumed as it comes, then one 500.
    for _ in 0..20 {
        c.send_raw(&[b'y'; 10_000]);
        assert!(
            c.rig.pending_input().len() <= 10_000,
            "kept {} bytes",
            c.rig.pending_input().len()
        );
    }
    c.send_raw(b"\r\n");
    c.expect("500 Command line too long.");
    c.login("ann", PASSWORD);
    assert_eq!(c.cmd("NOOP"), "200 NOOP ok.");
    // Then silence: 421 and closed.
    c.rig.idle();
    c.expect("421 Timeout: closing control connection.");
    c.expect_closed();
}
