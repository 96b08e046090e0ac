//! The FTP server's behaviour that needs no real client, on bingfa-net's rig: a control
//! connection driven by hand, each reply checked as the bytes the session wrote. Moved here
//! from the binary's per-model suite (`crates/cli/tests/ftp/`), where the same assertions ran
//! under every model although nothing in them depends on one: what stays there is what a real
//! client, a data connection or TLS brings.
//!
//! - `login_rules`: no user enumeration, slow and limited login failures;
//! - `paths`: no path leaves the user's root (`..` in every verb, encoded tricks, a symlink
//!   leading out, a NUL in a line, another user's home).

use bingfa_ftp::{Anonymous, FtpConfig, FtpProtocol};
use bingfa_net::rig::{loopback, Rig};
use bingfa_net::Protocol;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;

const PASSWORD: &str = "s3cret pass";

/// One argon2 hash of [`PASSWORD`] for every user of every tree (they are slow to make).
fn hash() -> &'static str {
    static H: OnceLock<String> = OnceLock::new();
    H.get_or_init(|| bingfa_ftp::users::hash(PASSWORD))
}

/// A fresh tree, as the binary's suite has it: `base/secret` outside every root; `base/pub`
/// (anonymous, read-only, with `hello.txt`, `sub/`, `out -> ../secret`); `base/ann` (ann's
/// home, writable, with `out -> ../secret`); `base/bob` (bob's, read-only).
struct Tree {
    base: PathBuf,
}

impl Tree {
    fn new(tag: &str) -> Tree {
        let base =
            std::env::temp_dir().join(format!("bingfa-ftp-rig-{tag}-{}", std::process::id()));
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

    fn path(&self, rel: &str) -> PathBuf {
        self.base.join(rel)
    }

    /// The names in a directory, sorted (hidden ones included: a leftover must show).
    fn names(&self, rel: &str) -> Vec<String> {
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
struct Server {
    proto: FtpProtocol,
}

impl Server {
    fn start(tree: &Tree) -> Server {
        let mut cfg = FtpConfig::new(tree.path("pub"));
        cfg.users = Some(tree.path("users.toml"));
        cfg.anonymous = Anonymous::Read;
        cfg.login_delay = Duration::from_millis(300);
        Server {
            proto: FtpProtocol::new(cfg).unwrap(),
        }
    }

    /// A control connection, its greeting read.
    fn session(&self) -> Control {
        let info = loopback(1);
        let mut c = Control {
            rig: Rig::opened(self.proto.new_session(&info), info),
            text: String::new(),
        };
        assert_eq!(c.line(), "220 bingfa FTP server ready.");
        c
    }

    /// [`Server::session`], logged in as `user`.
    fn login(&self, user: &str, pass: &str) -> Control {
        let mut c = self.session();
        assert_eq!(c.cmd(&format!("USER {user}")).get(..4), Some("331 "));
        assert_eq!(c.cmd(&format!("PASS {pass}")), "230 Login successful.");
        c
    }
}

/// A control connection on the rig.
struct Control {
    rig: Rig<<FtpProtocol as Protocol>::Session>,
    /// Written and not read yet.
    text: String,
}

impl Control {
    fn send_raw(&mut self, bytes: &[u8]) {
        self.rig.feed(bytes);
    }

    /// The next reply line, without its CRLF. Work off the loop (a password check, a listing)
    /// completes in real time: meanwhile the rig waits for the task the session watches and
    /// tells it, as a driver's wake-up does; otherwise the clock moves to the next timer.
    fn line(&mut self) -> String {
        loop {
            self.text.push_str(&self.rig.take_output().text());
            if let Some(i) = self.text.find("\r\n") {
                let l = self.text[..i].to_string();
                self.text.drain(..i + 2);
                return l;
            }
            if self.rig.watching() > 0 {
                assert!(
                    self.rig.finish_task(Duration::from_secs(30)),
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

    fn expect(&mut self, want: &str) {
        assert_eq!(self.line(), want);
    }

    fn send(&mut self, line: &str) {
        self.send_raw(format!("{line}\r\n").as_bytes());
    }

    fn cmd(&mut self, line: &str) -> String {
        self.send(line);
        self.line()
    }

    /// The server closed the connection, nothing more written.
    fn expect_closed(&mut self) {
        self.text.push_str(&self.rig.take_output().text());
        assert!(self.text.is_empty(), "bytes before close: {:?}", self.text);
        assert!(self.rig.closed());
    }
}

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

#[test]
fn paths() {
    let tree = Tree::new("paths");
    let srv = Server::start(&tree);
    let mut c = srv.login("ann", PASSWORD);
    std::fs::create_dir(tree.path("ann/sub")).unwrap();
    for cmd in [
        "RETR ../secret",
        "RETR /../secret",
        "RETR sub/../../secret",
        "SIZE ../../secret",
        "CWD ..",
        "CWD /..",
        "XCUP",
        "LIST ../",
        "MLST ..",
        "STOR ../evil",
        "MKD ../evil",
        "RNFR ../secret",
        "DELE ../secret",
    ] {
        assert_eq!(c.cmd(cmd), "550 Permission denied.", "{cmd}");
    }
    // Encoded tricks are just names here: nothing is decoded.
    assert_eq!(
        c.cmd("RETR %2e%2e/secret"),
        "550 No such file or directory."
    );
    assert_eq!(c.cmd("RETR ..%2fsecret"), "550 No such file or directory.");
    // A symlink leading out: refused by the kernel beneath the root.
    for cmd in [
        "RETR out",
        "SIZE out",
        "CWD out",
        "MKD out/x",
        "STOR out/x",
        "LIST out",
    ] {
        assert_eq!(c.cmd(cmd), "550 Permission denied.", "{cmd}");
    }
    assert_eq!(c.cmd("RNFR sub"), "350 Ready for RNTO.");
    assert_eq!(c.cmd("RNTO ../stolen"), "550 Permission denied.");
    c.send_raw(b"RETR sub\0x\r\n");
    c.expect("550 No such file or directory.");
    // Deleting the link removes the link, never what it points at.
    assert_eq!(c.cmd("DELE out"), "250 Delete operation successful.");
    assert_eq!(
        std::fs::read_to_string(tree.path("secret")).unwrap(),
        "top secret\n"
    );
    assert_eq!(
        tree.names(""),
        ["ann", "bob", "pub", "secret", "users.toml"]
    );
    assert_eq!(tree.names("ann"), ["sub"]);
    // Another user's home is outside this one's root.
    assert_eq!(c.cmd("CWD /../bob"), "550 Permission denied.");
    assert_eq!(c.cmd("QUIT"), "221 Goodbye.");
}
