//! The HTML directory listing. File names come from whoever can write into the served tree, so
//! every name is percent-encoded in the link and HTML-escaped in the text.

use crate::files::percent_encode_segment;
use std::ffi::CStr;
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd, OwnedFd};

/// One entry of a directory.
pub struct Entry {
    pub name: Vec<u8>,
    pub is_dir: bool,
}

/// Reads the entries of an open directory, sorted by name, without `.` and `..`.
pub fn read_dir(dir: &File) -> io::Result<Vec<Entry>> {
    // fdopendir takes ownership of the fd; give it a duplicate so `dir` stays valid.
    let dup = dir.try_clone()?;
    let fd = dup.into_raw_fd();
    // SAFETY: fd is a valid directory fd that the DIR stream now owns.
    let stream = unsafe { libc::fdopendir(fd) };
    if stream.is_null() {
        // SAFETY: fdopendir failed, so the fd is still ours to close.
        drop(unsafe { OwnedFd::from_raw_fd(fd) });
        return Err(io::Error::last_os_error());
    }
    let mut out = Vec::new();
    loop {
        // SAFETY: stream is a valid DIR*; the entry is read before the next readdir call.
        let ent = unsafe { libc::readdir(stream) };
        if ent.is_null() {
            break;
        }
        // SAFETY: d_name is NUL-terminated within the dirent.
        let name = unsafe { CStr::from_ptr((*ent).d_name.as_ptr()) }
            .to_bytes()
            .to_vec();
        if name == b"." || name == b".." {
            continue;
        }
        let d_type = unsafe { (*ent).d_type };
        let is_dir = match d_type {
            libc::DT_DIR => true,
            libc::DT_UNKNOWN | libc::DT_LNK => is_dir_at(dir, &name),
            _ => false,
        };
        out.push(Entry { name, is_dir });
    }
    // SAFETY: stream is valid and closed exactly once (this also closes fd).
    unsafe { libc::closedir(stream) };
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

fn is_dir_at(dir: &File, name: &[u8]) -> bool {
    let Ok(c) = std::ffi::CString::new(name) else {
        return false;
    };
    // SAFETY: st is written by fstatat before being read.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    let r = unsafe { libc::fstatat(dir.as_raw_fd(), c.as_ptr(), &mut st, 0) };
    r == 0 && st.st_mode & libc::S_IFMT == libc::S_IFDIR
}

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

/// The listing page of `url_path` (the decoded path as the client sees it, ending in `/`).
pub fn render(url_path: &str, entries: &[Entry]) -> String {
    let title = html_escape(url_path);
    let mut s = format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>Index of {title}</title>\
         </head>\n<body><h1>Index of {title}</h1>\n<ul>\n"
    );
    if url_path != "/" {
        s.push_str("<li><a href=\"../\">../</a></li>\n");
    }
    for e in entries {
        let slash = if e.is_dir { "/" } else { "" };
        let href = html_escape(&percent_encode_segment(&e.name));
        let text = html_escape(&String::from_utf8_lossy(&e.name));
        s.push_str(&format!(
            "<li><a href=\"./{href}{slash}\">{text}{slash}</a></li>\n"
        ));
    }
    s.push_str("</ul>\n</body></html>\n");
    s
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
}
