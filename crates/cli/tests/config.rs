//! The configuration file (`--config FILE`, `--print-config`): the shipped example loads and
//! names every flag; flags win over the file, a service's section over the top level; an
//! unknown key or a bad value stops the command with exit 2, the file, its line and the key;
//! the printed configuration loads back, elides secrets, and says where relative paths lead.

use bingfa_testkit::ServerProc;
use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_bingfa");
const READERS: [&[&str]; 4] = [
    &["serve"],
    &["http", "serve"],
    &["chat", "serve"],
    &["ftp", "serve"],
];

/// A private directory for one test, removed at the end.
struct Dir(PathBuf);

impl Dir {
    fn new(name: &str) -> Dir {
        let d = std::env::temp_dir().join(format!("bingfa-config-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        Dir(d)
    }
    fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.0.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn example() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../dist/bingfa.toml")
}

fn run(args: &[&str], cwd: Option<&Path>) -> Output {
    let mut c = Command::new(BIN);
    c.args(args).stdin(Stdio::null());
    if let Some(d) = cwd {
        c.current_dir(d);
    }
    c.output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// `--print-config` of `cmd` with `extra` flags: its output, asserting exit 0.
fn print_config(cmd: &[&str], extra: &[&str]) -> String {
    let mut args: Vec<&str> = cmd.to_vec();
    args.extend(extra);
    args.push("--print-config");
    let out = run(&args, None);
    assert!(
        out.status.success(),
        "{args:?}: {}\n{}",
        out.status,
        text(&out.stderr)
    );
    text(&out.stdout)
}

/// The `(section, key)` pairs a file names, set (`key = v`) or commented out (`# key = v`,
/// `# key =`).
fn keys_named(toml: &str) -> BTreeSet<(String, String)> {
    let mut section = String::new();
    let mut out = BTreeSet::new();
    for line in toml.lines() {
        let l = line.trim();
        if let Some(s) = l.strip_prefix('[').and_then(|s| s.strip_suffix(']')) {
            section = s.to_string();
            continue;
        }
        let l = l.strip_prefix('#').map_or(l, str::trim_start);
        if let Some((k, _)) = l.split_once('=') {
            let k = k.trim();
            if !k.is_empty()
                && k.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
            {
                out.insert((section.clone(), k.to_string()));
            }
        }
    }
    out
}

/// The example with every `# key = value` line made a setting.
fn example_all_set() -> String {
    std::fs::read_to_string(example())
        .unwrap()
        .lines()
        .map(|l| match l.strip_prefix("# ") {
            Some(rest) if keys_named(rest).len() == 1 && rest.contains(" = ") => rest,
            _ => l,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn the_example_loads_as_shipped_and_with_every_setting_made() {
    let dir = Dir::new("example");
    let all = dir.write("all.toml", &example_all_set());
    let ex = example();
    for cmd in READERS {
        print_config(cmd, &["--config", ex.to_str().unwrap()]);
        let printed = print_config(cmd, &["--config", all.to_str().unwrap()]);
        // The settings took: a value only the example gives shows through.
        if cmd[0] == "serve" {
            // What serve would give each service parses as that service's command line.
            for s in ["[http]", "[chat]", "[ftp]"] {
                assert!(printed.contains(&format!("\n{s}\n")), "{s} in {printed}");
            }
            assert!(!printed.contains("is not shown"), "{printed}");
        }
        match cmd[0] {
            "serve" | "http" => assert!(printed.contains("X-Frame-Options: DENY"), "{printed}"),
            "chat" => assert!(printed.contains("https://example.org"), "{printed}"),
            _ => assert!(printed.contains("50000-50100"), "{printed}"),
        }
    }
}

#[test]
fn every_flag_of_every_service_is_in_the_example() {
    let ex = keys_named(&std::fs::read_to_string(example()).unwrap());
    for cmd in READERS {
        let all = keys_named(&print_config(cmd, &[]));
        assert!(all.len() > 10, "{cmd:?}: {all:?}");
        let missing: Vec<_> = all.difference(&ex).collect();
        assert!(
            missing.is_empty(),
            "dist/bingfa.toml lacks these keys of `bingfa {}`: {missing:?}",
            cmd.join(" ")
        );
    }
}

fn get(addr: SocketAddr, path: &str) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

fn start(args: &[&str]) -> ServerProc {
    let mut c = Command::new(BIN);
    c.args(args).stdin(Stdio::null()).stderr(Stdio::null());
    ServerProc::spawn(c)
}

/// The value of response header `name` (each occurrence).
fn header(resp: &str, name: &str) -> Vec<String> {
    let head = resp.split("\r\n\r\n").next().unwrap();
    head.lines()
        .filter_map(|l| l.split_once(": "))
        .filter(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.to_string())
        .collect()
}

#[test]
fn a_service_reads_its_section_and_its_flags_win() {
    let dir = Dir::new("http");
    std::fs::create_dir(dir.0.join("site")).unwrap();
    std::fs::write(dir.0.join("site/hello.txt"), "from the file's directory\n").unwrap();
    let f = dir.write(
        "b.toml",
        "model = \"thread\"\n[http]\nbind = \"127.0.0.1:0\"\nroot = \"site\"\n\
         header = [\"X-From: file\", \"X-Also: file\"]\nlisting = \"off\"\n",
    );
    let f = f.to_str().unwrap();
    // From another directory: `root = "site"` is the file's neighbour.
    let mut s =
        start(&["http", "serve", "--config", f]).listening_on(&["http"], Duration::from_secs(30));
    let r = get(s.addr("http"), "/hello.txt");
    assert!(r.starts_with("HTTP/1.1 200"), "{r}");
    assert!(r.ends_with("from the file's directory\n"), "{r}");
    assert_eq!(header(&r, "X-From"), ["file"]);
    assert_eq!(header(&r, "X-Also"), ["file"]);
    assert!(
        get(s.addr("http"), "/").starts_with("HTTP/1.1 403"),
        "listing = off"
    );
    s.stop();
    // A flag replaces the file's value, a repeated one the whole list.
    let mut s = start(&[
        "http",
        "serve",
        "--config",
        f,
        "--header",
        "X-From: flag",
        "--listing",
        "on",
    ])
    .listening_on(&["http"], Duration::from_secs(30));
    let r = get(s.addr("http"), "/hello.txt");
    assert_eq!(header(&r, "X-From"), ["flag"]);
    assert!(header(&r, "X-Also").is_empty(), "{r}");
    assert!(get(s.addr("http"), "/").starts_with("HTTP/1.1 200"));
    s.stop();
}

#[test]
fn under_serve_a_section_wins_over_the_top_level_and_a_flag_over_both() {
    let dir = Dir::new("serve");
    let f = dir.write(
        "s.toml",
        "http_bind = \"127.0.0.1:0\"\nchat_bind = \"127.0.0.1:0\"\nweb_bind = \"127.0.0.1:0\"\n\
         ftp_bind = \"127.0.0.1:0\"\nhttp_header = [\"X-Level: top\"]\n\
         [http]\nheader = [\"X-Level: section\"]\n",
    );
    let f = f.to_str().unwrap();
    let services = ["chat", "web", "ftp", "http"];
    let mut s = start(&["serve", "--config", f]).listening_on(&services, Duration::from_secs(60));
    assert_eq!(header(&get(s.addr("http"), "/"), "X-Level"), ["section"]);
    s.stop();
    let mut s = start(&["serve", "--config", f, "--http-header", "X-Level: flag"])
        .listening_on(&services, Duration::from_secs(60));
    assert_eq!(header(&get(s.addr("http"), "/"), "X-Level"), ["flag"]);
    s.stop();
}

/// `cmd --config FILE` with FILE = `toml`: exit 2 and stderr, which names FILE:`line` and `key`.
fn refused(cmd: &[&str], toml: &str, line: usize, key: &str) -> String {
    let dir = Dir::new("bad");
    let f = dir.write("bad.toml", toml);
    let mut args = cmd.to_vec();
    args.extend(["--config", f.to_str().unwrap(), "--print-config"]);
    let out = run(&args, None);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
    assert!(
        out.stdout.is_empty(),
        "nothing printed: {}",
        text(&out.stdout)
    );
    let want = format!("{}:{line}: {key}: ", f.display());
    assert!(err.contains(&want), "wanted {want:?} in {err:?}");
    err
}

#[test]
fn an_unknown_key_or_section_is_refused_with_its_line() {
    let toml = "model = \"epoll\"\n\n[http]\nbind = \"127.0.0.1:0\"\nbnid = \"x\"\n";
    for cmd in READERS {
        let err = refused(cmd, toml, 5, "http.bnid");
        assert!(err.contains("unknown key"), "{err}");
        assert!(err.contains("did you mean `bind`?"), "{err}");
    }
    refused(&["serve"], "modle = \"epoll\"\n", 1, "modle");
    // A shared section takes only its own keys: `--tls-bind` is a service's, not [tls]'s.
    refused(
        &["chat", "serve"],
        "[tls]\nbind = \"127.0.0.1:0\"\n",
        2,
        "tls.bind",
    );
    let err = refused(&["serve"], "[htp]\nbind = 1\n", 1, "[htp]");
    assert!(err.contains("unknown section"), "{err}");
}

#[test]
fn a_bad_value_is_refused_with_clap_s_reason() {
    let err = refused(
        &["http", "serve"],
        "[http]\nbind = \"localhost\"\n",
        2,
        "http.bind",
    );
    assert!(err.contains("invalid socket address syntax"), "{err}");
    let err = refused(
        &["serve"],
        "\n\n[ftp]\nchecks_per_ip = 9\n",
        4,
        "ftp.checks_per_ip",
    );
    assert!(err.contains("9 is not in 1..=8"), "{err}");
    let err = refused(
        &["chat", "serve"],
        "[chat]\nmodel = \"fibers\"\n",
        2,
        "chat.model",
    );
    assert!(err.contains("fibers"), "{err}");
    let err = refused(
        &["ftp", "serve"],
        "[ftp]\nhidden = \"yes\"\n",
        2,
        "ftp.hidden",
    );
    assert!(err.contains("true or false"), "{err}");
    let err = refused(
        &["http", "serve"],
        "[http]\nheader = \"X-A: 1\"\nroot = [\"a\", \"b\"]\n",
        3,
        "http.root",
    );
    assert!(err.contains("not an array"), "{err}");
    // The same key twice, `-` or `_`.
    let err = refused(
        &["http", "serve"],
        "[http]\nhead_timeout = 5\nhead-timeout = 6\n",
        3,
        "http.head-timeout",
    );
    assert!(err.contains("already set on line 2"), "{err}");
    // No such file.
    let out = run(&["serve", "--config", "/nonexistent/bingfa.toml"], None);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("/nonexistent/bingfa.toml: cannot read the configuration file"),
        "{}",
        text(&out.stderr)
    );
    // Not TOML at all.
    let dir = Dir::new("syntax");
    let f = dir.write("x.toml", "[http]\nbind = \n");
    let out = run(&["http", "serve", "--config", f.to_str().unwrap()], None);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains(&format!("{}:2: not valid TOML", f.display())),
        "{}",
        text(&out.stderr)
    );
}

/// The printed configuration without its first line (which names the file it read).
fn body(printed: &str) -> &str {
    printed.split_once('\n').unwrap().1
}

#[test]
fn the_printed_configuration_loads_back_the_same() {
    let dir = Dir::new("print");
    let all = dir.write("all.toml", &example_all_set());
    for cmd in READERS {
        for first in [
            print_config(cmd, &[]),
            print_config(cmd, &["--config", all.to_str().unwrap(), "--workers", "3"]),
        ] {
            let p = dir.write("printed.toml", &first);
            let again = print_config(cmd, &["--config", p.to_str().unwrap()]);
            assert_eq!(body(&first), body(&again), "{cmd:?}");
        }
    }
    // Defaults filled in, a flag given shows.
    let p = print_config(&["http", "serve"], &["--workers", "3"]);
    assert!(
        p.contains("\nworkers = 3\n") && p.contains("\nlisting = \"on\"\n"),
        "{p}"
    );
}

#[test]
fn secrets_are_elided_and_paths_made_absolute() {
    let dir = Dir::new("secrets");
    let f = dir.write(
        "s.toml",
        "[backplane]\nurl = \"redis://app:hunter2@127.0.0.1:6379/1\"\n\
         [tls]\ncert = \"tls/cert.pem\"\nkey = \"tls/key.pem\"\n",
    );
    for cmd in [&["serve"][..], &["chat", "serve"]] {
        let p = print_config(cmd, &["--config", f.to_str().unwrap()]);
        assert!(!p.contains("hunter2"), "{p}");
        assert!(
            p.contains("url = \"redis://app:<elided>@127.0.0.1:6379/1\""),
            "{p}"
        );
        // The key file's path is no secret, and is relative to the file.
        let key = dir.0.canonicalize().unwrap().join("tls/key.pem");
        assert!(p.contains(&format!("key = \"{}\"", key.display())), "{p}");
    }
}

#[test]
fn a_flag_given_drops_the_file_s_flags_it_cannot_go_with() {
    let dir = Dir::new("conflict");
    let f = dir.write("t.toml", "[tls]\ncert = \"c.pem\"\nkey = \"k.pem\"\n");
    let p = print_config(
        &["http", "serve"],
        &["--config", f.to_str().unwrap(), "--tls-self-signed"],
    );
    assert!(
        p.contains("\nself_signed = true\n") && p.contains("\n# cert =\n"),
        "{p}"
    );
    let f = dir.write("s.toml", "[tls]\nself_signed = true\n");
    let p = print_config(
        &["ftp", "serve"],
        &[
            "--config",
            f.to_str().unwrap(),
            "--tls-cert",
            "/c",
            "--tls-key",
            "/k",
        ],
    );
    assert!(
        p.contains("\nself_signed = false\n") && p.contains("\ncert = \"/c\"\n"),
        "{p}"
    );
}

/// The FTP reply to `line` (its last line), on a control connection.
fn ftp(s: &mut std::io::BufReader<TcpStream>, line: Option<&str>) -> String {
    use std::io::BufRead;
    if let Some(l) = line {
        write!(s.get_mut(), "{l}\r\n").unwrap();
    }
    let mut reply = String::new();
    loop {
        let mut l = String::new();
        s.read_line(&mut l).unwrap();
        assert!(!l.is_empty(), "connection closed after {reply:?}");
        reply.push_str(&l);
        if l.len() > 3 && l.as_bytes()[3] == b' ' {
            return l;
        }
    }
}

#[test]
fn under_serve_ftp_given_its_own_root_is_not_open_to_anonymous() {
    // Anonymous reading is `serve`'s default for the built-in site only: an FTP root from the
    // file is the operator's directory, closed unless the file opens it.
    let dir = Dir::new("ftproot");
    std::fs::create_dir(dir.0.join("private")).unwrap();
    let f = dir.write(
        "f.toml",
        "http_bind = \"127.0.0.1:0\"\nchat_bind = \"127.0.0.1:0\"\nweb_bind = \"127.0.0.1:0\"\n\
         ftp_bind = \"127.0.0.1:0\"\n[ftp]\nroot = \"private\"\nlogin_delay_ms = 0\n",
    );
    let mut s = start(&["serve", "--config", f.to_str().unwrap()])
        .listening_on(&["chat", "web", "ftp", "http"], Duration::from_secs(60));
    let c = TcpStream::connect(s.addr("ftp")).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut c = std::io::BufReader::new(c);
    assert!(ftp(&mut c, None).starts_with("220"));
    ftp(&mut c, Some("USER anonymous"));
    let r = ftp(&mut c, Some("PASS x@y"));
    assert!(r.starts_with("530"), "{r}");
    drop(c);
    s.stop();
}

#[test]
fn under_serve_a_port_in_use_from_a_section_is_the_one_named() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap();
    let dir = Dir::new("inuse");
    let f = dir.write(
        "p.toml",
        &format!(
            "chat_bind = \"127.0.0.1:0\"\nweb_bind = \"127.0.0.1:0\"\nftp_bind = \"127.0.0.1:0\"\n\
             [http]\nbind = \"{port}\"\n"
        ),
    );
    let mut c = Command::new(BIN);
    c.args(["serve", "--config", f.to_str().unwrap()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = c.spawn().unwrap();
    let end = std::time::Instant::now() + Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > end {
            let _ = child.kill();
            let _ = child.wait();
            panic!("serve did not stop with its HTTP port taken");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
    let err = text(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains(&format!("the http service could not start on {port}")),
        "{err}"
    );
    drop(taken);
}
