//! The HTML directory listing. File names come from whoever can write into the served tree, so
//! every name is percent-encoded in the link and HTML-escaped in the text.
//!
//! A listing can be far larger than a connection's output bound (100,000 entries, or a few
//! thousand long escaped names, pass 4 MiB), so the page is rendered into a [`Spool`]: small
//! pages stay in memory, a page that grows past [`SPOOL_AT`] moves to an unlinked temporary
//! file and is sent from there as a file range (sendfile, not counted against
//! `max_outbound`, and held by the page cache rather than by each slow client).

use crate::files::percent_encode_segment;
use crate::response::Body;
use std::ffi::CStr;
use std::fs::File;
use std::io::{self, Write};
use std::os::fd::{FromRawFd, IntoRawFd, OwnedFd};
use std::sync::Arc;

/// Pages up to this size are answered from memory; bigger ones are spooled to a file.
pub const SPOOL_AT: usize = 256 * 1024;

/// One entry of a directory.
pub struct Entry {
    /// The entry's name, as the file system has it (not necessarily UTF-8).
    pub name: Vec<u8>,
    /// Whether it is a directory (a symlink counts as what it points to).
    pub is_dir: bool,
}

/// Whether a name is hidden (`.git`, `.env`): not listed or served unless asked for.
pub fn is_hidden(name: &[u8]) -> bool {
    name.first() == Some(&b'.') && name != b"." && name != b".."
}

/// Reads the entries of an open directory, sorted by name, without `.` and `..` (and without
/// hidden names unless `hidden`). Entries whose type the directory doesn't say (symlinks,
/// `DT_UNKNOWN`) are asked of `is_dir`, which must resolve them beneath the served root: a
/// symlink to `/etc` is listed as a plain entry, not followed outside.
pub fn read_dir(
    dir: &File,
    hidden: bool,
    is_dir: impl Fn(&[u8]) -> bool,
) -> io::Result<Vec<Entry>> {
    // fdopendir takes ownership of the fd; give it a duplicate so `dir` stays valid.
    let dup = dir.try_clone()?;
    let fd = dup.into_raw_fd();
    // SAFETY: fd is a valid directory fd that the DIR stream now owns.
    let stream = unsafe { libc::fdopendir(fd) };
    if stream.is_null() {
        let e = io::Error::last_os_error();
        // SAFETY: fdopendir failed, so the fd is still ours to close.
        drop(unsafe { OwnedFd::from_raw_fd(fd) });
        return Err(e);
    }
    let mut out = Vec::new();
    let result = loop {
        // readdir says "end" and "error" both with NULL; errno tells them apart (an O_PATH
        // handle of an execute-only directory fails here with EBADF).
        // SAFETY: errno is thread-local; stream is a valid DIR*, and the entry is read before
        // the next readdir call.
        let ent = unsafe {
            *libc::__errno_location() = 0;
            libc::readdir(stream)
        };
        if ent.is_null() {
            let e = io::Error::last_os_error();
            break if e.raw_os_error() == Some(0) {
                Ok(())
            } else {
                Err(e)
            };
        }
        // SAFETY: d_name is NUL-terminated within the dirent.
        let name = unsafe { CStr::from_ptr((*ent).d_name.as_ptr()) }
            .to_bytes()
            .to_vec();
        if name == b"." || name == b".." || (!hidden && is_hidden(&name)) {
            continue;
        }
        // SAFETY: `ent` is the non-null dirent readdir just returned, valid until the next call.
        let d_type = unsafe { (*ent).d_type };
        let is_dir = match d_type {
            libc::DT_DIR => true,
            libc::DT_UNKNOWN | libc::DT_LNK => is_dir(&name),
            _ => false,
        };
        out.push(Entry { name, is_dir });
    };
    // SAFETY: stream is valid and closed exactly once (this also closes fd).
    unsafe { libc::closedir(stream) };
    result?;
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// A response body being written: memory until it passes [`SPOOL_AT`], then an unlinked
/// temporary file (`O_TMPFILE`, so nothing is left behind whatever happens to the process).
pub struct Spool {
    buf: Vec<u8>,
    file: Option<File>,
    len: u64,
}

impl Default for Spool {
    fn default() -> Self {
        Self::new()
    }
}

impl Spool {
    /// An empty spool (in memory until it passes [`SPOOL_AT`]).
    pub fn new() -> Spool {
        Spool {
            buf: Vec::new(),
            file: None,
            len: 0,
        }
    }

    /// The finished body: bytes, or the whole temporary file as a file range.
    pub fn finish(mut self) -> io::Result<Body> {
        match self.file.take() {
            None => Ok(Body::Bytes(self.buf)),
            Some(mut f) => {
                f.write_all(&self.buf)?;
                self.len += self.buf.len() as u64;
                Ok(Body::File {
                    file: Arc::new(f),
                    offset: 0,
                    len: self.len,
                })
            }
        }
    }

    fn spill(&mut self) -> io::Result<()> {
        if self.file.is_none() {
            self.file = Some(temp_file()?);
        }
        self.file.as_mut().unwrap().write_all(&self.buf)?;
        self.len += self.buf.len() as u64;
        self.buf.clear();
        Ok(())
    }
}

impl Write for Spool {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(b);
        if self.buf.len() >= SPOOL_AT {
            self.spill()?;
        }
        Ok(b.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// An anonymous file in the temporary directory: `O_TMPFILE` where the file system has it,
/// else a named file unlinked at once.
fn temp_file() -> io::Result<File> {
    let dir = std::env::temp_dir();
    let c = std::ffi::CString::new(dir.as_os_str().as_encoded_bytes())
        .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: valid C string; the fd returned is ours.
    let fd = unsafe {
        libc::open(
            c.as_ptr(),
            libc::O_TMPFILE | libc::O_RDWR | libc::O_CLOEXEC,
            0o600,
        )
    };
    if fd >= 0 {
        // SAFETY: a fresh fd we own.
        return Ok(unsafe { File::from_raw_fd(fd) });
    }
    let mut template = dir
        .join("bingfa-listing-XXXXXX")
        .into_os_string()
        .into_encoded_bytes();
    template.push(0);
    // SAFETY: template is a writable NUL-terminated buffer, as mkostemp requires.
    let fd = unsafe { libc::mkostemp(template.as_mut_ptr().cast(), libc::O_CLOEXEC) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: mkostemp filled in the name; unlinking leaves the open fd valid.
    unsafe { libc::unlink(template.as_ptr().cast()) };
    // SAFETY: a fresh fd we own.
    Ok(unsafe { File::from_raw_fd(fd) })
}

/// `s` with `&`, `<`, `>`, `"` and `'` escaped for HTML text and attributes.
pub fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Writes the listing page of `url_path` (the decoded path as the client sees it, ending in
/// `/`) into `out`.
pub fn render_to(url_path: &str, entries: &[Entry], out: &mut impl Write) -> io::Result<()> {
    let title = html_escape(url_path);
    write!(
        out,
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>Index of {title}</title>\
         </head>\n<body><h1>Index of {title}</h1>\n<ul>\n"
    )?;
    if url_path != "/" {
        out.write_all(b"<li><a href=\"../\">../</a></li>\n")?;
    }
    for e in entries {
        let slash = if e.is_dir { "/" } else { "" };
        let href = html_escape(&percent_encode_segment(&e.name));
        let text = html_escape(&String::from_utf8_lossy(&e.name));
        writeln!(
            out,
            "<li><a href=\"./{href}{slash}\">{text}{slash}</a></li>"
        )?;
    }
    out.write_all(b"</ul>\n</body></html>\n")
}

/// The listing page as a string (small listings, tests).
pub fn render(url_path: &str, entries: &[Entry]) -> String {
    let mut v = Vec::new();
    render_to(url_path, entries, &mut v).expect("writing to a Vec");
    String::from_utf8(v).expect("the page is UTF-8")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_escaped() {
        let entries = vec![
            Entry {
                name: b"<script>alert(1)</script>".to_vec(),
                is_dir: false,
            },
            Entry {
                name: b"a \"b\" & c".to_vec(),
                is_dir: true,
            },
        ];
        let page = render("/x<y>/", &entries);
        assert!(page.contains("Index of /x&lt;y&gt;/"));
        assert!(!page.contains("<script>"));
        assert!(page.contains(
            "<a href=\"./%3Cscript%3Ealert(1)%3C%2Fscript%3E\">&lt;script&gt;alert(1)&lt;/script&gt;</a>"
        ));
        assert!(
            page.contains("<a href=\"./a%20%22b%22%20&amp;%20c/\">a &quot;b&quot; &amp; c/</a>")
        );
        assert!(page.contains("href=\"../\""));
    }

    #[test]
    fn big_pages_spool_to_a_file() {
        let entries: Vec<Entry> = (0..3000)
            .map(|i| Entry {
                name: format!("{i:05}{}", "<".repeat(200)).into_bytes(),
                is_dir: false,
            })
            .collect();
        let want = render("/", &entries);
        assert!(want.len() > 4 * 1024 * 1024);
        let mut spool = Spool::new();
        render_to("/", &entries, &mut spool).unwrap();
        match spool.finish().unwrap() {
            Body::File { file, offset, len } => {
                assert_eq!((offset, len), (0, want.len() as u64));
                let mut got = vec![0; len as usize];
                std::os::unix::fs::FileExt::read_exact_at(&*file, &mut got, 0).unwrap();
                assert!(got == want.as_bytes());
            }
            other => panic!("not spooled: {other:?}"),
        }
        let mut small = Spool::new();
        render_to("/", &entries[..2], &mut small).unwrap();
        assert!(
            matches!(small.finish().unwrap(), Body::Bytes(b) if b == render("/", &entries[..2]).as_bytes())
        );
    }

    #[test]
    fn hidden_names() {
        assert!(is_hidden(b".git") && is_hidden(b".env") && is_hidden(b"..."));
        assert!(!is_hidden(b".") && !is_hidden(b"..") && !is_hidden(b"a.b") && !is_hidden(b""));
    }
}
