//! The admin socket: its session, where it lives, and who may use it.
//!
//! Each line (`announce TEXT`, or just `TEXT`) is published as an announcement, which every
//! member gets as exactly `* admin: TEXT` in the room's one order; the tool gets `* announced`
//! back once the hub has it.
//!
//! Who: the socket file is 0600, but a file mode is only as good as the directory around it
//! (in `/tmp` another user can bind the path first, and then the operator's tool talks to
//! them). So both ends check the other's credentials (`SO_PEERCRED`): the server serves only
//! its own user and root ([`AdminSession`]), and `chat announce` sends only to a server run by
//! its own user or root ([`check_server`]). Where: by default in a private directory,
//! `$XDG_RUNTIME_DIR/bingfa/` or else `$TMPDIR/bingfa-UID/` (mode 0700, ours, checked), never
//! `/tmp` itself ([`default_socket`], [`private_dir`]). The admin socket has a connection
//! budget of its own (bingfa-net's `max_local`): the public never crowds it out.

use crate::event::{Event, TOPIC};
use crate::input;
use bingfa_net::{Context, PeerCred, Session};
use std::io;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// One connection to the admin socket: each line is announced to the room (see the module docs).
pub struct AdminSession {
    max_line: usize,
    /// Refused at its open (not our user, nor root): input is dropped.
    refused: bool,
}

impl AdminSession {
    /// A session that refuses lines longer than `max_line` bytes.
    pub fn new(max_line: usize) -> Self {
        AdminSession {
            max_line,
            refused: false,
        }
    }
}

/// This process's effective uid.
pub fn my_uid() -> u32 {
    // SAFETY: geteuid cannot fail.
    unsafe { libc::geteuid() }
}

/// Whether a peer with credentials `cred` may be trusted by a process of uid `me`: the same
/// user, or root. `Err` names the peer: `uid N (pid P)`.
pub fn trusted(cred: Option<PeerCred>, me: u32) -> Result<(), String> {
    match cred {
        Some(c) if c.uid == me || c.uid == 0 => Ok(()),
        Some(c) => Err(format!("uid {} (pid {})", c.uid, c.pid)),
        None => Err("a process of unknown credentials".into()),
    }
}

/// The text of an admin line, or the `! ` line that says what is wrong with it. The operator's
/// text reaches every member's terminal, so it follows the room's control rule
/// ([`input::check_controls`]) like a member's message and an announcement from Redis.
pub fn announcement(line: &[u8], max_line: usize) -> Result<String, String> {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    if line.len() > max_line {
        return Err("! announcement too long\n".into());
    }
    let text = std::str::from_utf8(line).map_err(|_| "! invalid UTF-8\n".to_string())?;
    let text = text.strip_prefix("announce ").unwrap_or(text).trim();
    if text.is_empty() {
        return Err("! nothing to announce\n".into());
    }
    input::check_controls(text).map_err(|e| format!("! announcement refused: {e}\n"))?;
    Ok(text.to_string())
}

impl Session for AdminSession {
    fn on_open(&mut self, cx: &mut Context) {
        let cred = cx.info().cred;
        let me = my_uid();
        if let Err(who) = trusted(cred, me) {
            let why = format!("{who} is neither the server's user (uid {me}) nor root");
            tracing::warn!("admin connection refused: {why}");
            cx.write(format!("! permission denied: {why}\n").as_bytes());
            self.refused = true;
            cx.close();
            return;
        }
        if let Some(c) = cred {
            tracing::info!(pid = c.pid, uid = c.uid, "admin connection");
        }
    }

    fn on_data(&mut self, input: &[u8], cx: &mut Context) -> usize {
        if self.refused {
            return input.len();
        }
        let Some(i) = input.iter().position(|&b| b == b'\n') else {
            if input.len() > self.max_line + 1 {
                cx.write(b"! announcement too long\n");
                cx.close();
                return input.len();
            }
            return 0;
        };
        match announcement(&input[..i], self.max_line) {
            Ok(text) => {
                crate::log::announcement(&text);
                cx.publish(TOPIC, &Event::Announce(text).encode());
                cx.write(b"* announced\n");
            }
            Err(e) => cx.write(e.as_bytes()),
        }
        i + 1
    }
}

/// The admin socket's default path: `chat.sock` in [`private_dir`]'s directory.
pub fn default_socket() -> PathBuf {
    default_dir().join("chat.sock")
}

fn default_dir() -> PathBuf {
    match std::env::var_os("XDG_RUNTIME_DIR") {
        Some(d) if !d.is_empty() => PathBuf::from(d).join("bingfa"),
        _ => std::env::temp_dir().join(format!("bingfa-{}", my_uid())),
    }
}

/// Make (if `create`) and check the directory `dir`: it must be a real directory (not a
/// symlink), owned by us, and writable by nobody else; otherwise another user could have made
/// it to squat the socket inside. The error says what is wrong, in words.
pub fn private_dir(dir: &Path, create: bool) -> io::Result<()> {
    if create {
        match std::fs::create_dir(dir) {
            Ok(()) => std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => {
                return Err(io::Error::new(
                    e.kind(),
                    format!("cannot create {}: {e}", dir.display()),
                ))
            }
        }
    }
    let meta = std::fs::symlink_metadata(dir)
        .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", dir.display())))?;
    let me = my_uid();
    let why = if !meta.is_dir() {
        Some("is not a directory".to_string())
    } else if meta.uid() != me {
        Some(format!(
            "belongs to uid {}, not to us (uid {me})",
            meta.uid()
        ))
    } else if meta.mode() & 0o022 != 0 {
        Some(format!(
            "is writable by others (mode {:o})",
            meta.mode() & 0o777
        ))
    } else {
        None
    };
    match why {
        Some(why) => Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!(
                "{} {why}: another user may have made it to intercept the admin socket; \
                 remove it, or give --admin-socket a path in a directory only you can write",
                dir.display()
            ),
        )),
        None => Ok(()),
    }
}

/// Before the server binds `path`: make the default private directory if `path` is in it,
/// then [`check_path`].
pub fn prepare(path: &Path) -> io::Result<()> {
    if path.parent() == Some(default_dir().as_path()) {
        private_dir(&default_dir(), true)?;
    }
    check_path(path)
}

/// Before the server binds `path`: refuse a path another user already holds (a squatted
/// socket or file), and say so in words; warn when the directory is shared (`/tmp`).
pub fn check_path(path: &Path) -> io::Result<()> {
    let me = my_uid();
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        if meta.uid() != me {
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                format!(
                    "{} already exists and belongs to uid {}, not to us (uid {me}): another \
                     user holds the admin socket's path; use a private directory \
                     (by default {})",
                    path.display(),
                    meta.uid(),
                    default_dir().display()
                ),
            ));
        }
    }
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
    if let Some(meta) = dir.and_then(|d| std::fs::metadata(d).ok()) {
        if meta.mode() & 0o002 != 0 {
            tracing::warn!(
                "the admin socket {} is in a directory every user can write: another user \
                 could take the path while the server is down; prefer {}",
                path.display(),
                default_dir().display()
            );
        }
    }
    Ok(())
}

/// The credentials of the process at the other end of `sock` (`SO_PEERCRED`).
pub fn peer_cred(sock: &std::os::unix::net::UnixStream) -> io::Result<PeerCred> {
    use std::os::fd::AsRawFd;
    let mut cred = libc::ucred {
        pid: 0,
        uid: 0,
        gid: 0,
    };
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: SO_PEERCRED fills a ucred; pointer and length are valid.
    let r = unsafe {
        libc::getsockopt(
            sock.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            &mut cred as *mut _ as *mut libc::c_void,
            &mut len,
        )
    };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(PeerCred {
        pid: cred.pid,
        uid: cred.uid,
        gid: cred.gid,
    })
}

/// `chat announce`'s check before it sends anything: the server at the other end of `sock`
/// runs as our user or as root.
pub fn check_server(sock: &std::os::unix::net::UnixStream) -> Result<(), String> {
    let cred = peer_cred(sock).map_err(|e| format!("its credentials are unreadable ({e})"))?;
    let me = my_uid();
    trusted(Some(cred), me)
        .map_err(|who| format!("it is served by {who}, neither you (uid {me}) nor root"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines() {
        assert_eq!(announcement(b"announce hi all", 100), Ok("hi all".into()));
        assert_eq!(announcement(b"hi all\r", 100), Ok("hi all".into()));
        assert!(announcement(b"announce ", 100).is_err());
        assert!(announcement(&[0xff], 100).is_err());
        assert!(announcement(b"toolong", 3).is_err());
        assert_eq!(
            announcement(b"announce \x1b]0;owned\x07hi", 100),
            Err("! announcement refused: control character U+001B\n".into())
        );
        assert_eq!(
            announcement("announce \u{202e}txet".as_bytes(), 100),
            Err("! announcement refused: bidi control character U+202E\n".into())
        );
    }

    #[test]
    fn only_our_user_or_root_is_trusted() {
        let c = |uid| {
            Some(PeerCred {
                pid: 7,
                uid,
                gid: 0,
            })
        };
        assert!(trusted(c(1000), 1000).is_ok());
        assert!(trusted(c(0), 1000).is_ok());
        assert_eq!(trusted(c(1001), 1000), Err("uid 1001 (pid 7)".into()));
        assert!(trusted(c(1001), 0).is_err(), "root trusts only root");
        assert!(trusted(None, 1000).is_err());
    }

    #[test]
    fn a_private_dir_is_ours_and_closed() {
        let base = std::env::temp_dir().join(format!("bingfa-admin-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        private_dir(&base, true).unwrap();
        assert_eq!(
            std::fs::metadata(&base).unwrap().mode() & 0o777,
            0o700,
            "made private"
        );
        std::fs::set_permissions(&base, std::fs::Permissions::from_mode(0o777)).unwrap();
        let e = private_dir(&base, true).unwrap_err().to_string();
        assert!(e.contains("writable by others"), "{e}");
        std::fs::remove_dir_all(&base).unwrap();
        std::os::unix::fs::symlink("/tmp", &base).unwrap();
        let e = private_dir(&base, false).unwrap_err().to_string();
        assert!(e.contains("is not a directory"), "{e}");
        std::fs::remove_file(&base).unwrap();
    }
}
