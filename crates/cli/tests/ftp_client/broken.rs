//! The client against scripted hostile or broken servers (`fake.rs`, and `hostile.rs` for
//! names and a cut download): nothing the server says reaches the terminal unescaped, names
//! from a listing never leave the target directory, a short download is an error that keeps
//! its `.part`, an interrupted one is resumed, a planted `.part` is never written through,
//! and `get DIR/` skips what it cannot fetch, says so, fetches the rest and exits 1.

use super::fake::{self, Fake, File};
use super::hostile;
use super::run::{bingfa, names, ok, read, Out};
use super::servers::TempDir;
use std::collections::BTreeSet;

/// Terminal controls a hostile server sends: an OSC window title ended by BEL, a screen clear,
/// a CR that would overwrite the line, a C1 CSI (U+009B) colour and a right-to-left override.
const EVIL: &str = "\x1b]0;pwned\x07\x1b[2J\rover\u{9b}31m\u{202e}";
/// `EVIL` as the client must print it.
const EVIL_SHOWN: &str = "\\u{1b}]0;pwned\\u{7}\\u{1b}[2J\\rover\\u{9b}31m\\u{202e}";
/// Controls without ';' or white space, for fields a listing's syntax splits on.
const EVIL_FIELD: &str = "\x1b[2J\x07\u{9b}1m";

fn url(port: u16, path: &str) -> String {
    format!("ftp://127.0.0.1:{port}/{path}")
}

/// Nothing on stdout or stderr may act on a terminal: no C0 control but the line feed, no
/// DEL, no C1 control, no bidirectional override.
fn assert_clean(o: &Out, what: &str) {
    for (stream, text) in [("stdout", &o.stdout), ("stderr", &o.stderr)] {
        let raw: Vec<char> = text
            .chars()
            .filter(|&c| {
                (c.is_control() && c != '\n')
                    || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
            })
            .collect();
        assert!(raw.is_empty(), "{what}: raw {raw:?} on {stream}: {text:?}");
    }
}

#[test]
fn what_the_server_says_is_printed_escaped() {
    let cwd = TempDir::new("evil");
    // A greeting that refuses, multi-line, and one that is not FTP at all.
    for greeting in [
        format!("421-{EVIL} first\r\n421 {EVIL} busy\r\n"),
        format!("{EVIL}\r\n"),
    ] {
        let port = fake::start(Fake {
            greeting,
            ..Fake::default()
        });
        let o = bingfa(&["ls", &url(port, "")], cwd.path(), "", &[]);
        assert_eq!(o.code, 1, "{}", o.stderr);
        assert_clean(&o, "greeting");
        assert!(o.stderr.contains(EVIL_SHOWN), "{}", o.stderr);
    }

    let mlsd = format!(
        "type=file;size=3;modify=2024{EVIL_FIELD}; n{EVIL}\r\n\
         type=dir;modify=20240101000000; d{EVIL}\r\n"
    );
    let list = format!(
        "-rw-r--r-- 1 u g 3 Jan 01 12:00{EVIL_FIELD} n{EVIL}\r\n\
         drwxr-xr-x 1 u g 3 Jan 01 2024 d\r\n"
    );
    for (mlst, listing) in [(true, mlsd), (false, list)] {
        let port = fake::start(Fake {
            pwd: format!("257 \"/{EVIL}\" is the current directory"),
            mkd: format!("257 \"/new{EVIL}\" created {EVIL}"),
            cwd: format!("550 {EVIL} no such directory"),
            unknown: format!("502 {EVIL} not implemented"),
            missing: format!("550-{EVIL}\r\n550 {EVIL}"),
            mlst,
            listing,
            ..Fake::default()
        });
        let u = url(port, "");
        let o = bingfa(&["ls", "-l", &u], cwd.path(), "", &[]);
        assert_eq!(o.code, 0, "{}", o.stderr);
        assert_clean(&o, "ls -l");
        assert!(
            o.stdout.contains(&format!("n{EVIL_SHOWN}\n")),
            "{:?} {}",
            o.stdout,
            o.stderr
        );
        let o = bingfa(&["get", &url(port, "missing")], cwd.path(), "", &[]);
        assert_eq!(o.code, 1);
        assert_clean(&o, "550 to RETR");
        assert!(
            o.stderr
                .contains(&format!("RETR missing: 550 {EVIL_SHOWN}\n{EVIL_SHOWN}")),
            "{}",
            o.stderr
        );
        // AUTH TLS refused with a hostile text.
        let o = bingfa(&["ls", "--tls", &u], cwd.path(), "", &[]);
        assert_eq!(o.code, 1);
        assert_clean(&o, "AUTH TLS refused");
        assert!(o.stderr.contains(EVIL_SHOWN), "{}", o.stderr);
        let script = "pwd\nmkdir new\ncd d\nget missing\nls -l\nsite x\n";
        let o = bingfa(&["shell", &u], cwd.path(), script, &[]);
        assert_eq!(o.code, 1, "{}", o.stderr);
        assert_clean(&o, "shell");
        assert!(
            o.stdout
                .starts_with(&format!("/{EVIL_SHOWN}\ncreated /new{EVIL_SHOWN}\n")),
            "{}",
            o.stdout
        );
        assert!(
            o.stderr
                .contains(&format!("error: CWD d: 550 {EVIL_SHOWN} no such directory")),
            "{}",
            o.stderr
        );
    }
    assert!(names(cwd.path()).is_empty(), "{:?}", names(cwd.path()));
}

/// A server that says SIZE 1000000 (or `(1000000 bytes)` in its 150 reply, without SIZE) and
/// then sends 10 bytes and 226.
fn short(name: &'static str, with_size: bool) -> File {
    File {
        name,
        size: with_size.then_some(1_000_000),
        preliminary: "150 Opening BINARY mode data connection for x (1000000 bytes).".into(),
        body: b"0123456789".to_vec(),
        end: "226 Transfer complete.".into(),
    }
}

#[test]
fn a_short_download_is_an_error_and_keeps_its_part_file() {
    let port = fake::start(Fake {
        files: vec![short("sized.bin", true), short("announced.bin", false)],
        ..Fake::default()
    });
    let cwd = TempDir::new("short");
    for name in ["sized.bin", "announced.bin"] {
        let o = bingfa(&["get", &url(port, name)], cwd.path(), "", &[]);
        assert_eq!(o.code, 1, "{name}: {}", o.stderr);
        let want = format!(
            "download of {name} incomplete: 10 bytes received but the server said 1000000; \
             {name}.part is kept and the next get resumes it"
        );
        assert!(o.stderr.contains(&want), "{name}: {}", o.stderr);
        assert_eq!(read(cwd.path().join(format!("{name}.part"))), b"0123456789");
    }
    // More than SIZE said is an error too.
    let port = fake::start(Fake {
        files: vec![File {
            size: Some(5),
            ..short("long.bin", true)
        }],
        ..Fake::default()
    });
    let o = bingfa(&["get", &url(port, "long.bin")], cwd.path(), "", &[]);
    assert_eq!(o.code, 1, "{}", o.stderr);
    let want = "download of long.bin too long: 10 bytes received but the server said 5; \
                long.bin.part is kept\n";
    assert!(o.stderr.contains(want), "{}", o.stderr);
    assert_eq!(
        names(cwd.path()),
        ["announced.bin.part", "long.bin.part", "sized.bin.part"]
            .map(String::from)
            .into()
    );
}

#[test]
fn a_planted_part_file_is_never_written_through() {
    use std::os::unix::fs::{symlink, MetadataExt as _};
    let port = fake::start(Fake {
        files: vec![File::good("f.txt", b"from the server\n")],
        ..Fake::default()
    });
    let cwd = TempDir::new("plant");
    let victim = cwd.path().join("victim");
    let get = |why: &str| {
        let o = bingfa(&["get", &url(port, "f.txt")], cwd.path(), "", &[]);
        assert_eq!(o.code, 1, "{why}: {}", o.stderr);
        assert!(
            o.stderr
                .contains(&format!("refusing to write to f.txt.part: {why}")),
            "{}",
            o.stderr
        );
        assert!(!cwd.path().join("f.txt").exists(), "{why}");
    };
    // A link to a file of the user's: it keeps its bytes.
    std::fs::write(&victim, "precious\n").unwrap();
    symlink(&victim, cwd.path().join("f.txt.part")).unwrap();
    get("it is a symbolic link");
    assert_eq!(read(&victim), b"precious\n");
    // A dangling link: its target is not created.
    std::fs::remove_file(cwd.path().join("f.txt.part")).unwrap();
    symlink(cwd.path().join("created"), cwd.path().join("f.txt.part")).unwrap();
    get("it is a symbolic link");
    assert!(!cwd.path().join("created").exists());
    std::fs::remove_file(cwd.path().join("f.txt.part")).unwrap();
    // A hard link to the victim.
    std::fs::hard_link(&victim, cwd.path().join("f.txt.part")).unwrap();
    get("it has other hard links");
    assert_eq!(read(&victim), b"precious\n");
    std::fs::remove_file(cwd.path().join("f.txt.part")).unwrap();
    // A FIFO: no hang waiting for a reader.
    let fifo = std::ffi::CString::new(cwd.path().join("f.txt.part").to_str().unwrap()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);
    get("it is not a regular file");
    std::fs::remove_file(cwd.path().join("f.txt.part")).unwrap();
    // A directory.
    std::fs::create_dir(cwd.path().join("f.txt.part")).unwrap();
    let o = bingfa(&["get", &url(port, "f.txt")], cwd.path(), "", &[]);
    assert_eq!(o.code, 1, "{}", o.stderr);
    std::fs::remove_dir(cwd.path().join("f.txt.part")).unwrap();
    // Another user's file (only root can make one here).
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        std::fs::write(cwd.path().join("f.txt.part"), "theirs").unwrap();
        std::os::unix::fs::chown(cwd.path().join("f.txt.part"), Some(65534), Some(65534)).unwrap();
        get("it belongs to another user (uid 65534)");
        assert_eq!(read(cwd.path().join("f.txt.part")), b"theirs");
        std::fs::remove_file(cwd.path().join("f.txt.part")).unwrap();
    }
    // The user's own .part is resumed as before.
    std::fs::write(cwd.path().join("f.txt.part"), "from the").unwrap();
    let o = bingfa(&["get", &url(port, "f.txt")], cwd.path(), "", &[]);
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert_eq!(read(cwd.path().join("f.txt")), b"from the server\n");
    assert_eq!(
        names(cwd.path()),
        ["f.txt", "victim"].map(String::from).into()
    );
    assert_eq!(std::fs::metadata(&victim).unwrap().nlink(), 1);
}

#[test]
fn get_dir_skips_what_it_cannot_fetch_reports_it_and_goes_on() {
    let listing = [
        "type=file;size=2; a.txt",
        "type=file;size=0; fifo",
        "type=file;size=2; b.txt",
        "type=file;size=1000000; short.bin",
        "type=OS.unix=slink:/etc; link",
        "type=OS.unix=socket; sock",
        "type=dir; sub",
        "type=file;size=2; busy.txt",
        "type=file;size=2; z.txt",
    ]
    .map(|l| format!("{l}\r\n"))
    .concat();
    let port = fake::start(Fake {
        listing,
        files: vec![
            File::good("a.txt", b"a\n"),
            File::refused("fifo", "550 Not a regular file."),
            File::good("b.txt", b"b\n"),
            short("short.bin", true),
            File::refused("busy.txt", "450 Try again later."),
            File::good("z.txt", b"z\n"),
        ],
        ..Fake::default()
    });
    let cwd = TempDir::new("dir");
    let o = bingfa(&["get", &url(port, ""), "out"], cwd.path(), "", &[]);
    assert_eq!(o.code, 1, "{}", o.stderr);
    let out = cwd.path().join("out");
    assert_eq!(
        names(&out),
        ["a.txt", "b.txt", "short.bin.part", "z.txt"]
            .map(String::from)
            .into_iter()
            .collect::<BTreeSet<_>>(),
        "{}",
        o.stderr
    );
    for (n, want) in [("a.txt", b"a\n"), ("b.txt", b"b\n"), ("z.txt", b"z\n")] {
        assert_eq!(read(out.join(n)), want);
    }
    for line in [
        "skipping \"fifo\": RETR fifo: 550 Not a regular file.",
        "skipping \"short.bin\": download of short.bin incomplete: 10 bytes received but the \
         server said 1000000; out/short.bin.part is kept and the next get resumes it",
        "skipping \"busy.txt\": RETR busy.txt: 450 Try again later.",
        "not fetching \"link\": a symbolic link",
        "not fetching \"sock\": not a regular file",
        "3 of 6 files not saved: \"busy.txt\", \"fifo\", \"short.bin\"",
    ] {
        assert!(o.stderr.contains(line), "want {line:?} in: {}", o.stderr);
    }
    assert!(!o.stderr.contains("sub"), "{}", o.stderr);
}

#[test]
fn get_dir_stops_when_the_connection_is_lost() {
    let port = fake::start(Fake {
        listing: "type=file;size=4; a.txt\r\ntype=file;size=2; b.txt\r\n".into(),
        files: vec![
            File {
                // The data arrives, then the server hangs up instead of saying 226.
                end: String::new(),
                ..File::good("a.txt", b"aaaa")
            },
            File::good("b.txt", b"b\n"),
        ],
        ..Fake::default()
    });
    let cwd = TempDir::new("lost");
    let o = bingfa(&["get", &url(port, ""), "out"], cwd.path(), "", &[]);
    assert_eq!(o.code, 1, "{}", o.stderr);
    assert!(
        o.stderr.contains(
            "error: stopping: the session cannot go on after this error: download of a.txt \
             interrupted; out/a.txt.part is kept"
        ),
        "{}",
        o.stderr
    );
    assert_eq!(
        names(&cwd.path().join("out")),
        ["a.txt.part"].map(String::from).into()
    );
}

#[test]
fn the_shell_prompt_shows_a_hostile_directory_escaped() {
    let port = fake::start(Fake {
        pwd: format!("257 \"/{EVIL}\" is the current directory"),
        ..Fake::default()
    });
    let cwd = TempDir::new("evil-pty");
    let mut cmd = std::process::Command::new(crate::BIN);
    cmd.args(crate::FTP)
        .args(["shell", &url(port, "")])
        .current_dir(cwd.path())
        .env("RUST_BACKTRACE", "0")
        .env("TERM", "xterm");
    let mut t = crate::pty::Pty::spawn(cmd);
    t.until(&format!("ftp /{EVIL_SHOWN}> "));
    t.keys("pwd\r");
    t.until(&format!("/{EVIL_SHOWN}\r\n"));
    t.keys("quit\r");
    assert_eq!(t.exit_code(), Some(0));
    let rest = t.rest();
    let screen = format!("{}{rest}", t.passed());
    // The line editor draws its own escape sequences; the server's must not be among them.
    for raw in ["\x1b]0;pwned", "\x07", "\u{9b}", "\u{202e}", "\rover"] {
        assert!(!screen.contains(raw), "{raw:?} on the screen: {screen:?}");
    }
}

fn hostile(mlst: bool) {
    let port = hostile::start(mlst);
    let cwd = TempDir::new("hostile");
    let url = format!("ftp://127.0.0.1:{port}/");
    let o = bingfa(&["get", &url, "out"], cwd.path(), "", &[]);
    // MLSD's ".." typed as a file is not an entry (the listing parser leaves `.` and `..` out,
    // as LIST's are: found by fuzz/ftp_client), so every usable name is saved and the exit is 0.
    assert_eq!(o.code, 0, "{}", o.stderr);
    // Nothing escaped the target directory...
    assert_eq!(
        names(cwd.path()),
        ["out"].map(String::from).into(),
        "{}",
        o.stderr
    );
    // ...and each usable name became one safe file holding its content.
    let want: BTreeSet<String> = hostile::HOSTILE
        .iter()
        .filter_map(|(_, local)| local.map(String::from))
        .collect();
    assert_eq!(names(&cwd.path().join("out")), want, "{}", o.stderr);
    for (raw, local) in hostile::HOSTILE {
        if let Some(local) = local {
            assert_eq!(
                read(cwd.path().join("out").join(local)),
                hostile::content(raw).as_bytes()
            );
        }
    }
    // Listing prints escape sequences escaped, never raw.
    let o = ok(bingfa(&["ls", &url], cwd.path(), "", &[]));
    assert!(!o.stdout.contains('\x1b'), "{:?}", o.stdout);
    assert!(o.stdout.contains("a\\u{1b}[31mred.txt\n"), "{:?}", o.stdout);
}

#[test]
fn hostile_names_are_sanitised_list() {
    hostile(false);
}

#[test]
fn hostile_names_are_sanitised_mlsd() {
    hostile(true);
}

#[test]
fn an_interrupted_download_keeps_its_part_file_and_the_next_get_resumes_it() {
    let port = hostile::start(false);
    let cwd = TempDir::new("cut");
    let url = format!("ftp://127.0.0.1:{port}/{}", hostile::CUT_NAME);
    let o = bingfa(&["get", &url], cwd.path(), "", &[]);
    assert_ne!(o.code, 0);
    assert!(
        o.stderr
            .contains("RETR cut.bin: 426 Connection closed; transfer aborted."),
        "{}",
        o.stderr
    );
    assert!(
        o.stderr
            .contains("cut.bin.part is kept and the next get resumes it"),
        "{}",
        o.stderr
    );
    assert_eq!(names(cwd.path()), ["cut.bin.part"].map(String::from).into());
    assert_eq!(
        read(cwd.path().join("cut.bin.part")),
        &hostile::cut_data()[..hostile::CUT_AT]
    );
    ok(bingfa(&["get", &url], cwd.path(), "", &[]));
    assert_eq!(names(cwd.path()), ["cut.bin"].map(String::from).into());
    assert!(read(cwd.path().join("cut.bin")) == hostile::cut_data());
}
