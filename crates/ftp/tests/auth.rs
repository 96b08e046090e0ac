//! The login rules on the rig (moved from the binary's per-model suite, where the same
//! assertions ran under every model although nothing in them depends on one): one answer
//! whether a user exists or not, a failed login answered only after the delay (simulated
//! time) with what was sent behind it waiting in order, the connection closed at the third
//! failure. Bans across connections and processes, the login flood and memory stay in
//! `crates/cli/tests/ftp/auth.rs`: they are the models' behaviour.

mod common;

use common::{Server, Tree, PASSWORD};
use std::time::Duration;

/// The login rules: one answer whether the user exists or not, a failed login answered only
/// after the delay (in the rig's time) with what was sent behind it waiting, in order, and a
/// third failure closing the connection; the right password still works after.
#[test]
fn login_rules() {
    let tree = Tree::new("login");
    let srv = Server::start(&tree);
    let mut c = srv.session();
    assert_eq!(c.cmd("LIST"), "530 Please login with USER and PASS.");
    // The same answer whether the user exists or not.
    assert_eq!(c.cmd("USER nobody"), "331 Please specify the password.");
    let at = c.rig.now();
    assert_eq!(c.cmd("PASS whatever"), "530 Login incorrect.");
    assert!(
        c.rig.now() - at >= Duration::from_millis(250),
        "a failed login waits"
    );
    assert_eq!(c.cmd("USER ann"), "331 Please specify the password.");
    let at = c.rig.now();
    // Sent together: the NOOP waits behind the delayed answer, in order.
    c.send("PASS wrong");
    c.send("NOOP");
    c.expect("530 Login incorrect.");
    assert!(c.rig.now() - at >= Duration::from_millis(250));
    c.expect("200 NOOP ok.");
    assert_eq!(c.cmd("USER ann"), "331 Please specify the password.");
    c.send("PASS wrong again");
    c.expect("530 Login incorrect.");
    c.expect("421 Too many failed logins, closing.");
    c.expect_closed();
    // The right password still works on a new connection.
    let mut c = srv.login("ann", PASSWORD);
    assert_eq!(c.cmd("PWD"), "257 \"/\" is the current directory.");
    assert_eq!(c.cmd("QUIT"), "221 Goodbye.");
    c.expect_closed();
}
