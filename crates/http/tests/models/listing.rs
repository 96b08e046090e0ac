//! Issue 8 item 6, its last part: a huge listing is built off the event loop. One connection
//! asks for a 100,000-entry listing (a `readdir` pass, a sort and ~5 MB of page: a good
//! fraction of a second in a debug build); another connection to the same loop (`--workers 1`)
//! keeps being answered meanwhile. Order is asserted, not time: the small requests, sent after
//! the listing's, are answered completely before the listing's first byte is there. Built on
//! the loop, the listing's response would be written before the loop even read them.

use super::*;

/// Entries of the slow directory, as in the issue.
const MANY: usize = 100_000;

fn name(i: usize) -> String {
    format!("entry-{i:06}-of-a-long-listing")
}

pub(super) fn built_off_the_loop(model: &str, transport: Transport, extra: &[&str]) {
    // One loop for both connections where the model has workers; threadpool's worker serves
    // one connection at a time by design, so it keeps two.
    let workers = if model == "threadpool" { "2" } else { "1" };
    let mut args = extra.to_vec();
    args.extend_from_slice(&["--workers", workers]);
    let s = Server::start_opts(
        model,
        Opts {
            extra: &args,
            tag: Some("many"),
            transport,
            ..Opts::default()
        },
    );
    let dir = s.base.join("root/many");
    std::fs::create_dir(&dir).unwrap();
    for i in 0..MANY {
        std::fs::File::create(dir.join(name(i))).unwrap();
    }

    let mut listing = s.connect();
    listing
        .write_all(b"GET /many/ HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let concurrent: bingfa_net::Model = model.parse().unwrap();
    if concurrent.concurrent() {
        // Let the server read the listing request first (not a timing assertion: if it reads
        // both at once, the listing's request is still the one it sees first).
        std::thread::sleep(Duration::from_millis(50));
        let mut small = s.connect();
        let mut pending = Vec::new();
        for _ in 0..3 {
            small
                .write_all(b"GET /hello.txt HTTP/1.1\r\nHost: x\r\n\r\n")
                .unwrap();
            let (head, body) = read_response(&mut small, &mut pending, false);
            assert!(head.starts_with("HTTP/1.1 200 "), "[{}] {head}", s.model);
            assert_eq!(body, b"hello world\n");
        }
        // Nothing of the listing's response has arrived yet.
        let now = listing.read_now(&mut [0u8; 1]);
        assert!(
            matches!(&now, Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
            "[{}] the listing was answered before small requests sent after it: {now:?} \
             (built on the event loop?)",
            s.model
        );
    }

    // The page itself: every entry, with the length a HEAD announces.
    let mut pending = Vec::new();
    let (head, body) = read_response(&mut listing, &mut pending, false);
    assert!(head.starts_with("HTTP/1.1 200 "), "[{}] {head}", s.model);
    let page = String::from_utf8(body).unwrap();
    assert!(page.ends_with("</ul>\n</body></html>\n"), "[{}]", s.model);
    assert_eq!(page.matches("<li>").count(), MANY + 1, "entries and ../");
    for i in [0, MANY / 2, MANY - 1] {
        let entry = format!("<li><a href=\"./{0}\">{0}</a></li>\n", name(i));
        assert!(page.contains(&entry), "[{}] {entry} is missing", s.model);
    }
    listing
        .write_all(b"HEAD /many/ HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let (head, _) = read_response(&mut listing, &mut pending, true);
    assert_eq!(
        header(&head, "Content-Length"),
        Some(page.len().to_string().as_str()),
        "[{}] HEAD and GET disagree",
        s.model
    );
}
