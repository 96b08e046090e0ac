//! `ChatSession` driven by hand: the input rules, the refusals' bound, the rate before a name,
//! HTTP request lines, and the web face's one-line-per-message ending.

use super::*;
use bingfa_net::rig::Rig;
use bingfa_net::{Action, ConnInfo};

fn info(id: u64) -> ConnInfo {
    ConnInfo {
        id,
        peer: "127.0.0.1:1".parse().unwrap(),
        local: "127.0.0.1:2".parse().unwrap(),
        cred: None,
    }
}

/// One member's session on bingfa-net's rig.
struct Member {
    rig: Rig<ChatSession>,
}

/// What one feed produced: the bytes written, whether it closed, what it published.
#[derive(Debug, Default)]
struct Out {
    text: String,
    closed: bool,
    published: Vec<String>,
}

/// A lobby that never refuses: these tests are about the input rules, not the budgets.
fn lobby() -> crate::lobby::Lobby {
    crate::lobby::Lobby::new(1024, 1024).unwrap()
}

impl Member {
    fn new(cfg: RoomConfig, roster: &Roster, id: u64) -> Member {
        let me = (std::process::id() as u64) << 32 | id;
        let mut r = Member {
            rig: Rig::opened(
                ChatSession::new(Arc::new(cfg), roster.clone(), lobby(), me),
                info(me),
            ),
        };
        assert_eq!(r.take().text, GREETING);
        r
    }

    fn take(&mut self) -> Out {
        let mut out = Out::default();
        for a in self.rig.take_actions() {
            match a {
                Action::Write(b) => out.text.push_str(&String::from_utf8_lossy(&b)),
                Action::Close => out.closed = true,
                Action::Publish { body, .. } => out
                    .published
                    .push(String::from_utf8_lossy(&body[1..]).into()),
                _ => {}
            }
        }
        out
    }

    /// Feed `input` as a driver would (again while it is consumed).
    fn feed(&mut self, input: &[u8]) -> Out {
        let mut rest = input;
        while !rest.is_empty() {
            let n = self.rig.data(rest).min(rest.len());
            if n == 0 {
                break;
            }
            rest = &rest[n..];
        }
        self.take()
    }
}

fn unlimited() -> RoomConfig {
    RoomConfig {
        rate: 0,
        ..RoomConfig::default()
    }
}

#[test]
fn control_and_bidi_characters_never_reach_the_room() {
    let roster = Roster::new(10).unwrap();
    let mut r = Member::new(unlimited(), &roster, 1);
    assert!(r.feed(b"alice\n").text.starts_with("* you are alice"));
    for (line, why) in [
        (&b"\x1b]0;pwned\x07\n"[..], "control character U+001B"),
        (b"fake\r* admin: log in again\n", "control character U+000D"),
        (
            "x\u{202e}dlrow\n".as_bytes(),
            "bidi control character U+202E",
        ),
        ("\u{9b}2J\n".as_bytes(), "control character U+009B"),
        (
            b"pad         * bob left\n",
            "more than 8 blank columns in a row",
        ),
    ] {
        let out = r.feed(line);
        assert_eq!(out.text, format!("! message refused: {why}\n"));
        assert!(out.published.is_empty(), "nothing of it reaches anyone");
        assert!(r.feed(b"fine\n").published == ["alice: fine\n"]);
    }
}

#[test]
fn refusals_in_a_row_close_the_connection() {
    let roster = Roster::new(10).unwrap();
    let mut r = Member::new(unlimited(), &roster, 2);
    for _ in 0..MAX_REFUSALS - 1 {
        let out = r.feed(b"a b\n");
        assert!(out.text.starts_with("! a name is"), "{out:?}");
        assert!(!out.closed);
    }
    let out = r.feed(b"a b\na b\na b\n");
    assert_eq!(
        out.text,
        format!(
            "! a name is letters, digits and _ - . only; try another name\n{TOO_MANY_REFUSALS}"
        )
    );
    assert!(out.closed);
    // A line accepted starts the count again.
    let mut r = Member::new(unlimited(), &roster, 3);
    r.feed(b"bob\n");
    for _ in 0..3 {
        for _ in 0..MAX_REFUSALS - 1 {
            r.feed(b"\x07\n");
        }
        let out = r.feed(b"hello\n");
        assert!(!out.closed && out.published == ["bob: hello\n"]);
    }
}

#[test]
fn a_nameless_connection_is_rate_limited_like_a_member() {
    let roster = Roster::new(10).unwrap();
    let cfg = RoomConfig {
        rate: 1,
        burst: 2,
        ..RoomConfig::default()
    };
    let mut r = Member::new(cfg, &roster, 4);
    let out = r.feed(&b"\n".repeat(1000));
    // Two answered (the burst), one `too fast`, the rest dropped in silence.
    assert_eq!(
        out.text,
        "! a name is 1 to 32 characters; try another name\n".repeat(2)
            + "! too fast (at most 1 lines a second), line dropped\n"
    );
    assert!(!out.closed);
}

#[test]
fn an_http_request_line_first_closes_the_connection() {
    let roster = Roster::new(10).unwrap();
    for first in [
        &b"GET / HTTP/1.1\r\n"[..],
        b"POST /login HTTP/1.1\r\n",
        b"OPTIONS * HTTP/1.0\n",
    ] {
        let mut r = Member::new(unlimited(), &roster, 5);
        let mut input = first.to_vec();
        input.extend_from_slice(b"Host: x\r\n\r\nuser=ann&pass=hunter2\n");
        let out = r.feed(&input);
        assert_eq!(out.text, NOT_HTTP);
        assert!(out.closed && out.published.is_empty());
        assert!(roster.local_members().is_empty());
    }
    // Only a first line: a member may say it.
    let mut r = Member::new(unlimited(), &roster, 6);
    r.feed(b"carol\n");
    assert_eq!(
        r.feed(b"GET / HTTP/1.1\n").published,
        ["carol: GET / HTTP/1.1\n"]
    );
}

#[test]
fn names_are_normalized_and_unique_by_skeleton() {
    let roster = Roster::new(10).unwrap();
    let mut a = Member::new(unlimited(), &roster, 7);
    assert!(a
        .feed("ａｌｉｃｅ\n".as_bytes())
        .text
        .starts_with("* you are alice; online: alice\n"));
    let mut b = Member::new(unlimited(), &roster, 8);
    assert_eq!(
        b.feed("аlice\n".as_bytes()).text,
        "! name taken; try another name\n"
    );
    assert_eq!(
        b.feed("alice\u{200b}\n".as_bytes()).text,
        "! a name is letters, digits and _ - . only; try another name\n"
    );
}

#[test]
fn with_the_web_ending_a_message_is_one_line() {
    let roster = Roster::new(10).unwrap();
    let cfg = Arc::new(unlimited());
    let me = (std::process::id() as u64) << 32 | 9;
    let mut r = Member {
        rig: Rig::opened(
            ChatSession::new(cfg, roster.clone(), lobby(), me).with_eol(0xFF),
            info(me),
        ),
    };
    r.take();
    assert!(r.feed(b"dave\xff").text.starts_with("* you are dave"));
    let out = r.feed(&[&b"\n".repeat(60_000)[..], b"\xff"].concat());
    assert_eq!(
        out.text, "! line too long (at most 1024 bytes), dropped\n",
        "one answer, not 60,000"
    );
    let out = r.feed(b"two\nlines\xff");
    assert_eq!(out.text, "! message refused: control character U+000A\n");
    assert!(out.published.is_empty());
}
