//! The small test protocols: echo (the refusal, idle and shutdown subject), a hub chat, and the
//! FTP data-connection shape (passive/active channels streaming a file, uploads, abort).

use bingfa_net::{ChannelEvent, ChannelId, ConnInfo, Context, Message, Protocol, Session, Timer};
use std::fs::File;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// `TIMER ms`: says `tick` when it fires.
const TICK: Timer = Timer("echo.tick");
/// `PAUSE ms`: input resumes when it fires.
const RESUME: Timer = Timer("echo.resume");

/// Echo, line by line; also says goodbye on idle and is the refusal/shutdown subject.
pub(crate) struct Echo;
/// `listener` is which of the server's listeners accepted it (1 = the extra "web" one).
pub(crate) struct EchoSession {
    pub(crate) listener: usize,
    pub(crate) paused: bool,
    /// The peer's credentials, on the Unix-domain listener.
    pub(crate) cred: Option<bingfa_net::PeerCred>,
}

impl Session for EchoSession {
    fn on_open(&mut self, cx: &mut Context) {
        match (self.listener, self.cred) {
            (0, _) => {}
            (n, None) => cx.write(format!("listener {n}\n").as_bytes()),
            (n, Some(c)) => {
                cx.write(format!("listener {n} pid {} uid {}\n", c.pid, c.uid).as_bytes())
            }
        }
    }
    fn on_data(&mut self, input: &[u8], cx: &mut Context) -> usize {
        match input.iter().position(|&b| b == b'\n') {
            Some(i) => {
                if &input[..i] == b"PANIC" {
                    panic!("test panic: a buggy session");
                }
                if &input[..i] == b"CLOSE" {
                    // A big last reply, so it is still in flight when the session closes.
                    cx.write_vec([vec![b'r'; 512 * 1024], b"\nclosing\n".to_vec()].concat());
                    cx.close();
                    return i + 1;
                }
                if let Some(ms) = input[..i].strip_prefix(b"PAUSE ") {
                    // Stop taking input for a while; what follows waits in the kernel.
                    let ms: u64 = String::from_utf8_lossy(ms).parse().unwrap_or(0);
                    self.paused = true;
                    cx.pause_input(true);
                    cx.set_timer(RESUME, Duration::from_millis(ms));
                    return i + 1;
                }
                if let Some(ms) = input[..i].strip_prefix(b"TIMER ") {
                    let ms: u64 = String::from_utf8_lossy(ms).parse().unwrap_or(0);
                    cx.set_timer(TICK, Duration::from_millis(ms));
                } else {
                    cx.write(&input[..=i]);
                }
                i + 1
            }
            None => 0,
        }
    }
    fn on_timer(&mut self, timer: Timer, cx: &mut Context) {
        if timer == RESUME && std::mem::take(&mut self.paused) {
            cx.write(b"resumed\n");
            cx.pause_input(false);
        } else {
            cx.write(b"tick\n");
        }
    }
    fn on_idle(&mut self, cx: &mut Context) {
        cx.write(b"bye idle\n");
    }
    fn on_hangup(&mut self, cx: &mut Context) {
        cx.write(b"hangup\n");
        cx.close();
    }
    fn on_shutdown(&mut self, cx: &mut Context) {
        cx.write(b"bye shutdown\n");
        cx.close();
    }
}

impl Protocol for Echo {
    type Session = EchoSession;
    fn new_session(&self, _: &ConnInfo) -> EchoSession {
        EchoSession {
            listener: 0,
            paused: false,
            cred: None,
        }
    }
    fn new_session_on(&self, listener: usize, info: &ConnInfo) -> EchoSession {
        EchoSession {
            listener,
            paused: false,
            cred: info.cred,
        }
    }
    fn refusal(&self) -> Option<Vec<u8>> {
        Some(b"busy\n".to_vec())
    }
    fn refusal_on(&self, listener: usize) -> Option<Vec<u8>> {
        match listener {
            1 => Some(b"busy (web)\n".to_vec()),
            _ => self.refusal(),
        }
    }
}

/// Every line a client sends goes to every other client, through the hub.
pub(crate) struct Chat;
pub(crate) struct ChatSession;

impl Session for ChatSession {
    fn on_open(&mut self, cx: &mut Context) {
        // Subscribe first: actions run in order, so the client seeing "welcome" means it is in.
        cx.subscribe("room");
        // The pid is in the id's high bits: the test can tell which process serves whom.
        cx.write(format!("welcome {}\n", cx.info().id >> 32).as_bytes());
    }
    fn on_data(&mut self, input: &[u8], cx: &mut Context) -> usize {
        match input.iter().position(|&b| b == b'\n') {
            Some(i) => {
                if &input[..i] == b"WATCH EXITS" {
                    // An observer of processes killed outright (`Protocol::on_process_exit`).
                    cx.subscribe("exits");
                    cx.unsubscribe("room");
                    cx.write(b"watching exits\n");
                } else if &input[..i] == b"WATCH" {
                    // An observer of evictions only (it does not want the room's traffic).
                    cx.subscribe("evictions");
                    cx.unsubscribe("room");
                    cx.write(b"watching\n");
                } else {
                    cx.publish("room", &input[..=i]);
                }
                i + 1
            }
            None => 0,
        }
    }
    fn on_message(&mut self, msg: &Message, cx: &mut Context) {
        if msg.from != cx.info().id {
            cx.write(&msg.body);
        }
    }
    fn on_overflow(&mut self, cx: &mut Context) {
        cx.publish("evictions", b"evicted\n");
        cx.write(b"! too slow, disconnected\n");
    }
    fn on_shutdown(&mut self, cx: &mut Context) {
        cx.write(b"bye shutdown\n");
        cx.close();
    }
}

impl Protocol for Chat {
    type Session = ChatSession;
    fn new_session(&self, _: &ConnInfo) -> ChatSession {
        ChatSession
    }
    /// Said on behalf of a dead process, as if its (first) connection had said it.
    fn on_process_exit(&self, pid: u32) -> Vec<Message> {
        vec![Message {
            topic: "exits".into(),
            from: (pid as u64) << 32 | 1,
            body: format!("gone {pid}\n").into_bytes().into(),
        }]
    }
}

/// The FTP data-connection shape: `PASV` opens a passive listener and streams the file to
/// whoever connects; `PORT n` connects to 127.0.0.1:n and streams it there. Then `226`.
pub(crate) struct Files {
    pub(crate) file: Arc<File>,
    pub(crate) len: u64,
}
pub(crate) struct FilesSession {
    pub(crate) file: Arc<File>,
    pub(crate) len: u64,
    /// Set while a `STOR` upload runs: bytes received and a running checksum.
    pub(crate) upload: Option<(u64, u64)>,
    pub(crate) sending: bool,
    /// The last channel opened, for `ABOR`.
    pub(crate) last: Option<ChannelId>,
    pub(crate) aborting: bool,
}

impl Session for FilesSession {
    fn on_data(&mut self, input: &[u8], cx: &mut Context) -> usize {
        let Some(i) = input.iter().position(|&b| b == b'\n') else {
            return 0;
        };
        let line = String::from_utf8_lossy(&input[..i]).trim().to_string();
        if line == "PASV" {
            self.last = Some(cx.listen());
        } else if line == "ABOR" {
            if let Some(id) = self.last.take() {
                self.aborting = true;
                cx.channel_abort(id);
            }
        } else if line == "STOR" {
            self.upload = Some((0, 0));
            cx.listen();
        } else if let Some(port) = line.strip_prefix("PORT ") {
            let port: u16 = port.parse().unwrap_or(0);
            cx.connect(SocketAddr::from(([127, 0, 0, 1], port)));
        } else {
            cx.write(b"500 what\n");
        }
        i + 1
    }
    fn on_channel(&mut self, id: ChannelId, ev: ChannelEvent<'_>, cx: &mut Context) {
        match ev {
            ChannelEvent::Listening(addr) => cx.write(format!("227 {}\n", addr.port()).as_bytes()),
            ChannelEvent::Connected(_) if self.upload.is_some() => {}
            ChannelEvent::Data(bytes) => {
                let (n, sum) = self.upload.as_mut().expect("upload running");
                *n += bytes.len() as u64;
                *sum = bytes
                    .iter()
                    .fold(*sum, |s, &b| s.wrapping_mul(31).wrapping_add(b as u64));
            }
            ChannelEvent::Eof => {
                let (n, sum) = self.upload.take().expect("upload running");
                cx.write(format!("226 got {n} {sum}\n").as_bytes());
                cx.channel_close(id);
            }
            ChannelEvent::Closed if self.aborting => {
                self.aborting = false;
                self.sending = false;
                cx.write(b"226 aborted\n");
            }
            ChannelEvent::Closed if self.sending => {
                self.sending = false;
                cx.write(b"226 done\n");
            }
            ChannelEvent::Connected(_) => {
                self.sending = true;
                cx.channel_write(id, b"BEGIN\n");
                cx.channel_send_file(id, self.file.clone(), 0, self.len);
                cx.channel_close(id);
            }
            ChannelEvent::Error(k) => cx.write(format!("425 {k:?}\n").as_bytes()),
            _ => {}
        }
    }
}

impl Protocol for Files {
    type Session = FilesSession;
    fn new_session(&self, _: &ConnInfo) -> FilesSession {
        FilesSession {
            upload: None,
            sending: false,
            last: None,
            aborting: false,
            file: self.file.clone(),
            len: self.len,
        }
    }
}
