//! The file server's own tests: compression once per version, the small-file cache never
//! serving a changed file, content types.

use super::*;

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
