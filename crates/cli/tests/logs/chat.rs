//! The chat room's event lines: joins, leaves, evictions, refusals, announcements, each with
//! the address; message text only with `--log-messages`.

use super::*;

fn chat(dir: &Dir, extra: &[&str]) -> (ServerProc, SocketAddr) {
    let mut args: Vec<String> = [
        "chat",
        "serve",
        "--bind",
        "127.0.0.1:0",
        "--name-timeout",
        "1",
    ]
    .map(String::from)
    .to_vec();
    args.extend([
        "--admin-socket".into(),
        dir.path("admin.sock").display().to_string(),
    ]);
    args.extend(extra.iter().map(|s| s.to_string()));
    let p = spawn(&args, &dir.path("err"), &["chat"]);
    let a = p.addr("chat");
    (p, a)
}

/// A member joins, is refused a name, says something, leaves; a nameless connection is
/// evicted; an announcement: the lines, and the message text nowhere (or, with
/// `--log-messages`, in its field).
fn events(log_messages: bool) {
    let dir = Dir::new("chat");
    let extra: &[&str] = if log_messages {
        &["--log-messages"]
    } else {
        &[]
    };
    let (mut srv, addr) = chat(&dir, extra);
    let mut a = LineClient::connect(addr);
    a.line();
    a.send("alice");
    assert!(a.line().starts_with("* you are alice"));
    let mut b = LineClient::connect(addr);
    b.line();
    b.send("Alice");
    assert_eq!(b.line(), "! name taken; try another name");
    a.send("the secret \"plan\"");
    let out = Command::new(BIN)
        .args(["chat", "announce", "--admin-socket"])
        .arg(dir.path("admin.sock"))
        .arg("tea at five")
        .output()
        .unwrap();
    assert!(out.status.success());
    a.send("/quit");
    // b never chooses a name: evicted at --name-timeout.
    b.until("! no name chosen");
    let lines = wait_lines(&dir.path("err"), "the chat events", |l| {
        l.iter().any(|l| l.contains("chat: left")) && l.iter().any(|l| l.contains("no name"))
    });
    assert!(srv.stop().success());
    assert_all_real_lines(&lines);
    let has = |s: &str| lines.iter().any(|l| l.ends_with(s));
    assert!(
        has(" INFO chat: joined peer=127.0.0.1 name=\"alice\""),
        "{lines:#?}"
    );
    assert!(
        has(" INFO chat: left peer=127.0.0.1 name=\"alice\""),
        "{lines:#?}"
    );
    assert!(
        has(" INFO chat: refused peer=127.0.0.1 reason=\"name taken; try another name\""),
        "{lines:#?}"
    );
    assert!(
        has(" WARN chat: evicted peer=127.0.0.1 reason=\"no name\" name=\"\""),
        "{lines:#?}"
    );
    assert!(
        has(" INFO chat: announcement text=\"tea at five\""),
        "{lines:#?}"
    );
    let said = lines.iter().filter(|l| l.contains("secret")).count();
    if log_messages {
        assert_eq!(said, 1, "{lines:#?}");
        assert!(
            has(r#" INFO chat: message peer=127.0.0.1 name="alice" text="the secret \"plan\"""#),
            "{lines:#?}"
        );
    } else {
        assert_eq!(
            said, 0,
            "message text logged without --log-messages: {lines:#?}"
        );
    }
}

#[test]
fn chat_events_without_message_text() {
    events(false)
}

#[test]
fn chat_events_with_log_messages() {
    events(true)
}

/// A member that does not read is evicted as too slow, with its name and address.
#[test]
fn chat_slow_member_evicted_is_logged() {
    let dir = Dir::new("slow");
    let (mut srv, addr) = chat(&dir, &["--rate", "0"]);
    let mut slow = LineClient::connect(addr);
    slow.line();
    slow.send("slow");
    assert!(slow.line().starts_with("* you are slow"));
    let mut fast = LineClient::connect(addr);
    fast.line();
    fast.send("fast");
    fast.line();
    let line = format!("{}\n", "x".repeat(1000));
    let end = Instant::now() + Duration::from_secs(20);
    let mut done = false;
    while !done {
        assert!(Instant::now() < end, "the slow member was never evicted");
        for _ in 0..200 {
            fast.send_raw(line.as_bytes());
        }
        let text = std::fs::read_to_string(dir.path("err")).unwrap_or_default();
        done = text.contains("reason=\"too slow\"");
    }
    assert!(srv.stop().success());
    let text = std::fs::read_to_string(dir.path("err")).unwrap();
    assert!(
        text.lines()
            .any(|l| l
                .ends_with(" WARN chat: evicted peer=127.0.0.1 reason=\"too slow\" name=\"slow\"")),
        "{text}"
    );
}
