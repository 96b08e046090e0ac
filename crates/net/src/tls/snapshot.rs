//! The certificate files' contents as last validated, in memory every process of a server
//! shares: what `prefork` workers reload from after a SIGHUP.
//!
//! Re-reading the files in each worker at its next handshake would not do: a worker idle
//! across a good reload and then handed a broken file would keep the certificate from before
//! both, and the workers would disagree. So the process that takes the signal validates the
//! files and, only if they are good, publishes their bytes here; each worker parses what is
//! published when it sees the stamp change (one atomic load per handshake).
//!
//! An anonymous `MAP_SHARED` mapping made with the store, before any fork, holds a seqlock:
//! word 0 is the stamp (odd while the one writer, the reload thread, writes), word 1..4 the
//! three lengths, then the bytes, all as atomic words so a torn read is only ever retried.

use std::sync::atomic::{fence, AtomicU64, Ordering};

/// The mapping's size (only touched pages cost memory): a certificate chain, its key and an
/// OCSP response fit many times over.
const SIZE: usize = 1 << 20;
const HEAD: usize = 8; // words
const WORDS: usize = SIZE / 8;

/// The shared mapping.
pub(super) struct Snapshot {
    words: &'static [AtomicU64],
}

impl std::fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Snapshot(stamp {})", self.stamp())
    }
}

/// The three files' bytes: certificate chain, private key, OCSP response (may be empty).
pub(super) type Parts = [Vec<u8>; 3];

impl Snapshot {
    pub(super) fn new() -> std::io::Result<Snapshot> {
        // SAFETY: an anonymous shared mapping, checked for MAP_FAILED below.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                SIZE,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: zeroed, page-aligned memory is valid `AtomicU64`s; never unmapped (one per
        // certificate store, which lives as long as the server).
        let words = unsafe { std::slice::from_raw_parts(p as *const AtomicU64, WORDS) };
        Ok(Snapshot { words })
    }

    /// Changes with every publication (0: nothing published yet).
    pub(super) fn stamp(&self) -> u64 {
        self.words[0].load(Ordering::Acquire)
    }

    /// Publish `parts` (the reload thread only: one writer). `false` if they don't fit.
    pub(super) fn publish(&self, parts: &Parts) -> bool {
        let total: usize = parts.iter().map(|p| p.len().div_ceil(8)).sum();
        if HEAD + total > WORDS {
            return false;
        }
        let s = self.words[0].load(Ordering::Relaxed);
        self.words[0].store(s + 1, Ordering::Relaxed);
        fence(Ordering::Release);
        let mut at = HEAD;
        for (i, p) in parts.iter().enumerate() {
            self.words[1 + i].store(p.len() as u64, Ordering::Relaxed);
            for chunk in p.chunks(8) {
                let mut w = [0u8; 8];
                w[..chunk.len()].copy_from_slice(chunk);
                self.words[at].store(u64::from_ne_bytes(w), Ordering::Relaxed);
                at += 1;
            }
        }
        self.words[0].store(s + 2, Ordering::Release);
        true
    }

    /// What was last published, with its stamp; `None` if nothing was.
    pub(super) fn read(&self) -> Option<(u64, Parts)> {
        loop {
            let s1 = self.words[0].load(Ordering::Acquire);
            if s1 == 0 {
                return None;
            }
            if s1 % 2 == 1 {
                std::thread::yield_now();
                continue;
            }
            let mut parts: Parts = Default::default();
            let mut at = HEAD;
            let mut torn = false;
            for (i, p) in parts.iter_mut().enumerate() {
                let len = self.words[1 + i].load(Ordering::Relaxed) as usize;
                if at + len.div_ceil(8) > WORDS {
                    torn = true; // a length from a write in progress
                    break;
                }
                p.reserve(len);
                for _ in 0..len.div_ceil(8) {
                    let w = self.words[at].load(Ordering::Relaxed).to_ne_bytes();
                    let n = (len - p.len()).min(8);
                    p.extend_from_slice(&w[..n]);
                    at += 1;
                }
            }
            fence(Ordering::Acquire);
            if !torn && self.words[0].load(Ordering::Relaxed) == s1 {
                return Some((s1, parts));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn published_bytes_read_back_whole() {
        let s = Snapshot::new().unwrap();
        assert!(s.read().is_none());
        let parts: Parts = [b"cert chain".to_vec(), vec![7; 1001], Vec::new()];
        assert!(s.publish(&parts));
        let (stamp, got) = s.read().unwrap();
        assert_eq!(got, parts);
        assert_eq!(stamp, s.stamp());
        assert!(s.publish(&[b"x".to_vec(), b"y".to_vec(), b"z".to_vec()]));
        assert_ne!(s.stamp(), stamp);
        assert_eq!(s.read().unwrap().1[2], b"z");
        assert!(!s.publish(&[vec![0; SIZE], Vec::new(), Vec::new()]));
    }
}
