//! A file response's body once its headers are decided: the whole file, one range (206), a
//! `multipart/byteranges` 206 whose part contents are still file ranges (so they go out by
//! sendfile), or 416. Shared by identity files, precompressed siblings and bodies compressed
//! on the fly (`compress/`), which are all files.

use crate::range::{self, RangeRequest};
use crate::response::{Body, Response};
use std::fs::File;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// A file response with its headers decided and its body still to come (after encoding, when
/// compressing on the fly): what it takes to answer a range of the body.
pub(crate) struct Head {
    pub resp: Response,
    pub content_type: String,
    pub vary: bool,
    /// The `Range` field, when it applies (a GET whose If-Range holds).
    pub range: Option<String>,
}

impl Head {
    /// The response with `len` bytes of `file` as its body, or the ranges of it asked for.
    pub(crate) fn body(self, file: Arc<File>, len: u64) -> Response {
        let Head {
            mut resp,
            content_type,
            vary,
            range,
        } = self;
        let range = range.map_or(RangeRequest::Full, |r| range::parse(&r, len));
        match range {
            RangeRequest::Full => resp.body(Body::File {
                file,
                offset: 0,
                len,
            }),
            RangeRequest::Partial(ranges) if ranges.len() == 1 => {
                let (start, end) = ranges[0];
                resp.status = 206;
                resp.header("Content-Range", format!("bytes {start}-{end}/{len}"))
                    .body(Body::File {
                        file,
                        offset: start,
                        len: end - start + 1,
                    })
            }
            RangeRequest::Partial(ranges) => {
                resp.status = 206;
                resp.headers.retain(|(n, _)| n != "Content-Type");
                let boundary = boundary();
                let body = byteranges(&boundary, &content_type, &file, len, &ranges);
                resp.header(
                    "Content-Type",
                    format!("multipart/byteranges; boundary={boundary}"),
                )
                .body(body)
            }
            RangeRequest::Unsatisfiable => error_varying(416, vary)
                .header("Content-Range", format!("bytes */{len}"))
                .header("Accept-Ranges", "bytes"),
        }
    }
}

pub(crate) fn error_varying(status: u16, vary: bool) -> Response {
    let e = Response::error(status);
    if vary {
        e.header("Vary", "Accept-Encoding")
    } else {
        e
    }
}

/// A multipart boundary unlikely to occur in any file: a per-process counter mixed with the
/// clock and the pid.
fn boundary() -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    format!("bingfa{:016x}{:08x}{n:x}", t, std::process::id())
}

/// The body of a `multipart/byteranges` 206 (RFC 9110 §14.6): each part's header as bytes,
/// each part's content as a file range, so the file bytes still go out by sendfile.
fn byteranges(
    boundary: &str,
    content_type: &str,
    file: &Arc<File>,
    len: u64,
    ranges: &[(u64, u64)],
) -> Body {
    let mut parts = Vec::with_capacity(ranges.len() * 2 + 1);
    for (i, &(start, end)) in ranges.iter().enumerate() {
        let sep = if i == 0 { "" } else { "\r\n" };
        parts.push(Body::Bytes(
            format!(
                "{sep}--{boundary}\r\nContent-Type: {content_type}\r\n\
                 Content-Range: bytes {start}-{end}/{len}\r\n\r\n"
            )
            .into_bytes(),
        ));
        parts.push(Body::File {
            file: file.clone(),
            offset: start,
            len: end - start + 1,
        });
    }
    parts.push(Body::Bytes(format!("\r\n--{boundary}--\r\n").into_bytes()));
    Body::Parts(parts)
}
