//! Per-address login guard: failed logins are counted per source address, and an address with
//! `ban_after` failures within `ban_window` is banned for `ban_time`, doubled on each repeat
//! (up to a day), as pure-ftpd and fail2ban do: its logins and new connections get `421` and
//! are closed. And an address may have only `checks_per_ip` password checks queued or running
//! at once (the others wait their turn), so a flood of guesses from one address holds at most
//! that many of the blocking pool's threads while everyone else's logins go straight through.
//!
//! The table lives in an anonymous shared mapping made before the server forks, so it is one
//! table for every model: threads share it, and so do `fork`'s per-connection children and
//! `prefork`'s workers (a per-process count would let a forking server be guessed at freely).
//! It is a fixed number of slots (an address hashes to a short run of them; the least recently
//! used idle one makes room), guarded by a spin lock held for a few hundred nanoseconds; the
//! lock records its holder's pid, so a process killed while holding it cannot wedge the rest.
//! A check's place is a lease stamped with its start: one whose process died is given back
//! after `LEASE_MAX`.
//!
//! An IPv6 address counts by its /64 (what one host is normally given), an IPv4 one whole.

use std::net::IpAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Slots in the table (one per recently seen address).
const SLOTS: usize = 4096;
/// How many slots from its hash an address may take.
const PROBE: usize = 32;
/// Most checks at once per address, whatever the configuration.
pub const MAX_CHECKS: usize = 8;
/// A lease older than this is taken for one whose process died (a check takes well under).
const LEASE_MAX: u64 = 120_000;
/// Longest ban, however often it is repeated.
const BAN_MAX: u64 = 24 * 3600 * 1000;

/// What the guard enforces (see [`crate::config::FtpConfig`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GuardConfig {
    /// Failed logins within `ban_window` that ban an address; 0 = never.
    pub ban_after: u32,
    /// How far back failures count towards `ban_after`.
    pub ban_window: Duration,
    /// The first ban; each repeat doubles it.
    pub ban_time: Duration,
    /// Password checks one address may have queued or running at once (1..=[`MAX_CHECKS`]).
    pub checks_per_ip: u32,
}

impl Default for GuardConfig {
    fn default() -> Self {
        GuardConfig {
            ban_after: 10,
            ban_window: Duration::from_secs(60),
            ban_time: Duration::from_secs(60),
            checks_per_ip: 1,
        }
    }
}

#[repr(C)]
struct Slot {
    key: [u8; 16],
    used: u32,
    failures: u32,
    bans: u32,
    _pad: u32,
    /// Milliseconds (monotonic) of the last use, the failure window's start, the ban's end.
    last: u64,
    window_start: u64,
    ban_until: u64,
    /// Start times of this address's checks in flight (0 = free).
    leases: [u64; MAX_CHECKS],
}

#[repr(C)]
struct Table {
    /// 0, or the pid of the process holding the lock.
    lock: AtomicU32,
    slots: [Slot; SLOTS],
}

struct Map {
    table: *mut Table,
}

// SAFETY: `Map` owns its mapping (unmapped only in its own drop) and the pointer is not tied
// to the thread that made it: the mapping is process-wide memory.
unsafe impl Send for Map {}
// SAFETY: shared use never races: the lock word is an atomic, and the slots are only reached
// through `Guard::lock`, which hands out `&mut` to them only while the lock is held.
unsafe impl Sync for Map {}

impl Drop for Map {
    fn drop(&mut self) {
        // SAFETY: exactly the address and length mmap'd in `Guard::new`; `Map` is only held
        // in an Arc, so this runs once, when the last Guard is gone and no `Locked` (which
        // borrows a Guard) can be alive.
        unsafe { libc::munmap(self.table.cast(), std::mem::size_of::<Table>()) };
    }
}

/// The guard: cheap to clone, one table for the server and every process it forks.
#[derive(Clone)]
pub(crate) struct Guard {
    map: Arc<Map>,
    pub(crate) cfg: GuardConfig,
}

impl std::fmt::Debug for Guard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Guard").field("cfg", &self.cfg).finish()
    }
}

/// A place among an address's checks in flight, given back when dropped (or [`Lease::finish`]ed
/// with the answer). It travels with the check itself, so a client that hangs up while its
/// check runs does not get its place back early.
pub(crate) struct Lease {
    guard: Guard,
    key: [u8; 16],
    index: usize,
    stamp: u64,
}

impl Lease {
    /// The check answered: gives the place back, counting a failure when `ok` is false.
    pub(crate) fn finish(self, ok: bool) {
        let mut me = std::mem::ManuallyDrop::new(self);
        me.guard.release(&me.key, me.index, me.stamp, !ok);
        // SAFETY: `me` is ManuallyDrop, so `Lease::drop` (which would release a second time)
        // never runs and its guard is dropped exactly once, here; `me` is not used after.
        // The other fields are plain data with nothing to drop.
        unsafe { std::ptr::drop_in_place(&mut me.guard) };
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.guard.release(&self.key, self.index, self.stamp, false);
    }
}

/// Why a check may not start now.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Refused {
    /// Banned for this long still.
    Banned(Duration),
    /// The address has its `checks_per_ip` in flight: try again shortly.
    Busy,
}

fn now_ms() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a live, writable timespec for clock_gettime to fill in.
    // CLOCK_MONOTONIC is one clock for every process of the host.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1000 + ts.tv_nsec as u64 / 1_000_000 + 1
}

/// The address as the table counts it: IPv4 whole (as v4-mapped), IPv6 by its /64.
fn key(ip: IpAddr) -> [u8; 16] {
    match ip {
        IpAddr::V4(v4) => v4.to_ipv6_mapped().octets(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_ipv6_mapped().octets(),
            None => {
                let mut o = v6.octets();
                o[8..].fill(0);
                o
            }
        },
    }
}

fn hash(key: &[u8; 16]) -> usize {
    // FNV-1a: spreads addresses over the table; not a secret (a collision only shares a run).
    let mut h: u64 = 0xcbf29ce484222325;
    for &b in key {
        h = (h ^ b as u64).wrapping_mul(0x100000001b3);
    }
    (h % SLOTS as u64) as usize
}

/// The slots, while the lock is held (released on drop).
struct Locked<'a> {
    lock: &'a AtomicU32,
    table: &'a mut [Slot; SLOTS],
}

impl Drop for Locked<'_> {
    fn drop(&mut self) {
        self.lock.store(0, Ordering::Release);
    }
}

impl Guard {
    pub(crate) fn new(cfg: GuardConfig) -> std::io::Result<Guard> {
        let size = std::mem::size_of::<Table>();
        // SAFETY: mmap with a null hint and MAP_ANONYMOUS reads no memory of ours and maps
        // fresh, page-aligned, zero-filled pages; all-zero bytes are a valid Table (every
        // slot unused, lock free), as it is made of integers and an AtomicU32 only.
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
        let cfg = GuardConfig {
            checks_per_ip: cfg.checks_per_ip.clamp(1, MAX_CHECKS as u32),
            ..cfg
        };
        Ok(Guard {
            map: Arc::new(Map { table: p.cast() }),
            cfg,
        })
    }

    fn lock(&self) -> Locked<'_> {
        // SAFETY: the table is mapped, initialised and aligned for as long as `self.map` lives,
        // which the returned borrow of `self` outlasts; only a shared reference to the atomic
        // lock word is made (it is never reached through `&mut`: `Locked` borrows only the
        // slots).
        let lock = unsafe { &*std::ptr::addr_of!((*self.map.table).lock) };
        let me = std::process::id();
        let mut spins = 0u32;
        loop {
            let holder = lock.load(Ordering::Relaxed);
            if holder == 0
                && lock
                    .compare_exchange_weak(0, me, Ordering::Acquire, Ordering::Relaxed)
                    .is_ok()
            {
                break;
            }
            spins += 1;
            if spins.is_multiple_of(64) {
                std::thread::yield_now();
            }
            if spins.is_multiple_of(4096) && holder != 0 && holder != me {
                // SAFETY: kill with signal 0 sends nothing and touches no memory: it only asks
                // whether the process exists.
                let gone = unsafe { libc::kill(holder as i32, 0) } != 0
                    && std::io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH);
                if gone {
                    // Its holder died inside a few-instruction section: take it over.
                    let _ = lock.compare_exchange(holder, 0, Ordering::AcqRel, Ordering::Relaxed);
                }
            }
        }
        Locked {
            lock,
            // SAFETY: the lock is held (by this process, and within it by this thread, as
            // no thread gets past the loop above while another holds it), and every access to
            // the slots goes through a `Locked`, so this `&mut` is the only reference to them
            // until `Locked` drops and releases the lock. The mapping outlives it (borrow of
            // `self`). Only the slots are borrowed, not the lock word others spin on.
            table: unsafe { &mut *std::ptr::addr_of_mut!((*self.map.table).slots) },
        }
    }

    /// The slot of `key`, made (in place of an idle or the least recently used one) if `make`.
    fn slot<'a>(
        t: &'a mut [Slot; SLOTS],
        key: &[u8; 16],
        now: u64,
        make: bool,
    ) -> Option<&'a mut Slot> {
        let start = hash(key);
        let idx = |i: usize| (start + i) % SLOTS;
        if let Some(i) = (0..PROBE).find(|&i| {
            let s = &t[idx(i)];
            s.used != 0 && s.key == *key
        }) {
            return Some(&mut t[idx(i)]);
        }
        if !make {
            return None;
        }
        // A free slot, else the least recently used one without checks in flight or a ban.
        let busy = |s: &Slot| {
            s.leases
                .iter()
                .any(|&l| l != 0 && now - l.min(now) < LEASE_MAX)
                || s.ban_until > now
        };
        let pick = (0..PROBE)
            .find(|&i| t[idx(i)].used == 0)
            .or_else(|| {
                (0..PROBE)
                    .filter(|&i| !busy(&t[idx(i)]))
                    .min_by_key(|&i| t[idx(i)].last)
            })
            .unwrap_or_else(|| (0..PROBE).min_by_key(|&i| t[idx(i)].last).unwrap());
        let s = &mut t[idx(pick)];
        *s = Slot {
            key: *key,
            used: 1,
            failures: 0,
            bans: 0,
            _pad: 0,
            last: now,
            window_start: now,
            ban_until: 0,
            leases: [0; MAX_CHECKS],
        };
        Some(s)
    }

    /// How much longer `ip` is banned, if it is.
    pub(crate) fn banned(&self, ip: IpAddr) -> Option<Duration> {
        let now = now_ms();
        let l = self.lock();
        let s = Self::slot(l.table, &key(ip), now, false)?;
        (s.ban_until > now).then(|| Duration::from_millis(s.ban_until - now))
    }

    /// A place for one more check from `ip`, unless it is banned or has its share in flight.
    pub(crate) fn begin(&self, ip: IpAddr) -> Result<Lease, Refused> {
        let now = now_ms();
        let k = key(ip);
        let l = self.lock();
        let s = Self::slot(l.table, &k, now, true).expect("made");
        s.last = now;
        if s.ban_until > now {
            return Err(Refused::Banned(Duration::from_millis(s.ban_until - now)));
        }
        let n = self.cfg.checks_per_ip as usize;
        let free = s.leases[..n]
            .iter()
            .position(|&l| l == 0 || now - l.min(now) >= LEASE_MAX)
            .ok_or(Refused::Busy)?;
        s.leases[free] = now;
        drop(l);
        Ok(Lease {
            guard: self.clone(),
            key: k,
            index: free,
            stamp: now,
        })
    }

    fn release(&self, k: &[u8; 16], index: usize, stamp: u64, failed: bool) {
        let now = now_ms();
        let l = self.lock();
        let Some(s) = Self::slot(l.table, k, now, failed) else {
            return;
        };
        if s.leases[index] == stamp {
            s.leases[index] = 0;
        }
        if failed {
            self.failed(s, now);
        }
    }

    /// One more failure: a ban once there are `ban_after` within the window.
    fn failed(&self, s: &mut Slot, now: u64) {
        s.last = now;
        if self.cfg.ban_after == 0 {
            return;
        }
        let window = self.cfg.ban_window.as_millis() as u64;
        if now - s.window_start.min(now) > window {
            s.window_start = now;
            s.failures = 0;
        }
        s.failures += 1;
        if s.failures < self.cfg.ban_after {
            return;
        }
        // A day without a ban forgets the earlier ones.
        if s.ban_until + BAN_MAX < now {
            s.bans = 0;
        }
        s.bans = s.bans.saturating_add(1);
        let base = self.cfg.ban_time.as_millis() as u64;
        let len = base
            .saturating_mul(1u64 << (s.bans - 1).min(20))
            .min(BAN_MAX);
        s.ban_until = now + len;
        s.failures = 0;
        s.window_start = now;
        let ip = std::net::Ipv6Addr::from(s.key);
        let ip = ip.to_ipv4_mapped().map_or(IpAddr::V6(ip), IpAddr::V4);
        // The `ftp` events' shape (see `crate::log`): the address first.
        tracing::warn!(target: "ftp", peer = %ip, seconds = len / 1000, repeat = s.bans, "banned");
    }

    /// Counts a failed login from `ip` without a check (the tests' way to reach a ban).
    #[cfg(test)]
    fn fail(&self, ip: IpAddr) {
        let now = now_ms();
        let l = self.lock();
        let s = Self::slot(l.table, &key(ip), now, true).expect("made");
        self.failed(s, now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn guard(ban_after: u32, ban_ms: u64, checks: u32) -> Guard {
        Guard::new(GuardConfig {
            ban_after,
            ban_window: Duration::from_secs(60),
            ban_time: Duration::from_millis(ban_ms),
            checks_per_ip: checks,
        })
        .unwrap()
    }

    #[test]
    fn bans_after_failures_and_doubles() {
        let g = guard(3, 200, 1);
        let a = ip("192.0.2.1");
        for _ in 0..2 {
            g.begin(a).unwrap().finish(false);
        }
        assert_eq!(g.banned(a), None);
        // A success does not wipe the count.
        g.begin(a).unwrap().finish(true);
        g.begin(a).unwrap().finish(false);
        let first = g.banned(a).expect("banned after 3 failures");
        assert!(first <= Duration::from_millis(200));
        assert!(matches!(g.begin(a), Err(Refused::Banned(_))));
        // Another address is not.
        assert!(g.begin(ip("192.0.2.2")).is_ok());
        std::thread::sleep(first + Duration::from_millis(20));
        assert_eq!(g.banned(a), None);
        for _ in 0..3 {
            g.fail(a);
        }
        let second = g.banned(a).expect("banned again");
        assert!(
            second > Duration::from_millis(200),
            "{second:?}: not doubled"
        );
        // 0 = never.
        let never = guard(0, 1000, 1);
        for _ in 0..100 {
            never.fail(a);
        }
        assert_eq!(never.banned(a), None);
    }

    #[test]
    fn limits_checks_in_flight_per_address() {
        let g = guard(0, 1000, 2);
        let a = ip("2001:db8::1");
        let (x, y) = (g.begin(a).unwrap(), g.begin(a).unwrap());
        assert_eq!(g.begin(a).err(), Some(Refused::Busy));
        // The same /64 counts as one address; another does not.
        assert_eq!(g.begin(ip("2001:db8::2")).err(), Some(Refused::Busy));
        let other = g.begin(ip("2001:db8:0:1::1")).unwrap();
        drop(x);
        let z = g.begin(a).unwrap();
        y.finish(true);
        drop((z, other));
        assert!(g.begin(a).is_ok());
    }

    #[test]
    fn one_table_across_fork() {
        let g = guard(2, 60_000, 1);
        let a = ip("198.51.100.7");
        // SAFETY: the harness has other threads, so the child must keep to what is safe after
        // fork: this test's own table (no other thread holds its lock: the guard is new and
        // unshared) and a clock read. The second failure also logs through `tracing`; no
        // subscriber is installed in this test binary, so that reads atomics and a
        // thread-local and takes no lock. It leaves with _exit, never returning into the
        // harness.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            g.fail(a);
            g.fail(a);
            // SAFETY: _exit ends the child at once, without the parent's exit handlers or
            // destructors (which belong to the parent's copy of the state).
            unsafe { libc::_exit(0) };
        }
        let mut st = 0;
        // SAFETY: `pid` is our own child, and `st` a live int for waitpid to write.
        unsafe { libc::waitpid(pid, &mut st, 0) };
        assert!(g.banned(a).is_some(), "the child's failures did not count");
    }

    #[test]
    fn a_full_table_still_answers() {
        let g = guard(1, 60_000, 1);
        for i in 0..(SLOTS as u32 * 2) {
            g.fail(IpAddr::from(i.to_be_bytes()));
        }
        let a = ip("203.0.113.9");
        g.fail(a);
        assert!(g.banned(a).is_some());
    }
}
