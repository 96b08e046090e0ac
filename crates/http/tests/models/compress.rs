//! Issue 24 item 1: compression. Precompressed `.br`/`.zst`/`.gz` siblings chosen by the
//! client's codings and q-values (every server), and `--compress`: text types compressed on the
//! fly with each coding, with their own strong ETags, ranges and conditional requests on the
//! encoded body, a changed file never served stale, small and binary files left alone. curl
//! (`--compressed`, which speaks gzip, br and zstd) decodes what a user's client would; the
//! encoded bytes themselves are checked with flate2, brotli and zstd.

use super::*;
use std::io::Read;

/// Decodes `body` as `Content-Encoding: coding`.
fn decode(coding: &str, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    match coding {
        "gzip" => {
            flate2::read::GzDecoder::new(body)
                .read_to_end(&mut out)
                .unwrap();
        }
        "br" => {
            brotli::Decompressor::new(body, 4096)
                .read_to_end(&mut out)
                .unwrap();
        }
        "zstd" => out = zstd::decode_all(body).unwrap(),
        other => panic!("coding {other}"),
    }
    out
}

/// Siblings: brotli first, zstd next, following q-values; each decodes back to the file.
pub(super) fn siblings_by_preference(s: &Server) {
    let css = std::fs::read(s.base.join("root/style.css")).unwrap();
    let url = s.url("/style.css");
    for (accept, want) in [
        ("gzip, deflate, br, zstd", Some("br")),
        ("gzip, zstd", Some("zstd")),
        ("br;q=0.5, zstd", Some("zstd")),
        ("zstd;q=0.2, br;q=0.9", Some("br")),
        ("gzip", None),
        ("identity", None),
    ] {
        let ae = format!("Accept-Encoding: {accept}");
        let (status, head, body) = s.curl_text(&["--compressed", "-H", &ae, &url]);
        assert_eq!(status, 200, "[{}] {accept}", s.model);
        assert_eq!(
            header(&head, "Content-Encoding"),
            want,
            "[{}] {accept}: {head}",
            s.model
        );
        assert_eq!(header(&head, "Vary"), Some("Accept-Encoding"));
        assert_eq!(
            header(&head, "Content-Type"),
            Some("text/css; charset=utf-8")
        );
        assert_eq!(
            body, css,
            "[{}] {accept}: curl decodes it to the file",
            s.model
        );
        if let Some(c) = want {
            let (_, _, raw) = s.curl_text(&["-H", &ae, &url]);
            assert_eq!(decode(c, &raw), css);
            let etag = header(&head, "ETag").unwrap();
            assert!(etag.ends_with(&format!("-{c}\"")), "{etag}");
        }
    }
}

/// `--compress`, under this model and transport: a server of its own.
pub(super) fn on_the_fly(model: &str, transport: Transport, extra: &[&str]) {
    let mut args = extra.to_vec();
    args.push("--compress");
    let s = Server::start_opts(
        model,
        Opts {
            extra: &args,
            tag: Some("compress"),
            transport,
            ..Opts::default()
        },
    );
    let root = s.base.join("root");
    let js = "function hello(name) { return 'compress me, ' + name; }\n".repeat(60);
    std::fs::write(root.join("app.js"), &js).unwrap();
    let json = format!("[{}0]\n", "{\"key\": \"value\", \"n\": 12345},".repeat(80));
    std::fs::write(root.join("data.json"), &json).unwrap();
    let url = s.url("/app.js");

    // Every coding, as curl decodes it and as the bytes are.
    for coding in ["br", "zstd", "gzip"] {
        let ae = format!("Accept-Encoding: {coding}");
        let (status, head, body) = s.curl_text(&["--compressed", "-H", &ae, &url]);
        assert_eq!(status, 200, "[{}] {coding}: {head}", s.model);
        assert_eq!(header(&head, "Content-Encoding"), Some(coding), "{head}");
        assert_eq!(header(&head, "Vary"), Some("Accept-Encoding"));
        assert_eq!(
            header(&head, "Content-Type"),
            Some("text/javascript; charset=utf-8")
        );
        assert_eq!(header(&head, "Cache-Control"), Some("max-age=60"));
        let etag = header(&head, "ETag").unwrap();
        assert!(etag.ends_with(&format!("+{coding}\"")), "{etag}");
        assert_eq!(
            body,
            js.as_bytes(),
            "[{}] {coding}: curl decodes it",
            s.model
        );
        // The second request (from the cache) is the same body and tag.
        let (status, head2, raw) = s.curl_text(&["-H", &ae, &url]);
        assert_eq!(status, 200);
        assert_eq!(header(&head2, "ETag"), Some(etag));
        assert_eq!(
            header(&head2, "Content-Length"),
            Some(raw.len().to_string().as_str())
        );
        assert!(raw.len() < js.len() / 4, "{coding}: {} bytes", raw.len());
        assert_eq!(decode(coding, &raw), js.as_bytes());
    }
    // The client's preference: br first among equals, q-values over the server's order.
    for (accept, want) in [
        ("gzip, deflate, br, zstd", "br"),
        ("gzip, zstd", "zstd"),
        ("br;q=0.5, gzip", "gzip"),
        ("*", "br"),
        ("br;q=0, *", "zstd"),
    ] {
        let ae = format!("Accept-Encoding: {accept}");
        let (_, head, _) = s.curl_text(&["-H", &ae, &url]);
        assert_eq!(header(&head, "Content-Encoding"), Some(want), "{accept}");
    }
    let (_, head, body) = s.curl_text(&["--compressed", &s.url("/data.json")]);
    assert_eq!(header(&head, "Content-Encoding"), Some("br"), "{head}");
    assert_eq!(body, json.as_bytes());

    // No Accept-Encoding: the file as it is, still varying.
    let (_, head, body) = s.curl_text(&[&url]);
    assert_eq!(header(&head, "Content-Encoding"), None);
    assert_eq!(header(&head, "Vary"), Some("Accept-Encoding"));
    assert_eq!(body, js.as_bytes());
    let identity_etag = header(&head, "ETag").unwrap().to_string();

    // HEAD: the encoded length, no body.
    let gz = ["-H", "Accept-Encoding: gzip"];
    let (_, _, full) = s.curl_text(&[gz[0], gz[1], &url]);
    // On one connection: a HEAD's bytes are its head only, or the GET after it would be off.
    let mut c = s.connect();
    c.write_all(
        b"HEAD /app.js HTTP/1.1\r\nHost: x\r\nAccept-Encoding: gzip\r\n\r\n\
          GET /app.js HTTP/1.1\r\nHost: x\r\nAccept-Encoding: gzip\r\n\r\n",
    )
    .unwrap();
    let mut pending = Vec::new();
    let (head, _) = read_response(&mut c, &mut pending, true);
    assert!(head.starts_with("HTTP/1.1 200 "), "[{}] {head}", s.model);
    assert_eq!(header(&head, "Content-Encoding"), Some("gzip"));
    assert_eq!(
        header(&head, "Content-Length"),
        Some(full.len().to_string().as_str()),
        "[{}] HEAD: {head}",
        s.model
    );
    let etag = header(&head, "ETag").unwrap().to_string();
    let (head, body) = read_response(&mut c, &mut pending, false);
    assert!(head.starts_with("HTTP/1.1 200 "), "[{}] {head}", s.model);
    assert_eq!(body, full);
    // Closed, so that `iterative` goes on to the next connection.
    drop(c);

    // Ranges of the encoded body.
    let (status, head, part) = s.curl_text(&[gz[0], gz[1], "-r", "10-49", &url]);
    assert_eq!(status, 206, "[{}] {head}", s.model);
    assert_eq!(
        header(&head, "Content-Range"),
        Some(format!("bytes 10-49/{}", full.len()).as_str())
    );
    assert_eq!(header(&head, "Content-Encoding"), Some("gzip"));
    assert_eq!(part, &full[10..50]);
    let (status, head, body) = s.curl_text(&[gz[0], gz[1], "-r", "0-1,20-29", &url]);
    assert_eq!(status, 206);
    let ct = header(&head, "Content-Type").unwrap();
    assert!(ct.starts_with("multipart/byteranges; boundary="), "{ct}");
    let body = String::from_utf8_lossy(&body);
    assert!(body.contains(&format!("Content-Range: bytes 20-29/{}", full.len())));
    let (status, head, _) = s.curl_text(&[gz[0], gz[1], "-r", "99999-", &url]);
    assert_eq!(status, 416);
    assert_eq!(
        header(&head, "Content-Range"),
        Some(format!("bytes */{}", full.len()).as_str())
    );
    assert_eq!(header(&head, "Vary"), Some("Accept-Encoding"));
    // If-Range with the encoded tag holds; with the identity file's, the whole body.
    let ir = format!("If-Range: {etag}");
    let (status, _, part) = s.curl_text(&[gz[0], gz[1], "-H", &ir, "-r", "0-9", &url]);
    assert_eq!((status, part.as_slice()), (206, &full[..10]));
    let ir = format!("If-Range: {identity_etag}");
    let (status, _, all) = s.curl_text(&[gz[0], gz[1], "-H", &ir, "-r", "0-9", &url]);
    assert_eq!((status, all), (200, full.clone()));

    // Conditional requests on the encoded tag.
    let inm = format!("If-None-Match: {etag}");
    let (status, head, body) = s.curl_text(&[gz[0], gz[1], "-H", &inm, &url]);
    assert_eq!(status, 304, "[{}] {head}", s.model);
    assert_eq!(header(&head, "ETag"), Some(etag.as_str()));
    assert_eq!(header(&head, "Vary"), Some("Accept-Encoding"));
    assert_eq!(header(&head, "Content-Encoding"), None);
    assert!(body.is_empty());
    // Another variant's tag doesn't match this one.
    let inm_id = format!("If-None-Match: {identity_etag}");
    let (status, _, _) = s.curl_text(&[gz[0], gz[1], "-H", &inm_id, &url]);
    assert_eq!(status, 200);
    let lm = header(&head, "Last-Modified").unwrap().to_string();
    let ims = format!("If-Modified-Since: {lm}");
    let (status, _, _) = s.curl_text(&[gz[0], gz[1], "-H", &ims, &url]);
    assert_eq!(status, 304);
    let im = "If-Match: \"nope\"";
    let (status, head, _) = s.curl_text(&[gz[0], gz[1], "-H", im, &url]);
    assert_eq!(
        (status, header(&head, "Vary")),
        (412, Some("Accept-Encoding"))
    );

    // A changed file is compressed again, never served from the old version.
    let js2 = "const changed = 'a new version of the script';\n".repeat(90);
    std::fs::write(root.join("app.js"), &js2).unwrap();
    for coding in ["gzip", "br", "zstd"] {
        let ae = format!("Accept-Encoding: {coding}");
        let (_, head, body) = s.curl_text(&["--compressed", "-H", &ae, &url]);
        assert_eq!(body, js2.as_bytes(), "[{}] {coding}: stale", s.model);
        assert_ne!(header(&head, "ETag"), Some(etag.as_str()));
    }
    let (status, _, body) = s.curl_text(&[gz[0], gz[1], "-H", &inm, &url]);
    assert_eq!(status, 200, "the old tag no longer matches");
    assert_eq!(decode("gzip", &body), js2.as_bytes());

    // A precompressed sibling is preferred for its coding; other codings are made on the fly.
    let page = std::fs::read(root.join("page.html")).unwrap();
    let (_, head, _) = s.curl_text(&[gz[0], gz[1], &s.url("/page.html")]);
    let tag = header(&head, "ETag").unwrap();
    assert!(tag.ends_with("-gzip\""), "the .gz sibling: {tag}");
    let (_, head, body) = s.curl_text(&[
        "--compressed",
        "-H",
        "Accept-Encoding: zstd",
        &s.url("/page.html"),
    ]);
    assert_eq!(header(&head, "Content-Encoding"), Some("zstd"));
    assert_eq!(body, page);

    // Small and binary files are sent as they are; a small text file still varies.
    let all = ["-H", "Accept-Encoding: gzip, br, zstd"];
    let (_, head, body) = s.curl_text(&[all[0], all[1], &s.url("/hello.txt")]);
    assert_eq!(header(&head, "Content-Encoding"), None, "under the floor");
    assert_eq!(header(&head, "Vary"), Some("Accept-Encoding"));
    assert_eq!(body, b"hello world\n");
    let (_, head, body) = s.curl_text(&[all[0], all[1], &s.url("/big.bin")]);
    assert_eq!(header(&head, "Content-Encoding"), None, "binary");
    assert_eq!(header(&head, "Vary"), None);
    assert_eq!(body.len(), 3 * 1024 * 1024);
    std::fs::write(root.join("pic.png"), vec![7u8; 8192]).unwrap();
    let (_, head, _) = s.curl_text(&[all[0], all[1], &s.url("/pic.png")]);
    assert_eq!(header(&head, "Content-Encoding"), None, "image/png");
}
