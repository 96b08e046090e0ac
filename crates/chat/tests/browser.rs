//! End to end in headless Chromium against the real room (what `bingfa chat serve --web`
//! runs, `common::TestServer::start_room`): a tab whose name is taken is asked again and joins
//! under another; two browser members and one TCP member exchange messages with exact lines; the
//! page's member list (welcome line, joins, `/who`, leaves), an admin-socket announcement, an
//! unknown command and `/quit` follow the room's exact lines, and one tab's whole log is checked
//! line by line and styled at a phone-width window. Names and messages sit in `<bdi>` elements
//! whose computed `unicode-bidi` is `isolate`, a fullwidth `?name=` joins as its NFKC form, and a
//! name with U+FEFF is refused on the page in the room's words. The page also works over
//! `wss://` (the web face behind TLS), and a page from another origin cannot join. Chromium is
//! driven over the DevTools protocol with the crate's own WebSocket client. Skips (loudly) only
//! when no `chromium` is installed; `.ci/run` installs it.

mod common;

use bingfa_chat::ws::Event;
use bingfa_net::Model;
use common::{TestServer, Ws};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

#[test]
fn server_main() {
    common::server_main();
}

/// No browser: a failure where every outside tool is required (BINGFA_REQUIRE_TOOLS=1, set by
/// scripts/test.sh and .ci/run, or CI), else a loud skip.
fn no_chromium(test: &str) {
    let set = |k: &str| std::env::var(k).is_ok_and(|v| !v.is_empty() && v != "0" && v != "false");
    assert!(
        !set("BINGFA_REQUIRE_TOOLS") && !set("CI"),
        "{test}: chromium is required but not on PATH (apt-get install chromium)"
    );
    println!("SKIPPED {test}: no chromium on PATH");
    eprintln!("SKIPPED {test}: no chromium on PATH (apt-get install chromium)");
}

fn chromium_path() -> Option<String> {
    if let Ok(p) = std::env::var("BINGFA_CHROMIUM") {
        return Some(p);
    }
    ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .find_map(|name| {
            std::env::var_os("PATH").and_then(|paths| {
                std::env::split_paths(&paths)
                    .map(|d| d.join(name))
                    .find(|p| p.is_file())
                    .map(|p| p.to_string_lossy().into_owned())
            })
        })
}

/// Chromium and its helper processes, in their own process group, killed on drop.
struct Browser {
    child: Child,
    devtools: SocketAddr,
    profile: std::path::PathBuf,
}

impl Browser {
    fn launch(exe: &str, url: &str) -> Browser {
        Browser::launch_with(exe, url, &[])
    }

    fn launch_with(exe: &str, url: &str, extra: &[String]) -> Browser {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let profile =
            std::env::temp_dir().join(format!("bingfa-chromium-{}-{n}", std::process::id()));
        let mut child = Command::new(exe)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-dev-shm-usage",
                "--no-first-run",
                "--window-size=390,844", // a phone-width screen
                "--remote-debugging-port=0",
                "--remote-debugging-address=127.0.0.1",
            ])
            .arg(format!("--user-data-dir={}", profile.display()))
            .args(extra)
            .arg(url)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .process_group(0)
            .spawn()
            .expect("start chromium");
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if let Some(rest) = line.strip_prefix("DevTools listening on ws://") {
                    let _ = tx.send(rest.split('/').next().unwrap().to_string());
                }
            }
        });
        let mut b = Browser {
            child,
            devtools: "0.0.0.0:0".parse().unwrap(),
            profile,
        };
        let addr = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("chromium did not print its DevTools address");
        b.devtools = addr.parse().unwrap();
        b
    }

    /// A DevTools HTTP endpoint (`/json/...`) as JSON.
    fn json(&self, method: &str, path: &str) -> Value {
        // DevTools keeps the connection open whatever we ask: read by Content-Length.
        let mut s = common::connect(self.devtools);
        write!(
            s,
            "{method} {path} HTTP/1.1\r\nHost: {}\r\n\r\n",
            self.devtools
        )
        .unwrap();
        let mut r = BufReader::new(s);
        let mut len = 0;
        loop {
            let line = tcp_line(&mut r);
            if line == "\r\n" {
                break;
            }
            if let Some((k, v)) = line.split_once(':') {
                if k.eq_ignore_ascii_case("content-length") {
                    len = v.trim().parse().unwrap();
                }
            }
        }
        let mut body = vec![0; len];
        r.read_exact(&mut body).unwrap();
        let body = String::from_utf8(body).unwrap();
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"))
    }

    /// Attach to the page whose URL contains `needle`, opening it in a new tab if `open`.
    fn page(&self, url: &str, open: bool) -> Page {
        let target = if open {
            self.json("PUT", &format!("/json/new?{url}"))
        } else {
            let end = Instant::now() + Duration::from_secs(30);
            loop {
                let list = self.json("GET", "/json/list");
                let found =
                    list.as_array().unwrap().iter().find(|t| {
                        t["type"] == "page" && t["url"].as_str().is_some_and(|u| u == url)
                    });
                if let Some(t) = found {
                    break t.clone();
                }
                assert!(Instant::now() < end, "no page for {url}: {list}");
                std::thread::sleep(Duration::from_millis(100));
            }
        };
        let id = target["id"].as_str().unwrap();
        let (ws, head) = Ws::connect_to(self.devtools, &format!("/devtools/page/{id}"));
        assert!(head.starts_with("HTTP/1.1 101"), "{head}");
        Page { ws, next_id: 1 }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // SAFETY: the group was created for this child (process_group(0)).
        unsafe { libc::kill(-(self.child.id() as i32), libc::SIGKILL) };
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

/// One tab, over CDP.
struct Page {
    ws: Ws,
    next_id: u64,
}

impl Page {
    /// Evaluate a JavaScript expression in the page; its value as JSON.
    fn eval(&mut self, expr: &str) -> Value {
        self.try_eval(expr)
            .unwrap_or_else(|e| panic!("{expr}: {e}"))
    }

    /// Evaluate; a JavaScript exception is an `Err` (e.g. the page is still loading).
    fn try_eval(&mut self, expr: &str) -> Result<Value, String> {
        let id = self.next_id;
        self.next_id += 1;
        let call = json!({"id": id, "method": "Runtime.evaluate",
                          "params": {"expression": expr, "returnByValue": true}});
        self.ws.send(&call.to_string());
        loop {
            match self.ws.next() {
                Some(Event::Text(t)) => {
                    let v: Value = serde_json::from_str(&t).unwrap();
                    if v["id"] == id {
                        if !v["result"]["exceptionDetails"].is_null() {
                            return Err(v.to_string());
                        }
                        return Ok(v["result"]["result"]["value"].clone());
                    }
                }
                Some(Event::Ping(_)) | Some(Event::Pong(_)) => {}
                other => panic!("DevTools connection: {other:?}"),
            }
        }
    }

    /// Wait (bounded) until `expr` evaluates to something satisfying `ok`.
    fn wait(&mut self, what: &str, expr: &str, ok: impl Fn(&Value) -> bool) -> Value {
        let end = Instant::now() + Duration::from_secs(20);
        loop {
            let v = self.try_eval(expr).unwrap_or(Value::Null);
            if ok(&v) {
                return v;
            }
            assert!(
                Instant::now() < end,
                "timed out waiting for {what}; last value {v}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn members(&mut self, want: &str) {
        let expr =
            "[...document.querySelectorAll('#members li')].map(l => l.textContent).join(',')";
        self.wait(&format!("members {want}"), expr, |v| v == want);
    }

    /// Wait for a log line of class `cls` with exactly `text`.
    fn log_has(&mut self, cls: &str, text: &str) {
        let expr = format!(
            "[...document.querySelectorAll('#log li.{cls}')].some(l => l.textContent === {})",
            json!(text)
        );
        self.wait(&format!("{cls} line {text:?}"), &expr, |v| v == true);
    }

    fn say(&mut self, text: &str) {
        let expr = format!(
            "(() => {{ const t = document.getElementById('text'); t.value = {};
               document.getElementById('send').requestSubmit(); return t.value; }})()",
            json!(text)
        );
        assert_eq!(self.eval(&expr), "", "the input is cleared after sending");
    }
}

fn tcp_line(r: &mut BufReader<std::net::TcpStream>) -> String {
    let mut s = String::new();
    r.read_line(&mut s)
        .expect("a line from the room (timed out?)");
    s
}

#[test]
fn two_browsers_and_a_terminal_share_the_room() {
    let Some(exe) = chromium_path() else {
        no_chromium("two_browsers_and_a_terminal_share_the_room");
        return;
    };
    let srv = TestServer::start_room(Model::Epoll);
    let alice_url = format!("http://{}/?name=alice", srv.web);
    // bob first asks for a name that is taken (case-insensitively): the page asks again.
    let bob_url = format!("http://{}/?name=ALICE", srv.web);
    let browser = Browser::launch(&exe, &alice_url);
    let mut alice = browser.page(&alice_url, false);
    alice.wait("alice joined", ME, |v| v == "as alice");
    alice.members("alice");
    alice.log_has("notice", "you are alice; online: alice");

    let mut bob = browser.page(&bob_url, true);
    bob.log_has("error", "name taken; try another name");
    bob.wait("the name box shown again", NAMEBOX_SHOWN, |v| v == true);
    bob.wait(
        "the refusal next to the name box",
        "document.getElementById('nameerr').textContent",
        |v| v == "name taken; try another name",
    );
    assert_eq!(bob.eval(ME), "", "not joined yet");
    bob.eval(
        "(() => { document.getElementById('name').value = 'bob';
           document.getElementById('nameform').requestSubmit(); })()",
    );
    bob.wait("bob joined", ME, |v| v == "as bob");
    bob.wait("the name box hidden", NAMEBOX_SHOWN, |v| v == false);
    // The real welcome line lists everyone already online.
    bob.members("alice,bob");
    alice.log_has("join", "bob joined");
    alice.members("alice,bob");

    // carol, on a plain TCP connection to the same room.
    let tcp = common::connect(srv.chat);
    let mut carol = BufReader::new(tcp.try_clone().unwrap());
    let mut carol_w = tcp;
    assert_eq!(
        tcp_line(&mut carol),
        "* welcome to the bingfa chat room; what is your name?\n"
    );
    carol_w.write_all(b"carol\n").unwrap();
    assert_eq!(
        tcp_line(&mut carol),
        "* you are carol; online: alice, bob, carol\n"
    );
    alice.members("alice,bob,carol");
    bob.members("alice,bob,carol");
    alice.log_has("join", "carol joined");

    alice.say("hi from alice");
    alice.log_has("mine", "alice: hi from alice");
    bob.log_has("msg", "alice: hi from alice");
    assert_eq!(tcp_line(&mut carol), "alice: hi from alice\n");
    bob.say("hi from bob");
    alice.log_has("msg", "bob: hi from bob");
    assert_eq!(tcp_line(&mut carol), "bob: hi from bob\n");

    carol_w.write_all("hello browsers ✓\n".as_bytes()).unwrap();
    alice.log_has("msg", "carol: hello browsers ✓");
    bob.log_has("msg", "carol: hello browsers ✓");

    bob.say("/nope");
    bob.log_has("error", "unknown command /nope (try /help)");
    // /who replaces the list with the room's.
    bob.say("/who");
    bob.log_has("notice", "online (3): alice, bob, carol");
    bob.members("alice,bob,carol");
    srv.announce("maintenance at noon");
    alice.log_has("admin", "Announcement: maintenance at noon");
    bob.log_has("admin", "Announcement: maintenance at noon");
    assert_eq!(tcp_line(&mut carol), "* admin: maintenance at noon\n");

    // carol leaves; bob quits from the page (and is not reconnected).
    drop(carol_w);
    drop(carol);
    alice.log_has("leave", "carol left");
    alice.members("alice,bob");
    bob.say("/quit");
    bob.log_has("notice", "bye");
    alice.log_has("leave", "bob left");
    alice.members("alice");
    bob.wait(
        "bob's status",
        "document.getElementById('status').textContent",
        |v| v == "left the room",
    );
    // Exactly the lines the room sent, in its order, in alice's log.
    let log = alice.eval(
        "[...document.querySelectorAll('#log li')].map(l => l.className + '|' + l.textContent)",
    );
    assert_eq!(
        log,
        json!([
            "notice|welcome to the bingfa chat room; what is your name?",
            "notice|you are alice; online: alice",
            "join|bob joined",
            "join|carol joined",
            "msg mine|alice: hi from alice",
            "msg|bob: hi from bob",
            "msg|carol: hello browsers ✓",
            "admin|Announcement: maintenance at noon",
            "leave|carol left",
            "leave|bob left",
        ])
    );

    if let Ok(path) = std::env::var("BINGFA_SCREENSHOT") {
        let shot = alice.eval_screenshot();
        std::fs::write(path, shot).unwrap();
    }
}

/// The page over https:// and its WebSocket over wss://, the certificate trusted by its public
/// key pin (as a user would after checking the fingerprint `--tls-self-signed` prints).
#[test]
fn the_page_over_wss() {
    let Some(exe) = chromium_path() else {
        no_chromium("the_page_over_wss");
        return;
    };
    let srv = TestServer::start_room_tls(Model::Epoll);
    let pin = srv.tls_pin.clone().expect("the server's certificate pin");
    let url = format!("https://localhost:{}/?name=alice", srv.web.port());
    let trust = [
        format!("--ignore-certificate-errors-spki-list={pin}"),
        format!(
            "--host-resolver-rules=MAP localhost 127.0.0.1:{}",
            srv.web.port()
        ),
    ];
    let browser = Browser::launch_with(&exe, &url, &trust);
    let mut alice = browser.page(&url, false);
    alice.wait("alice joined", ME, |v| v == "as alice");
    assert_eq!(alice.eval("ws.url.slice(0, 6)"), "wss://");
    let tcp = common::connect(srv.chat);
    let mut carol = BufReader::new(tcp.try_clone().unwrap());
    let mut carol_w = tcp;
    tcp_line(&mut carol);
    carol_w.write_all(b"carol\n").unwrap();
    assert_eq!(
        tcp_line(&mut carol),
        "* you are carol; online: alice, carol\n"
    );
    alice.say("hi over tls");
    assert_eq!(tcp_line(&mut carol), "alice: hi over tls\n");
    carol_w.write_all(b"hi back\n").unwrap();
    alice.log_has("msg", "carol: hi back");
}

/// Names and messages in a right-to-left script are isolated (each in a `<bdi>`), so none
/// can run into the text beside it; and the page's name rule is the room's: it sends a name
/// in the room's form (NFKC: fullwidth `ａｌｉｃｅ` is `alice`), shows it as the room does, and
/// refuses what the room would (a name with U+FEFF, which once joined but never showed).
#[test]
fn names_and_messages_are_isolated_and_the_name_rule_is_the_rooms() {
    let Some(exe) = chromium_path() else {
        no_chromium("names_and_messages_are_isolated");
        return;
    };
    let srv = TestServer::start_room(Model::Epoll);
    // ?name=ａｌｉｃｅ (fullwidth), percent-encoded.
    let url = format!(
        "http://{}/?name=%EF%BD%81%EF%BD%8C%EF%BD%89%EF%BD%83%EF%BD%85",
        srv.web
    );
    let browser = Browser::launch(&exe, &url);
    let mut alice = browser.page(&url, false);
    alice.wait("alice joined", ME, |v| v == "as alice");
    alice.members("alice");

    let tcp = common::connect(srv.chat);
    let mut heb = BufReader::new(tcp.try_clone().unwrap());
    let mut heb_w = tcp;
    tcp_line(&mut heb);
    heb_w.write_all("אבג\n".as_bytes()).unwrap();
    assert_eq!(tcp_line(&mut heb), "* you are אבג; online: alice, אבג\n");
    heb_w.write_all("hello 1 2 3\n".as_bytes()).unwrap();
    alice.log_has("msg", "אבג: hello 1 2 3");
    alice.log_has("join", "אבג joined");
    alice.members("alice,אבג");
    let isolated = |page: &mut Page, selector: &str| {
        page.eval(&format!(
            "[...document.querySelectorAll({})].map(b => getComputedStyle(b).unicodeBidi + '|' + b.textContent)",
            json!(selector)
        ))
    };
    assert_eq!(
        isolated(&mut alice, "#log li.msg bdi"),
        json!(["isolate|אבג", "isolate|hello 1 2 3"])
    );
    assert_eq!(
        isolated(&mut alice, "#log li.join bdi"),
        json!(["isolate|אבג"])
    );
    assert_eq!(
        isolated(&mut alice, "#members li bdi"),
        json!(["isolate|alice", "isolate|אבג"])
    );
    alice.say("typed by alice");
    assert_eq!(tcp_line(&mut heb), "alice: typed by alice\n");

    // A name the room refuses is refused on the page, with the room's words.
    let bad = format!("http://{}/?name=bo%EF%BB%BFb", srv.web);
    let mut bob = browser.page(&bad, true);
    bob.wait(
        "the refusal next to the name box",
        "document.getElementById('nameerr').textContent",
        |v| v == "a name is letters, digits and _ - . only",
    );
    assert_eq!(bob.eval(ME), "", "not joined");
    alice.members("alice,אבג");
}

/// A page from another origin (the same host, another port: a site the user has open in the
/// same browser) tries to open the room's WebSocket: the upgrade is refused (403), so the page
/// never becomes a member, reads nothing and posts nothing. The room's own page, under its
/// Content-Security-Policy, still works (the tests above).
#[test]
fn a_page_from_another_origin_cannot_join() {
    let Some(exe) = chromium_path() else {
        no_chromium("a_page_from_another_origin_cannot_join");
        return;
    };
    let srv = TestServer::start_room(Model::Epoll);
    let evil = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let evil_url = format!("http://{}/", evil.local_addr().unwrap());
    let page = format!(
        "<!doctype html><title>elsewhere</title><script>
         window.result = 'pending';
         const ws = new WebSocket('ws://{}/ws');
         ws.onopen = () => {{ window.result = 'open'; ws.send('mallory'); }};
         ws.onmessage = (e) => {{ window.result = 'read: ' + e.data; }};
         ws.onclose = (e) => {{ if (window.result === 'pending') window.result = 'closed ' + e.code; }};
         </script>",
        srv.web
    );
    std::thread::spawn(move || {
        for s in evil.incoming() {
            let Ok(mut s) = s else { break };
            let mut head = Vec::new();
            let mut b = [0u8; 1024];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                match s.read(&mut b) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => head.extend_from_slice(&b[..n]),
                }
            }
            let _ = write!(
                s,
                "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: {}\r\n\
                 Connection: close\r\n\r\n{page}",
                page.len()
            );
        }
    });
    let browser = Browser::launch(&exe, &evil_url);
    let mut p = browser.page(&evil_url, false);
    let result = p.wait("the cross-origin attempt to end", "window.result", |v| {
        v.as_str().is_some_and(|r| r != "pending")
    });
    assert_eq!(result, "closed 1006", "the upgrade must fail");
    // Nobody joined: a member arriving now finds the room empty.
    let tcp = common::connect(srv.chat);
    let mut carol = BufReader::new(tcp.try_clone().unwrap());
    let mut carol_w = tcp;
    tcp_line(&mut carol);
    carol_w.write_all(b"carol\n").unwrap();
    assert_eq!(tcp_line(&mut carol), "* you are carol; online: carol\n");
    // The room's own page, under its policy: its inline script runs (it joins) and its inline
    // style applies (both allowed by their hashes).
    let own = format!("http://{}/?name=dave", srv.web);
    let mut d = browser.page(&own, true);
    d.wait("dave joined", ME, |v| v == "as dave");
    assert_eq!(
        d.eval("getComputedStyle(document.getElementById('log')).overflowY"),
        "auto"
    );
    assert_eq!(tcp_line(&mut carol), "* dave joined\n");
}

/// The page's "as NAME" label: set once the room accepted the name.
const ME: &str = "document.getElementById('me').textContent";
const NAMEBOX_SHOWN: &str = "!document.getElementById('namebox').hidden";

impl Page {
    /// A PNG of the page (for a person to look at: `BINGFA_SCREENSHOT=/tmp/page.png`).
    fn eval_screenshot(&mut self) -> Vec<u8> {
        use base64::Engine as _;
        let id = self.next_id;
        self.next_id += 1;
        self.ws
            .send(&json!({"id": id, "method": "Page.captureScreenshot"}).to_string());
        loop {
            if let Some(Event::Text(t)) = self.ws.next() {
                let v: Value = serde_json::from_str(&t).unwrap();
                if v["id"] == id {
                    let data = v["result"]["data"].as_str().unwrap();
                    return base64::engine::general_purpose::STANDARD
                        .decode(data)
                        .unwrap();
                }
            }
        }
    }
}
