//! The chat room's operator side under every model (see `chat.rs` for the suite):
//! announcements (admin socket, `announce` exit codes, the one order) and shutdown
//! (`* server shutting down`, exit 0, admin socket removed).

#[path = "support/chat_room.rs"]
mod room;

use bingfa_net::Model;
use room::*;

fn announcements(model: Model, edge: bool) {
    let mut srv = Server::start(model, edge, &[]);
    if !model.concurrent() {
        // The admin connection waits its turn like any other: with nobody connected it is
        // served at once (and heard by nobody).
        let out = srv.announce("nobody hears this");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut a = srv.join("alice");
        a.send("/who");
        a.expect("* online (1): alice");
        drop(a);
        assert!(srv.stop().success());
        assert!(!srv.admin.exists(), "the admin socket is removed at exit");
        return;
    }
    let mut a = srv.join("alice");
    let out = srv.announce("tea at five");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    a.expect("* admin: tea at five");
    // The operator's text follows the room's control rule too: refused in words, heard by
    // nobody (the next line alice reads is the next announcement).
    let out = srv.announce("\u{1b}]0;owned\u{7}hi");
    assert!(!out.status.success());
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("control character U+001B"), "{said}");
    assert!(srv.announce("after").status.success());
    a.expect("* admin: after");
    if model.concurrent() {
        let mut b = srv.join("bob");
        a.expect("* bob joined");
        a.send("m1");
        b.expect("alice: m1");
        assert!(srv.announce("between").status.success());
        b.expect("* admin: between");
        a.send("m2");
        b.expect("alice: m2");
        a.expect("* admin: between");
    }
    assert!(srv.stop().success());
    assert!(!srv.admin.exists(), "the admin socket is removed at exit");
    // Nobody listens now: a clear error and a non-zero exit.
    let out = srv.announce("anyone?");
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no chat server listens on"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn shutdown(model: Model, edge: bool) {
    let mut srv = Server::start(model, edge, &[]);
    let mut a = srv.join("alice");
    let mut b = model.concurrent().then(|| srv.join("bob"));
    if b.is_some() {
        a.expect("* bob joined");
    }
    assert!(srv.stop().success());
    a.expect("* server shutting down");
    a.expect_closed();
    if let Some(b) = b.as_mut() {
        b.expect("* server shutting down");
        b.expect_closed();
    }
}

bingfa_testkit::for_each_model! {
    #[test] fn announcements() { super::announcements(M, E) }
    #[test] fn shutdown() { super::shutdown(M, E) }
}
