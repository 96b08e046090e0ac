//! Passive data listeners (FTP `PASV`/`EPSV`): binding within a port range at a random place,
//! and telling the control connection's client apart from everyone else.
//!
//! The port is random within the range (not the first free one) so the next data port cannot
//! be guessed from the last; the search then walks the range from there, so a busy range still
//! finds the free port if there is one.

use crate::sys::SharedCounter;
use std::io;
use std::net::{IpAddr, SocketAddr, TcpListener};
use std::ops::RangeInclusive;
use std::sync::Arc;

/// One passive listener's place in its client address's budget (`Limits::max_passive_per_ip`,
/// a counter in shared memory so it holds across fork/prefork workers); given back when the
/// listener goes, whether its peer came (the channel is then a connection) or not.
pub(crate) struct PassivePlace {
    counter: Arc<SharedCounter>,
    ip: IpAddr,
}

impl PassivePlace {
    /// A place for a listener of `ip`'s, if its address has one left.
    pub(crate) fn take(counter: &Arc<SharedCounter>, ip: IpAddr) -> Option<PassivePlace> {
        counter.try_acquire(ip).then(|| PassivePlace {
            counter: counter.clone(),
            ip,
        })
    }
}

impl Drop for PassivePlace {
    fn drop(&mut self) {
        self.counter.release(self.ip);
    }
}

fn random_u32() -> u32 {
    let mut b = [0u8; 4];
    // SAFETY: b is a valid buffer of its length.
    let n = unsafe { libc::getrandom(b.as_mut_ptr().cast(), b.len(), libc::GRND_NONBLOCK) };
    if n == 4 {
        u32::from_ne_bytes(b)
    } else {
        // Entropy not ready (early boot): unpredictability is a nicety here, not a guarantee.
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0)
    }
}

/// A listener on `ip`, on a random free port of `ports` (any port when `None`).
pub(crate) fn bind(ip: IpAddr, ports: Option<&RangeInclusive<u16>>) -> io::Result<TcpListener> {
    let Some(range) = ports.filter(|r| !r.is_empty()) else {
        return crate::sys::listen(SocketAddr::new(ip, 0), false);
    };
    let (lo, hi) = ((*range.start()).max(1) as u32, *range.end() as u32);
    if lo > hi {
        return Err(io::Error::from(io::ErrorKind::InvalidInput));
    }
    let n = hi - lo + 1;
    let start = random_u32() % n;
    for k in 0..n {
        let port = (lo + (start + k) % n) as u16;
        match crate::sys::listen(SocketAddr::new(ip, port), false) {
            Ok(l) => return Ok(l),
            Err(e) if e.kind() == io::ErrorKind::AddrInUse => continue,
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::from(io::ErrorKind::AddrInUse))
}

/// Whether a data connection from `from` may take the channel of a control connection from
/// `control`: the same IP (an IPv4-mapped IPv6 address counts as its IPv4 twin). A control
/// connection with no IP (a Unix-domain listener) accepts anyone.
pub(crate) fn admits(control: IpAddr, from: IpAddr) -> bool {
    if control.is_unspecified() {
        return true;
    }
    control.to_canonical() == from.to_canonical()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_within_the_range_and_spread() {
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let r = 40000..=40999;
        let mut seen = std::collections::HashSet::new();
        for _ in 0..20 {
            let l = bind(ip, Some(&r)).unwrap();
            let p = l.local_addr().unwrap().port();
            assert!(r.contains(&p));
            seen.insert(p);
        }
        assert!(seen.len() > 10, "random, not sequential: {seen:?}");
        assert!(admits(
            "127.0.0.1".parse().unwrap(),
            "::ffff:127.0.0.1".parse().unwrap()
        ));
        assert!(!admits(
            "127.0.0.1".parse().unwrap(),
            "127.0.0.2".parse().unwrap()
        ));
    }
}
