//! Stateless session tickets whose keys every process of a server shares, and rotates.
//!
//! rustls's own session cache holds 256 sessions per process: a few hundred new clients
//! evict a returning one, and under `fork` (a process per connection) or `prefork` a session
//! is only known to the process that made it. A ticket carries the session itself, encrypted
//! with a key of the server's (AES-256-GCM), so any number of clients can resume, with any
//! process. What the processes must share is the key.
//!
//! The keys live in an anonymous `MAP_SHARED` mapping made when the configuration is built,
//! before any worker forks, so every process sees the same slots. Time is cut into epochs of
//! [`PERIOD`]; the key of epoch `e` sits in slot `e % 3`, made (random, from the system's
//! generator) by whichever process first needs it. Tickets are made with the current epoch's
//! key and accepted under the current or the previous one, so a ticket is good for one to two
//! periods; a key two epochs old is overwritten by the next one (rustls's rule: lifetime by
//! key erasure, for forward secrecy). Each slot is a small seqlock: its tag says which epoch it
//! holds, with a "being written" bit, and a reader that sees the tag change under it retries.
//!
//! Replay: a TLS 1.3 ticket may be used more than once (it is stateless: nothing remembers
//! that it was), which is harmless because no early data (0-RTT) is accepted: a resumed
//! handshake still runs a fresh (EC)DHE exchange and the client's first request comes after
//! the handshake, so a replayed ClientHello gets nothing a fresh one would not.

use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use ring::rand::{SecureRandom, SystemRandom};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How long one key makes tickets (a ticket is accepted for one to two of these).
pub(crate) const PERIOD: Duration = Duration::from_secs(6 * 3600);

/// A slot's tag while a process writes its key.
const WRITING: u64 = 1 << 63;
const SLOTS: usize = 3;

/// One key, with the epoch it belongs to (`tag`; 0 = never written, epochs start at 1).
#[repr(C)]
struct Slot {
    tag: AtomicU64,
    key: [AtomicU64; 4],
}

/// Every process's view of the shared key slots.
pub(crate) struct SharedTicketer {
    slots: &'static [Slot; SLOTS],
    period: u64,
    rng: SystemRandom,
}

impl std::fmt::Debug for SharedTicketer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedTicketer")
            .field("period", &self.period)
            .finish_non_exhaustive()
    }
}

impl SharedTicketer {
    /// Map the shared slots. Call before the server forks, so its workers inherit them.
    pub(crate) fn new() -> std::io::Result<Self> {
        Self::with_period(PERIOD)
    }

    pub(crate) fn with_period(period: Duration) -> std::io::Result<Self> {
        let size = std::mem::size_of::<[Slot; SLOTS]>();
        // SAFETY: an anonymous shared mapping, checked for MAP_FAILED below.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                size,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: zero-filled, page-aligned memory is a valid `[Slot; 3]` (all atomics at 0);
        // it is never unmapped (one mapping per configuration, which lives as long as the
        // server), so `'static` holds.
        let slots = unsafe { &*(p as *const [Slot; SLOTS]) };
        Ok(SharedTicketer {
            slots,
            period: period.as_secs().max(1),
            rng: SystemRandom::new(),
        })
    }

    fn epoch(&self) -> u64 {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        now.as_secs() / self.period + 1
    }

    /// The key of epoch `e` as the slot holds it, if it holds that epoch's.
    fn read(&self, e: u64) -> Option<[u8; 32]> {
        let slot = &self.slots[(e % SLOTS as u64) as usize];
        for _ in 0..1000 {
            let tag = slot.tag.load(Ordering::Acquire);
            if tag == e | WRITING {
                std::thread::yield_now(); // another process is making it
                continue;
            }
            if tag != e {
                return None;
            }
            let mut key = [0u8; 32];
            for (i, w) in slot.key.iter().enumerate() {
                key[i * 8..i * 8 + 8].copy_from_slice(&w.load(Ordering::Acquire).to_ne_bytes());
            }
            if slot.tag.load(Ordering::Acquire) == e {
                return Some(key);
            }
        }
        None
    }

    /// The current epoch's key, made now if no process has made it yet.
    fn current(&self) -> Option<(u64, [u8; 32])> {
        let e = self.epoch();
        for _ in 0..1000 {
            if let Some(k) = self.read(e) {
                return Some((e, k));
            }
            let slot = &self.slots[(e % SLOTS as u64) as usize];
            let tag = slot.tag.load(Ordering::Acquire);
            if tag & WRITING != 0 || tag >= e {
                // Being written (by us for `e`, or a process whose clock runs ahead): wait.
                std::thread::yield_now();
                continue;
            }
            if slot
                .tag
                .compare_exchange(tag, e | WRITING, Ordering::AcqRel, Ordering::Acquire)
                .is_err()
            {
                continue;
            }
            let mut key = [0u8; 32];
            if self.rng.fill(&mut key).is_err() {
                slot.tag.store(tag, Ordering::Release);
                return None;
            }
            for (i, w) in slot.key.iter().enumerate() {
                let word = u64::from_ne_bytes(key[i * 8..i * 8 + 8].try_into().unwrap());
                w.store(word, Ordering::Release);
            }
            slot.tag.store(e, Ordering::Release);
            return Some((e, key));
        }
        None
    }
}

fn aead(key: &[u8; 32]) -> Option<LessSafeKey> {
    UnboundKey::new(&AES_256_GCM, key)
        .ok()
        .map(LessSafeKey::new)
}

/// Ticket layout: epoch (8 bytes, big-endian, also authenticated), nonce, ciphertext + tag.
const HEAD: usize = 8 + NONCE_LEN;

impl rustls::server::ProducesTickets for SharedTicketer {
    fn enabled(&self) -> bool {
        true
    }

    fn lifetime(&self) -> u32 {
        self.period.min(u32::MAX as u64) as u32
    }

    fn encrypt(&self, plain: &[u8]) -> Option<Vec<u8>> {
        let (e, key) = self.current()?;
        let mut nonce = [0u8; NONCE_LEN];
        self.rng.fill(&mut nonce).ok()?;
        let mut out = Vec::with_capacity(HEAD + plain.len() + AES_256_GCM.tag_len());
        out.extend_from_slice(&e.to_be_bytes());
        out.extend_from_slice(&nonce);
        let mut body = plain.to_vec();
        aead(&key)?
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(e.to_be_bytes()),
                &mut body,
            )
            .ok()?;
        out.extend_from_slice(&body);
        Some(out)
    }

    fn decrypt(&self, cipher: &[u8]) -> Option<Vec<u8>> {
        if cipher.len() < HEAD + AES_256_GCM.tag_len() {
            return None;
        }
        let e = u64::from_be_bytes(cipher[..8].try_into().ok()?);
        let now = self.epoch();
        // The current key or the previous one: older keys are gone.
        if e != now && e + 1 != now {
            return None;
        }
        let key = self.read(e)?;
        let nonce = Nonce::try_assume_unique_for_key(&cipher[8..HEAD]).ok()?;
        let mut body = cipher[HEAD..].to_vec();
        let plain = aead(&key)?
            .open_in_place(nonce, Aad::from(e.to_be_bytes()), &mut body)
            .ok()?;
        let n = plain.len();
        body.truncate(n);
        Some(body)
    }
}

/// For configurations that must not issue tickets (FTP's connection-bound sessions and data
/// channels: a ticket any connection could resume would defeat `reuse.rs`).
#[derive(Debug)]
pub(crate) struct NoTickets;

impl rustls::server::ProducesTickets for NoTickets {
    fn enabled(&self) -> bool {
        false
    }
    fn lifetime(&self) -> u32 {
        0
    }
    fn encrypt(&self, _: &[u8]) -> Option<Vec<u8>> {
        None
    }
    fn decrypt(&self, _: &[u8]) -> Option<Vec<u8>> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::server::ProducesTickets;

    #[test]
    fn a_ticket_opens_in_another_process() {
        let t = SharedTicketer::new().unwrap();
        let ticket = t.encrypt(b"session state").unwrap();
        assert_eq!(t.decrypt(&ticket).unwrap(), b"session state");
        // A forked child (as a `prefork` worker) opens it, and makes one the parent opens.
        let mut fds = [0; 2];
        // SAFETY: `fds` is a live two-int array for pipe to fill; `buf` and `msg` are live for
        // the reads and writes into and out of them, and `status` for waitpid. After fork the
        // child, a copy of a multithreaded harness, runs the ticketer (atomics in the shared
        // mapping, getrandom, AES-GCM: no lock another thread could hold, as the parent's
        // encrypt above already did ring's one-time set-up) and allocates a few Vecs. Allocation is not
        // async-signal-safe by POSIX; it is safe here because glibc's fork resets malloc's
        // locks in the child (a libc without that could deadlock this child). It leaves with
        // _exit, never returning into the harness.
        unsafe {
            assert_eq!(libc::pipe(fds.as_mut_ptr()), 0);
            let (r, w) = (fds[0], fds[1]);
            let pid = libc::fork();
            if pid == 0 {
                let ok = t.decrypt(&ticket).as_deref() == Some(&b"session state"[..]);
                let mine = t.encrypt(b"child's").unwrap_or_default();
                let mut msg = vec![ok as u8];
                msg.extend_from_slice(&mine);
                libc::write(w, msg.as_ptr().cast(), msg.len());
                libc::_exit(0);
            }
            libc::close(w);
            let mut buf = vec![0u8; 4096];
            let n = libc::read(r, buf.as_mut_ptr().cast(), buf.len());
            libc::close(r);
            let mut status = 0;
            libc::waitpid(pid, &mut status, 0);
            assert!(n > 1, "child wrote nothing");
            assert_eq!(buf[0], 1, "the child could not open the parent's ticket");
            assert_eq!(t.decrypt(&buf[1..n as usize]).unwrap(), b"child's");
        }
    }

    #[test]
    fn tampered_short_and_foreign_tickets_are_refused() {
        let t = SharedTicketer::new().unwrap();
        let mut ticket = t.encrypt(b"x").unwrap();
        let last = ticket.len() - 1;
        ticket[last] ^= 1;
        assert!(t.decrypt(&ticket).is_none());
        assert!(t.decrypt(&[]).is_none());
        assert!(t.decrypt(&[0; 20]).is_none());
        // Another server's key (another mapping) opens nothing of this one's.
        let other = SharedTicketer::new().unwrap();
        assert!(other.decrypt(&t.encrypt(b"x").unwrap()).is_none());
    }

    #[test]
    fn keys_rotate_and_the_previous_one_still_opens() {
        let t = SharedTicketer::with_period(Duration::from_secs(1)).unwrap();
        let first = t.encrypt(b"old").unwrap();
        let e0 = u64::from_be_bytes(first[..8].try_into().unwrap());
        // Wait for the next epoch: a new key makes tickets, the old ticket still opens.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while t.epoch() == e0 {
            assert!(std::time::Instant::now() < deadline);
            std::thread::sleep(Duration::from_millis(20));
        }
        let second = t.encrypt(b"new").unwrap();
        assert_ne!(first[..8], second[..8], "a new epoch");
        if t.epoch() == e0 + 1 {
            assert_eq!(t.decrypt(&first).unwrap(), b"old");
        }
        // Two epochs on, the first key is gone.
        while t.epoch() < e0 + 2 {
            assert!(std::time::Instant::now() < deadline);
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(t.decrypt(&first).is_none());
        assert!(t.decrypt(&t.encrypt(b"now").unwrap()).is_some());
    }
}
