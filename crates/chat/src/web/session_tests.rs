//! `WebSession` driven by hand on bingfa-net's rig, frames read back with a client-side
//! decoder, so every byte the wrapper writes is checked.

use super::*;
use crate::ws::frame::encode_masked;
use bingfa_net::rig::Rig;
use bingfa_net::Message;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A line session that records what happens to it.
/// The inner session's timer.
const TICK: Timer = Timer("lines.tick");

struct Lines {
    log: Arc<Mutex<Vec<String>>>,
}

impl Session for Lines {
    fn on_open(&mut self, cx: &mut Context) {
        self.log.lock().unwrap().push("open".into());
        cx.subscribe("room");
        cx.write(b"* welcome\n");
    }
    fn on_data(&mut self, input: &[u8], cx: &mut Context) -> usize {
        let Some(i) = input.iter().position(|&b| b == b'\n') else {
            return 0;
        };
        let line = String::from_utf8_lossy(&input[..i]).to_string();
        self.log.lock().unwrap().push(format!("line {line}"));
        match line.as_str() {
            "/quit" => {
                cx.write(b"* bye\nunfinished");
                cx.close();
            }
            "/timer" => cx.set_timer(TICK, Duration::from_secs(5)),
            "/pub" => cx.publish("room", b"x"),
            "/partial" => {
                cx.write(b"par");
                cx.write_vec(b"tial\r\nnext".to_vec());
            }
            "/pause" => cx.pause_input(true),
            _ => cx.write(format!("echo: {line}\n").as_bytes()),
        }
        i + 1
    }
    fn on_eof(&mut self, cx: &mut Context) {
        cx.write(b"too late\n");
        cx.publish("room", b"left");
        cx.close();
    }
    fn on_timer(&mut self, timer: Timer, cx: &mut Context) {
        assert_eq!(timer, TICK);
        cx.pause_input(false);
        cx.write(b"* tick\n");
    }
    fn on_close(&mut self) {
        self.log.lock().unwrap().push("close".into());
    }
}

fn info() -> ConnInfo {
    ConnInfo {
        id: 7,
        peer: "127.0.0.1:1".parse().unwrap(),
        local: "127.0.0.1:2".parse().unwrap(),
        cred: None,
    }
}

/// The wrapper on bingfa-net's rig, and what its inner session logged.
struct Web {
    rig: Rig<WebSession<Lines>>,
    log: Arc<Mutex<Vec<String>>>,
    /// Input not consumed yet, kept as a driver keeps it.
    pending: Vec<u8>,
}

/// What one callback produced: the bytes written (coalesced) and the other actions.
#[derive(Debug, Default)]
struct Out {
    bytes: Vec<u8>,
    other: Vec<Action>,
}

impl Out {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.bytes).into_owned()
    }
    /// The written bytes as server frames.
    fn frames(&self) -> Vec<Event> {
        let mut d = Decoder::client(1 << 20);
        let mut rest = &self.bytes[..];
        let mut out = Vec::new();
        while !rest.is_empty() {
            let (n, ev) = d.decode(rest);
            rest = &rest[n..];
            out.extend(ev.unwrap());
            assert!(n > 0, "a truncated frame: {rest:?}");
        }
        out
    }
    fn closes(&self) -> bool {
        self.other.iter().any(|a| matches!(a, Action::Close))
    }
}

impl Web {
    fn new() -> Web {
        Self::with(WebLimits::default())
    }
    fn with(limits: WebLimits) -> Web {
        let log = Arc::new(Mutex::new(Vec::new()));
        let web = WebSession::with_limits(Lines { log: log.clone() }, info(), limits);
        Web {
            rig: Rig::new(web, info()),
            log,
            pending: Vec::new(),
        }
    }
    fn take(&mut self) -> Out {
        let mut out = Out::default();
        for a in self.rig.take_actions() {
            match a {
                Action::Write(b) => out.bytes.extend_from_slice(&b),
                other => out.other.push(other),
            }
        }
        out
    }
    /// Feed bytes like a driver: again while something is consumed and input remains.
    fn data(&mut self, input: &[u8]) -> Out {
        self.pending.extend_from_slice(input);
        while !self.pending.is_empty() {
            let n = self.rig.data(&self.pending);
            if n == 0 {
                break;
            }
            self.pending.drain(..n);
        }
        self.take()
    }
    fn upgrade(&mut self) -> Out {
        self.data(UPGRADE)
    }
    fn log(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }
}

const UPGRADE: &[u8] =
    b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";

fn text(s: &str) -> Vec<u8> {
    encode_masked(Opcode::Text, true, s.as_bytes(), [1, 2, 3, 4])
}

fn t(s: &str) -> Event {
    Event::Text(s.into())
}

#[test]
fn the_page_is_served_and_the_inner_session_is_not_opened() {
    let mut r = Web::new();
    let out =
        r.data(b"GET / HTTP/1.1\r\nHost: x\r\n\r\nGET /index.html?x HTTP/1.1\r\nHost: x\r\n\r\n");
    let body = super::super::PAGE;
    let csp = origin::policy(body);
    let one = String::from_utf8(http::page(body, &csp, false, true)).unwrap();
    assert_eq!(out.text(), format!("{one}{one}"));
    assert!(!out.closes());
    let out = r.data(b"HEAD / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    assert_eq!(out.bytes, http::page(body, &csp, true, false));
    assert!(out.closes());
    r.rig.session_mut().on_close();
    assert!(r.log().is_empty(), "{:?}", r.log());
}

#[test]
fn errors_close_the_connection() {
    let cases: [(&[u8], &str); 7] = [
        (
            b"GET /nope HTTP/1.1\r\nHost: x\r\n\r\n",
            "HTTP/1.1 404 Not Found\r\n",
        ),
        (
            b"POST / HTTP/1.1\r\nHost: x\r\n\r\n",
            "HTTP/1.1 405 Method Not Allowed\r\n",
        ),
        (
            b"GET / HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc",
            "HTTP/1.1 400 Bad Request\r\n",
        ),
        (
            b"GET /ws HTTP/1.1\r\nHost: x\r\n\r\n",
            "HTTP/1.1 400 Bad Request\r\n",
        ),
        (b"garbage\r\n\r\n", "HTTP/1.1 400 Bad Request\r\n"),
        (
            b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
              Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 8\r\n\r\n",
            "HTTP/1.1 426 Upgrade Required\r\n",
        ),
        (
            b"GET / HTTP/3.0\r\n\r\n",
            "HTTP/1.1 505 HTTP Version Not Supported\r\n",
        ),
    ];
    for (req, status) in cases {
        let mut r = Web::new();
        let out = r.data(req);
        assert!(out.text().starts_with(status), "{}", out.text());
        assert!(out.text().contains("Connection: close\r\n"));
        assert!(out.closes());
        if status.contains("405") {
            assert!(out.text().contains("Allow: GET, HEAD\r\n"));
        }
        if status.contains("426") {
            assert!(out.text().contains("Sec-WebSocket-Version: 13\r\n"));
        }
        // Whatever comes next is dropped.
        assert_eq!(r.rig.data(b"GET / HTTP/1.1\r\n\r\n"), 18);
        assert!(!r.rig.has_actions());
    }
}

#[test]
fn an_endless_head_is_431() {
    let mut r = Web::with(WebLimits {
        max_head: 64,
        ..WebLimits::default()
    });
    assert!(r.data(b"GET / HTTP/1.1\r\n").bytes.is_empty());
    let out = r.data(&[b'a'; 64]);
    assert!(out.text().starts_with("HTTP/1.1 431 "), "{}", out.text());
    assert!(out.closes());
}

#[test]
fn upgrade_then_lines_both_ways() {
    let mut r = Web::new();
    // The head and the first frame in one read.
    let mut input = UPGRADE.to_vec();
    input.extend(text("hello"));
    let out = r.data(&input);
    let head = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n";
    assert!(out.text().starts_with(head));
    let frames = Out {
        bytes: out.bytes[head.len()..].to_vec(),
        other: vec![],
    };
    assert_eq!(frames.frames(), [t("* welcome"), t("echo: hello")]);
    // The head deadline is cancelled before the inner session's own actions.
    assert!(
        matches!(&out.other[..], [Action::SetTimer(HEAD, None), Action::Subscribe(topic)] if &**topic == "room"),
        "{:?}",
        out.other
    );
    assert!(r.rig.session().upgraded());
    // A line split over writes, with \r\n, and a partial line held back.
    assert_eq!(r.data(&text("/partial")).frames(), [t("partial")]);
    assert_eq!(r.data(&text("x")).frames(), [t("nextecho: x")]);
    // A multi-line message is separate lines; one trailing newline does not add an empty one.
    assert_eq!(
        r.data(&text("a\nb\n")).frames(),
        [t("echo: a"), t("echo: b")]
    );
    assert_eq!(
        r.log(),
        [
            "open",
            "line hello",
            "line /partial",
            "line x",
            "line a",
            "line b"
        ]
    );
}

#[test]
fn ping_pong_and_fragments() {
    let mut r = Web::new();
    r.upgrade();
    let input = [
        encode_masked(Opcode::Text, false, b"he", [9, 9, 9, 9]),
        encode_masked(Opcode::Ping, true, b"p1", [1, 1, 1, 1]),
        encode_masked(Opcode::Continuation, true, b"llo", [5, 5, 5, 5]),
    ]
    .concat();
    let out = r.data(&input);
    assert_eq!(
        out.frames(),
        [Event::Pong(b"p1".to_vec()), t("echo: hello")]
    );
}

#[test]
fn protocol_errors_send_their_close_code() {
    let cases: [(Vec<u8>, u16); 4] = [
        (b"\x81\x02hi".to_vec(), 1002),
        (
            encode_masked(Opcode::Text, true, &[0xc3, 0x28], [1, 2, 3, 4]),
            1007,
        ),
        (
            encode_masked(Opcode::Binary, true, b"bin", [1, 2, 3, 4]),
            1003,
        ),
        (text(&"x".repeat(100)), 1009),
    ];
    for (input, code) in cases {
        let mut r = Web::with(WebLimits {
            max_message: 64,
            ..WebLimits::default()
        });
        r.upgrade();
        let out = r.data(&input);
        match &out.frames()[..] {
            [Event::Close(Some((c, _)))] => assert_eq!(*c, code),
            f => panic!("expected a close {code}, got {f:?}"),
        }
        assert!(out.closes());
        // Nothing more reaches the inner session, and its later writes are dropped.
        let late = text("late");
        assert_eq!(r.rig.data(&late), late.len());
        assert!(!r.rig.has_actions());
        assert_eq!(r.log(), ["open"]);
    }
}

#[test]
fn inner_close_sends_the_rest_then_close_1000() {
    let mut r = Web::new();
    r.upgrade();
    let out = r.data(&text("/quit"));
    assert_eq!(
        out.frames(),
        [
            t("* bye"),
            t("unfinished"),
            Event::Close(Some((1000, String::new())))
        ]
    );
    assert!(out.closes());
    r.rig.session_mut().on_close();
    assert_eq!(r.log(), ["open", "line /quit", "close"]);
}

#[test]
fn peer_close_is_echoed() {
    let mut r = Web::new();
    r.upgrade();
    let out = r.data(&encode_masked(
        Opcode::Close,
        true,
        &1001u16.to_be_bytes(),
        [1, 2, 3, 4],
    ));
    assert_eq!(out.frames(), [Event::Close(Some((1001, String::new())))]);
    // The inner session hears it as end of input: its publish goes out, its write does not.
    assert!(
        matches!(&out.other[..], [Action::Close, Action::Publish { body, .. }] if &**body == b"left"),
        "{:?}",
        out.other
    );
}

#[test]
fn other_actions_pass_through_unchanged() {
    let mut r = Web::new();
    r.upgrade();
    let now = r.rig.now();
    let out = r.data(&text("/timer"));
    assert!(
        matches!(&out.other[..], [Action::SetTimer(TICK, Some(at))] if *at == now + Duration::from_secs(5)),
        "{:?}",
        out.other
    );
    let out = r.data(&text("/pub"));
    assert!(
        matches!(&out.other[..], [Action::Publish { topic, body }] if &**topic == "room" && &**body == b"x")
    );
}

#[test]
fn paused_inner_gets_its_lines_when_it_resumes() {
    let mut r = Web::new();
    r.upgrade();
    let out = r.data(&[text("/pause"), text("one"), text("two")].concat());
    assert!(matches!(&out.other[..], [Action::PauseInput(true)]));
    assert!(out.bytes.is_empty());
    // A driver stops calling on_data while paused; the timer resumes the inner session, and
    // the line that was already decoded is fed at once.
    r.rig.call(|s, cx| s.on_timer(TICK, cx));
    let out = r.take();
    assert!(matches!(&out.other[..], [Action::PauseInput(false)]));
    assert_eq!(out.frames(), [t("* tick"), t("echo: one")]);
    assert_eq!(
        r.data(&text("three")).frames(),
        [t("echo: two"), t("echo: three")]
    );
}

#[test]
fn the_head_timer_runs_from_open_and_between_requests() {
    let mut r = Web::new();
    let now = r.rig.now();
    r.rig.call(|s, cx| s.on_open(cx));
    let out = r.take();
    assert!(
        matches!(&out.other[..], [Action::SetTimer(HEAD, Some(at))] if *at == now + Duration::from_secs(10)),
        "{:?}",
        out.other
    );
    // A page on a kept-alive connection arms it again for the next request.
    let out = r.data(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(out.text().starts_with("HTTP/1.1 200 OK\r\n"));
    assert!(
        matches!(&out.other[..], [Action::SetTimer(HEAD, Some(_))]),
        "{:?}",
        out.other
    );
    // Nothing more came: closed without a word, the inner session never opened.
    r.rig.call(|s, cx| s.on_timer(HEAD, cx));
    let out = r.take();
    assert!(out.bytes.is_empty() && out.closes(), "{:?}", out);
    assert!(r.log().is_empty());
}

#[test]
fn half_a_head_at_the_deadline_gets_408() {
    let mut r = Web::new();
    r.rig.call(|s, cx| s.on_open(cx));
    r.take();
    assert!(r.data(b"GET / HTTP/1.1\r\nHo").bytes.is_empty());
    r.rig.call(|s, cx| s.on_timer(HEAD, cx));
    let out = r.take();
    assert!(
        out.text().starts_with("HTTP/1.1 408 Request Timeout\r\n"),
        "{}",
        out.text()
    );
    assert!(out.closes());
    // Input after that is dropped.
    assert!(r.data(b"st: x\r\n\r\n").bytes.is_empty());
}

/// Records the callbacks it gets; consumes all input.
struct Every(Arc<Mutex<Vec<&'static str>>>);

impl Session for Every {
    fn on_open(&mut self, _cx: &mut Context) {
        self.0.lock().unwrap().push("on_open");
    }
    fn on_data(&mut self, input: &[u8], _cx: &mut Context) -> usize {
        self.0.lock().unwrap().push("on_data");
        input.len()
    }
    fn on_eof(&mut self, _cx: &mut Context) {
        self.0.lock().unwrap().push("on_eof");
    }
    fn on_hangup(&mut self, _cx: &mut Context) {
        self.0.lock().unwrap().push("on_hangup");
    }
    fn on_message(&mut self, _msg: &Message, _cx: &mut Context) {
        self.0.lock().unwrap().push("on_message");
    }
    fn on_timer(&mut self, _timer: Timer, _cx: &mut Context) {
        self.0.lock().unwrap().push("on_timer");
    }
    fn on_task_done(&mut self, _task: bingfa_net::TaskId, _cx: &mut Context) {
        self.0.lock().unwrap().push("on_task_done");
    }
    fn on_drained(&mut self, _cx: &mut Context) {
        self.0.lock().unwrap().push("on_drained");
    }
    fn on_secure(&mut self, _cx: &mut Context) {
        self.0.lock().unwrap().push("on_secure");
    }
    fn on_channel(&mut self, _id: ChannelId, _ev: ChannelEvent<'_>, _cx: &mut Context) {
        self.0.lock().unwrap().push("on_channel");
    }
    fn on_idle(&mut self, _cx: &mut Context) {
        self.0.lock().unwrap().push("on_idle");
    }
    fn on_overflow(&mut self, _cx: &mut Context) {
        self.0.lock().unwrap().push("on_overflow");
    }
    fn on_shutdown(&mut self, _cx: &mut Context) {
        self.0.lock().unwrap().push("on_shutdown");
    }
    fn on_farewell(&mut self, _cx: &mut Context) {
        self.0.lock().unwrap().push("on_farewell");
    }
    fn on_close(&mut self) {
        self.0.lock().unwrap().push("on_close");
    }
}

/// The wrapper rule (`bingfa_net::session::Wrapper`): once upgraded, every callback reaches
/// the inner session, `on_secure` included (the handshake came before the upgrade: it is told
/// right after its open); before the upgrade, none does.
#[test]
fn the_inner_session_gets_every_callback_once_upgraded() {
    let log = Arc::new(Mutex::new(Vec::new()));
    let mut web = WebSession::new(Every(log.clone()), info());
    let mut cx = Context::new(info());
    web.on_open(&mut cx);
    web.on_secure(&mut cx);
    assert!(log.lock().unwrap().is_empty());
    assert_eq!(web.on_data(UPGRADE, &mut cx), UPGRADE.len());
    assert!(web.upgraded());
    let frame = text("hi");
    assert_eq!(web.on_data(&frame, &mut cx), frame.len());
    let msg = Message {
        topic: "room".into(),
        from: 1,
        body: Arc::from(&b"m"[..]),
    };
    web.on_hangup(&mut cx);
    web.on_message(&msg, &mut cx);
    web.on_timer(Timer("inner"), &mut cx);
    web.on_task_done(3, &mut cx);
    web.on_drained(&mut cx);
    web.on_channel(0, ChannelEvent::Eof, &mut cx);
    web.on_overflow(&mut cx);
    web.on_shutdown(&mut cx);
    web.on_eof(&mut cx);
    web.on_idle(&mut cx);
    web.on_farewell(&mut cx);
    web.on_close();
    assert_eq!(
        *log.lock().unwrap(),
        [
            "on_open",
            "on_secure",
            "on_data",
            "on_hangup",
            "on_message",
            "on_timer",
            "on_task_done",
            "on_drained",
            "on_channel",
            "on_overflow",
            "on_shutdown",
            "on_eof",
            "on_idle",
            "on_farewell",
            "on_close"
        ]
    );
}
