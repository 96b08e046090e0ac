//! Listings and names (NLST LIST MLSD STAT, MFMT), on the rig: one rule for every listing (no
//! name with a control character, none that is not UTF-8, so no name can forge an entry or
//! reach a terminal; a user's own `.bingfa-upload-*` listed as any dotfile), FIFOs and sockets
//! listed as what they are and never fetched, non-UTF-8 command lines and names with control
//! characters refused, wildcards in the last component only, Telnet commands in a line, MFMT
//! advertised and applied, a `STAT` reply big enough to be spooled arriving whole. The checks
//! are the exact bytes of replies and listings, and files on disk. Moved from the binary's
//! per-model suite (`crates/cli/tests/ftp/names.rs`), where the scenario still runs over TLS,
//! beside what needs a model (listings made off the loop while another session is answered)
//! or a real client (wildcard downloads by ftplib, tnftp, ncftp).

mod common;

use common::{lines, Control, Server, Tree, PASSWORD};
use std::time::Duration;

/// A multi-line `213` reply to `STAT arg`: its body lines (each without the leading space).
fn stat(c: &mut Control, arg: &str) -> Vec<String> {
    c.send(&format!("STAT {arg}"));
    let all = c.multiline();
    assert!(all[0].starts_with("213-Status of "), "{}", all[0]);
    assert_eq!(all.last().unwrap(), "213 End of status");
    all[1..all.len() - 1]
        .iter()
        .map(|l| {
            l.strip_prefix(' ')
                .unwrap_or_else(|| panic!("not a body line: {l:?}"))
                .to_string()
        })
        .collect()
}

/// ann's home with names a listing must not pass on as they are.
fn hostile_tree(tree: &Tree) {
    use std::os::unix::ffi::OsStrExt;
    let ann = tree.path("ann");
    for (n, body) in [
        (&b"a.txt"[..], "a"),
        (b"b.txt", "b"),
        (b"c.log", "c"),
        (b".bingfa-upload-stash", "stash"),
        (
            b"x\r\n-rw-r--r-- 1 ftp ftp 999999 Jan 1 2000 FORGED-ENTRY",
            "forged",
        ),
        (b"esc\x1b]0;owned\x07", "esc"),
        (b"latin\xe9.txt", "latin"),
    ] {
        std::fs::write(ann.join(std::ffi::OsStr::from_bytes(n)), body).unwrap();
    }
    std::fs::create_dir(ann.join("d")).unwrap();
    std::fs::write(ann.join("d/x.txt"), "x").unwrap();
    std::fs::write(ann.join("d/y.log"), "y").unwrap();
    let fifo = std::ffi::CString::new(ann.join("pipe").as_os_str().as_bytes()).unwrap();
    // SAFETY: a valid path.
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o644) }, 0);
    drop(std::os::unix::net::UnixListener::bind(ann.join("sock")).unwrap());
    // Enough entries that STAT's reply is spooled (over 256 KiB).
    std::fs::create_dir(ann.join("many")).unwrap();
    let pad = "y".repeat(100);
    for i in 0..3000 {
        std::fs::File::create(ann.join(format!("many/{i:04}-{pad}"))).unwrap();
    }
}

#[test]
fn hostile_names() {
    let tree = Tree::new("names");
    hostile_tree(&tree);
    // `--hidden`: dotfiles are served, so the user's own `.bingfa-upload-stash` shows that
    // only the server's temporary files are hidden (perm.rs tests the default, no dotfiles).
    let srv = Server::start_with(&tree, |c| c.hidden = true);
    let mut c = srv.login("ann", PASSWORD);
    let all = [
        ".bingfa-upload-stash",
        "a.txt",
        "b.txt",
        "c.log",
        "d",
        "many",
        "out",
        "pipe",
        "sock",
    ];
    assert_eq!(lines(&c.fetch("NLST -a")), all);
    assert_eq!(lines(&c.fetch("NLST")), all[1..]);
    let list = lines(&c.fetch("LIST"));
    assert_eq!(list.len(), all.len() - 1, "{list:?}");
    let line = |l: &[String], name: &str| {
        l.iter()
            .find(|x| x.ends_with(&format!(" {name}")))
            .unwrap_or_else(|| panic!("no {name} in {l:?}"))
            .clone()
    };
    assert!(line(&list, "pipe").starts_with("prw-r--r-- "), "{list:?}");
    assert!(line(&list, "sock").starts_with("srwx"), "{list:?}");
    assert!(line(&list, "a.txt").starts_with("-rw-r--r-- "), "{list:?}");
    assert_eq!(stat(&mut c, "."), list);
    let mlsd = lines(&c.fetch("MLSD"));
    let fact = |name: &str| line(&mlsd, name);
    assert!(
        fact("pipe").starts_with("type=OS.unix=fifo;modify="),
        "{mlsd:?}"
    );
    assert!(
        fact("sock").starts_with("type=OS.unix=socket;modify="),
        "{mlsd:?}"
    );
    assert!(fact(".bingfa-upload-stash").starts_with("type=file;size=5;"));
    assert_eq!(
        mlsd.len(),
        all.len(),
        "cdir, and all but the link out: {mlsd:?}"
    );
    // What is listed as a FIFO can't be fetched; the user's look-alike can.
    assert_eq!(c.cmd("RETR pipe"), "550 Permission denied.");
    assert_eq!(c.cmd("SIZE .bingfa-upload-stash"), "213 5");
    // A command line that is not UTF-8 changes nothing; a control character is refused.
    c.send_raw(b"STOR new\xff.bin\r\n");
    c.expect("501 Command line is not UTF-8.");
    c.send_raw(b"MKD new\xe9\r\n");
    c.expect("501 Command line is not UTF-8.");
    assert_eq!(c.cmd("MKD esc\x1b[2J"), "553 File name not allowed.");
    assert_eq!(c.cmd("RNFR a.txt"), "350 Ready for RNTO.");
    assert_eq!(c.cmd("RNTO tab\tname"), "553 File name not allowed.");
    assert_eq!(lines(&c.fetch("NLST -a")), all);
    assert!(!tree.names("ann").iter().any(|n| n.starts_with("new")));
    // Wildcards in the last component, named as given; never past the directory given.
    assert_eq!(lines(&c.fetch("NLST *.txt")), ["a.txt", "b.txt"]);
    assert_eq!(lines(&c.fetch("NLST d/*.txt")), ["d/x.txt"]);
    assert_eq!(lines(&c.fetch("NLST /d/?.*")), ["/d/x.txt", "/d/y.log"]);
    let l = lines(&c.fetch("LIST [ab].txt"));
    assert!(l.len() == 2 && l[1].ends_with(" b.txt"), "{l:?}");
    assert_eq!(c.cmd("NLST *.none"), "550 No such file or directory.");
    assert_eq!(c.cmd("NLST ../*"), "550 Permission denied.");
    // Telnet commands anywhere in a line: IAC DO 1 before the verb, IAC WILL 3 inside it.
    c.send_raw(b"\xff\xfd\x01NO\xff\xfb\x03OP\r\n");
    c.expect("200 NOOP ok.");
    // MFMT, advertised, and what MDTM says after.
    c.send("FEAT");
    let feat = c.multiline();
    assert!(feat.contains(&" MFMT".to_string()), "{feat:?}");
    assert_eq!(
        c.cmd("MFMT 20200229123456 a.txt"),
        "213 Modify=20200229123456; a.txt"
    );
    assert_eq!(c.cmd("MDTM a.txt"), "213 20200229123456");
    assert_eq!(
        std::fs::metadata(tree.path("ann/a.txt"))
            .unwrap()
            .modified()
            .unwrap(),
        std::time::UNIX_EPOCH + Duration::from_secs(1_582_979_696)
    );
    assert_eq!(
        c.cmd("MFMT 20201301000000 a.txt"),
        "501 Bad time: YYYYMMDDHHMMSS (UTC) expected."
    );
    // A STAT reply big enough to be spooled, whole and in order.
    let many = stat(&mut c, "many");
    assert_eq!(many.len(), 3000);
    assert!(many[2999].ends_with(&format!(" 2999-{}", "y".repeat(100))));
    assert_eq!(c.cmd("QUIT"), "221 Goodbye.");
    c.expect_closed();
}
