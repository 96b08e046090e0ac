//! Static files: maps a GET/HEAD request onto the root directory and decides the answer —
//! index.html, a listing, a redirect for a directory without its slash, a precompressed
//! sibling or a body compressed on the fly (`compress/`), 304/412 for a conditional request,
//! 206 (one range or `multipart/byteranges`, `ranged.rs`)/416 for a range, or an error status. Hidden names (`.git`, `.env`) are 404 unless enabled.
//! A listing is an [`Answer::Later`]: the directory is opened here, read and rendered by the
//! caller's choice of thread (the session: bingfa-net's blocking pool, off the event loop).

use crate::answer::Answer;
use crate::compress::{self, Coding};
use crate::conditional::{self, Outcome};
use crate::filecache::{self, CacheLimits, FileCache, Version};
use crate::files::{fstat, percent_decode, OpenError, Root};
use crate::listing::{self, is_hidden, Spool};
use crate::parser::{Method, Request};
use crate::ranged::{error_varying, Head};
use crate::response::{http_date, Body, Response};
use crate::siblings::{self, Siblings};
use bingfa_net::blocking::Cancel;
use std::fs::File;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// Serves one directory tree.
#[derive(Debug)]
pub struct FileServer {
    /// Shared with listing jobs, which run on another thread.
    root: Arc<Root>,
    /// Names this server in the per-thread sibling table (`siblings.rs`).
    id: u64,
    /// Serve and list names starting with a dot.
    pub hidden: bool,
    /// A `Cache-Control` value for file responses (200, 206, 304).
    pub cache_control: Option<String>,
    /// List a directory without `index.html`; off, it is 403 (nginx's `autoindex off`).
    pub listing: bool,
    /// Compress text types on the fly into this cache (`--compress`); off when `None`.
    pub compress: Option<Arc<compress::Cache>>,
    /// Small files kept in memory and revalidated by one `fstatat` per request
    /// (`filecache.rs`); `None` reads every file from the disk.
    pub file_cache: Option<Arc<FileCache>>,
}

/// The facts about a file that validators and headers are made of.
struct Meta {
    len: u64,
    mtime_secs: i64,
    mtime_nsec: i64,
}

impl Meta {
    fn of(st: &libc::stat) -> Meta {
        Meta {
            len: st.st_size as u64,
            mtime_secs: st.st_mtime,
            mtime_nsec: st.st_mtime_nsec,
        }
    }

    /// A strong validator: changes whenever size or modification time does. The coding suffix
    /// keeps a compressed sibling's tag distinct from the identity file's.
    fn etag(&self, coding: Option<&str>) -> String {
        let suffix = coding.map(|c| format!("-{c}")).unwrap_or_default();
        format!(
            "\"{:x}.{:x}-{:x}{suffix}\"",
            self.mtime_secs, self.mtime_nsec, self.len
        )
    }
}

impl Meta {
    /// The validator of the file compressed on the fly with `coding`.
    fn etag_encoded(&self, coding: Coding) -> String {
        format!(
            "\"{:x}.{:x}-{:x}+{}\"",
            self.mtime_secs,
            self.mtime_nsec,
            self.len,
            coding.name()
        )
    }
}

const FILE_METHODS: &str = "GET, HEAD, OPTIONS";

impl FileServer {
    /// Serve the files beneath `root` (a directory handle is opened now and kept).
    pub fn new(root: &Path) -> std::io::Result<FileServer> {
        static NEXT_ID: AtomicU64 = AtomicU64::new(1);
        Ok(FileServer {
            root: Arc::new(Root::open(root)?),
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            hidden: false,
            cache_control: None,
            listing: true,
            compress: None,
            file_cache: Some(Arc::new(FileCache::new(CacheLimits::default()))),
        })
    }

    /// The decoded path of a request, or the status refusing it (400 for a bad escape, 404
    /// for a hidden name when those are not served).
    fn decode(&self, req: &Request) -> Result<Vec<u8>, u16> {
        let decoded = percent_decode(&req.path).ok_or(400u16)?;
        if !self.hidden && decoded.split(|&b| b == b'/').any(is_hidden) {
            return Err(404);
        }
        Ok(decoded)
    }

    /// Answers a GET or HEAD for `req.path`, making a listing in place.
    pub fn respond(&self, req: &Request) -> Response {
        self.answer(req).wait()
    }

    /// Answers a GET or HEAD for `req.path`; a directory listing is deferred (its making is
    /// blocking work), everything else is answered now.
    pub fn answer(&self, req: &Request) -> Answer {
        let decoded = match self.decode(req) {
            Ok(d) => d,
            Err(status) => return Response::error(status).into(),
        };
        // One leading slash belongs to the URL; anything else (e.g. "//etc") stays and is
        // refused by RESOLVE_BENEATH as an absolute path.
        let rel = &decoded[1..];
        let (file, st) = match self.root.open_path(rel) {
            Ok(x) => x,
            Err(e) => return Response::error(open_status(e)).into(),
        };
        if st.st_mode & libc::S_IFMT == libc::S_IFDIR {
            return self.directory(req, &decoded, rel);
        }
        // Only a path that names the file itself, unescaped, is cached: the hot path looks
        // the request's path up as it came.
        let cacheable = !req.path.contains('%');
        self.file(req, rel, file, &st, cacheable)
    }

    /// `OPTIONS` on a file or directory: 204 with the methods it answers, or why not.
    pub fn options(&self, req: &Request) -> Response {
        let decoded = match self.decode(req) {
            Ok(d) => d,
            Err(status) => return Response::error(status),
        };
        match self.root.open_path(&decoded[1..]) {
            Ok(_) => Response::new(204).header("Allow", FILE_METHODS),
            Err(e) => Response::error(open_status(e)),
        }
    }

    fn directory(&self, req: &Request, decoded: &[u8], rel: &[u8]) -> Answer {
        if !req.path.ends_with('/') {
            let mut loc = format!("{}/", req.path);
            if let Some(q) = &req.query {
                loc.push('?');
                loc.push_str(q);
            }
            return Response::error(301).header("Location", loc).into();
        }
        let mut index = rel.to_vec();
        index.extend_from_slice(b"index.html");
        match self.root.open_path(&index) {
            Ok((file, st)) if st.st_mode & libc::S_IFMT == libc::S_IFREG => {
                return self.file(req, &index, file, &st, false);
            }
            Ok(_) | Err(OpenError::NotFound) => {}
            Err(e) => return Response::error(open_status(e)).into(),
        }
        if !self.listing {
            return Response::error(403).into();
        }
        let Ok((dir, _)) = self.root.open_path(rel) else {
            return Response::error(404).into();
        };
        // Opening is cheap and stays here; reading, sorting and rendering are the job.
        let root = self.root.clone();
        let rel = rel.to_vec();
        let title = String::from_utf8_lossy(decoded).into_owned();
        let hidden = self.hidden;
        Answer::Later(Box::new(move |cancel| {
            listing_page(&root, &dir, &rel, &title, hidden, cancel)
        }))
    }

    fn file(
        &self,
        req: &Request,
        rel: &[u8],
        file: File,
        st: &libc::stat,
        cacheable: bool,
    ) -> Answer {
        let content_type = content_type(rel);
        // The client's codings, best first. A precompressed sibling is preferred to compressing
        // on the fly for the same coding; its validators are its own.
        let accepted = req
            .header("Accept-Encoding")
            .map(compress::accepted)
            .unwrap_or_default();
        let regular = |s: &libc::stat| s.st_mode & libc::S_IFMT == libc::S_IFREG;
        let sibling = |ext: &[u8]| {
            let mut sib = rel.to_vec();
            sib.extend_from_slice(ext);
            sib
        };
        let now = Instant::now();
        let found = siblings::cached(self.id, rel, now).unwrap_or_else(|| {
            let exists = |c: Coding| {
                self.root
                    .stat_beneath(&sibling(c.ext()))
                    .is_some_and(|s| regular(&s))
            };
            let found = Siblings {
                br: exists(Coding::Br),
                zst: exists(Coding::Zstd),
                gz: exists(Coding::Gzip),
            };
            siblings::remember(self.id, rel, now, found);
            found
        });
        let compressing = self
            .compress
            .as_ref()
            .filter(|_| compress::compressible(&content_type));
        // Any sibling, or a type compressed on the fly, makes the response vary, whichever
        // variant this client gets (and whatever the size is today).
        let vary = found.any() || compressing.is_some();
        let size = st.st_size as u64;
        let on_the_fly =
            compressing.filter(|c| size >= compress::MIN_SIZE && size <= c.max_source());
        let identity = Meta::of(st);
        let mut chosen = Variant::Identity;
        for coding in accepted {
            if found.has(coding) {
                // Gone since it was seen: another coding, or the identity file, instead.
                if let Ok((f, s)) = self.root.open_path(&sibling(coding.ext())) {
                    if regular(&s) {
                        chosen = Variant::Sibling(f, Box::new(s), coding);
                        break;
                    }
                }
            }
            if let Some(cache) = on_the_fly {
                let key = compress::Key::of(st, coding);
                if let Some(e) = cache.get(&key) {
                    chosen = Variant::Cached(e, coding);
                    break;
                }
                if let Some(claim) = compress::Cache::claim(cache, key) {
                    chosen = Variant::Encode(claim);
                    break;
                }
                // Another request is encoding it: this one takes the next choice, so a burst
                // of first requests costs one encoding per coding, not one each.
            }
        }
        let sibling_meta = match &chosen {
            Variant::Sibling(_, s, _) => Some(Meta::of(s)),
            _ => None,
        };
        let (meta, coding, etag) = match (&chosen, &sibling_meta) {
            (Variant::Sibling(_, _, c), Some(m)) => (m, Some(*c), m.etag(Some(c.name()))),
            (Variant::Identity | Variant::Sibling(..), _) => (&identity, None, identity.etag(None)),
            // The identity file's validator and the coding: a new file version or another
            // coding is another tag ('+' keeps it apart from a sibling's `-br`).
            (Variant::Cached(_, c), _) => (&identity, Some(*c), identity.etag_encoded(*c)),
            (Variant::Encode(claim), _) => {
                let c = claim.key().coding;
                (&identity, Some(c), identity.etag_encoded(c))
            }
        };
        let last_modified = http_date(meta.mtime_secs);
        let mtime = last_modified.as_ref().map(|_| meta.mtime_secs);

        let mut resp = Response::new(200);
        resp = resp.header("Content-Type", content_type.clone());
        if let Some(c) = coding {
            resp = resp.header("Content-Encoding", c.name());
        }
        if vary {
            resp = resp.header("Vary", "Accept-Encoding");
        }
        if let Some(lm) = &last_modified {
            resp = resp.header("Last-Modified", lm.clone());
        }
        resp = resp
            .header("ETag", etag.clone())
            .header("Accept-Ranges", "bytes");
        if let Some(cc) = &self.cache_control {
            resp = resp.header("Cache-Control", cc.clone());
        }

        // Validators are known before any compressing: a 304 or 412 costs no encoding.
        match conditional::evaluate(req, &etag, mtime) {
            Outcome::Proceed => {}
            Outcome::NotModified => {
                resp.status = 304;
                // A 304 repeats the validators, Vary and Cache-Control, not the
                // representation's metadata.
                resp.headers.retain(|(n, _)| {
                    matches!(
                        n.as_str(),
                        "ETag" | "Last-Modified" | "Vary" | "Cache-Control"
                    )
                });
                return resp.into();
            }
            Outcome::Failed => return error_varying(412, vary).into(),
        }

        let range = match req.header("Range") {
            // Range is defined for GET only; HEAD and others ignore it (RFC 9110 §14.2).
            Some(r)
                if req.method == Method::Get
                    && conditional::if_range_holds(req, &etag, last_modified.as_deref()) =>
            {
                Some(r.to_string())
            }
            _ => None,
        };
        let head = Head {
            resp,
            content_type,
            vary,
            range,
        };
        let len = meta.len;
        // The identity file or a sibling is cached as the representation it is (`filecache`'s
        // key); a body compressed on the fly has its own cache.
        let fillable = cacheable && head.range.is_none();
        let made = Made {
            siblings: found,
            encodes: on_the_fly.is_some(),
        };
        match chosen {
            Variant::Identity if fillable => {
                match self.fill(rel, &file, st, None, made, &head.resp, &etag, mtime) {
                    Some(e) => head.resp.body(Body::Bytes(e.body.to_vec())).into(),
                    None => head.body(Arc::new(file), len).into(),
                }
            }
            Variant::Identity => head.body(Arc::new(file), len).into(),
            Variant::Sibling(f, s, c) if fillable => {
                let mut key = Vec::new();
                filecache::key(rel, Some(c), &mut key);
                let identity = Some(Version::of(st));
                match self.fill(&key, &f, &s, identity, made, &head.resp, &etag, mtime) {
                    Some(e) => head.resp.body(Body::Bytes(e.body.to_vec())).into(),
                    None => head.body(Arc::new(f), len).into(),
                }
            }
            Variant::Sibling(f, _, _) => head.body(Arc::new(f), len).into(),
            Variant::Cached(e, _) => head.body(e.file, e.len).into(),
            // Encoding is blocking work: the blocking pool does it, once per version.
            Variant::Encode(claim) => Answer::Later(Box::new(move |cancel| {
                if cancel.is_cancelled() {
                    return Response::error(503);
                }
                let key = claim.key();
                match compress::encode(&file, key.coding) {
                    Ok(e) => {
                        // Changed while it was read: this answer goes, but is not kept.
                        if fstat(&file).is_ok_and(|now| compress::Key::of(&now, key.coding) == key)
                        {
                            claim.keep(e.clone());
                        }
                        head.body(e.file, e.len)
                    }
                    Err(e) => {
                        tracing::warn!("cannot compress a file: {e}");
                        Response::error(500)
                    }
                }
            })),
        }
    }
}

/// Which body answers a GET or HEAD of a file.
enum Variant {
    Identity,
    /// A precompressed sibling, with its stat.
    Sibling(File, Box<libc::stat>, Coding),
    /// Compressed on the fly earlier, from the cache.
    Cached(compress::Encoded, Coding),
    /// To be compressed now, by the request holding the claim.
    Encode(compress::Claim),
}

/// Reads, sorts and renders the listing of `dir` (at `rel` beneath `root`), spooling a big
/// page to a temporary file. Stops early (with a 503 nobody reads) once `cancel` says the
/// connection is gone.
fn listing_page(
    root: &Root,
    dir: &File,
    rel: &[u8],
    title: &str,
    hidden: bool,
    cancel: &Cancel,
) -> Response {
    // Entries the directory doesn't type (symlinks) are resolved beneath the root only.
    let is_dir = |name: &[u8]| {
        let mut path = rel.to_vec();
        path.extend_from_slice(name);
        root.stat_beneath(&path)
            .is_some_and(|st| st.st_mode & libc::S_IFMT == libc::S_IFDIR)
    };
    // An execute-only directory (or an O_PATH handle of one) can't be read: 403.
    let Ok(entries) = listing::read_dir(dir, hidden, is_dir) else {
        return Response::error(403);
    };
    if cancel.is_cancelled() {
        return Response::error(503);
    }
    let mut spool = Spool::new();
    let body = listing::render_to(title, &entries, &mut spool).and_then(|()| spool.finish());
    drop(entries);
    match body {
        Ok(body) => Response::new(200)
            .header("Content-Type", "text/html; charset=utf-8")
            .body(body),
        Err(e) => {
            tracing::warn!("cannot spool a listing: {e}");
            Response::error(500)
        }
    }
}

fn open_status(e: OpenError) -> u16 {
    match e {
        OpenError::NotFound => 404,
        OpenError::Forbidden => 403,
        OpenError::Other => 500,
    }
}

/// The Content-Type of a file, by its extension: looked up in mime_guess's table and
/// formatted once per extension per thread (at most [`TYPES_KEPT`] extensions of up to 16
/// bytes are kept: names come from the network), then cloned.
fn content_type(rel: &[u8]) -> String {
    use std::cell::RefCell;
    use std::collections::HashMap;
    thread_local! {
        static TYPES: RefCell<HashMap<Box<[u8]>, String>> = RefCell::new(HashMap::new());
    }
    let name = String::from_utf8_lossy(rel);
    let ext = Path::new(name.as_ref())
        .extension()
        .map(|e| e.as_encoded_bytes())
        .filter(|e| e.len() <= 16);
    let Some(ext) = ext else {
        return look_up_type(&name);
    };
    TYPES.with(|t| {
        if let Some(ty) = t.borrow().get(ext) {
            return ty.clone();
        }
        let ty = look_up_type(&name);
        let mut t = t.borrow_mut();
        if t.len() < TYPES_KEPT {
            t.insert(ext.into(), ty.clone());
        }
        ty
    })
}

/// Extensions whose type is kept per thread.
const TYPES_KEPT: usize = 256;

fn look_up_type(name: &str) -> String {
    let mime = mime_guess::from_path(name).first_or_octet_stream();
    if mime.type_() == mime_guess::mime::TEXT {
        format!("{}; charset=utf-8", mime.essence_str())
    } else {
        mime.essence_str().to_string()
    }
}

mod hot;
use hot::Made;
#[cfg(test)]
mod tests;
