//! On-the-fly compression (`--compress`): which types are worth compressing, the encoders
//! (gzip through flate2, brotli, zstd), and a bounded cache of encoded bodies.
//!
//! An encoded body is made once, on bingfa-net's blocking pool (never on an event loop), into
//! an anonymous in-memory file (`memfd_create`), and kept in [`Cache`] under the identity of the
//! file it was made from — device, inode, size, modification and change times, coding — so a
//! changed file has a new key and is never served stale. Being a file, a cached body goes out
//! exactly as a precompressed sibling does: ranges, `multipart/byteranges` and sendfile work
//! unchanged, and the second request costs what a precompressed file costs.
//!
//! The cache ([`cache`]) is per process: the threaded and event-loop models share one, each `prefork`
//! worker has its own, and under `fork` it lives as long as the connection's process.

use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::os::fd::FromRawFd;
use std::sync::Arc;

/// Files smaller than this are sent as they are: the framing would eat most of the gain.
pub const MIN_SIZE: u64 = 1024;
/// The cache size when none is given.
pub const DEFAULT_CACHE_BYTES: u64 = 64 << 20;

mod cache;
pub use cache::{Cache, Claim, Key};

/// A content coding the server can produce or find precompressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Coding {
    /// Brotli (`br`).
    Br,
    /// Zstandard (`zstd`).
    Zstd,
    /// `gzip`.
    Gzip,
}

impl Coding {
    /// The server's preference when the client weighs codings equally: brotli is smallest for
    /// text, zstd next and fastest to decode, gzip what everyone understands.
    pub const ALL: [Coding; 3] = [Coding::Br, Coding::Zstd, Coding::Gzip];

    /// The token in `Accept-Encoding` and `Content-Encoding`.
    pub fn name(self) -> &'static str {
        match self {
            Coding::Br => "br",
            Coding::Zstd => "zstd",
            Coding::Gzip => "gzip",
        }
    }

    /// The extension of a precompressed sibling.
    pub fn ext(self) -> &'static [u8] {
        match self {
            Coding::Br => b".br",
            Coding::Zstd => b".zst",
            Coding::Gzip => b".gz",
        }
    }
}

/// The codings of `Accept-Encoding` the server knows, with a non-zero weight, best first:
/// by the client's q-value, then by [`Coding::ALL`]'s order. `*` stands for the codings not
/// named; `x-gzip` is gzip.
pub fn accepted(header: &str) -> Vec<Coding> {
    let mut named: Vec<(&str, f32)> = Vec::new();
    let mut star = None;
    for item in header.split(',') {
        let mut parts = item.split(';');
        let coding = parts.next().unwrap_or("").trim();
        if coding.is_empty() {
            continue;
        }
        let q = parts
            .find_map(|p| {
                let p = p.trim();
                p.strip_prefix("q=")
                    .or_else(|| p.strip_prefix("Q="))
                    .map(|q| q.trim().parse::<f32>().unwrap_or(0.0))
            })
            .unwrap_or(1.0);
        if coding == "*" {
            star = Some(q);
        } else {
            named.push((coding, q));
        }
    }
    let mut out: Vec<(Coding, f32)> = Vec::new();
    for c in Coding::ALL {
        let alias = if c == Coding::Gzip {
            "x-gzip"
        } else {
            c.name()
        };
        let q = named
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(c.name()) || n.eq_ignore_ascii_case(alias))
            .map(|(_, q)| *q)
            .or(star);
        if let Some(q) = q.filter(|q| *q > 0.0) {
            out.push((c, q));
        }
    }
    // Stable: equal weights keep the server's order.
    out.sort_by(|a, b| b.1.total_cmp(&a.1));
    out.into_iter().map(|(c, _)| c).collect()
}

/// Whether a response of this `Content-Type` is worth compressing: text, and the structured
/// text formats (JSON, XML, JavaScript, SVG, WebAssembly) that are not compressed already.
pub fn compressible(content_type: &str) -> bool {
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if essence.starts_with("text/") || essence.ends_with("+json") || essence.ends_with("+xml") {
        return true;
    }
    matches!(
        essence.as_str(),
        "application/json"
            | "application/javascript"
            | "application/x-javascript"
            | "application/ecmascript"
            | "application/xml"
            | "application/wasm"
            | "application/x-sh"
            | "application/toml"
            | "application/yaml"
            | "application/x-yaml"
            | "image/svg+xml"
            | "image/x-icon"
            | "image/vnd.microsoft.icon"
            | "font/ttf"
            | "font/otf"
            | "application/vnd.ms-fontobject"
    )
}

/// An encoded body: an in-memory file and its length.
#[derive(Debug, Clone)]
pub struct Encoded {
    /// The encoded bytes (an unlinked file, so they can go by sendfile).
    pub file: Arc<File>,
    /// Their length.
    pub len: u64,
}

/// Compresses all of `source` (read from its start) with `coding` into a new in-memory file.
pub fn encode(source: &File, coding: Coding) -> io::Result<Encoded> {
    // SAFETY: a plain syscall with a NUL-terminated name; the fd is checked before use.
    let fd = unsafe { libc::memfd_create(c"bingfa-compressed".as_ptr(), libc::MFD_CLOEXEC) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a new descriptor that nothing else owns.
    let out = unsafe { File::from_raw_fd(fd) };
    let mut reader = BufReader::with_capacity(
        64 << 10,
        ReadAt {
            file: source,
            pos: 0,
        },
    );
    let sink = BufWriter::with_capacity(64 << 10, &out);
    match coding {
        Coding::Gzip => {
            let mut enc = flate2::write::GzEncoder::new(sink, flate2::Compression::new(6));
            io::copy(&mut reader, &mut enc)?;
            enc.finish()?.flush()?;
        }
        Coding::Br => {
            // Quality 5 of 11: most of brotli's gain at a few times gzip's cost; the result is
            // cached, so it is paid once per file version.
            let mut enc = brotli::CompressorWriter::new(sink, 64 << 10, 5, 22);
            io::copy(&mut reader, &mut enc)?;
            enc.flush()?;
            enc.into_inner().flush()?;
        }
        Coding::Zstd => {
            let mut enc = zstd::stream::write::Encoder::new(sink, 6)?;
            enc.include_checksum(true)?;
            io::copy(&mut reader, &mut enc)?;
            enc.finish()?.flush()?;
        }
    }
    let len = out.metadata()?.len();
    Ok(Encoded {
        file: Arc::new(out),
        len,
    })
}

/// Reads a shared file from an offset of its own (pread), leaving the descriptor's position
/// alone: the same file may be sent by another response at the same time.
struct ReadAt<'a> {
    file: &'a File,
    pos: u64,
}

impl Read for ReadAt<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        use std::os::unix::fs::FileExt;
        let n = self.file.read_at(buf, self.pos)?;
        self.pos += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::FileExt;

    fn text() -> Vec<u8> {
        "<p>hello, compressible world</p>\n"
            .repeat(200)
            .into_bytes()
    }

    fn source(bytes: &[u8]) -> File {
        let f = tempfile_in_memory();
        f.write_all_at(bytes, 0).unwrap();
        f
    }

    pub(super) fn tempfile_in_memory() -> File {
        // SAFETY: as in `encode`.
        let fd = unsafe { libc::memfd_create(c"test".as_ptr(), libc::MFD_CLOEXEC) };
        assert!(fd >= 0);
        // SAFETY: `fd` was just created, is valid (checked) and owned by nothing else.
        unsafe { File::from_raw_fd(fd) }
    }

    fn read_all(e: &Encoded) -> Vec<u8> {
        let mut v = vec![0; e.len as usize];
        e.file.read_exact_at(&mut v, 0).unwrap();
        v
    }

    #[test]
    fn every_coding_round_trips() {
        let plain = text();
        let src = source(&plain);
        let gz = read_all(&encode(&src, Coding::Gzip).unwrap());
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&gz[..])
            .read_to_end(&mut out)
            .unwrap();
        assert_eq!(out, plain);
        assert!(gz.len() < plain.len() / 4, "{}", gz.len());

        let br = read_all(&encode(&src, Coding::Br).unwrap());
        let mut out = Vec::new();
        brotli::Decompressor::new(&br[..], 4096)
            .read_to_end(&mut out)
            .unwrap();
        assert_eq!(out, plain);

        let zs = read_all(&encode(&src, Coding::Zstd).unwrap());
        assert_eq!(zstd::stream::decode_all(&zs[..]).unwrap(), plain);
    }

    #[test]
    fn accept_encoding() {
        use Coding::*;
        assert_eq!(accepted("gzip, deflate, br"), vec![Br, Gzip]);
        assert_eq!(accepted("gzip, deflate, br, zstd"), vec![Br, Zstd, Gzip]);
        assert_eq!(accepted("gzip;q=0.5"), vec![Gzip]);
        assert_eq!(accepted("br;q=0, *"), vec![Zstd, Gzip]);
        assert_eq!(accepted("identity"), vec![]);
        assert_eq!(accepted("gzip;q=0"), vec![]);
        assert_eq!(accepted("x-gzip"), vec![Gzip]);
        assert_eq!(accepted("br;q=0.5, gzip, zstd;q=0.8"), vec![Gzip, Zstd, Br]);
        assert_eq!(accepted("*;q=0.1, gzip"), vec![Gzip, Br, Zstd]);
    }

    #[test]
    fn types() {
        for t in [
            "text/html; charset=utf-8",
            "text/css",
            "application/javascript",
            "application/json",
            "image/svg+xml",
            "application/ld+json",
        ] {
            assert!(compressible(t), "{t}");
        }
        for t in [
            "image/png",
            "application/octet-stream",
            "application/gzip",
            "font/woff2",
        ] {
            assert!(!compressible(t), "{t}");
        }
    }
}
