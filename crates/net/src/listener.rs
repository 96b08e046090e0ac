//! A server's listening sockets: TCP ones and Unix-domain ones (a chat's admin socket), behind
//! one type so every model accepts on both with the same loop.
//!
//! An accepted Unix-domain connection is carried as a `TcpStream`: the engine only reads,
//! writes, shuts down and polls the descriptor, which works the same on either family, so the
//! models need no second connection type. Its `ConnInfo` has `0.0.0.0:0` as both addresses
//! (there is no IP) and the peer's credentials (`SO_PEERCRED`) in `cred`.
//!
//! Unix socket files are created mode 0600 (only the server's user may connect), replace a
//! stale file only when nothing answers a connect on it, and are removed when the server stops
//! (see [`UnixPath`]).

use crate::session::PeerCred;
use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};

/// The address a Unix-domain connection reports as its peer and local address.
pub(crate) const UNIX_ADDR: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED), 0);

pub(crate) enum Listener {
    Tcp(TcpListener),
    Unix(UnixListener),
}

impl Listener {
    /// Accept one connection (non-blocking listeners give `WouldBlock`), with the same shape
    /// as `TcpListener::accept` so the accept loops stay as they are.
    pub(crate) fn accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
        match self {
            Listener::Tcp(l) => l.accept(),
            Listener::Unix(l) => {
                let (s, _) = l.accept()?;
                Ok((TcpStream::from(OwnedFd::from(s)), UNIX_ADDR))
            }
        }
    }

    pub(crate) fn set_nonblocking(&self, on: bool) -> io::Result<()> {
        match self {
            Listener::Tcp(l) => l.set_nonblocking(on),
            Listener::Unix(l) => l.set_nonblocking(on),
        }
    }

    pub(crate) fn try_clone(&self) -> io::Result<Listener> {
        Ok(match self {
            Listener::Tcp(l) => Listener::Tcp(l.try_clone()?),
            Listener::Unix(l) => Listener::Unix(l.try_clone()?),
        })
    }

    /// Another listener for an epoll worker: a SO_REUSEPORT twin for TCP (the kernel spreads
    /// connections), the same socket for a Unix one (which has no SO_REUSEPORT; every worker
    /// watches it and whoever accepts first serves).
    pub(crate) fn twin(&self) -> io::Result<Listener> {
        match self {
            Listener::Tcp(l) => Ok(Listener::Tcp(crate::sys::listen_twin(l.local_addr()?)?)),
            Listener::Unix(_) => self.try_clone(),
        }
    }

    /// The TCP address, or the socket file's path.
    pub(crate) fn describe(&self) -> io::Result<String> {
        match self {
            Listener::Tcp(l) => Ok(l.local_addr()?.to_string()),
            Listener::Unix(l) => Ok(l
                .local_addr()?
                .as_pathname()
                .map(|p| p.display().to_string())
                .unwrap_or_default()),
        }
    }

    pub(crate) fn local_addr(&self) -> Option<SocketAddr> {
        match self {
            Listener::Tcp(l) => l.local_addr().ok(),
            Listener::Unix(_) => None,
        }
    }
}

impl AsRawFd for Listener {
    fn as_raw_fd(&self) -> RawFd {
        match self {
            Listener::Tcp(l) => l.as_raw_fd(),
            Listener::Unix(l) => l.as_raw_fd(),
        }
    }
}

/// Removes a Unix socket file when the server that created it stops.
#[derive(Debug)]
pub(crate) struct UnixPath(pub PathBuf);

impl Drop for UnixPath {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Bind a Unix-domain listener at `path`, mode 0600. An existing file is replaced only if it
/// is a socket nobody listens on (a crashed server's leftover); a live one is `AddrInUse`.
pub(crate) fn bind_unix(path: &Path) -> io::Result<(Listener, UnixPath)> {
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        if !meta.file_type().is_socket() {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!("{} exists and is not a socket", path.display()),
            ));
        }
        if UnixStream::connect(path).is_ok() {
            return Err(io::Error::new(
                io::ErrorKind::AddrInUse,
                format!("a server already listens on {}", path.display()),
            ));
        }
        std::fs::remove_file(path)?;
    }
    // The file's mode comes from the umask at bind time: narrow it for the bind so the socket
    // is never connectable by others, not even between bind and chmod.
    // SAFETY: umask only swaps the process's mask; restored right after.
    let old = unsafe { libc::umask(0o177) };
    let bound = UnixListener::bind(path);
    // SAFETY: as above.
    unsafe { libc::umask(old) };
    let l = bound?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    l.set_nonblocking(true)?;
    Ok((Listener::Unix(l), UnixPath(path.to_path_buf())))
}

/// The credentials of the process at the other end of a Unix-domain socket; `None` for TCP.
pub(crate) fn peer_cred(fd: RawFd) -> Option<PeerCred> {
    // SAFETY: getsockname into a zeroed sockaddr_storage of the right length.
    let family = unsafe {
        let mut ss: libc::sockaddr_storage = std::mem::zeroed();
        let mut len = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
        if libc::getsockname(fd, &mut ss as *mut _ as *mut libc::sockaddr, &mut len) != 0 {
            return None;
        }
        ss.ss_family as libc::c_int
    };
    if family != libc::AF_UNIX {
        return None;
    }
    let mut cred = libc::ucred {
        pid: 0,
        uid: 0,
        gid: 0,
    };
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: SO_PEERCRED fills a ucred; pointer and length are valid.
    let r = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            &mut cred as *mut _ as *mut libc::c_void,
            &mut len,
        )
    };
    (r == 0).then_some(PeerCred {
        pid: cred.pid,
        uid: cred.uid,
        gid: cred.gid,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unix_domain_connections_have_a_budget_of_their_own() {
        let local: std::net::IpAddr = UNIX_ADDR.ip();
        let a: std::net::IpAddr = "10.0.0.1".parse().unwrap();
        let c = crate::sys::SharedCounter::new(1, Some(1), 2, 0).unwrap();
        assert!(c.try_acquire(a));
        assert!(!c.try_acquire(a), "the public budget is full");
        assert!(
            c.try_acquire(local) && c.try_acquire(local),
            "admin tools still get in"
        );
        assert!(!c.try_acquire(local), "within their own bound");
        c.release(local);
        assert!(c.try_acquire(local));
        c.release(a);
        assert!(c.try_acquire(a), "admin connections took no public place");
    }
}
