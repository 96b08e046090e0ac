//! The TLS layer's mid-stream upgrade ([`Context::start_tls`]) and TLS data channels
//! ([`Context::channel_tls`]), driven by hand, no sockets: a tiny FTP-like inner session,
//! rustls clients for the control connection and for each data channel, and a harness playing
//! the driver (it carries the actions to the clients and answers with the events a driver
//! gives). One timeline records both sides in order: what the inner session saw (`line …`,
//! `secure`, `ch1 data …`) and what the driver was asked to do (`drv …`).

use super::session::MAX_INBOX;
use super::test_util::{client, info, pattern, receive, test_file};
use super::*;
use crate::session::Action;
use std::collections::{BTreeMap, VecDeque};
use std::fs::File;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::sync::{Arc, Mutex};

const KIB: usize = 1024;
const GREETING: &[u8] = b"220 hi\r\n";
const HEAD: &[u8] = b"HEAD\n";

/// What the inner session saw, shared with the harness (the session itself is boxed away in
/// the layer), which adds the driver's side to the same timeline.
#[derive(Default)]
struct Seen {
    log: Vec<String>,
    upload: Vec<u8>,
}

type Shared = Arc<Mutex<Seen>>;

/// FTP's shape in a few lines (CRLF commands, one per `on_data`, as FTP reads them):
/// `AUTH` (234, start_tls), `FILE` (the file as a range, then 226), `PASV` (a passive channel,
/// paused at `Connected` as FTP does until a transfer takes it), `RETR` (TLS on the channel,
/// resume, a head line and the file, close), `RETRD` (the same, closing when told the
/// channel drained), `STOR` (TLS on the channel, resume), `STORP` (TLS, the pause stands),
/// `RESUME`, `HOLD n` (pause the upload once n bytes came); anything else is echoed as 200.
struct Ftp {
    seen: Shared,
    file: Arc<File>,
    len: u64,
    data: Option<ChannelId>,
    hold: Option<usize>,
    close_on_drained: bool,
}

impl Ftp {
    fn data(&self) -> ChannelId {
        self.data.expect("PASV first")
    }
}

impl Session for Ftp {
    fn on_open(&mut self, cx: &mut Context) {
        cx.write(GREETING);
    }

    fn on_data(&mut self, input: &[u8], cx: &mut Context) -> usize {
        let Some(i) = input.windows(2).position(|w| w == b"\r\n") else {
            return 0;
        };
        let line = String::from_utf8_lossy(&input[..i]).into_owned();
        self.seen.lock().unwrap().log.push(format!("line {line}"));
        match line.as_str() {
            "AUTH" => {
                cx.write(b"234 go\r\n");
                cx.start_tls();
            }
            "FILE" => {
                cx.send_file(self.file.clone(), 0, self.len);
                cx.write(b"226 sent\r\n");
            }
            "PASV" => self.data = Some(cx.listen()),
            "RETR" | "RETRD" => {
                let id = self.data();
                cx.channel_tls(id);
                cx.channel_pause(id, false);
                cx.channel_write(id, HEAD);
                cx.channel_send_file(id, self.file.clone(), 0, self.len);
                if line == "RETR" {
                    cx.channel_close(id);
                } else {
                    self.close_on_drained = true;
                }
                cx.write(b"150 retr\r\n");
            }
            "STOR" | "STORP" => {
                let id = self.data();
                cx.channel_tls(id);
                if line == "STOR" {
                    cx.channel_pause(id, false);
                }
                cx.write(b"150 stor\r\n");
            }
            "RESUME" => {
                cx.channel_pause(self.data(), false);
                cx.write(b"200 resumed\r\n");
            }
            l if l.starts_with("HOLD ") => {
                self.hold = l[5..].parse().ok();
                cx.write(b"200 hold\r\n");
            }
            l => cx.write(format!("200 {l}\r\n").as_bytes()),
        }
        i + 2
    }

    fn on_secure(&mut self, _cx: &mut Context) {
        self.seen.lock().unwrap().log.push("secure".into());
    }

    fn on_channel(&mut self, id: ChannelId, ev: ChannelEvent<'_>, cx: &mut Context) {
        let mut seen = self.seen.lock().unwrap();
        match ev {
            ChannelEvent::Listening(a) => {
                seen.log.push(format!("ch{id} listening"));
                cx.write(format!("227 {}\r\n", a.port()).as_bytes());
            }
            ChannelEvent::Connected(_) => {
                seen.log.push(format!("ch{id} connected"));
                cx.channel_pause(id, true);
            }
            ChannelEvent::Data(b) => {
                seen.log.push(format!("ch{id} data {}", b.len()));
                seen.upload.extend_from_slice(b);
                if self.hold.is_some_and(|h| seen.upload.len() >= h) {
                    self.hold = None;
                    seen.log.push(format!("ch{id} hold"));
                    cx.channel_pause(id, true);
                }
            }
            ChannelEvent::Eof => {
                seen.log.push(format!("ch{id} eof"));
                cx.write(format!("226 got {}\r\n", seen.upload.len()).as_bytes());
                cx.channel_close(id);
            }
            ChannelEvent::Drained => {
                seen.log.push(format!("ch{id} drained"));
                if std::mem::take(&mut self.close_on_drained) {
                    cx.channel_close(id);
                }
            }
            ChannelEvent::Closed => seen.log.push(format!("ch{id} closed")),
            ChannelEvent::Error(k) => seen.log.push(format!("ch{id} error {k:?}")),
            ChannelEvent::TooMany => seen.log.push(format!("ch{id} too many")),
        }
    }
}

struct FtpProto {
    seen: Shared,
    file: Arc<File>,
    len: u64,
}

impl Protocol for FtpProto {
    type Session = Ftp;
    fn new_session(&self, _: &ConnInfo) -> Ftp {
        Ftp {
            seen: self.seen.clone(),
            file: self.file.clone(),
            len: self.len,
            data: None,
            hold: None,
            close_on_drained: false,
        }
    }
}

/// A data channel as the driver and its client see it.
#[derive(Default)]
struct Chan {
    /// The client's TLS; `None`: raw bytes (garbage, a client gone mid-handshake).
    client: Option<rustls::ClientConnection>,
    /// Sent by the client, not yet read by the driver (in the kernel's buffers).
    wire: Vec<u8>,
    /// The client shut down its side: the driver reports `Eof` once `wire` is read.
    fin: bool,
    eof_told: bool,
    connected: bool,
    /// The driver was told to stop reading it.
    paused: bool,
    closed: bool,
    /// What the client decrypted, and whether close_notify came.
    plain: Vec<u8>,
    notified: bool,
    /// What the server sent while no client decrypts (alerts, a handshake nobody finishes).
    raw: Vec<u8>,
    /// At `ChannelClose`: what the client had decrypted, and whether close_notify had come.
    at_close: Option<(usize, bool)>,
    reads: usize,
}

enum Ev {
    Listening,
    Connected,
    Drained,
    Closed,
}

/// The sizes of the driver's successive reads of a channel: whatever the kernel has, up to
/// its 256 KiB buffer.
const READS: [usize; 7] = [
    1,
    5 * KIB + 3,
    256 * KIB,
    17,
    100_003,
    256 * KIB - 1,
    64 * KIB,
];

/// The driver, by hand.
struct H {
    s: MaybeTls<Ftp>,
    cx: Context,
    seen: Shared,
    made: SelfSigned,
    /// The control connection's client: `None` while it speaks in the clear.
    ctl: Option<rustls::ClientConnection>,
    /// What the client received in the clear, and decrypted.
    clear: Vec<u8>,
    plain: Vec<u8>,
    /// Received by the driver, not consumed by the session.
    input: Vec<u8>,
    input_paused: bool,
    closed: bool,
    chans: BTreeMap<ChannelId, Chan>,
    events: VecDeque<(ChannelId, Ev)>,
    /// At each `ChannelPause(_, true)`: the plaintext the layer held for the inner session.
    held_at_pause: Vec<usize>,
}

impl H {
    fn new(file_len: usize) -> H {
        let (cfg, made) = TlsConfig::self_signed(&["localhost"], &[]).unwrap();
        let seen = Shared::default();
        let inner = FtpProto {
            seen: seen.clone(),
            file: test_file(file_len),
            len: file_len as u64,
        };
        let proto = TlsProtocol::upgradable(inner, cfg, vec![]);
        let s = proto.new_session_on(0, &info());
        assert!(
            matches!(s, MaybeTls::Tls(_)),
            "upgradable: the layer is there"
        );
        let mut h = H {
            s,
            cx: Context::new(info()),
            seen,
            made,
            ctl: None,
            clear: Vec::new(),
            plain: Vec::new(),
            input: Vec::new(),
            input_paused: false,
            closed: false,
            chans: BTreeMap::new(),
            events: VecDeque::new(),
            held_at_pause: Vec::new(),
        };
        h.s.on_open(&mut h.cx);
        h.apply();
        h.run();
        h
    }

    fn log(&self) -> Vec<String> {
        self.seen.lock().unwrap().log.clone()
    }

    fn upload(&self) -> Vec<u8> {
        self.seen.lock().unwrap().upload.clone()
    }

    fn drv(&self, what: String) {
        self.seen.lock().unwrap().log.push(format!("drv {what}"));
    }

    fn held(&self, id: ChannelId) -> usize {
        match &self.s {
            MaybeTls::Tls(t) => t.held(id).unwrap_or(0),
            _ => 0,
        }
    }

    fn chan(&mut self, id: ChannelId) -> &mut Chan {
        self.chans.get_mut(&id).expect("a channel")
    }

    fn send_clear(&mut self, bytes: &[u8]) {
        self.input.extend_from_slice(bytes);
        self.run();
    }

    fn send(&mut self, line: &str) {
        let c = self.ctl.as_mut().expect("TLS started");
        c.writer().write_all(line.as_bytes()).unwrap();
        c.writer().write_all(b"\r\n").unwrap();
        self.run();
    }

    /// `AUTH` in the clear, then the handshake.
    fn secure(&mut self) {
        self.send_clear(b"AUTH\r\n");
        assert!(self.clear.ends_with(b"234 go\r\n"));
        self.ctl = Some(client(&self.made, &[]));
        self.run();
        assert!(!self.ctl.as_ref().unwrap().is_handshaking());
    }

    /// `PASV`, and a client connects (speaking TLS if `tls`).
    fn pasv(&mut self, tls: bool) -> ChannelId {
        self.send("PASV");
        let id = *self.chans.keys().last().expect("a listener");
        self.chan(id).client = tls.then(|| client(&self.made, &[]));
        self.events.push_back((id, Ev::Connected));
        self.run();
        id
    }

    /// Carry bytes and events until nothing moves.
    fn run(&mut self) {
        for _ in 0..100_000 {
            let mut moved = false;
            if let Some(c) = &mut self.ctl {
                while c.wants_write() {
                    c.write_tls(&mut self.input).unwrap();
                }
            }
            if !self.input.is_empty() && !self.input_paused && !self.closed {
                let n = self.s.on_data(&self.input, &mut self.cx);
                self.input.drain(..n);
                moved |= n > 0;
                self.apply();
            }
            let ids: Vec<ChannelId> = self.chans.keys().copied().collect();
            for id in ids {
                moved |= self.read_channel(id);
            }
            if let Some((id, ev)) = self.events.pop_front() {
                moved = true;
                let ev = match ev {
                    Ev::Listening => ChannelEvent::Listening("127.0.0.1:2121".parse().unwrap()),
                    Ev::Connected => {
                        self.chan(id).connected = true;
                        ChannelEvent::Connected("127.0.0.1:3000".parse().unwrap())
                    }
                    Ev::Drained => ChannelEvent::Drained,
                    Ev::Closed => ChannelEvent::Closed,
                };
                self.s.on_channel(id, ev, &mut self.cx);
                self.apply();
            }
            if !moved {
                return;
            }
        }
        panic!("no quiescence");
    }

    /// The driver reads channel `id` once, if it may: the client's bytes, or its EOF.
    fn read_channel(&mut self, id: ChannelId) -> bool {
        let ch = self.chans.get_mut(&id).unwrap();
        if let Some(c) = &mut ch.client {
            while c.wants_write() {
                c.write_tls(&mut ch.wire).unwrap();
            }
        }
        if !ch.connected || ch.paused || ch.closed {
            return false;
        }
        if !ch.wire.is_empty() {
            let n = READS[ch.reads % READS.len()].min(ch.wire.len());
            ch.reads += 1;
            let bytes: Vec<u8> = ch.wire.drain(..n).collect();
            self.s
                .on_channel(id, ChannelEvent::Data(&bytes), &mut self.cx);
        } else if ch.fin && !ch.eof_told {
            ch.eof_told = true;
            self.s.on_channel(id, ChannelEvent::Eof, &mut self.cx);
        } else {
            return false;
        }
        self.apply();
        true
    }

    /// Carry out the session's actions as a driver does; writes drain at once.
    fn apply(&mut self) {
        while self.cx.has_actions() {
            let acts: Vec<Action> = self.cx.take_actions().collect();
            let mut drained = false;
            let mut chans_drained = Vec::new();
            for a in acts {
                match a {
                    Action::Write(b) => {
                        self.drv(format!("write {}", b.len()));
                        match &mut self.ctl {
                            Some(c) => {
                                receive(c, &b, &mut self.plain);
                            }
                            None => self.clear.extend_from_slice(&b),
                        }
                        drained = true;
                    }
                    Action::SendFile { file, offset, len } => {
                        self.drv(format!("sendfile {offset} {len}"));
                        assert!(self.ctl.is_none(), "a file range passed through TLS");
                        let mut buf = vec![0; len as usize];
                        file.read_exact_at(&mut buf, offset).unwrap();
                        self.clear.extend_from_slice(&buf);
                        drained = true;
                    }
                    Action::Close | Action::Abort => {
                        self.drv(format!("{a:?}").to_lowercase());
                        self.closed = true;
                    }
                    Action::PauseInput(p) => {
                        self.drv(format!("pause {p}"));
                        self.input_paused = p;
                    }
                    Action::SetTimer(_) => {}
                    Action::Listen(id, _) => {
                        self.drv(format!("listen {id}"));
                        self.chans.insert(id, Chan::default());
                        self.events.push_back((id, Ev::Listening));
                    }
                    Action::ChannelWrite(id, b) => {
                        let ch = self.chans.get_mut(&id).expect("a channel");
                        assert!(!ch.closed, "ch{id} written after its close");
                        match &mut ch.client {
                            Some(c) => ch.notified |= receive(c, &b, &mut ch.plain),
                            None => ch.raw.extend_from_slice(&b),
                        }
                        let got = ch.plain.len();
                        self.drv(format!("chwrite {id} {} -> {got}", b.len()));
                        if !chans_drained.contains(&id) {
                            chans_drained.push(id);
                        }
                    }
                    Action::ChannelClose(id) | Action::ChannelAbort(id) => {
                        let verb = if matches!(a, Action::ChannelClose(_)) {
                            "chclose"
                        } else {
                            "chabort"
                        };
                        self.drv(format!("{verb} {id}"));
                        let ch = self.chan(id);
                        assert!(!ch.closed, "ch{id} closed twice");
                        ch.closed = true;
                        ch.at_close = Some((ch.plain.len(), ch.notified));
                        // Flushed, then closed: the driver reports `Closed`, not `Drained`.
                        chans_drained.retain(|&c| c != id);
                        self.events.push_back((id, Ev::Closed));
                    }
                    Action::ChannelPause(id, p) => {
                        self.drv(format!("chpause {id} {p}"));
                        if p {
                            self.held_at_pause.push(self.held(id));
                        }
                        self.chan(id).paused = p;
                    }
                    other => panic!("the driver got {other:?}"),
                }
            }
            for id in chans_drained {
                self.events.push_back((id, Ev::Drained));
            }
            if drained && !self.closed {
                self.s.on_drained(&mut self.cx);
            }
        }
    }
}

/// Index of the first entry equal to `what`.
fn pos(log: &[String], what: &str) -> usize {
    log.iter()
        .position(|l| l == what)
        .unwrap_or_else(|| panic!("no {what:?} in {log:#?}"))
}

/// Index of the last entry starting with `prefix`.
fn last(log: &[String], prefix: &str) -> usize {
    log.iter()
        .rposition(|l| l.starts_with(prefix))
        .unwrap_or_else(|| panic!("no {prefix:?} in {log:#?}"))
}

fn count(log: &[String], prefix: &str) -> usize {
    log.iter().filter(|l| l.starts_with(prefix)).count()
}

#[test]
fn plaintext_pipelined_behind_auth_is_never_a_command() {
    // A command before AUTH in the same input is still one (the driver calls again).
    let mut h = H::new(0);
    h.send_clear(b"NOOP\r\nAUTH\r\nUSER evil\r\n");
    assert!(h.input.is_empty(), "all of it was taken (as the handshake)");
    assert!(h.closed, "the handshake failed: the connection closes");
    let said = [GREETING, b"200 NOOP\r\n234 go\r\n"].concat();
    assert_eq!(&h.clear[..said.len()], &said[..]);
    // After that, only rustls's alert (decode_error): a TLS record, no reply to USER.
    let alert = &h.clear[said.len()..];
    assert_eq!(alert, [0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x32]);
    let log = h.log();
    let lines: Vec<&String> = log.iter().filter(|l| l.starts_with("line ")).collect();
    assert_eq!(
        lines,
        ["line NOOP", "line AUTH"],
        "USER never reached the session"
    );
    assert_eq!(count(&log, "secure"), 0);
    let n = h.s.on_data(b"PWD\r\n", &mut h.cx);
    assert_eq!(n, 5, "input after failure is dropped");
    assert_eq!(count(&h.log(), "line "), 2);
}

#[test]
fn upgrade_then_commands_and_file_ranges_are_encrypted() {
    let len = 600 * KIB + 7;
    let file = pattern(len);
    let mut h = H::new(len);
    h.send_clear(b"FILE\r\n");
    let mut clear = [GREETING, &file, b"226 sent\r\n"].concat();
    assert!(h.clear == clear, "a range in the clear is the driver's own");
    assert_eq!(count(&h.log(), &format!("drv sendfile 0 {len}")), 1);
    h.secure();
    clear.extend_from_slice(b"234 go\r\n");
    assert!(h.clear == clear);
    h.send("NOOP");
    h.send("FILE");
    // (`receive` fails the test on any byte the client cannot decrypt.)
    assert!(h.plain == [b"200 NOOP\r\n", &file[..], b"226 sent\r\n"].concat());
    assert!(h.clear == clear, "nothing more in the clear");
    let log = h.log();
    assert_eq!(count(&log, "secure"), 1);
    assert!(pos(&log, "secure") < pos(&log, "line NOOP"));
    assert_eq!(count(&log, "drv sendfile"), 1, "after start_tls, encrypted");
}

#[test]
fn tls_channel_download() {
    let len = 2 * 1024 * KIB;
    let mut h = H::new(len);
    h.secure();
    let id = h.pasv(true);
    assert_eq!(id, 1);
    h.send("RETR");
    let want = [HEAD, &pattern(len)[..]].concat();
    let ch = &h.chans[&id];
    assert!(!ch.client.as_ref().unwrap().is_handshaking());
    assert_eq!(ch.plain.len(), want.len());
    assert!(ch.plain == want, "head and file intact, in order");
    assert!(ch.notified, "then close_notify");
    assert_eq!(
        ch.at_close,
        Some((want.len(), true)),
        "ChannelClose after the last ciphertext"
    );
    let log = h.log();
    // The inner session paused the channel at Connected; the layer resumed the driver so
    // the handshake could run, before anything was written on the channel.
    let paused = pos(&log, "drv chpause 1 true");
    assert!(pos(&log, "ch1 connected") < paused);
    let resumed = pos(&log, "drv chpause 1 false");
    let first_write = log
        .iter()
        .position(|l| l.starts_with("drv chwrite 1"))
        .unwrap();
    assert!(pos(&log, "line RETR") < resumed && resumed < first_write);
    assert_eq!(
        count(&log, "ch1 drained"),
        0,
        "closed, not drained: {log:#?}"
    );
    assert!(last(&log, "drv chwrite 1") < pos(&log, "drv chclose 1"));
    assert_eq!(
        last(&log, "ch1 "),
        pos(&log, "ch1 closed"),
        "Closed ends it"
    );
    assert!(pos(&log, "drv chclose 1") < pos(&log, "ch1 closed"));
    assert_eq!(h.plain, b"227 2121\r\n150 retr\r\n");
}

#[test]
fn tls_channel_drained_only_when_all_is_out() {
    let len = 3 * 512 * KIB + 5;
    let mut h = H::new(len);
    h.secure();
    let id = h.pasv(true);
    h.send("RETRD");
    let want = [HEAD, &pattern(len)[..]].concat();
    assert!(h.chans[&id].plain == want);
    assert_eq!(h.chans[&id].at_close, Some((want.len(), true)));
    let log = h.log();
    assert_eq!(count(&log, "ch1 drained"), 1, "{log:#?}");
    let drained = pos(&log, "ch1 drained");
    // The write before it carried the last of the file.
    let before = &log[last(&log[..drained], "drv chwrite 1")];
    assert!(before.ends_with(&format!("-> {}", want.len())), "{before}");
    assert!(drained < pos(&log, "drv chclose 1"));
    assert_eq!(last(&log, "ch1 "), pos(&log, "ch1 closed"));
}

/// The client's upload. Written before the handshake ends, it follows the client's Finished
/// (TLS 1.3 clients send at once).
fn upload(h: &mut H, id: ChannelId, data: &[u8]) {
    let c = h.chan(id).client.as_mut().unwrap();
    c.writer().write_all(data).unwrap();
}

/// The end of the upload: close_notify, then the client shuts down its side.
fn end_upload(h: &mut H, id: ChannelId) {
    let ch = h.chan(id);
    ch.client.as_mut().unwrap().send_close_notify();
    ch.fin = true;
}

#[test]
fn tls_channel_upload_paused_and_resumed() {
    let mut h = H::new(0);
    h.secure();
    let id = h.pasv(true);
    h.send(&format!("HOLD {}", 300 * KIB));
    h.send("STOR");
    assert!(!h.chans[&id].client.as_ref().unwrap().is_handshaking());
    let data = pattern(1024 * KIB);
    upload(&mut h, id, &data);
    end_upload(&mut h, id);
    h.run();
    // The inner session paused at 300 KiB: the driver is told at once, the rest waits in the
    // kernel, no Data comes meanwhile.
    let log = h.log();
    let hold = pos(&log, "ch1 hold");
    assert_eq!(log[hold + 1], "drv chpause 1 true");
    assert_eq!(last(&log, "ch1 data"), hold - 1, "no Data while paused");
    let got = h.upload().len();
    assert!((300 * KIB..1024 * KIB).contains(&got), "{got}");
    assert!(h.chans[&id].paused);
    assert!(
        !h.chans[&id].wire.is_empty(),
        "the rest waits in the kernel"
    );
    assert!(h.held_at_pause.iter().all(|&n| n <= MAX_INBOX));
    h.send("RESUME");
    assert_eq!(h.upload().len(), data.len());
    assert!(h.upload() == data, "every byte, in order");
    let log = h.log();
    assert!(count(&log, "ch1 data") > 3, "several reads: {log:#?}");
    assert_eq!(
        count(&log, "ch1 eof"),
        1,
        "one Eof (close_notify, then TCP EOF)"
    );
    assert!(last(&log, "ch1 data") < pos(&log, "ch1 eof"));
    assert!(h.plain.ends_with(b"226 got 1048576\r\n"));
    assert!(h.chans[&id].notified, "our close_notify back");
    assert_eq!(last(&log, "ch1 "), pos(&log, "ch1 closed"));
}

#[test]
fn a_pause_from_before_channel_tls_holds_the_plaintext() {
    // FTP pauses a passive channel at Connected. Made TLS without being resumed, the channel
    // is read for the handshake; the upload behind the client's Finished is held, not given,
    // and the driver stops reading as soon as the handshake is done.
    let mut h = H::new(0);
    h.secure();
    let id = h.pasv(true);
    let data = pattern(1024 * KIB);
    upload(&mut h, id, &data);
    h.send("STORP");
    assert!(!h.chans[&id].client.as_ref().unwrap().is_handshaking());
    let log = h.log();
    assert!(pos(&log, "line STORP") < pos(&log, "drv chpause 1 false"));
    assert_eq!(
        count(&log, "ch1 data") + count(&log, "ch1 eof"),
        0,
        "{log:#?}"
    );
    assert!(h.chans[&id].paused, "the driver stopped reading");
    let held = h.held(id);
    assert!(held > 0, "the read with the Finished brought some upload");
    // Never more than one read (256 KiB) past the layer's bound.
    assert!(held <= MAX_INBOX + 256 * KIB, "{held}");
    assert_eq!(*h.held_at_pause.last().unwrap(), held);
    assert!(
        !h.chans[&id].wire.is_empty(),
        "the rest waits in the kernel"
    );
    end_upload(&mut h, id);
    h.send("RESUME");
    let log = h.log();
    assert!(
        pos(&log, "line RESUME") < pos(&log, "ch1 data 262144"),
        "{log:#?}"
    );
    assert!(h.upload() == data);
    assert_eq!(count(&log, "ch1 eof"), 1);
}

#[test]
fn garbage_instead_of_a_client_hello_on_a_channel() {
    let mut h = H::new(0);
    h.secure();
    let id = h.pasv(false);
    h.chan(id)
        .wire
        .extend_from_slice(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    h.send("STOR");
    let log = h.log();
    let closed = pos(&log, "drv chclose 1");
    assert!(
        closed < pos(&log, "ch1 closed"),
        "the driver's Closed reaches the inner"
    );
    assert_eq!(count(&log, "ch1 data") + count(&log, "ch1 eof"), 0);
    let raw = &h.chans[&id].raw;
    assert!(
        raw.is_empty() || raw[0] == 0x15,
        "at most an alert: {raw:?}"
    );
    h.send("NOOP");
    assert!(h.plain.ends_with(b"150 stor\r\n200 NOOP\r\n"));
}

#[test]
fn eof_mid_handshake_is_no_end_of_upload() {
    let mut h = H::new(0);
    h.secure();
    let id = h.pasv(true);
    // The client sends its ClientHello and goes away before finishing the handshake.
    let ch = h.chan(id);
    let mut c = ch.client.take().unwrap();
    while c.wants_write() {
        c.write_tls(&mut ch.wire).unwrap();
    }
    ch.fin = true;
    h.send("STOR");
    assert!(
        !h.chans[&id].raw.is_empty(),
        "the server's first flight went out"
    );
    let log = h.log();
    assert!(pos(&log, "drv chclose 1") < pos(&log, "ch1 closed"));
    assert_eq!(
        count(&log, "ch1 eof"),
        0,
        "an upload cut short is not complete"
    );
    assert_eq!(count(&log, "ch1 data"), 0);
    h.send("NOOP");
    assert!(h.plain.ends_with(b"200 NOOP\r\n"));
}
