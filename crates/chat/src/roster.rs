//! Who is in the room: one table in shared memory (a `bingfa_mp::Array` under its robust
//! process-shared lock), so a name is claimed exactly once and `max_members` holds across every
//! thread and every process of the server. It is made before the server forks, so `fork` and
//! `prefork` children share it with the parent.
//!
//! Why a shared table and not only the hub stream: a member joining late must learn who is
//! online, and under `fork` a new process has no history to replay. The table answers that at
//! claim time; everything after the claim reaches the newcomer through the hub (it subscribes
//! before claiming), and the session's replica drops what the snapshot already holds (see
//! `session.rs`).
//!
//! Uniqueness is by the name's key (`name::key`: its confusable skeleton, case-folded), so
//! `аlice` in Cyrillic is taken while `alice` is in. Each entry keeps a digest of its key,
//! computed once at the claim: a claim compares digests under the lock, never skeletons.
//!
//! A process killed outright cannot release its members: under `fork`/`prefork` the parent
//! releases them when it reaps the process and says `left` for each ([`Roster::release_pid`]);
//! failing that, its entries are reclaimed when a claim meets them and the process (the
//! connection id's high 32 bits) is gone.
//!
//! With a backplane the table stays the truth for this server's own members, and a claim that
//! wins here is then claimed room-wide through [`RemoteNames`] (the Redis backplane implements
//! it in `backplane/names.rs`; the roster knows only the trait, so the arrow runs from the
//! backplane to the room, never back): the welcome line and `/who` list the whole room. While
//! the remote service is unreachable the local claim stands and `/who` lists this server's
//! members.

use bingfa_mp::{Array, LockError};
use bytemuck::{Pod, Zeroable};
use std::sync::Arc;

const NAME_BYTES: usize = 128; // 32 characters of up to 4 bytes
const KEY_BYTES: usize = 24; // a SHA-1 digest (20), padded to the entry's alignment

#[derive(Clone, Copy, Pod, Zeroable)]
#[repr(C)]
struct Entry {
    /// The member's connection id; 0 = free. Entry 0 is the header: `id` = members.
    id: u64,
    len: u32,
    _pad: u32,
    name: [u8; NAME_BYTES],
    /// Digest of the name's key (`key_digest`).
    key: [u8; KEY_BYTES],
}

impl Entry {
    fn name(&self) -> &str {
        std::str::from_utf8(&self.name[..self.len as usize]).unwrap_or("?")
    }
}

/// What a room-wide claim said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Remote {
    /// Everyone online in the room, in join order, ids in this server's view.
    Online(Vec<(u64, String)>),
    /// Another server's member holds the name.
    Taken,
    /// The room-wide service cannot be reached: the local claim stands.
    Local,
}

/// Names claimed beyond this server: the room across servers (the Redis backplane's name
/// service). Called from sessions in any process of the server, after the local claim won.
pub trait RemoteNames: Send + Sync + 'static {
    /// Claim `name` for connection `id` room-wide.
    fn claim(&self, id: u64, name: &str) -> Remote;
    /// Connection `id`, which held `name`, left; returns once the release is done (the
    /// member's `left`, published after it, must not reach a server that still finds the name
    /// taken).
    fn release(&self, id: u64, name: &str);
    /// The whole room in join order, or `None` while the service cannot be reached.
    fn who(&self) -> Option<Vec<(u64, String)>>;
}

/// Why a name could not be claimed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClaimError {
    /// Someone online holds the name (or one that looks the same).
    #[error("name taken")]
    Taken,
    /// The room has `max_members` members.
    #[error("room is full")]
    Full,
}

/// The shared member table: `(id, name)` in join order.
#[derive(Clone)]
pub struct Roster {
    table: Array<Entry>,
    remote: Option<Arc<dyn RemoteNames>>,
}

impl Roster {
    /// An empty roster for at most `max_members` members, in shared memory.
    pub fn new(max_members: usize) -> std::io::Result<Self> {
        Ok(Roster {
            table: Array::new(max_members.max(1) + 1)?,
            remote: None,
        })
    }

    fn with<R>(&self, f: impl FnOnce(&mut [Entry]) -> R) -> R {
        let mut g = match self.table.lock() {
            Ok(g) => g,
            // A member's process died holding the lock: every update is one copy that is
            // complete or not begun, so the table is still consistent.
            Err(LockError::OwnerDied(g)) => g,
            Err(e) => panic!("roster lock: {e:?}"),
        };
        f(&mut g)
    }

    /// Claim names room-wide through `remote` too (a backplane's name service).
    pub fn set_remote(&mut self, remote: Arc<dyn RemoteNames>) {
        self.remote = Some(remote);
    }

    /// Claim `name` for connection `id`; on success, everyone online (in join order, the
    /// newcomer last) as `(id, name)`.
    pub fn claim(&self, id: u64, name: &str) -> Result<Vec<(u64, String)>, ClaimError> {
        let local = self.claim_local(id, name)?;
        let Some(remote) = &self.remote else {
            return Ok(local);
        };
        match remote.claim(id, name) {
            Remote::Online(all) => Ok(all),
            Remote::Local => Ok(local),
            Remote::Taken => {
                self.with(|t| remove(t, |e| e.id == id));
                Err(ClaimError::Taken)
            }
        }
    }

    fn claim_local(&self, id: u64, name: &str) -> Result<Vec<(u64, String)>, ClaimError> {
        let key = key_digest(name);
        self.with(|t| {
            let clash = |t: &[Entry]| t[1..1 + t[0].id as usize].iter().position(|e| e.key == key);
            let mut clash_at = clash(t);
            if clash_at.is_some() || t[0].id as usize + 1 >= t.len() {
                reclaim_dead(t);
                clash_at = clash(t);
            }
            if clash_at.is_some() {
                return Err(ClaimError::Taken);
            }
            let n = t[0].id as usize;
            if n + 1 >= t.len() {
                return Err(ClaimError::Full);
            }
            let mut e = Entry::zeroed();
            e.id = id;
            e.len = name.len().min(NAME_BYTES) as u32;
            e.name[..e.len as usize].copy_from_slice(&name.as_bytes()[..e.len as usize]);
            e.key = key;
            t[1 + n] = e;
            t[0].id += 1;
            Ok(list(t))
        })
    }

    /// Connection `id` left (a no-op if it never claimed).
    pub fn release(&self, id: u64) {
        let name = self.with(|t| {
            let n = t[1..1 + t[0].id as usize]
                .iter()
                .find(|e| e.id == id)
                .map(|e| e.name().to_string());
            remove(t, |e| e.id == id);
            n
        });
        if let (Some(remote), Some(name)) = (&self.remote, name) {
            remote.release(id, &name);
        }
    }

    /// Process `pid` is gone without releasing its members (a `fork` child or `prefork`
    /// worker killed outright): release them now; returns them, so the parent can say
    /// `left` for each (`room.rs`, `on_process_exit`).
    pub fn release_pid(&self, pid: u32) -> Vec<(u64, String)> {
        let gone = self.with(|t| {
            let gone: Vec<(u64, String)> = list(t)
                .into_iter()
                .filter(|(id, _)| (id >> 32) as u32 == pid)
                .collect();
            remove(t, |e| (e.id >> 32) as u32 == pid);
            gone
        });
        if let Some(remote) = &self.remote {
            for (id, name) in &gone {
                remote.release(*id, name);
            }
        }
        gone
    }

    /// Everyone online, in join order: the whole room with a backplane (while it is up).
    pub fn members(&self) -> Vec<(u64, String)> {
        if let Some(all) = self.remote.as_ref().and_then(|r| r.who()) {
            return all;
        }
        self.local_members()
    }

    /// This server's members, in join order.
    pub fn local_members(&self) -> Vec<(u64, String)> {
        self.with(|t| list(t))
    }
}

fn list(t: &[Entry]) -> Vec<(u64, String)> {
    t[1..1 + t[0].id as usize]
        .iter()
        .map(|e| (e.id, e.name().to_string()))
        .collect()
}

/// The digest a claim compares: two names clash when their keys do.
fn key_digest(name: &str) -> [u8; KEY_BYTES] {
    use sha1::Digest;
    let mut out = [0; KEY_BYTES];
    out[..20].copy_from_slice(&sha1::Sha1::digest(crate::name::key(name).as_bytes()));
    out
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

fn reclaim_dead(t: &mut [Entry]) {
    remove(t, |e| {
        let pid = (e.id >> 32) as libc::pid_t;
        // SAFETY: signal 0 only checks that the process exists.
        pid > 0
            && unsafe { libc::kill(pid, 0) } != 0
            && std::io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH)
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claims_are_unique_and_bounded() {
        let me = (std::process::id() as u64) << 32;
        let r = Roster::new(2).unwrap();
        assert_eq!(
            r.claim(me | 1, "Alice").unwrap(),
            vec![(me | 1, "Alice".into())]
        );
        assert_eq!(r.claim(me | 2, "alice"), Err(ClaimError::Taken));
        assert_eq!(
            r.claim(me | 2, "аlice"),
            Err(ClaimError::Taken),
            "Cyrillic а"
        );
        r.claim(me | 3, "bob").unwrap();
        assert_eq!(r.claim(me | 4, "carol"), Err(ClaimError::Full));
        r.release(me | 1);
        assert_eq!(
            r.claim(me | 4, "carol").unwrap(),
            vec![(me | 3, "bob".into()), (me | 4, "carol".into())]
        );
        // A dead process's member is reclaimed when its name is wanted.
        let dead = (i32::MAX as u64 - 7) << 32;
        r.release(me | 3);
        r.claim(dead | 1, "ghost").unwrap();
        assert!(r.claim(me | 5, "ghost").is_ok());
        // A reaped process's members are released at once, and named.
        let r = Roster::new(4).unwrap();
        r.claim(dead | 1, "ann").unwrap();
        r.claim(me | 1, "bob").unwrap();
        r.claim(dead | 2, "cy").unwrap();
        let pid = (dead >> 32) as u32;
        assert_eq!(
            r.release_pid(pid),
            vec![(dead | 1, "ann".into()), (dead | 2, "cy".into())]
        );
        assert_eq!(r.local_members(), vec![(me | 1, "bob".into())]);
        assert!(r.release_pid(pid).is_empty());
    }

    /// A room-wide service that answers `said` and records releases.
    struct Fake {
        said: Remote,
        released: std::sync::Mutex<Vec<(u64, String)>>,
    }

    impl RemoteNames for Fake {
        fn claim(&self, _id: u64, _name: &str) -> Remote {
            self.said.clone()
        }
        fn release(&self, id: u64, name: &str) {
            self.released.lock().unwrap().push((id, name.into()));
        }
        fn who(&self) -> Option<Vec<(u64, String)>> {
            None
        }
    }

    /// The roster through the trait alone (no Redis): a remote `Taken` undoes the local claim,
    /// `Local` keeps it, `Online` is the whole room; a release reaches the remote with the name.
    #[test]
    fn a_local_win_is_claimed_room_wide() {
        let me = (std::process::id() as u64) << 32;
        let with = |said: Remote| {
            let mut r = Roster::new(4).unwrap();
            let fake = Arc::new(Fake {
                said,
                released: Default::default(),
            });
            r.set_remote(fake.clone());
            (r, fake)
        };
        let (r, _) = with(Remote::Taken);
        assert_eq!(r.claim(me | 1, "ann"), Err(ClaimError::Taken));
        assert!(r.local_members().is_empty());
        let (r, fake) = with(Remote::Local);
        assert_eq!(
            r.claim(me | 1, "ann").unwrap(),
            vec![(me | 1, "ann".into())]
        );
        assert_eq!(
            r.members(),
            vec![(me | 1, "ann".into())],
            "who: the local table"
        );
        r.release(me | 1);
        assert_eq!(*fake.released.lock().unwrap(), vec![(me | 1, "ann".into())]);
        let room = vec![(7, "bob".to_string()), (me | 1, "ann".into())];
        let (r, _) = with(Remote::Online(room.clone()));
        assert_eq!(r.claim(me | 1, "ann").unwrap(), room);
    }
}
