//! The small-file cache: a file's bytes and its finished header fields (Content-Type,
//! Last-Modified, ETag, Accept-Ranges, Cache-Control), kept in memory so a request for it is
//! answered with ONE `fstatat` and one write of head and body, instead of open, fstat, read and
//! close plus the formatting of every field.
//!
//! Never stale: every request re-stats the path (`Root::restat`) and the copy is used only if
//! the file is the same version — device, inode, size, mode, mtime and ctime all equal — so a
//! file rewritten in place (new mtime or ctime) or replaced by a rename (new inode) is a miss,
//! answered from the disk by the ordinary path, which then caches the new version. A path that
//! now leads somewhere else (a swapped symlink) names another inode: also a miss, and the
//! ordinary path resolves it beneath the root again. A file changed within [`SETTLE`] of the
//! request is not cached at all: file times have the resolution of the kernel's coarse clock,
//! so a second write in the same tick could keep mtime and size and a copy read between the two
//! writes would then look current ("racy git"); after the pause the times tell.
//!
//! Bounded: at most `max_entries` files and `max_bytes` bytes (bodies, fields and keys), files of
//! at most `max_file` bytes; inserting past a bound evicts other entries (the map's own order,
//! which is random per process). One cache per file server, shared by its threads behind a
//! mutex held only to look up or insert (an `Arc` clone), never while reading or writing.

use crate::compress::Coding;
use crate::siblings::Siblings;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The cache key of a representation of `rel`: the path itself for the identity file, the
/// path, a NUL (which no path holds) and the coding for a precompressed sibling.
pub(crate) fn key(rel: &[u8], coding: Option<Coding>, buf: &mut Vec<u8>) {
    buf.clear();
    buf.extend_from_slice(rel);
    if let Some(c) = coding {
        buf.push(0);
        buf.extend_from_slice(c.name().as_bytes());
    }
}

/// How long after its last change (mtime or ctime) a file starts being cached.
pub(crate) const SETTLE: Duration = Duration::from_secs(1);

/// What one version of a file is: if any of it changed, a cached copy is stale.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Version {
    dev: u64,
    ino: u64,
    size: i64,
    mode: u32,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl Version {
    pub(crate) fn of(st: &libc::stat) -> Version {
        Version {
            dev: st.st_dev,
            ino: st.st_ino,
            size: st.st_size,
            mode: st.st_mode,
            mtime: (st.st_mtime, st.st_mtime_nsec),
            ctime: (st.st_ctime, st.st_ctime_nsec),
        }
    }

    /// Changed less than [`SETTLE`] before `now` (or in the future): not to be cached yet.
    fn unsettled(&self, now: SystemTime) -> bool {
        let now = now
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as i128);
        let at = |(s, ns): (i64, i64)| s as i128 * 1_000_000_000 + ns as i128;
        let last = at(self.mtime).max(at(self.ctime));
        now - last < SETTLE.as_nanos() as i128
    }
}

/// One cached file: its version, body and the fields of its 200 response.
///
/// A response that varies with `Accept-Encoding` (the file has precompressed siblings) is
/// cached per representation: the identity file under its path, a sibling under the path and
/// its coding (see [`key`]). Such an entry also records which siblings existed when it was
/// made (the `Vary` field and the choice depend on them) and, for a sibling, the identity
/// file's version: a hit needs both files unchanged.
#[derive(Debug)]
pub(crate) struct Entry {
    /// The version of the file whose bytes are the body (the sibling, for a coded entry).
    pub(crate) version: Version,
    /// For a precompressed sibling: the version of the identity file it stands for.
    pub(crate) identity: Option<Version>,
    /// The siblings found when the entry was made.
    pub(crate) siblings: Siblings,
    /// The server compresses this file on the fly for codings without a sibling: a client
    /// accepting such a coding ahead of this representation's gets that instead.
    pub(crate) encodes: bool,
    pub(crate) body: Box<[u8]>,
    /// The serialised fields between `Date` and the framing ones, exactly as the ordinary path
    /// writes them for this file.
    pub(crate) fields: Box<[u8]>,
    /// The names in `fields` (an operator's extra field of the same name is not added).
    pub(crate) names: Box<[Box<str>]>,
    /// The strong validator, for If-None-Match and friends.
    pub(crate) etag: Box<str>,
    /// The Last-Modified time sent (seconds), when one is.
    pub(crate) mtime: Option<i64>,
}

impl Entry {
    /// Whether the cached response already has a field named `name`.
    pub(crate) fn has(&self, name: &str) -> bool {
        self.names.iter().any(|n| n.eq_ignore_ascii_case(name))
    }

    fn cost(&self, key: &[u8]) -> u64 {
        // The map's own overhead per entry, roughly, beside what it holds.
        (self.body.len() + self.fields.len() + self.etag.len() + key.len() + 128) as u64
    }
}

/// The bounds of a [`FileCache`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CacheLimits {
    /// Most files held.
    pub max_entries: usize,
    /// Most bytes held (bodies, fields, keys and a per-entry overhead).
    pub max_bytes: u64,
    /// Largest file cached (larger ones go out by sendfile from the disk).
    pub max_file: u64,
}

impl Default for CacheLimits {
    fn default() -> Self {
        CacheLimits {
            max_entries: 4096,
            max_bytes: 16 * 1024 * 1024,
            max_file: 16 * 1024,
        }
    }
}

/// Small files held in memory between requests (see the module docs).
#[derive(Debug)]
pub struct FileCache {
    limits: CacheLimits,
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    map: HashMap<Box<[u8]>, Arc<Entry>>,
    bytes: u64,
}

impl FileCache {
    /// An empty cache within `limits`.
    pub fn new(limits: CacheLimits) -> FileCache {
        FileCache {
            limits,
            inner: Mutex::new(Inner::default()),
        }
    }

    /// The bounds it keeps.
    pub fn limits(&self) -> CacheLimits {
        self.limits
    }

    /// Files and bytes held now.
    pub fn usage(&self) -> (usize, u64) {
        let inner = self.lock();
        (inner.map.len(), inner.bytes)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding it left the map consistent (no operation is half-done across
        // a call that can panic), so a poisoned lock is still usable.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The entry for `rel`, if one is held (not yet revalidated).
    pub(crate) fn get(&self, rel: &[u8]) -> Option<Arc<Entry>> {
        self.lock().map.get(rel).cloned()
    }

    /// Whether a file of this version and size may be cached now.
    pub(crate) fn admits(&self, st: &libc::stat, now: SystemTime) -> bool {
        st.st_mode & libc::S_IFMT == libc::S_IFREG
            && (st.st_size as u64) <= self.limits.max_file
            && !Version::of(st).unsettled(now)
    }

    /// Holds `entry` for `rel`, evicting others past the bounds; returns it shared.
    pub(crate) fn insert(&self, rel: &[u8], entry: Entry) -> Arc<Entry> {
        let cost = entry.cost(rel);
        let entry = Arc::new(entry);
        if cost > self.limits.max_bytes || self.limits.max_entries == 0 {
            return entry;
        }
        let mut inner = self.lock();
        if let Some(old) = inner.map.remove(rel) {
            inner.bytes -= old.cost(rel);
        }
        while inner.map.len() >= self.limits.max_entries
            || inner.bytes + cost > self.limits.max_bytes
        {
            let Some(key) = inner.map.keys().next().cloned() else {
                break;
            };
            if let Some(old) = inner.map.remove(&key) {
                inner.bytes -= old.cost(&key);
            }
        }
        inner.bytes += cost;
        inner.map.insert(rel.into(), entry.clone());
        entry
    }

    /// Drops `rel`'s entry if it is still `stale` (a newer one may have replaced it meanwhile).
    pub(crate) fn forget(&self, rel: &[u8], stale: &Arc<Entry>) {
        let mut inner = self.lock();
        if inner.map.get(rel).is_some_and(|e| Arc::ptr_eq(e, stale)) {
            if let Some(old) = inner.map.remove(rel) {
                inner.bytes -= old.cost(rel);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(body: usize) -> Entry {
        // SAFETY: libc::stat is a C struct of integers, for which all-zero bytes are valid.
        let st: libc::stat = unsafe { std::mem::zeroed() };
        Entry {
            version: Version::of(&st),
            identity: None,
            siblings: Siblings::default(),
            encodes: false,
            body: vec![b'x'; body].into(),
            fields: Box::default(),
            names: Box::default(),
            etag: "\"e\"".into(),
            mtime: None,
        }
    }

    #[test]
    fn bounded_in_entries_and_bytes() {
        let c = FileCache::new(CacheLimits {
            max_entries: 3,
            max_bytes: 10_000,
            max_file: 4096,
        });
        for i in 0..10 {
            c.insert(format!("f{i}").as_bytes(), entry(100));
        }
        let (n, bytes) = c.usage();
        assert_eq!(n, 3);
        assert!(c.get(b"f9").is_some(), "the newest stays");
        assert_eq!(bytes, 3 * entry(100).cost(b"f0"));
        for i in 0..10 {
            c.insert(format!("g{i}").as_bytes(), entry(3000));
        }
        let (n, bytes) = c.usage();
        assert!(bytes <= 10_000, "{bytes}");
        assert_eq!(n, 3, "three 3 KB entries fit in 10 KB");
        // One entry larger than every byte the cache may hold is answered, not kept.
        c.insert(b"huge", entry(20_000));
        assert!(c.get(b"huge").is_none());
        // Replacing an entry does not count it twice.
        c.insert(b"g9", entry(3000));
        assert_eq!(c.usage().1, bytes);
    }

    #[test]
    fn forget_only_the_stale_one() {
        let c = FileCache::new(CacheLimits::default());
        let old = c.insert(b"a", entry(1));
        let new = c.insert(b"a", entry(2));
        c.forget(b"a", &old);
        assert!(c.get(b"a").is_some_and(|e| Arc::ptr_eq(&e, &new)));
        c.forget(b"a", &new);
        assert!(c.get(b"a").is_none());
        assert_eq!(c.usage(), (0, 0));
    }

    #[test]
    fn recent_changes_are_not_cached() {
        let c = FileCache::new(CacheLimits::default());
        // SAFETY: libc::stat is a C struct of integers, for which all-zero bytes are valid.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        st.st_mode = libc::S_IFREG | 0o644;
        st.st_size = 10;
        let now = SystemTime::now();
        let secs = now.duration_since(UNIX_EPOCH).unwrap().as_secs() as i64;
        st.st_mtime = secs - 10;
        st.st_ctime = secs - 10;
        assert!(c.admits(&st, now));
        st.st_ctime = secs;
        assert!(!c.admits(&st, now), "changed just now (a chmod, a write)");
        st.st_ctime = secs - 10;
        st.st_size = 1 << 20;
        assert!(!c.admits(&st, now), "too big");
        st.st_size = 10;
        st.st_mode = libc::S_IFDIR | 0o755;
        assert!(!c.admits(&st, now), "not a file");
    }
}
