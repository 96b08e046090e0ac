//! The file server's own tests: compression once per version, the small-file cache never
//! serving a changed file, content types.

use super::*;
use crate::filecache::Entry;
use std::os::unix::fs::FileExt;

fn get(path: &str, accept: &str) -> Request {
    Request {
        method: Method::Get,
        path: path.into(),
        query: None,
        version: crate::parser::Version::Http11,
        headers: vec![("Accept-Encoding".into(), accept.into())],
        content_length: 0,
        keep_alive: true,
        body: vec![],
    }
}

/// The first request for a version of a file is encoded off the loop (a deferred
/// answer); the next is answered at once from the cache, as a sibling would be; a change
/// to the file is encoded again.
#[test]
fn compressed_once_per_version_then_from_the_cache() {
    let dir = std::env::temp_dir().join(format!("bingfa-fs-compress-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("a.css"), "a { color: red }\n".repeat(100)).unwrap();
    let mut fs = FileServer::new(&dir).unwrap();
    fs.compress = Some(Arc::new(compress::Cache::new(1 << 20)));
    let req = get("/a.css", "gzip");
    let Answer::Later(job) = fs.answer(&req) else {
        panic!("the first request encodes")
    };
    let first = job(&Cancel::never());
    assert_eq!(first.get_header("Content-Encoding"), Some("gzip"));
    let Answer::Now(second) = fs.answer(&req) else {
        panic!("the second request is answered from the cache")
    };
    assert!(matches!(second.body, crate::response::Body::File { .. }));
    assert_eq!(second.body.len(), first.body.len());
    assert_eq!(second.get_header("ETag"), first.get_header("ETag"));
    std::fs::write(dir.join("a.css"), "b { color: blue }\n".repeat(100)).unwrap();
    assert!(
        matches!(fs.answer(&req), Answer::Later(_)),
        "a changed file"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

fn body_of(resp: Response) -> Vec<u8> {
    match resp.body {
        Body::Bytes(b) => b,
        Body::File { file, offset, len } => {
            let mut b = vec![0; len as usize];
            file.read_exact_at(&mut b, offset).unwrap();
            b
        }
        other => panic!("{other:?}"),
    }
}

fn has_field(e: &Entry, field: &str) -> bool {
    let line = format!("{field}\r\n");
    e.fields.windows(line.len()).any(|w| w == line.as_bytes())
}

/// Issue 23: a response that varies (the file has a precompressed sibling) is cached per
/// representation: the sibling under its coding, the identity file apart, each with
/// `Vary: Accept-Encoding`; a hit needs both files unchanged and the same siblings; a
/// client that prefers a coding the server compresses on the fly is not given the sibling.
#[test]
fn siblings_are_cached_per_representation() {
    let dir = std::env::temp_dir().join(format!("bingfa-fs-sib-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (page, sib) = (dir.join("a.html"), dir.join("a.html.gz"));
    let text = "hello sibling\n".repeat(100);
    std::fs::write(&page, &text).unwrap();
    std::fs::write(&sib, "gz one\n").unwrap();
    let settle = crate::filecache::SETTLE + std::time::Duration::from_millis(100);
    std::thread::sleep(settle);
    let fs = FileServer::new(&dir).unwrap();
    let (gz, plain, br_first) = (
        get("/a.html", "gzip"),
        get("/a.html", ""),
        get("/a.html", "br, gzip"),
    );
    assert!(fs.hot(&gz).is_none(), "not cached before a request");
    let first = fs.respond(&gz);
    assert_eq!(first.get_header("Content-Encoding"), Some("gzip"));
    assert_eq!(first.get_header("Vary"), Some("Accept-Encoding"));
    assert_eq!(body_of(first), b"gz one\n");
    let hit = fs.hot(&gz).expect("the sibling is cached");
    assert_eq!(&*hit.body, b"gz one\n");
    assert!(has_field(&hit, "Content-Encoding: gzip") && has_field(&hit, "Vary: Accept-Encoding"));
    let other = fs.hot(&br_first).expect("no br sibling: the gzip one");
    assert!(Arc::ptr_eq(&other, &hit));
    // The identity representation is an entry of its own, with Vary and no coding.
    assert!(fs.hot(&plain).is_none());
    assert_eq!(body_of(fs.respond(&plain)), text.as_bytes());
    let id = fs.hot(&plain).expect("the identity file is cached too");
    assert!(has_field(&id, "Vary: Accept-Encoding") && !has_field(&id, "Content-Encoding: gzip"));
    assert_eq!(&*id.body, text.as_bytes());

    // The sibling rewritten in place (same size): a miss, and the new bytes.
    std::fs::write(&sib, "gz two\n").unwrap();
    assert!(fs.hot(&gz).is_none(), "the sibling changed");
    assert_eq!(body_of(fs.respond(&gz)), b"gz two\n");
    std::thread::sleep(settle);
    assert_eq!(body_of(fs.respond(&gz)), b"gz two\n");
    assert!(fs.hot(&gz).is_some());
    // The identity file rewritten: the sibling's entry is checked against it too.
    std::fs::write(&page, text.replace("hello", "HELLO")).unwrap();
    assert!(fs.hot(&gz).is_none(), "the identity file changed");
    assert_eq!(body_of(fs.respond(&gz)), b"gz two\n");
    // The identity file gone: 404, though its sibling is still there.
    std::thread::sleep(settle);
    assert_eq!(body_of(fs.respond(&gz)), b"gz two\n");
    assert!(fs.hot(&gz).is_some());
    std::fs::remove_file(&page).unwrap();
    assert!(fs.hot(&gz).is_none(), "the identity file is gone");
    assert_eq!(fs.respond(&gz).status, 404);
    std::fs::write(&page, &text).unwrap();
    // The sibling gone: the identity file, still with Vary until the lookups are due.
    std::thread::sleep(settle);
    assert_eq!(body_of(fs.respond(&gz)), b"gz two\n");
    assert!(fs.hot(&gz).is_some());
    std::fs::remove_file(&sib).unwrap();
    assert!(fs.hot(&gz).is_none(), "the sibling is gone");
    let resp = fs.respond(&gz);
    assert_eq!(resp.get_header("Content-Encoding"), None);
    assert_eq!(body_of(resp), text.as_bytes());

    // Compressing on the fly: a client that prefers br (no sibling) gets br made for it, not
    // the cached gzip sibling; a gzip-first client gets the sibling from the cache.
    std::fs::write(&sib, "gz three\n").unwrap();
    std::thread::sleep(settle);
    let mut fs = FileServer::new(&dir).unwrap();
    fs.compress = Some(Arc::new(compress::Cache::new(1 << 20)));
    assert_eq!(body_of(fs.respond(&gz)), b"gz three\n");
    assert!(fs.hot(&gz).is_some());
    assert!(
        fs.hot(&br_first).is_none(),
        "br is compressed on the fly ahead of the sibling"
    );
    let Answer::Later(job) = fs.answer(&br_first) else {
        panic!("br is encoded")
    };
    assert_eq!(
        job(&Cancel::never()).get_header("Content-Encoding"),
        Some("br")
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Issue 23: the hot path answers from memory only while the file is the version it
/// cached; a rewrite (same size, new mtime), a rewrite that puts the old mtime back (the
/// ctime tells) and a rename over it (same size and mtime, new inode) are all misses, and
/// the ordinary path serves the new bytes. A precondition or a range goes the ordinary way.
#[test]
fn the_cache_never_serves_a_changed_file() {
    let dir = std::env::temp_dir().join(format!("bingfa-fs-cache-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("a.txt");
    std::fs::write(&path, "version one\n").unwrap();
    let settle = crate::filecache::SETTLE + std::time::Duration::from_millis(100);
    std::thread::sleep(settle);
    let fs = FileServer::new(&dir).unwrap();
    let req = get("/a.txt", "gzip");
    assert!(fs.hot(&req).is_none(), "not cached before a request");
    assert_eq!(body_of(fs.respond(&req)), b"version one\n");
    let hit = fs.hot(&req).expect("cached by the first request");
    assert_eq!(&*hit.body, b"version one\n");
    let mut cond = get("/a.txt", "");
    cond.headers
        .push(("If-None-Match".into(), hit.etag.to_string()));
    assert!(fs.hot(&cond).is_none(), "a 304 is the ordinary path's");
    assert_eq!(fs.respond(&cond).status, 304);
    let mut ranged = get("/a.txt", "");
    ranged.headers.push(("Range".into(), "bytes=0-1".into()));
    assert!(fs.hot(&ranged).is_none());
    assert_eq!(body_of(fs.respond(&ranged)), b"ve");

    // In place, same size, new mtime.
    std::fs::write(&path, "version two\n").unwrap();
    assert!(fs.hot(&req).is_none(), "rewritten");
    assert_eq!(body_of(fs.respond(&req)), b"version two\n");
    assert!(fs.hot(&req).is_none(), "changed just now: not cached yet");
    std::thread::sleep(settle);
    assert_eq!(body_of(fs.respond(&req)), b"version two\n");
    assert!(fs.hot(&req).is_some());

    // In place with the old mtime put back: size and mtime agree, the ctime does not.
    let mtime = std::fs::metadata(&path).unwrap().modified().unwrap();
    std::fs::write(&path, "version 3-3\n").unwrap();
    File::options()
        .write(true)
        .open(&path)
        .unwrap()
        .set_modified(mtime)
        .unwrap();
    assert!(fs.hot(&req).is_none(), "ctime changed");
    assert_eq!(body_of(fs.respond(&req)), b"version 3-3\n");
    std::thread::sleep(settle);
    assert_eq!(body_of(fs.respond(&req)), b"version 3-3\n");
    let before = fs.hot(&req).expect("cached again");

    // Replaced by a rename: same size, same mtime, another inode.
    let tmp = dir.join("tmp");
    std::fs::write(&tmp, "version four").unwrap();
    File::options()
        .write(true)
        .open(&tmp)
        .unwrap()
        .set_modified(mtime)
        .unwrap();
    std::fs::rename(&tmp, &path).unwrap();
    assert!(fs.hot(&req).is_none(), "a new inode");
    let resp = fs.respond(&req);
    assert_eq!(
        resp.get_header("ETag"),
        Some(&*before.etag),
        "same validator"
    );
    assert_eq!(body_of(resp), b"version four");

    // Gone: the entry goes with it.
    std::fs::remove_file(&path).unwrap();
    assert!(fs.hot(&req).is_none());
    assert_eq!(fs.respond(&req).status, 404);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn types() {
    assert_eq!(content_type(b"a/b.html"), "text/html; charset=utf-8");
    assert_eq!(content_type(b"x.png"), "image/png");
    assert_eq!(content_type(b"noext"), "application/octet-stream");
    // The second lookup of an extension comes from the per-thread table, and agrees.
    assert_eq!(content_type(b"c/d.html"), "text/html; charset=utf-8");
    assert_eq!(content_type(b"x.PNG"), "image/png");
    assert_eq!(
        content_type(b".png"),
        "application/octet-stream",
        "a dot file"
    );
}
