//! The bounded cache of encoded bodies, keyed by the identity of the file each was made from,
//! with one encoder at a time per key ([`Claim`]).

use super::{Coding, Encoded};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

/// The identity of the file a body was made from: any change to the file changes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Key {
    dev: u64,
    ino: u64,
    size: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
    /// The coding of the cached body.
    pub coding: Coding,
}

impl Key {
    /// The key of the file `st` describes, encoded with `coding`: a change to the file makes another key.
    pub fn of(st: &libc::stat, coding: Coding) -> Key {
        Key {
            dev: st.st_dev,
            ino: st.st_ino,
            size: st.st_size as u64,
            mtime: (st.st_mtime, st.st_mtime_nsec),
            ctime: (st.st_ctime, st.st_ctime_nsec),
            coding,
        }
    }
}

struct Entry {
    body: Encoded,
    /// The tick of its last use: the least recently used entry goes first.
    used: u64,
}

#[derive(Default)]
struct Inner {
    entries: HashMap<Key, Entry>,
    /// Bodies being encoded now: one encoder per file version and coding, however many
    /// requests for it arrive meanwhile.
    encoding: HashSet<Key>,
    bytes: u64,
    tick: u64,
}

/// Encoded bodies up to a number of bytes, least recently used evicted first.
pub struct Cache {
    capacity: u64,
    inner: Mutex<Inner>,
}

impl std::fmt::Debug for Cache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cache")
            .field("capacity", &self.capacity)
            .finish()
    }
}

impl Cache {
    /// An empty cache holding at most `capacity` bytes of encoded bodies.
    pub fn new(capacity: u64) -> Cache {
        Cache {
            capacity,
            inner: Mutex::new(Inner::default()),
        }
    }

    /// The largest file compressed on the fly: a quarter of the cache, so one file can't
    /// empty it, and compressing one is a bounded amount of work.
    pub fn max_source(&self) -> u64 {
        self.capacity / 4
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The encoded body for `key`, if cached (and counts it as used).
    pub fn get(&self, key: &Key) -> Option<Encoded> {
        let mut inner = self.lock();
        inner.tick += 1;
        let tick = inner.tick;
        let e = inner.entries.get_mut(key)?;
        e.used = tick;
        Some(e.body.clone())
    }

    /// Keeps `body` for `key`, dropping what an older version of the same file left and then
    /// the least recently used entries until it fits.
    pub fn insert(&self, key: Key, body: Encoded) {
        if body.len > self.capacity {
            return;
        }
        let mut inner = self.lock();
        let inner = &mut *inner;
        inner.tick += 1;
        let mut freed = 0;
        inner.entries.retain(|k, e| {
            let older = k.dev == key.dev && k.ino == key.ino && k.coding == key.coding;
            if older {
                freed += e.body.len;
            }
            !older
        });
        inner.bytes -= freed;
        while inner.bytes + body.len > self.capacity {
            let Some((&oldest, _)) = inner.entries.iter().min_by_key(|(_, e)| e.used) else {
                break;
            };
            if let Some(e) = inner.entries.remove(&oldest) {
                inner.bytes -= e.body.len;
            }
        }
        inner.bytes += body.len;
        let used = inner.tick;
        inner.entries.insert(key, Entry { body, used });
    }

    /// The right to encode `key`, unless another request is encoding it now (that request's
    /// result will be cached; this one is answered another way).
    pub fn claim(cache: &Arc<Cache>, key: Key) -> Option<Claim> {
        cache.lock().encoding.insert(key).then(|| Claim {
            cache: cache.clone(),
            key,
        })
    }

    /// Bytes held (tests).
    pub fn bytes(&self) -> u64 {
        self.lock().bytes
    }
}

/// A body being encoded for [`Claim::key`]; released when dropped, kept or not.
pub struct Claim {
    cache: Arc<Cache>,
    key: Key,
}

impl Claim {
    /// The cache key this claim will fill.
    pub fn key(&self) -> Key {
        self.key
    }

    /// Caches the encoded body.
    pub fn keep(self, body: Encoded) {
        self.cache.insert(self.key, body);
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        self.cache.lock().encoding.remove(&self.key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compress::tests::tempfile_in_memory;

    fn key(ino: u64, size: u64, coding: Coding) -> Key {
        Key {
            dev: 1,
            ino,
            size,
            mtime: (0, 0),
            ctime: (0, 0),
            coding,
        }
    }

    fn body(len: u64) -> Encoded {
        Encoded {
            file: Arc::new(tempfile_in_memory()),
            len,
        }
    }

    #[test]
    fn the_cache_is_bounded_and_evicts_the_least_recently_used() {
        let c = Cache::new(100);
        c.insert(key(1, 1, Coding::Br), body(40));
        c.insert(key(2, 1, Coding::Br), body(40));
        assert!(c.get(&key(1, 1, Coding::Br)).is_some());
        c.insert(key(3, 1, Coding::Br), body(40));
        assert_eq!(c.bytes(), 80);
        assert!(
            c.get(&key(2, 1, Coding::Br)).is_none(),
            "least recently used"
        );
        assert!(c.get(&key(1, 1, Coding::Br)).is_some());
        c.insert(key(4, 1, Coding::Br), body(101));
        assert!(
            c.get(&key(4, 1, Coding::Br)).is_none(),
            "bigger than the cache"
        );
    }

    #[test]
    fn one_encoder_per_key() {
        let c = Arc::new(Cache::new(100));
        let k = key(1, 1, Coding::Br);
        let claim = Cache::claim(&c, k).unwrap();
        assert!(Cache::claim(&c, k).is_none(), "being encoded");
        assert!(Cache::claim(&c, key(1, 1, Coding::Gzip)).is_some());
        claim.keep(body(10));
        assert!(c.get(&k).is_some());
        assert!(Cache::claim(&c, k).is_some(), "released once kept");
        drop(Cache::claim(&c, k));
        assert!(Cache::claim(&c, k).is_some(), "released when dropped");
    }

    #[test]
    fn a_new_version_replaces_the_old_one() {
        let c = Cache::new(100);
        c.insert(key(1, 1, Coding::Br), body(40));
        c.insert(key(1, 1, Coding::Gzip), body(40));
        c.insert(key(1, 2, Coding::Br), body(10));
        assert!(c.get(&key(1, 1, Coding::Br)).is_none());
        assert!(c.get(&key(1, 1, Coding::Gzip)).is_some(), "another coding");
        assert_eq!(c.bytes(), 50);
    }
}
