//! Admission: how a server takes connections in, whichever model serves them. What every
//! worker of a server shares ([`Shared`]: the protocol, the limits, the connection counter,
//! the hub), the connection id, the socket options every accepted connection gets, how a
//! connection over a limit is refused, and (`exhaustion.rs`) what happens when the process
//! runs out of descriptors.
//!
//! Every model admits through here: the readiness loop (`model/reactor/`) and the blocking
//! accept loop (`model/acceptor.rs`) alike, and the async model with its own accept task.

pub(crate) mod exhaustion;

use crate::config::Limits;
use crate::conn::Conn;
use crate::hub::uplink::SharedUplink;
use crate::hub::Hub;
use crate::listener;
use crate::session::{ConnId, ConnInfo, Protocol};
use crate::shutdown::ShutdownHandle;
use crate::sys::{self, SharedCounter};
use crate::tally::Tally;
use crate::wake::Waker;
use exhaustion::Episode;
use std::io::{self, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What every worker of one server shares (across threads by `Arc`, across processes by fork).
pub(crate) struct Shared<P: Protocol> {
    pub protocol: P,
    pub limits: Limits,
    pub counter: SharedCounter,
    /// Passive listeners per client address (`Limits::max_passive_per_ip`).
    pub passive: Arc<SharedCounter>,
    pub shutdown: ShutdownHandle,
    /// The in-process hub, shared by every loop and thread of the in-process models (and by
    /// [`Injector`](crate::Injector)s); fork/prefork workers build their own linked hub.
    pub hub: Hub,
    /// Fork/prefork: the relay's end of the injector link, added to the relay by the parent.
    pub inject: Mutex<Option<std::os::unix::net::UnixStream>>,
    /// Out-of-descriptor episodes, for logging each once (see `exhaustion.rs`).
    pub episode: Episode,
    /// Fork/prefork with a backplane: the uplink and the relay's end of its downlink.
    pub uplink: Mutex<Option<(SharedUplink, std::os::unix::net::UnixStream)>>,
    /// Connection counters for metrics (see `tally.rs`).
    pub tally: Option<Tally>,
}

impl<P: Protocol> Shared<P> {
    /// Take a connection place for `ip` under the limits (and count it for metrics); every
    /// model admits through here, so every model's metrics agree.
    pub(crate) fn admit(&self, ip: IpAddr) -> bool {
        let ok = self.counter.try_acquire(ip);
        if ok {
            if let Some(t) = &self.tally {
                t.admitted();
            }
        }
        ok
    }

    /// Give back a place taken by [`Shared::admit`].
    pub(crate) fn release(&self, ip: IpAddr) {
        self.counter.release(ip);
        self.released(1);
    }

    /// `n` places given back in bulk (a killed prefork worker's, see `reclaim_ledger`).
    pub(crate) fn released(&self, n: u64) {
        if let Some(t) = &self.tally {
            t.released(n);
        }
    }
}

/// A connection id unique across the server's processes: pid in the high 32 bits.
pub(crate) fn next_conn_id() -> ConnId {
    static N: AtomicU64 = AtomicU64::new(1);
    let pid = std::process::id() as u64;
    (pid << 32) | (N.fetch_add(1, Ordering::Relaxed) & 0xffff_ffff)
}

/// Refuse a connection over the limit: the protocol's refusal, then close. Never a hang.
/// Counted as refused (metrics) and logged with the address: every refusal of every model
/// comes through here.
pub(crate) fn refuse<P: Protocol>(shared: &Shared<P>, stream: TcpStream, listener: usize) {
    if let Some(t) = &shared.tally {
        t.refused();
    }
    if let Ok(peer) = stream.peer_addr() {
        // One line per refusal, the address first (the shape of bingfa-ftp's `log`).
        tracing::warn!(peer = %peer.ip(), reason = "over a limit", "refused");
    }
    if let Some(msg) = shared.protocol.refusal_on(listener) {
        let _ = stream.set_nonblocking(true);
        let _ = (&stream).write(&msg);
    }
    let _ = stream.shutdown(std::net::Shutdown::Write);
}

/// Who connected, and on which of the server's listeners (its index in announce order).
pub(crate) type Peer = (SocketAddr, usize);

/// Prepare an accepted stream and build its connection.
pub(crate) fn make_conn<P: Protocol>(
    shared: &Shared<P>,
    stream: TcpStream,
    (peer, listener): Peer,
    waker: Waker,
) -> io::Result<Conn<P::Session>> {
    stream.set_nonblocking(true)?;
    let cred = listener::peer_cred(stream.as_raw_fd());
    if cred.is_none() {
        tune_tcp(&shared.limits, &stream);
    }
    let info = ConnInfo {
        id: next_conn_id(),
        peer,
        local: match cred {
            Some(_) => listener::UNIX_ADDR,
            None => stream.local_addr()?,
        },
        cred,
    };
    let session = shared.protocol.new_session_on(listener, &info);
    Ok(Conn::new(session, stream, info, waker))
}

/// The socket options every accepted TCP connection gets under every model: no Nagle, and
/// [`Limits::tcp_keepalive`] and [`Limits::notsent_lowat`] when set.
pub(crate) fn tune_tcp(limits: &Limits, stream: &TcpStream) {
    let _ = stream.set_nodelay(true);
    if let Some(idle) = limits.tcp_keepalive {
        // Finds peers that vanished without a FIN (a cable pulled, a laptop closed) on
        // connections that are quiet on purpose and so have no idle timeout (chat members).
        let ka = socket2::TcpKeepalive::new()
            .with_time(idle)
            .with_interval((idle / 3).max(Duration::from_secs(1)))
            .with_retries(3);
        if let Err(e) = socket2::SockRef::from(stream).set_tcp_keepalive(&ka) {
            tracing::debug!("TCP keepalive: {e}");
        }
    }
    if let Some(bytes) = limits.notsent_lowat {
        sys::set_notsent_lowat(stream.as_raw_fd(), bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;

    fn notsent_lowat(s: &TcpStream) -> u32 {
        let mut v: libc::c_int = 0;
        let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
        // SAFETY: an int out-parameter of the right size for this option.
        let r = unsafe {
            libc::getsockopt(
                s.as_raw_fd(),
                libc::IPPROTO_TCP,
                libc::TCP_NOTSENT_LOWAT,
                (&mut v as *mut libc::c_int).cast(),
                &mut len,
            )
        };
        assert_eq!(r, 0);
        v as u32
    }

    #[test]
    fn accepted_connections_get_the_limits_socket_options() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let _c = TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (s, _) = l.accept().unwrap();
        let default = notsent_lowat(&s);
        let limits = Limits {
            notsent_lowat: Some(16 * 1024),
            tcp_keepalive: Some(Duration::from_secs(30)),
            ..Limits::default()
        };
        tune_tcp(&limits, &s);
        assert_eq!(notsent_lowat(&s), 16 * 1024);
        assert_ne!(default, 16 * 1024, "the kernel's default is no mark");
        assert!(s.nodelay().unwrap());
        let sock = socket2::SockRef::from(&s);
        assert!(sock.keepalive().unwrap());
        assert_eq!(sock.tcp_keepalive_time().unwrap(), Duration::from_secs(30));
    }
}
