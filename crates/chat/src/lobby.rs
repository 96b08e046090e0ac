//! The lobby: connections that have not chosen a name yet, bounded per address and in total,
//! in every process of the server together (a table in shared memory, like the roster).
//!
//! Why: a nameless connection holds one of the server's connection places while costing its
//! owner nothing, so without a bound one client could hold them all and shut the room (2,016
//! connections did, issue 18). With it, one address holds at most `--max-per-ip` nameless
//! connections and all addresses together at most a quarter of the connection cap: the
//! members (at most `--max-members`) plus the lobby always fit in the cap, so a member from
//! another address always finds a place while the room has one. An address is an IPv4 address
//! or an IPv6 /64 (one subscriber's usual allocation, as ergo counts them). Members themselves
//! are not limited per address (people behind one NAT share one).
//!
//! A connection enters at its first callback and leaves once its name is claimed or it
//! closes; a process killed outright cannot leave, so its entries are released when the
//! parent reaps it ([`Lobby::release_pid`], from `on_process_exit`). A refusal costs one scan
//! of the table under its lock and no system call, so a flood of refused connections buys
//! the attacker nothing more (the roster's fallback of probing each entry's process with
//! `kill(pid, 0)` would cost a call per entry per refusal under `fork`).

use bingfa_mp::{Array, LockError};
use bytemuck::{Pod, Zeroable};
use std::net::IpAddr;

#[derive(Clone, Copy, Pod, Zeroable)]
#[repr(C)]
struct Entry {
    /// The connection id; entry 0 is the header: `id` = entries in use.
    id: u64,
    addr: [u8; 16],
}

/// Why a connection may not wait for a name (the text a client is shown).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// This address already has this many connections waiting.
    #[error("too many connections from your address are waiting to choose a name (at most {0}); try again later")]
    Address(usize),
    /// The lobby is full.
    #[error("too many connections are waiting to choose a name; try again later")]
    Total,
}

/// The connections still choosing a name, shared by every process of the server (see the module docs).
#[derive(Clone)]
pub struct Lobby {
    table: Array<Entry>,
    per_addr: usize,
}

/// The key an address is counted under: IPv4 (mapped or not) as itself, IPv6 by its /64.
fn key(ip: IpAddr) -> [u8; 16] {
    match ip {
        IpAddr::V4(a) => a.to_ipv6_mapped().octets(),
        IpAddr::V6(a) => match a.to_ipv4_mapped() {
            Some(v4) => v4.to_ipv6_mapped().octets(),
            None => {
                let mut o = a.octets();
                o[8..].fill(0);
                o
            }
        },
    }
}

impl Lobby {
    /// At most `total` nameless connections, at most `per_addr` from one address.
    pub fn new(total: usize, per_addr: usize) -> std::io::Result<Self> {
        Ok(Lobby {
            table: Array::new(total.max(1) + 1)?,
            per_addr: per_addr.max(1),
        })
    }

    fn with<R>(&self, f: impl FnOnce(&mut [Entry]) -> R) -> R {
        let mut g = match self.table.lock() {
            Ok(g) => g,
            // Every update is complete or not begun (see the roster): still consistent.
            Err(LockError::OwnerDied(g)) => g,
            Err(e) => panic!("lobby lock: {e:?}"),
        };
        f(&mut g)
    }

    /// Connection `id` from `ip` waits for a name; a no-op if it already does.
    pub fn enter(&self, id: u64, ip: IpAddr) -> Result<(), Refused> {
        let addr = key(ip);
        let per_addr = self.per_addr;
        self.with(|t| {
            let count = |t: &[Entry]| {
                let used = &t[1..1 + t[0].id as usize];
                if used.iter().any(|e| e.id == id) {
                    return None;
                }
                Some((used.len(), used.iter().filter(|e| e.addr == addr).count()))
            };
            let Some(c) = count(t) else {
                return Ok(());
            };
            if c.1 >= per_addr {
                return Err(Refused::Address(per_addr));
            }
            if c.0 + 1 >= t.len() {
                return Err(Refused::Total);
            }
            t[1 + c.0] = Entry { id, addr };
            t[0].id += 1;
            Ok(())
        })
    }

    /// Connection `id` has a name now, or is gone; a no-op if it was not waiting.
    pub fn leave(&self, id: u64) {
        self.with(|t| remove(t, |e| e.id == id));
    }

    /// Process `pid` is gone: its connections wait no more.
    pub fn release_pid(&self, pid: u32) {
        self.with(|t| remove(t, |e| (e.id >> 32) as u32 == pid));
    }

    /// Connections waiting now (all processes).
    pub fn waiting(&self) -> usize {
        self.with(|t| t[0].id as usize)
    }
}

fn remove(t: &mut [Entry], gone: impl Fn(&Entry) -> bool) {
    let n = t[0].id as usize;
    let mut w = 1;
    for r in 1..=n {
        if !gone(&t[r]) {
            t[w] = t[r];
            w += 1;
        }
    }
    t[0].id = (w - 1) as u64;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_per_address_and_in_total() {
        let me = (std::process::id() as u64) << 32;
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let l = Lobby::new(3, 2).unwrap();
        assert_eq!(l.enter(me | 1, a), Ok(()));
        assert_eq!(l.enter(me | 1, a), Ok(()), "idempotent");
        assert_eq!(l.enter(me | 2, a), Ok(()));
        assert_eq!(l.enter(me | 3, a), Err(Refused::Address(2)));
        let mapped: IpAddr = "::ffff:10.0.0.1".parse().unwrap();
        assert_eq!(l.enter(me | 3, mapped), Err(Refused::Address(2)));
        assert_eq!(l.enter(me | 4, b), Ok(()));
        assert_eq!(l.enter(me | 5, b), Err(Refused::Total));
        l.leave(me | 1);
        assert_eq!(l.enter(me | 5, b), Ok(()));
        assert_eq!(l.waiting(), 3);
        // One IPv6 /64 is one address.
        let l6 = Lobby::new(8, 1).unwrap();
        let x: IpAddr = "2001:db8::1".parse().unwrap();
        let y: IpAddr = "2001:db8::2".parse().unwrap();
        let z: IpAddr = "2001:db8:0:1::1".parse().unwrap();
        assert_eq!(l6.enter(me | 1, x), Ok(()));
        assert_eq!(l6.enter(me | 2, y), Err(Refused::Address(1)));
        assert_eq!(l6.enter(me | 3, z), Ok(()));
        // A dead process's entries go when it is reaped.
        let dead = (i32::MAX as u64 - 7) << 32;
        l6.enter(dead | 1, "2001:db8:0:2::1".parse().unwrap())
            .unwrap();
        l6.release_pid((dead >> 32) as u32);
        assert_eq!(l6.waiting(), 2);
        l6.release_pid(std::process::id());
        assert_eq!(l6.waiting(), 0);
    }
}
