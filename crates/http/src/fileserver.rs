//! Static files: maps a GET/HEAD request onto the root directory and decides the answer —
//! index.html, a listing, a redirect for a directory without its slash, a precompressed
//! sibling, 304 for a conditional request, 206/416 for a range, or an error status.

use crate::files::{percent_decode, OpenError, Root};
use crate::listing;
use crate::parser::{Method, Request};
use crate::range::{self, RangeRequest};
use crate::response::{Body, Response};
use std::fs::File;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Serves one directory tree.
#[derive(Debug)]
pub struct FileServer {
    root: Root,
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

    fn modified(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(self.mtime_secs.max(0) as u64)
    }
}

impl FileServer {
    pub fn new(root: &Path) -> std::io::Result<FileServer> {
        Ok(FileServer {
            root: Root::open(root)?,
        })
    }

    /// Answers a GET or HEAD for `req.path`.
    pub fn respond(&self, req: &Request) -> Response {
        let Some(decoded) = percent_decode(&req.path) else {
            return Response::error(400);
        };
        // One leading slash belongs to the URL; anything else (e.g. "//etc") stays and is
        // refused by RESOLVE_BENEATH as an absolute path.
        let rel = &decoded[1..];
        let (file, st) = match self.root.open_path(rel) {
            Ok(x) => x,
            Err(e) => return Response::error(open_status(e)),
        };
        if st.st_mode & libc::S_IFMT == libc::S_IFDIR {
            return self.directory(req, &decoded, rel);
        }
        self.file(req, rel, file, &st)
    }

    fn directory(&self, req: &Request, decoded: &[u8], rel: &[u8]) -> Response {
        if !req.path.ends_with('/') {
            let mut loc = format!("{}/", req.path);
            if let Some(q) = &req.query {
                loc.push('?');
                loc.push_str(q);
            }
            return Response::error(301).header("Location", loc);
        }
        let mut index = rel.to_vec();
        index.extend_from_slice(b"index.html");
        match self.root.open_path(&index) {
            Ok((file, st)) if st.st_mode & libc::S_IFMT == libc::S_IFREG => {
                return self.file(req, &index, file, &st);
            }
            Ok(_) | Err(OpenError::NotFound) => {}
            Err(e) => return Response::error(open_status(e)),
        }
        let Ok((dir, _)) = self.root.open_path(rel) else {
            return Response::error(404);
        };
        match listing::read_dir(&dir) {
            Ok(entries) => {
                let page = listing::render(&String::from_utf8_lossy(decoded), &entries);
                Response::html(200, page)
            }
            Err(_) => Response::error(403),
        }
    }

    fn file(&self, req: &Request, rel: &[u8], file: File, st: &libc::stat) -> Response {
        let content_type = content_type(rel);
        // Prefer a precompressed sibling the client accepts; its validators are its own.
        let mut chosen = (file, Meta::of(st), None);
        let accepted = req
            .header("Accept-Encoding")
            .map(accepted_codings)
            .unwrap_or_default();
        let mut vary = false;
        for (coding, ext) in [("br", &b".br"[..]), ("gzip", &b".gz"[..])] {
            if !accepted.contains(&coding) {
                continue;
            }
            let mut sib = rel.to_vec();
            sib.extend_from_slice(ext);
            if let Ok((f, s)) = self.root.open_path(&sib) {
                if s.st_mode & libc::S_IFMT == libc::S_IFREG {
                    vary = true;
                    chosen = (f, Meta::of(&s), Some(coding));
                    break;
                }
            }
        }
        let (file, meta, coding) = chosen;
        let etag = meta.etag(coding);
        let last_modified = httpdate::fmt_http_date(meta.modified());

        let mut resp = Response::new(200);
        resp = resp.header("Content-Type", content_type);
        if let Some(c) = coding {
            resp = resp.header("Content-Encoding", c);
        }
        if vary {
            resp = resp.header("Vary", "Accept-Encoding");
        }
        resp = resp
            .header("Last-Modified", last_modified.clone())
            .header("ETag", etag.clone())
            .header("Accept-Ranges", "bytes");

        if not_modified(req, &etag, &meta) {
            resp.status = 304;
            // A 304 repeats the validators and Vary, not the representation's metadata.
            resp.headers
                .retain(|(n, _)| matches!(n.as_str(), "ETag" | "Last-Modified" | "Vary"));
            return resp;
        }

        let len = meta.len;
        let file = Arc::new(file);
        let range = match req.header("Range") {
            // Range is defined for GET only; HEAD and others ignore it (RFC 9110 §14.2).
            Some(r) if req.method == Method::Get && if_range_holds(req, &etag, &last_modified) => {
                range::parse(r, len)
            }
            _ => RangeRequest::Full,
        };
        match range {
            RangeRequest::Full => resp.body(Body::File {
                file,
                offset: 0,
                len,
            }),
            RangeRequest::Partial { start, end } => {
                resp.status = 206;
                resp.header("Content-Range", format!("bytes {start}-{end}/{len}"))
                    .body(Body::File {
                        file,
                        offset: start,
                        len: end - start + 1,
                    })
            }
            RangeRequest::Unsatisfiable => {
                let mut e = Response::error(416).header("Content-Range", format!("bytes */{len}"));
                e.headers.push(("Accept-Ranges".into(), "bytes".into()));
                e
            }
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

fn content_type(rel: &[u8]) -> String {
    let name = String::from_utf8_lossy(rel);
    let mime = mime_guess::from_path(name.as_ref()).first_or_octet_stream();
    if mime.type_() == mime_guess::mime::TEXT {
        format!("{}; charset=utf-8", mime.essence_str())
    } else {
        mime.essence_str().to_string()
    }
}

/// The codings of Accept-Encoding with a non-zero weight (`*` stands for br and gzip unless
/// they are named).
fn accepted_codings(header: &str) -> Vec<&'static str> {
    let mut named: Vec<(&str, bool)> = Vec::new();
    let mut star = false;
    for item in header.split(',') {
        let mut parts = item.split(';');
        let coding = parts.next().unwrap_or("").trim();
        let zero = parts.any(|p| {
            let p = p.trim();
            p.strip_prefix("q=")
                .or_else(|| p.strip_prefix("Q="))
                .and_then(|q| q.trim().parse::<f32>().ok())
                .is_some_and(|q| q <= 0.0)
        });
        if coding == "*" {
            star = !zero;
        } else {
            named.push((coding, !zero));
        }
    }
    let mut out = Vec::new();
    for (c, alias) in [("br", "br"), ("gzip", "x-gzip")] {
        let verdict = named
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(c) || n.eq_ignore_ascii_case(alias));
        if verdict.map_or(star, |(_, ok)| *ok) {
            out.push(c);
        }
    }
    out
}

/// Whether a conditional GET/HEAD is answered 304 (RFC 9110 §13.2.2: If-None-Match wins over
/// If-Modified-Since, with weak comparison).
fn not_modified(req: &Request, etag: &str, meta: &Meta) -> bool {
    if let Some(inm) = req.header("If-None-Match") {
        let weak = |t: &str| t.trim().trim_start_matches("W/").to_string();
        let mine = weak(etag);
        return inm.split(',').any(|t| t.trim() == "*" || weak(t) == mine);
    }
    if let Some(ims) = req.header("If-Modified-Since") {
        if let Ok(since) = httpdate::parse_http_date(ims) {
            return meta.modified() <= since;
        }
    }
    false
}

/// If-Range: the Range applies only if the validator still matches (strong comparison for a
/// tag, exact match for a date).
fn if_range_holds(req: &Request, etag: &str, last_modified: &str) -> bool {
    match req.header("If-Range") {
        None => true,
        Some(v) if v.starts_with("W/") => false,
        Some(v) if v.starts_with('"') => v == etag,
        Some(v) => v == last_modified,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_encoding() {
        assert_eq!(accepted_codings("gzip, deflate, br"), vec!["br", "gzip"]);
        assert_eq!(accepted_codings("gzip;q=0.5"), vec!["gzip"]);
        assert_eq!(accepted_codings("br;q=0, *"), vec!["gzip"]);
        assert_eq!(accepted_codings("identity"), Vec::<&str>::new());
        assert_eq!(accepted_codings("gzip;q=0"), Vec::<&str>::new());
    }

    #[test]
    fn types() {
        assert_eq!(content_type(b"a/b.html"), "text/html; charset=utf-8");
        assert_eq!(content_type(b"x.png"), "image/png");
        assert_eq!(content_type(b"noext"), "application/octet-stream");
    }
}
