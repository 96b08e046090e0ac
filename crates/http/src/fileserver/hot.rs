//! The small-file cache's side of the file server (issue 23): [`FileServer::hot`] answers a
//! request from a cached representation after revalidating it, [`FileServer::fill`] puts one
//! in after the ordinary path chose it (see `filecache.rs` for what an entry is and why it is
//! never stale).

use super::FileServer;
use crate::compress;
use crate::conditional::{self, Outcome};
use crate::filecache::{self, Entry, Version};
use crate::files::fstat;
use crate::listing::is_hidden;
use crate::parser::{Method, Request};
use crate::response::{write_field, Response};
use crate::siblings::{self, Siblings};
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

impl FileServer {
    /// The hot path: the cached small file `req` asks for, when it is still the same version
    /// (one `fstatat`; two for a precompressed sibling, which also checks the identity file)
    /// and the whole answer is its 200 — no precondition or range to weigh, and the
    /// representation this client gets is the cached one: the sibling of the client's first
    /// accepted coding that has one, or the identity file when none has, with the same
    /// siblings (hence the same `Vary`) as when it was cached, and no coding the server would
    /// compress on the fly ahead of it. `None` sends the request down the ordinary path, which
    /// answers it (and caches the representation when it can).
    pub(crate) fn hot(&self, req: &Request) -> Option<Arc<Entry>> {
        let cache = self.file_cache.as_ref()?;
        let path = req.path.as_bytes();
        if path.first() != Some(&b'/') || path.contains(&b'%') {
            return None;
        }
        if !self.hidden && path.split(|&b| b == b'/').any(is_hidden) {
            return None;
        }
        let rel = &path[1..];
        // The sibling lookups decide `Vary` and the representation; when they are due again,
        // the ordinary path makes them.
        let found = siblings::cached(self.id, rel, Instant::now())?;
        let accepted = || {
            req.header("Accept-Encoding")
                .map(compress::accepted)
                .unwrap_or_default()
        };
        // The coding chosen, and whether the client accepts codings ahead of it (which the
        // server may compress on the fly instead), as the ordinary path decides them.
        let (coding, ahead) = if found.any() {
            let accepted = accepted();
            match accepted.iter().position(|&c| found.has(c)) {
                Some(i) => (Some(accepted[i]), Some(i > 0)),
                None => (None, Some(!accepted.is_empty())),
            }
        } else {
            (None, None)
        };
        let mut key = Vec::new();
        let key: &[u8] = match coding {
            None => rel,
            Some(c) => {
                filecache::key(rel, Some(c), &mut key);
                &key
            }
        };
        let entry = cache.get(key)?;
        if entry.siblings != found {
            // Made before a sibling came or went: the ordinary path answers and replaces it.
            return None;
        }
        if entry.encodes && ahead.unwrap_or_else(|| !accepted().is_empty()) {
            return None;
        }
        let current = |p: &[u8]| self.root.restat(p).map(|st| Version::of(&st));
        let fresh = match coding {
            None => current(rel) == Some(entry.version),
            Some(c) => {
                let mut sibling = rel.to_vec();
                sibling.extend_from_slice(c.ext());
                entry.identity.is_some()
                    && current(rel) == entry.identity
                    && current(&sibling) == Some(entry.version)
            }
        };
        if !fresh {
            cache.forget(key, &entry);
            return None;
        }
        if conditional::evaluate(req, &entry.etag, entry.mtime) != Outcome::Proceed
            || (req.method == Method::Get && req.header("Range").is_some())
        {
            return None;
        }
        Some(entry)
    }

    /// Reads a small file into the cache under `key` with the fields of `resp` (its 200
    /// before the operator's fields and the framing), if the cache takes it: a regular file,
    /// small enough, unchanged for a moment, and still the same version after the read.
    /// `identity`: for a sibling, the identity file's version, revalidated with it.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn fill(
        &self,
        key: &[u8],
        file: &File,
        st: &libc::stat,
        identity: Option<Version>,
        made: Made,
        resp: &Response,
        etag: &str,
        mtime: Option<i64>,
    ) -> Option<Arc<Entry>> {
        let cache = self.file_cache.as_ref()?;
        if !cache.admits(st, SystemTime::now()) {
            return None;
        }
        let mut body = vec![0; st.st_size as usize];
        file.read_exact_at(&mut body, 0).ok()?;
        // Written while it was read: served from the disk until it settles.
        let version = Version::of(st);
        if fstat(file).ok().map(|now| Version::of(&now)) != Some(version) {
            return None;
        }
        let mut fields = Vec::with_capacity(256);
        for (n, v) in &resp.headers {
            write_field(&mut fields, n, v);
        }
        let entry = Entry {
            version,
            identity,
            siblings: made.siblings,
            encodes: made.encodes,
            body: body.into(),
            fields: fields.into(),
            names: resp
                .headers
                .iter()
                .map(|(n, _)| n.as_str().into())
                .collect(),
            etag: etag.into(),
            mtime,
        };
        Some(cache.insert(key, entry))
    }
}

/// What decided a representation, kept with its cache entry.
#[derive(Clone, Copy)]
pub(super) struct Made {
    pub(super) siblings: Siblings,
    /// The server compresses this file on the fly for a coding that has no sibling.
    pub(super) encodes: bool,
}
