//! The FTP client (`bingfa ftp ls|get|put|shell`) against real servers, pyftpdlib and vsftpd,
//! each test once per server (modules `pyftpdlib::` and `vsftpd::`), plus the shell in a pty
//! and `ftp passwd`; `ftp_client/ftps.rs` is FTP over TLS against both, and
//! `ftp_client/broken.rs` the client against scripted hostile or broken servers. A server that
//! is not installed is skipped with the reason on stderr, unless BINGFA_REQUIRE_FTP_SERVERS=1
//! or BINGFA_REQUIRE_TOOLS=1 (scripts/test.sh, CI) makes that a failure.

use bingfa_testkit::pty;
#[path = "support/tools.rs"]
mod tools;

mod ftp_client {
    pub(crate) mod broken;
    pub(crate) mod fake;
    pub(crate) mod fake_tls;
    pub(crate) mod ftps;
    pub(crate) mod hostile;
    pub(crate) mod run;
    pub(crate) mod servers;
}

use ftp_client::run::{bingfa, names, ok, pattern, read};
use ftp_client::servers;
use servers::{Server, TempDir};
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_bingfa");
/// The subcommand prefix of the client.
const FTP: &[&str] = &["ftp"];

fn start(f: fn() -> Result<Server, String>, name: &str) -> Option<Server> {
    match f() {
        Ok(s) => Some(s),
        Err(why) => {
            assert!(
                std::env::var("BINGFA_REQUIRE_FTP_SERVERS").as_deref() != Ok("1")
                    && !tools::required(),
                "{name} is required: {why}"
            );
            eprintln!("SKIPPED against {name}: {why}");
            None
        }
    }
}

/// Each listed test, once against pyftpdlib and once against vsftpd.
macro_rules! per_server {
    ($($t:ident),* $(,)?) => {
        mod pyftpdlib {
            $(#[test]
            fn $t() {
                if let Some(s) = super::start(super::servers::pyftpdlib, "pyftpdlib") {
                    super::$t(&s);
                }
            })*
        }
        mod vsftpd {
            $(#[test]
            fn $t() {
                if let Some(s) = super::start(super::servers::vsftpd, "vsftpd") {
                    super::$t(&s);
                }
            })*
        }
    };
}

per_server!(
    ls_names_and_long_form,
    get_and_put_exact_bytes,
    active_mode_get_and_put,
    resume_download,
    resume_upload,
    missing_file_is_550_with_the_servers_text,
    shell_scripted_through_stdin,
    shell_reports_errors_and_goes_on,
    get_dir_fetches_every_file_of_one_level,
);

/// What each server says when RETR names a missing file.
fn missing_text(s: &Server) -> &'static str {
    match s.name {
        "pyftpdlib" => "No such file or directory.",
        _ => "Failed to open file.",
    }
}

/// What PWD says in the login directory (vsftpd runs without chroot here).
fn home(s: &Server) -> String {
    match s.name {
        "pyftpdlib" => "/".into(),
        _ => s.root.path().display().to_string(),
    }
}

fn ls_names_and_long_form(s: &Server) {
    std::fs::write(s.file("a.txt"), b"hello").unwrap();
    std::fs::write(s.file("b.bin"), pattern(1 << 20, 1)).unwrap();
    std::fs::create_dir(s.file("sub dir")).unwrap();
    std::fs::write(s.file("sub dir/inner.txt"), b"x").unwrap();
    let cwd = TempDir::new("cwd");
    let o = ok(bingfa(&["ls", &s.url("")], cwd.path(), "", &[]));
    assert_eq!(o.stdout, "a.txt\nb.bin\nsub dir/\n");
    let o = ok(bingfa(&["ls", &s.url("sub%20dir/")], cwd.path(), "", &[]));
    assert_eq!(o.stdout, "inner.txt\n");
    let o = ok(bingfa(&["ls", "-l", &s.url("")], cwd.path(), "", &[]));
    let lines: Vec<Vec<&str>> = o
        .stdout
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(lines.len(), 3, "{}", o.stdout);
    assert_eq!(
        (lines[0][0], lines[0][1], *lines[0].last().unwrap()),
        ("-", "5", "a.txt")
    );
    // A time as `ls -l` shows a recent one (`Dec  6 06:53`), not the raw `20261206065300`.
    assert!(
        lines[0][2].len() == 3 && lines[0][4].len() == 5 && lines[0][4].contains(':'),
        "{}",
        o.stdout
    );
    assert_eq!(
        (lines[1][0], lines[1][1], *lines[1].last().unwrap()),
        ("-", "1048576", "b.bin")
    );
    assert_eq!(lines[2][0], "d");
    assert!(
        o.stdout.lines().nth(2).unwrap().ends_with(" sub dir/"),
        "{}",
        o.stdout
    );
}

fn get_and_put_exact_bytes(s: &Server) {
    let big = pattern(5 * 1024 * 1024 + 123, 7);
    std::fs::write(s.file("big.bin"), &big).unwrap();
    let cwd = TempDir::new("cwd");
    ok(bingfa(&["get", &s.url("big.bin")], cwd.path(), "", &[]));
    assert!(read(cwd.path().join("big.bin")) == big, "get: bytes differ");
    ok(bingfa(
        &["get", &s.url("big.bin"), "copy.bin"],
        cwd.path(),
        "",
        &[],
    ));
    assert!(
        read(cwd.path().join("copy.bin")) == big,
        "get FILE: bytes differ"
    );
    assert_eq!(
        names(cwd.path()),
        ["big.bin", "copy.bin"].map(String::from).into()
    );

    let up = pattern(3 * 1024 * 1024 + 7, 8);
    std::fs::write(cwd.path().join("up.bin"), &up).unwrap();
    ok(bingfa(&["put", "up.bin", &s.url("")], cwd.path(), "", &[]));
    assert!(
        read(s.file("up.bin")) == up,
        "put into a directory URL: bytes differ"
    );
    ok(bingfa(
        &["put", "up.bin", &s.url("other%20name.bin")],
        cwd.path(),
        "",
        &[],
    ));
    assert!(
        read(s.file("other name.bin")) == up,
        "put to a named URL: bytes differ"
    );
}

fn active_mode_get_and_put(s: &Server) {
    let data = pattern(1024 * 1024 + 1, 9);
    std::fs::write(s.file("f.bin"), &data).unwrap();
    let cwd = TempDir::new("cwd");
    ok(bingfa(
        &["get", "--active", &s.url("f.bin"), "g.bin"],
        cwd.path(),
        "",
        &[],
    ));
    assert!(read(cwd.path().join("g.bin")) == data);
    ok(bingfa(
        &["put", "--active", "g.bin", &s.url("h.bin")],
        cwd.path(),
        "",
        &[],
    ));
    assert!(read(s.file("h.bin")) == data);
    let o = ok(bingfa(&["ls", "--active", &s.url("")], cwd.path(), "", &[]));
    assert_eq!(o.stdout, "f.bin\nh.bin\n");
}

fn resume_download(s: &Server) {
    let big = pattern(2 * 1024 * 1024 + 5, 10);
    std::fs::write(s.file("r.bin"), &big).unwrap();
    let cwd = TempDir::new("cwd");
    // A partial download whose bytes differ from the server's: only a real resume (REST)
    // keeps them, a fresh download would replace them.
    let have = 700_001;
    std::fs::write(cwd.path().join("r.bin.part"), vec![0xAB; have]).unwrap();
    ok(bingfa(&["get", &s.url("r.bin")], cwd.path(), "", &[]));
    let got = read(cwd.path().join("r.bin"));
    assert_eq!(got.len(), big.len());
    assert!(
        got[..have] == vec![0xAB; have][..] && got[have..] == big[have..],
        "not resumed at {have}"
    );
    assert_eq!(names(cwd.path()), ["r.bin"].map(String::from).into());

    // --resume continues the final file itself.
    std::fs::write(cwd.path().join("c.bin"), vec![0xCD; 1000]).unwrap();
    ok(bingfa(
        &["get", "--resume", &s.url("r.bin"), "c.bin"],
        cwd.path(),
        "",
        &[],
    ));
    let got = read(cwd.path().join("c.bin"));
    assert!(
        got[..1000] == [0xCD; 1000] && got[1000..] == big[1000..],
        "not resumed at 1000"
    );
    // Without it, an existing file is replaced whole.
    ok(bingfa(
        &["get", &s.url("r.bin"), "c.bin"],
        cwd.path(),
        "",
        &[],
    ));
    assert!(read(cwd.path().join("c.bin")) == big);
}

fn resume_upload(s: &Server) {
    let local = pattern(2 * 1024 * 1024 + 9, 11);
    let cwd = TempDir::new("cwd");
    std::fs::write(cwd.path().join("u.bin"), &local).unwrap();
    // The server holds an interrupted upload (marked bytes, so a resume is visible).
    let have = 1_000_003;
    std::fs::write(s.file("u.bin"), vec![0xEE; have]).unwrap();
    ok(bingfa(
        &["put", "--resume", "u.bin", &s.url("u.bin")],
        cwd.path(),
        "",
        &[],
    ));
    let got = read(s.file("u.bin"));
    assert_eq!(got.len(), local.len());
    assert!(
        got[..have] == vec![0xEE; have][..] && got[have..] == local[have..],
        "not resumed at {have}"
    );
    // Complete already: nothing to send, nothing changes.
    ok(bingfa(
        &["put", "--resume", "u.bin", &s.url("u.bin")],
        cwd.path(),
        "",
        &[],
    ));
    assert!(read(s.file("u.bin")) == got);
    // A plain put replaces it.
    ok(bingfa(
        &["put", "u.bin", &s.url("u.bin")],
        cwd.path(),
        "",
        &[],
    ));
    assert!(read(s.file("u.bin")) == local);
}

fn missing_file_is_550_with_the_servers_text(s: &Server) {
    let cwd = TempDir::new("cwd");
    let o = bingfa(&["get", &s.url("nope.txt")], cwd.path(), "", &[]);
    assert_ne!(o.code, 0);
    let want = format!("RETR nope.txt: 550 {}", missing_text(s));
    assert!(
        o.stderr.contains(&want),
        "want {want:?} in stderr: {}",
        o.stderr
    );
    assert!(names(cwd.path()).is_empty(), "left {:?}", names(cwd.path()));
}

fn get_dir_fetches_every_file_of_one_level(s: &Server) {
    let files = [
        ("a.txt", pattern(10, 20)),
        ("b c.bin", pattern(1024 * 1024 + 3, 21)),
        ("-dash", pattern(0, 22)),
    ];
    std::fs::create_dir(s.file("d")).unwrap();
    for (n, data) in &files {
        std::fs::write(s.file(&format!("d/{n}")), data).unwrap();
    }
    std::fs::create_dir(s.file("d/sub")).unwrap();
    std::fs::write(s.file("d/sub/deeper.txt"), b"not fetched").unwrap();
    let cwd = TempDir::new("cwd");
    let o = ok(bingfa(&["get", &s.url("d/"), "out"], cwd.path(), "", &[]));
    assert_eq!(o.stderr, "", "nothing skipped, nothing to say");
    let out = cwd.path().join("out");
    assert_eq!(
        names(&out),
        files.iter().map(|(n, _)| n.to_string()).collect(),
        "only the files, not the subdirectory"
    );
    for (n, data) in &files {
        assert!(read(out.join(n)) == *data, "{n}: bytes differ");
    }
}

fn shell_scripted_through_stdin(s: &Server) {
    let cwd = TempDir::new("cwd");
    let data = pattern(300_000, 12);
    std::fs::write(cwd.path().join("local file.bin"), &data).unwrap();
    let script = "pwd\nmkdir d\ncd d\nput \"local file.bin\" x.bin\nls\nrename x.bin y.bin\n\
                  ls\nget y.bin out.bin\nrm y.bin\nls\ncd ..\nrmdir d\nls\nquit\nls\n";
    let o = ok(bingfa(&["shell", &s.url("")], cwd.path(), script, &[]));
    let home = home(s);
    let d = if home == "/" {
        "/d".to_string()
    } else {
        format!("{home}/d")
    };
    assert_eq!(
        o.stdout,
        format!(
            "{home}\ncreated {d}\nput x.bin (300000 bytes sent)\nx.bin\ny.bin\n\
             got out.bin (300000 bytes)\n"
        ),
        "stderr: {}",
        o.stderr
    );
    assert!(read(cwd.path().join("out.bin")) == data);
    assert!(
        names(s.root.path()).is_empty(),
        "left {:?}",
        names(s.root.path())
    );
}

fn shell_reports_errors_and_goes_on(s: &Server) {
    let cwd = TempDir::new("cwd");
    std::fs::create_dir(s.file("sub")).unwrap();
    let script = "get missing.txt\nfrobnicate\ncd sub\npwd\nhelp\n";
    let o = bingfa(&["shell", &s.url("")], cwd.path(), script, &[]);
    assert_eq!(
        o.code, 1,
        "scripted shell with failures exits 1; stderr: {}",
        o.stderr
    );
    let want = format!("error: RETR missing.txt: 550 {}", missing_text(s));
    assert!(o.stderr.contains(&want), "want {want:?} in: {}", o.stderr);
    assert!(
        o.stderr
            .contains("error: unknown command \"frobnicate\"; type help"),
        "{}",
        o.stderr
    );
    let sub = if s.name == "pyftpdlib" {
        "/sub".to_string()
    } else {
        format!("{}/sub", home(s))
    };
    assert!(
        o.stdout.starts_with(&format!("{sub}\ncommands")),
        "{}",
        o.stdout
    );
    for cmd in [
        "ls", "cd", "pwd", "get", "put", "mkdir", "rm", "rename", "help", "quit",
    ] {
        assert!(
            o.stdout.contains(&format!("\n  {cmd} ")),
            "help lacks {cmd}: {}",
            o.stdout
        );
    }
}

#[test]
fn pyftpdlib_password_from_env_and_wrong_password() {
    let Some(s) = start(servers::pyftpdlib, "pyftpdlib") else {
        return;
    };
    std::fs::write(s.file("a"), b"1").unwrap();
    let cwd = TempDir::new("cwd");
    let bare = format!("ftp://ann@127.0.0.1:{}/", s.port);
    let o = ok(bingfa(
        &["ls", &bare],
        cwd.path(),
        "",
        &[("BINGFA_FTP_PASSWORD", servers::PY_PASSWORD)],
    ));
    assert_eq!(o.stdout, "a\n");
    let o = bingfa(
        &["ls", &bare],
        cwd.path(),
        "",
        &[("BINGFA_FTP_PASSWORD", "wrong")],
    );
    assert_ne!(o.code, 0);
    assert!(
        o.stderr.contains("PASS ****: 530 Authentication failed."),
        "{}",
        o.stderr
    );
    assert!(
        !o.stderr.contains("wrong"),
        "the password leaked: {}",
        o.stderr
    );
    let o = bingfa(&["ls", &bare], cwd.path(), "", &[]);
    assert_ne!(o.code, 0);
    assert!(o.stderr.contains("asks for a password"), "{}", o.stderr);
}

#[test]
fn shell_in_a_terminal_prompts_for_the_password_edits_and_recalls_history() {
    let Some(s) = start(servers::pyftpdlib, "pyftpdlib") else {
        return;
    };
    let cwd = TempDir::new("pty");
    let mut cmd = Command::new(BIN);
    cmd.args(FTP)
        .args(["shell", &format!("ftp://ann@127.0.0.1:{}/", s.port)])
        .current_dir(cwd.path())
        .env_remove("BINGFA_FTP_PASSWORD")
        .env("RUST_BACKTRACE", "0")
        .env("TERM", "xterm");
    let mut t = pty::Pty::spawn(cmd);
    t.until(&format!("Password for ann@127.0.0.1:{}: ", s.port));
    t.keys(&format!("{}\r", servers::PY_PASSWORD));
    t.until("type help for the commands");
    t.until("ftp /> ");
    t.keys("mkdir made\r");
    t.until("created /made");
    t.until("ftp /> ");
    assert!(s.file("made").is_dir());
    // Up-arrow recalls the last line; running it again is a server error, shown with its code.
    t.keys("\x1b[A");
    t.until("mkdir made");
    t.keys("\r");
    t.until("error: MKD made: 550 ");
    // Line editing: type, move left, insert.
    t.keys("cd mde\x1b[D\x1b[Da\r");
    t.until("ftp /made> ");
    t.keys("quit\r");
    assert_eq!(t.exit_code(), Some(0));
}

/// `bingfa ftp passwd` on a terminal: it asks twice without echoing, prints the argon2id hash
/// of what was typed (checked with the server's own verifier), and refuses two different
/// answers with exit status 1 and no hash.
#[test]
fn passwd_on_a_terminal_asks_twice_without_echo() {
    let run = |first: &str, second: &str| {
        let mut cmd = Command::new(BIN);
        cmd.args(["ftp", "passwd"]).env("RUST_BACKTRACE", "0");
        let mut t = pty::Pty::spawn(cmd);
        t.until("Password: ");
        t.wait_echo_off();
        t.keys(&format!("{first}\r"));
        t.until("Again: ");
        t.wait_echo_off();
        t.keys(&format!("{second}\r"));
        let code = t.exit_code();
        let rest = t.rest();
        (code, format!("{}{rest}", t.passed()))
    };
    let (code, screen) = run("tty pass 1", "tty pass 1");
    assert_eq!(code, Some(0), "{screen:?}");
    assert!(!screen.contains("tty pass"), "echoed: {screen:?}");
    let hash = screen
        .split_whitespace()
        .find(|w| w.starts_with("$argon2id$"))
        .unwrap_or_else(|| panic!("no hash on the screen: {screen:?}"));
    assert!(bingfa_ftp::users::verify(hash, "tty pass 1"));
    assert!(!bingfa_ftp::users::verify(hash, "tty pass 2"));

    let (code, screen) = run("tty pass 1", "tty pass 2");
    assert_eq!(code, Some(1), "{screen:?}");
    assert!(screen.contains("the passwords differ"), "{screen:?}");
    assert!(!screen.contains("$argon2id$"), "{screen:?}");
}
