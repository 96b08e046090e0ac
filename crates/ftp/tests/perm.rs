//! Who may do what, on the rig: no path leaves the user's root (`..` in every verb, encoded
//! tricks, a symlink leading out, a NUL in a line, another user's home); anonymous
//! `--anonymous upload` stores new files and changes nothing else; hidden names are neither
//! listed nor served without `--hidden`, for anonymous and named users alike. Moved from the
//! binary's per-model suite (`crates/cli/tests/ftp/`): none of it depends on a model.

mod common;

use common::{lines, Server, Tree, PASSWORD};

/// Paths never leave the user's root.
#[test]
fn paths() {
    let tree = Tree::new("paths");
    let srv = Server::start(&tree);
    let mut c = srv.login("ann", PASSWORD);
    std::fs::create_dir(tree.path("ann/sub")).unwrap();
    for cmd in [
        "RETR ../secret",
        "RETR /../secret",
        "RETR sub/../../secret",
        "SIZE ../../secret",
        "CWD ..",
        "CWD /..",
        "XCUP",
        "LIST ../",
        "MLST ..",
        "STOR ../evil",
        "MKD ../evil",
        "RNFR ../secret",
        "DELE ../secret",
    ] {
        assert_eq!(c.cmd(cmd), "550 Permission denied.", "{cmd}");
    }
    // Encoded tricks are just names here: nothing is decoded.
    assert_eq!(
        c.cmd("RETR %2e%2e/secret"),
        "550 No such file or directory."
    );
    assert_eq!(c.cmd("RETR ..%2fsecret"), "550 No such file or directory.");
    // A symlink leading out: refused by the kernel beneath the root.
    for cmd in [
        "RETR out",
        "SIZE out",
        "CWD out",
        "MKD out/x",
        "STOR out/x",
        "LIST out",
    ] {
        assert_eq!(c.cmd(cmd), "550 Permission denied.", "{cmd}");
    }
    assert_eq!(c.cmd("RNFR sub"), "350 Ready for RNTO.");
    assert_eq!(c.cmd("RNTO ../stolen"), "550 Permission denied.");
    c.send_raw(b"RETR sub\0x\r\n");
    c.expect("550 No such file or directory.");
    // Deleting the link removes the link, never what it points at.
    assert_eq!(c.cmd("DELE out"), "250 Delete operation successful.");
    assert_eq!(
        std::fs::read_to_string(tree.path("secret")).unwrap(),
        "top secret\n"
    );
    assert_eq!(
        tree.names(""),
        ["ann", "bob", "pub", "secret", "users.toml"]
    );
    assert_eq!(tree.names("ann"), ["sub"]);
    // Another user's home is outside this one's root.
    assert_eq!(c.cmd("CWD /../bob"), "550 Permission denied.");
    assert_eq!(c.cmd("QUIT"), "221 Goodbye.");
}

/// `--anonymous upload`: new files may be stored (STOR, STOU), nothing existing changed.
#[test]
fn anonymous_upload_only() {
    let tree = Tree::new("upload");
    let srv = Server::start_with(&tree, |c| c.anonymous = bingfa_ftp::Anonymous::Upload);
    let mut c = srv.login("anonymous", "guest@");
    assert_eq!(c.store("STOR new.txt", b"fresh"), "226 Transfer complete.");
    assert_eq!(std::fs::read(tree.path("pub/new.txt")).unwrap(), b"fresh");
    let denied = "550 Permission denied: uploads may only create new files.";
    assert_eq!(c.store("STOR hello.txt", b"evil"), denied);
    assert_eq!(c.store("STOR new.txt", b"evil"), denied);
    assert_eq!(c.store("APPE hello.txt", b"evil"), denied);
    assert_eq!(c.store("APPE other.txt", b"evil"), denied);
    assert_eq!(c.cmd("REST 2"), "350 Restart position accepted (2).");
    assert_eq!(c.store("STOR resumed.txt", b"evil"), denied);
    // ... and the refusal used the REST up: a new name may be stored whole.
    assert_eq!(
        c.store("STOR whole.txt", b"whole"),
        "226 Transfer complete."
    );
    assert_eq!(std::fs::read(tree.path("pub/whole.txt")).unwrap(), b"whole");
    for cmd in [
        "DELE hello.txt",
        "RNFR hello.txt",
        "MKD newdir",
        "RMD sub",
        "DELE new.txt",
    ] {
        assert_eq!(c.cmd(cmd), "550 Permission denied.", "{cmd}");
    }
    // STOU picks a free name.
    assert_eq!(
        c.store("STOU hello.txt", b"unique"),
        "226 Transfer complete."
    );
    assert_eq!(
        std::fs::read(tree.path("pub/hello.txt.1")).unwrap(),
        b"unique"
    );
    // A name taken while the upload runs is not replaced at its end.
    let d = c.passive();
    c.connect(d);
    assert_eq!(c.cmd("STOR race.txt").get(..4), Some("150 "));
    c.upload(d, b"late");
    std::fs::write(tree.path("pub/race.txt"), "first").unwrap();
    c.finish(d);
    assert_eq!(c.line(), "550 File exists.");
    assert_eq!(std::fs::read(tree.path("pub/race.txt")).unwrap(), b"first");
    // Downloads work as in read mode; nothing else changed.
    assert_eq!(c.cmd("SIZE hello.txt"), "213 12");
    assert_eq!(
        std::fs::read_to_string(tree.path("pub/hello.txt")).unwrap(),
        "hello\nworld\n"
    );
    let mut names = tree.names("pub");
    names.retain(|n| n != "out" && n != "sub");
    assert_eq!(
        names,
        [
            "hello.txt",
            "hello.txt.1",
            "new.txt",
            "race.txt",
            "whole.txt"
        ]
    );
}

/// Hidden names (`.env`, `.git/config`) are neither listed nor served without `--hidden`,
/// for anonymous and named users alike, answered as missing; with it they are.
#[test]
fn hidden_names() {
    let tree = Tree::new("hidden");
    std::fs::write(tree.path("pub/.env"), "SECRET=1\n").unwrap();
    std::fs::create_dir(tree.path("pub/.git")).unwrap();
    std::fs::write(tree.path("pub/.git/config"), "[core]\n").unwrap();
    std::fs::write(tree.path("ann/.profile"), "x").unwrap();
    for hidden in [false, true] {
        let srv = Server::start_with(&tree, |c| c.hidden = hidden);
        let mut c = srv.login("anonymous", "guest@");
        for cmd in ["NLST -a", "LIST -a", "MLSD", "LIST -a sub/.."] {
            let l = String::from_utf8(c.fetch(cmd)).unwrap();
            assert_eq!(l.contains(".env"), hidden, "{cmd} (--hidden {hidden}): {l}");
            assert_eq!(l.contains(".git"), hidden, "{cmd} (--hidden {hidden}): {l}");
            assert!(l.contains("hello.txt"), "{cmd}: {l}");
        }
        let missing = "550 No such file or directory.";
        for cmd in [
            "SIZE .env",
            "SIZE .git/config",
            "SIZE sub/../.env",
            "MDTM /.env",
            "MDTM .git/config",
        ] {
            let r = c.cmd(cmd);
            assert_eq!(r == missing, !hidden, "{cmd} (--hidden {hidden}): {r}");
        }
        if !hidden {
            assert_eq!(c.cmd("CWD .git"), missing);
            let d = c.passive();
            c.connect(d);
            assert_eq!(c.cmd("RETR .env"), missing);
            assert_eq!(c.cmd("LIST .git"), missing);
            assert!(c.received(d).is_empty());
        } else {
            assert_eq!(c.cmd("CWD .git"), "250 Directory successfully changed.");
            assert_eq!(c.fetch("RETR config"), b"[core]\n");
        }
        // A named user: the same rule, stores included.
        let mut c = srv.login("ann", PASSWORD);
        let l = lines(&c.fetch("NLST -a"));
        assert_eq!(l.contains(&".profile".to_string()), hidden, "{l:?}");
        if !hidden {
            for cmd in [
                "STOR .htaccess",
                "MKD .ssh",
                "DELE .profile",
                "RNFR .profile",
            ] {
                assert_eq!(c.cmd(cmd), missing, "{cmd}");
            }
            assert!(tree.path("ann/.profile").exists());
            assert!(!tree.path("ann/.ssh").exists());
        }
    }
}
