//! What the FTP behaviour tests share: the tree the binary's suite serves (`crates/cli/tests/
//! ftp.rs` has the same one), a server configured as that suite runs it, and a control
//! connection on bingfa-net's rig ([`Control`]) that plays both the client and the driver.
//!
//! As the client, a test sends lines and reads replies, and works its data connections by
//! hand: [`Control::passive`] then [`Control::connect`], bytes up with [`Control::upload`] and
//! [`Control::finish`], bytes down in [`Control::received`]. As the driver, [`Control::line`]
//! does what a model would do while the client waits for a reply, in a fixed order: report
//! a passive listener bound, a data channel drained or closed once the session asked (the
//! client connected), a blocking-pool task ended, then the next timer in simulated time. Work
//! off the loop (a password check, a listing) runs in real time on the pool; the clock is the
//! rig's, so a login delay costs nothing.
//!
//! Each test binary uses part of this module.
#![allow(dead_code)]

use bingfa_ftp::{Anonymous, FtpConfig, FtpProtocol, FtpSession};
use bingfa_net::rig::{loopback, Rig};
use bingfa_net::{Action, ChannelEvent, ChannelId, ConnInfo, Protocol};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;

pub(crate) const PASSWORD: &str = "s3cret pass";

/// One argon2 hash of [`PASSWORD`] for every user of every tree (they are slow to make).
fn hash() -> &'static str {
    static H: OnceLock<String> = OnceLock::new();
    H.get_or_init(|| bingfa_ftp::users::hash(PASSWORD))
}

/// A fresh tree, as the binary's suite has it: `base/secret` outside every root; `base/pub`
/// (anonymous, read-only, with `hello.txt`, `sub/`, `out -> ../secret`); `base/ann` (ann's
/// home, writable, with `out -> ../secret`); `base/bob` (bob's, read-only).
pub(crate) struct Tree {
    pub(crate) base: PathBuf,
}

impl Tree {
    /// Beneath `/dev/shm` where there is one (creating thousands of files on a busy disk
    /// takes seconds), else the temporary directory.
    pub(crate) fn new(tag: &str) -> Tree {
        let shm = std::path::Path::new("/dev/shm");
        let dir = if shm.is_dir() {
            shm.to_path_buf()
        } else {
            std::env::temp_dir()
        };
        let base = dir.join(format!("bingfa-ftp-rig-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        for d in ["pub/sub", "ann", "bob"] {
            std::fs::create_dir_all(base.join(d)).unwrap();
        }
        std::fs::write(base.join("secret"), "top secret\n").unwrap();
        std::fs::write(base.join("pub/hello.txt"), "hello\nworld\n").unwrap();
        std::fs::write(base.join("pub/sub/inner.txt"), "inner").unwrap();
        std::os::unix::fs::symlink("../secret", base.join("pub/out")).unwrap();
        std::os::unix::fs::symlink("../secret", base.join("ann/out")).unwrap();
        std::fs::write(base.join("bob/bob.txt"), "bob").unwrap();
        let users = format!(
            "[[user]]\nname = \"ann\"\npassword = \"{h}\"\nhome = \"{}\"\nwrite = true\n\n\
             [[user]]\nname = \"bob\"\npassword = \"{h}\"\nhome = \"{}\"\n",
            base.join("ann").display(),
            base.join("bob").display(),
            h = hash()
        );
        std::fs::write(base.join("users.toml"), users).unwrap();
        std::fs::set_permissions(
            base.join("users.toml"),
            std::os::unix::fs::PermissionsExt::from_mode(0o600),
        )
        .unwrap();
        Tree { base }
    }

    pub(crate) fn path(&self, rel: &str) -> PathBuf {
        self.base.join(rel)
    }

    /// The names in a directory, sorted (hidden ones included: a leftover must show).
    pub(crate) fn names(&self, rel: &str) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(self.path(rel))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }
}

impl Drop for Tree {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.base);
    }
}

/// The server configured as the binary's suite runs it (anonymous read on `pub`, the users
/// file, a 300 ms login delay): one protocol, so what it keeps across connections (failed
/// logins, bans) is shared as in one server process.
pub(crate) struct Server {
    proto: FtpProtocol,
}

impl Server {
    pub(crate) fn start(tree: &Tree) -> Server {
        Self::start_with(tree, |_| {})
    }

    /// [`Server::start`] with `tweak` applied to the configuration (the binary's flags).
    pub(crate) fn start_with(tree: &Tree, tweak: impl FnOnce(&mut FtpConfig)) -> Server {
        let mut cfg = FtpConfig::new(tree.path("pub"));
        cfg.users = Some(tree.path("users.toml"));
        cfg.anonymous = Anonymous::Read;
        cfg.login_delay = Duration::from_millis(300);
        tweak(&mut cfg);
        Server {
            proto: FtpProtocol::new(cfg).unwrap(),
        }
    }

    /// A control connection from 127.0.0.1, its greeting read.
    pub(crate) fn session(&self) -> Control {
        let mut c = self.connect(loopback(1));
        assert_eq!(c.line(), "220 bingfa FTP server ready.");
        c
    }

    /// A control connection with these facts; nothing read yet.
    pub(crate) fn connect(&self, info: ConnInfo) -> Control {
        Control {
            rig: Rig::opened(self.proto.new_session(&info), info),
            text: String::new(),
            chans: HashMap::new(),
        }
    }

    /// [`Server::session`], logged in as `user`.
    pub(crate) fn login(&self, user: &str, pass: &str) -> Control {
        let mut c = self.session();
        c.login(user, pass);
        c
    }
}

/// A data channel as the test's driver keeps it.
#[derive(Default)]
pub(crate) struct Chan {
    /// `Listen` asked and `Listening` not reported yet.
    pub(crate) binding: bool,
    /// How the session asked the listener opened (passive channels).
    pub(crate) passive: Option<bingfa_net::Passive>,
    /// The client connected (passive), or the connect was let through (active).
    pub(crate) connected: bool,
    /// `Connect` asked (active): where to.
    pub(crate) connect_to: Option<SocketAddr>,
    /// What the session sent on it: what the client downloads.
    pub(crate) sent: Vec<u8>,
    /// Sent since the last `Drained`.
    pub(crate) unflushed: bool,
    /// The session asked to close it (after what it queued).
    pub(crate) closing: bool,
    /// Closed: reported, or aborted by the session.
    pub(crate) closed: bool,
    /// The session aborted it.
    pub(crate) aborted: bool,
    /// The session stopped reading it.
    pub(crate) paused: bool,
}

/// A control connection on the rig. See the module documentation.
pub(crate) struct Control {
    pub(crate) rig: Rig<FtpSession>,
    /// Written and not read yet.
    text: String,
    chans: HashMap<ChannelId, Chan>,
}

/// The port a passive listener is reported bound on: the first of the configured range, else
/// 50000, plus the channel's id (distinct per channel, as a driver's would be).
fn bound_port(ports: &Option<std::ops::RangeInclusive<u16>>, id: ChannelId) -> u16 {
    ports.as_ref().map_or(50000, |r| *r.start()) + id as u16
}

impl Control {
    /// Takes what the session queued: writes into the text read by [`Control::line`], the
    /// channel actions into the channels' state.
    fn collect(&mut self) {
        let out = self.rig.take_output();
        self.text.push_str(&out.text());
        for a in out.other {
            match a {
                Action::Listen(id, p) => {
                    let c = self.chans.entry(id).or_default();
                    c.binding = true;
                    c.passive = Some(p.clone());
                    c.connect_to =
                        Some(SocketAddr::from(([127, 0, 0, 1], bound_port(&p.ports, id))));
                }
                Action::Connect(id, to) => {
                    self.chans.entry(id).or_default().connect_to = Some(to);
                }
                Action::ChannelWrite(id, b) => {
                    let c = self.chans.entry(id).or_default();
                    c.sent.extend_from_slice(&b);
                    c.unflushed = true;
                }
                Action::ChannelSendFile {
                    id,
                    file,
                    offset,
                    len,
                } => {
                    use std::os::unix::fs::FileExt;
                    let mut buf = vec![0; len as usize];
                    file.read_exact_at(&mut buf, offset).unwrap();
                    let c = self.chans.entry(id).or_default();
                    c.sent.extend_from_slice(&buf);
                    c.unflushed = true;
                }
                Action::ChannelClose(id) => self.chans.entry(id).or_default().closing = true,
                Action::ChannelAbort(id) => {
                    let c = self.chans.entry(id).or_default();
                    c.aborted = true;
                    c.closed = true;
                }
                Action::ChannelPause(id, p) => self.chans.entry(id).or_default().paused = p,
                _ => {}
            }
        }
    }

    /// One thing a driver would do next for the data channels, if any: report a listener
    /// bound, then a connected channel closed (the session asked) or drained.
    fn channel_step(&mut self) -> bool {
        let mut ids: Vec<ChannelId> = self.chans.keys().copied().collect();
        ids.sort();
        for id in ids {
            let c = &self.chans[&id];
            if c.binding {
                let at = c.connect_to.expect("a bound address");
                self.chans.get_mut(&id).unwrap().binding = false;
                self.rig.channel(id, ChannelEvent::Listening(at));
                return true;
            }
            if c.connected && !c.closed && c.closing {
                self.chans.get_mut(&id).unwrap().closed = true;
                self.rig.channel(id, ChannelEvent::Closed);
                return true;
            }
            if c.connected && !c.closed && c.unflushed {
                self.chans.get_mut(&id).unwrap().unflushed = false;
                self.rig.channel(id, ChannelEvent::Drained);
                return true;
            }
        }
        false
    }

    pub(crate) fn send_raw(&mut self, bytes: &[u8]) {
        self.rig.feed(bytes);
    }

    pub(crate) fn send(&mut self, line: &str) {
        self.send_raw(format!("{line}\r\n").as_bytes());
    }

    /// The next reply line, without its CRLF, doing meanwhile what the driver would (see the
    /// module documentation); panics when nothing is left to wait for.
    pub(crate) fn line(&mut self) -> String {
        loop {
            self.collect();
            if let Some(i) = self.text.find("\r\n") {
                let l = self.text[..i].to_string();
                self.text.drain(..i + 2);
                return l;
            }
            if self.channel_step() {
            } else if self.rig.watching() > 0 {
                assert!(
                    self.rig.finish_task(Duration::from_secs(60)),
                    "no reply, the task never ended: {:?}",
                    self.text
                );
            } else if let Some((_, at)) = self.rig.next_timer() {
                self.rig
                    .advance(at.saturating_duration_since(self.rig.now()));
            } else {
                panic!("no reply, and nothing to wait for: {:?}", self.text);
            }
            // Input resumed: the driver offers what waited.
            self.rig.pump();
        }
    }

    pub(crate) fn expect(&mut self, want: &str) {
        assert_eq!(self.line(), want);
    }

    pub(crate) fn cmd(&mut self, line: &str) -> String {
        self.send(line);
        self.line()
    }

    /// USER and PASS.
    pub(crate) fn login(&mut self, user: &str, pass: &str) {
        assert_eq!(self.cmd(&format!("USER {user}")).get(..4), Some("331 "));
        assert_eq!(self.cmd(&format!("PASS {pass}")), "230 Login successful.");
    }

    /// The session closed the connection, nothing more written.
    pub(crate) fn expect_closed(&mut self) {
        self.collect();
        assert!(self.text.is_empty(), "bytes before close: {:?}", self.text);
        assert!(self.rig.closed());
    }

    /// Every line of a multi-line reply, up to and including the one that ends it (`NNN `).
    pub(crate) fn multiline(&mut self) -> Vec<String> {
        let first = self.line();
        let code = first.get(..3).unwrap_or_default().to_string();
        let mut all = vec![first];
        if all[0].as_bytes().get(3) == Some(&b'-') {
            loop {
                let l = self.line();
                let end = l.starts_with(&format!("{code} "));
                all.push(l);
                if end {
                    break;
                }
            }
        }
        all
    }

    /// `EPSV`, its listener bound: the channel, the `229` read.
    pub(crate) fn passive(&mut self) -> ChannelId {
        let l = self.cmd("EPSV");
        assert!(
            l.starts_with("229 Entering Extended Passive Mode (|||"),
            "{l}"
        );
        self.last_channel()
    }

    /// The channel most recently opened.
    pub(crate) fn last_channel(&self) -> ChannelId {
        *self.chans.keys().max().expect("a data channel")
    }

    /// What the driver knows of channel `id`.
    pub(crate) fn chan(&self, id: ChannelId) -> &Chan {
        &self.chans[&id]
    }

    /// The client connects to the passive listener `id` (or the active connect `id` works).
    pub(crate) fn connect(&mut self, id: ChannelId) {
        self.chans.entry(id).or_default().connected = true;
        self.rig.channel(
            id,
            ChannelEvent::Connected("127.0.0.1:40001".parse().unwrap()),
        );
        self.collect();
    }

    /// The active connect `id` is refused by the client's host.
    pub(crate) fn refuse(&mut self, id: ChannelId) {
        self.rig.channel(
            id,
            ChannelEvent::Error(std::io::ErrorKind::ConnectionRefused),
        );
        self.collect();
    }

    /// The client sends `bytes` on channel `id`, as the driver reads them: 64 KiB at a time.
    pub(crate) fn upload(&mut self, id: ChannelId, bytes: &[u8]) {
        for piece in bytes.chunks(64 * 1024) {
            assert!(!self.chans[&id].paused, "a paused channel is not read");
            self.rig.channel(id, ChannelEvent::Data(piece));
            self.collect();
        }
    }

    /// The client ends its upload on channel `id` (EOF).
    pub(crate) fn finish(&mut self, id: ChannelId) {
        self.rig.channel(id, ChannelEvent::Eof);
        self.collect();
    }

    /// The data connection `id` is reset by the client.
    pub(crate) fn reset(&mut self, id: ChannelId) {
        self.chans.entry(id).or_default().closed = true;
        self.rig
            .channel(id, ChannelEvent::Error(std::io::ErrorKind::ConnectionReset));
        self.collect();
    }

    /// What the client downloaded on channel `id` so far (taken).
    pub(crate) fn received(&mut self, id: ChannelId) -> Vec<u8> {
        self.collect();
        std::mem::take(&mut self.chans.get_mut(&id).unwrap().sent)
    }

    /// A download or listing (`cmd`) on a fresh passive connection: its bytes, after `150`
    /// and before `226`.
    pub(crate) fn fetch(&mut self, cmd: &str) -> Vec<u8> {
        let id = self.passive();
        self.connect(id);
        let first = self.cmd(cmd);
        assert!(first.starts_with("150 "), "{cmd}: {first}");
        assert_eq!(self.line(), "226 Transfer complete.", "{cmd}");
        self.received(id)
    }

    /// An upload (`cmd`) of `body` on a fresh passive connection: the final reply, or the
    /// refusal in place of the `150`.
    pub(crate) fn store(&mut self, cmd: &str, body: &[u8]) -> String {
        let id = self.passive();
        self.connect(id);
        let first = self.cmd(cmd);
        if !first.starts_with("150 ") {
            return first;
        }
        self.upload(id, body);
        self.finish(id);
        self.line()
    }
}

/// A listing's lines (CRLF-terminated, UTF-8).
pub(crate) fn lines(b: &[u8]) -> Vec<String> {
    assert!(b.is_empty() || b.ends_with(b"\r\n"), "{b:?}");
    String::from_utf8(b.to_vec())
        .expect("a listing is UTF-8")
        .split_terminator("\r\n")
        .map(String::from)
        .collect()
}
