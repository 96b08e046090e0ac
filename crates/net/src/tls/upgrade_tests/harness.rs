//! The harness of `upgrade_tests`: a tiny FTP-like inner session recording what it sees, and
//! `H`, the driver played by hand (actions carried to rustls clients, events answered).

use super::super::test_util::{client_config, client_with, info, receive, test_file};
use super::super::*;
use crate::session::Action;
use std::collections::{BTreeMap, VecDeque};
use std::fs::File;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::sync::{Arc, Mutex};

pub(super) const KIB: usize = 1024;
pub(super) const GREETING: &[u8] = b"220 hi\r\n";
pub(super) const HEAD: &[u8] = b"HEAD\n";

/// What the inner session saw, shared with the harness (the session itself is boxed away in
/// the layer), which adds the driver's side to the same timeline.
#[derive(Default)]
pub(super) struct Seen {
    pub(super) log: Vec<String>,
    pub(super) upload: Vec<u8>,
}

pub(super) type Shared = Arc<Mutex<Seen>>;

/// FTP's shape in a few lines (CRLF commands, one per `on_data`, as FTP reads them):
/// `AUTH` (234, start_tls), `FILE` (the file as a range, then 226), `PASV` (a passive channel,
/// paused at `Connected` as FTP does until a transfer takes it), `RETR` (TLS on the channel,
/// resume, a head line and the file, close), `RETRD` (the same, closing when told the
/// channel drained), `STOR` (TLS on the channel, resume), `STORP` (TLS, the pause stands),
/// `RESUME`, `HOLD n` (pause the upload once n bytes came), `PORT` (an active channel, TLS
/// and a download queued before it connects); anything else is echoed as 200.
pub(super) struct Ftp {
    pub(super) seen: Shared,
    pub(super) file: Arc<File>,
    pub(super) len: u64,
    pub(super) data: Option<ChannelId>,
    pub(super) hold: Option<usize>,
    pub(super) close_on_drained: bool,
    /// The data channel is an active one (`PORT`): not paused at `Connected`.
    pub(super) active: bool,
}

impl Ftp {
    pub(super) fn data(&self) -> ChannelId {
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
            "PORT" => {
                // Active: TLS and the whole transfer queued before the connect completes.
                let id = cx.connect("127.0.0.1:4000".parse().unwrap());
                self.data = Some(id);
                self.active = true;
                cx.channel_tls(id);
                cx.channel_write(id, HEAD);
                cx.channel_send_file(id, self.file.clone(), 0, self.len);
                cx.channel_close(id);
            }
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
                if !self.active {
                    cx.channel_pause(id, true);
                }
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

pub(super) struct FtpProto {
    pub(super) seen: Shared,
    pub(super) file: Arc<File>,
    pub(super) len: u64,
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
            active: false,
        }
    }
}

/// A data channel as the driver and its client see it.
#[derive(Default)]
pub(super) struct Chan {
    /// The client's TLS; `None`: raw bytes (garbage, a client gone mid-handshake).
    pub(super) client: Option<rustls::ClientConnection>,
    /// Sent by the client, not yet read by the driver (in the kernel's buffers).
    pub(super) wire: Vec<u8>,
    /// The client shut down its side: the driver reports `Eof` once `wire` is read.
    pub(super) fin: bool,
    pub(super) eof_told: bool,
    pub(super) connected: bool,
    /// The driver was told to stop reading it.
    pub(super) paused: bool,
    pub(super) closed: bool,
    /// What the client decrypted, and whether close_notify came.
    pub(super) plain: Vec<u8>,
    pub(super) notified: bool,
    /// What the server sent while no client decrypts (alerts, a handshake nobody finishes).
    pub(super) raw: Vec<u8>,
    /// At `ChannelClose`: what the client had decrypted, and whether close_notify had come.
    pub(super) at_close: Option<(usize, bool)>,
    pub(super) reads: usize,
}

pub(super) enum Ev {
    Listening,
    Connected,
    Drained,
    Closed,
}

/// The sizes of the driver's successive reads of a channel: whatever the kernel has, up to
/// its 256 KiB buffer.
pub(super) const READS: [usize; 7] = [
    1,
    5 * KIB + 3,
    256 * KIB,
    17,
    100_003,
    256 * KIB - 1,
    64 * KIB,
];

/// The driver, by hand.
pub(super) struct H {
    pub(super) s: MaybeTls<Ftp>,
    pub(super) cx: Context,
    pub(super) seen: Shared,
    pub(super) made: SelfSigned,
    /// The client's configuration: its control and data connections share its session cache.
    pub(super) ccfg: Arc<rustls::ClientConfig>,
    /// The control connection's client: `None` while it speaks in the clear.
    pub(super) ctl: Option<rustls::ClientConnection>,
    /// What the client received in the clear, and decrypted.
    pub(super) clear: Vec<u8>,
    pub(super) plain: Vec<u8>,
    /// Received by the driver, not consumed by the session.
    pub(super) input: Vec<u8>,
    pub(super) input_paused: bool,
    pub(super) closed: bool,
    pub(super) chans: BTreeMap<ChannelId, Chan>,
    pub(super) events: VecDeque<(ChannelId, Ev)>,
    /// At each `ChannelPause(_, true)`: the plaintext the layer held for the inner session.
    pub(super) held_at_pause: Vec<usize>,
}

impl H {
    pub(super) fn new(file_len: usize) -> H {
        Self::with_reuse(file_len, true)
    }

    /// [`H::new`], with data channels required to resume the control session or not.
    pub(super) fn with_reuse(file_len: usize, required: bool) -> H {
        let (cfg, made) = TlsConfig::self_signed(&["localhost"], &[]).unwrap();
        let cfg = cfg.require_data_session_reuse(required);
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
            ccfg: client_config(&made, &[]),
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

    pub(super) fn log(&self) -> Vec<String> {
        self.seen.lock().unwrap().log.clone()
    }

    pub(super) fn upload(&self) -> Vec<u8> {
        self.seen.lock().unwrap().upload.clone()
    }

    pub(super) fn drv(&self, what: String) {
        self.seen.lock().unwrap().log.push(format!("drv {what}"));
    }

    pub(super) fn held(&self, id: ChannelId) -> usize {
        match &self.s {
            MaybeTls::Tls(t) => t.held(id).unwrap_or(0),
            _ => 0,
        }
    }

    pub(super) fn chan(&mut self, id: ChannelId) -> &mut Chan {
        self.chans.get_mut(&id).expect("a channel")
    }

    pub(super) fn send_clear(&mut self, bytes: &[u8]) {
        self.input.extend_from_slice(bytes);
        self.run();
    }

    pub(super) fn send(&mut self, line: &str) {
        let c = self.ctl.as_mut().expect("TLS started");
        c.writer().write_all(line.as_bytes()).unwrap();
        c.writer().write_all(b"\r\n").unwrap();
        self.run();
    }

    /// `AUTH` in the clear, then the handshake.
    pub(super) fn secure(&mut self) {
        self.send_clear(b"AUTH\r\n");
        assert!(self.clear.ends_with(b"234 go\r\n"));
        self.ctl = Some(client_with(&self.ccfg));
        self.run();
        assert!(!self.ctl.as_ref().unwrap().is_handshaking());
    }

    /// `PASV`, and a client connects (speaking TLS if `tls`).
    pub(super) fn pasv(&mut self, tls: bool) -> ChannelId {
        self.send("PASV");
        let id = *self.chans.keys().last().expect("a listener");
        self.chan(id).client = tls.then(|| client_with(&self.ccfg));
        self.events.push_back((id, Ev::Connected));
        self.run();
        id
    }

    /// Carry bytes and events until nothing moves.
    pub(super) fn run(&mut self) {
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
    pub(super) fn read_channel(&mut self, id: ChannelId) -> bool {
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
    pub(super) fn apply(&mut self) {
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
                    Action::SetTimer(..) => {}
                    Action::Listen(id, _) => {
                        self.drv(format!("listen {id}"));
                        self.chans.insert(id, Chan::default());
                        self.events.push_back((id, Ev::Listening));
                    }
                    Action::Connect(id, _) => {
                        self.drv(format!("connect {id}"));
                        self.chans.insert(id, Chan::default());
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
