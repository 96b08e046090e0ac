//! Everything the root does, checked on a real tree with symlinks leading out, and that no
//! operation ever touches anything outside it.

use bingfa_root::{is_escape, OpenError, Root};
use std::io::Write;
use std::os::unix::fs::symlink;
use std::path::PathBuf;

/// base/{secret, root/{a.txt, sub/b.txt, out -> ../secret, abs -> /etc/passwd, in -> sub/b.txt,
/// outdir -> .., }}
fn tree(tag: &str) -> (PathBuf, Root) {
    let base = std::env::temp_dir().join(format!("bingfa-root-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&base);
    let root = base.join("root");
    std::fs::create_dir_all(root.join("sub")).unwrap();
    std::fs::write(base.join("secret"), "no").unwrap();
    std::fs::write(root.join("a.txt"), "a").unwrap();
    std::fs::write(root.join("sub/b.txt"), "b").unwrap();
    symlink("../secret", root.join("out")).unwrap();
    symlink("/etc/passwd", root.join("abs")).unwrap();
    symlink("sub/b.txt", root.join("in")).unwrap();
    symlink("..", root.join("outdir")).unwrap();
    let r = Root::open(&root).unwrap();
    (base, r)
}

#[test]
fn open_stays_beneath_the_root() {
    let (base, r) = tree("open");
    assert!(r.open_path(b"a.txt").is_ok());
    assert!(r.open_path(b"sub/../a.txt").is_ok());
    assert!(r.open_path(b"in").is_ok(), "a symlink inside is followed");
    assert!(r.open_path(b"").unwrap().1.st_mode & libc::S_IFMT == libc::S_IFDIR);
    assert_eq!(r.open_path(b"../secret").unwrap_err(), OpenError::Forbidden);
    assert_eq!(
        r.open_path(b"sub/../../secret").unwrap_err(),
        OpenError::Forbidden
    );
    assert_eq!(
        r.open_path(b"/etc/passwd").unwrap_err(),
        OpenError::Forbidden
    );
    assert_eq!(r.open_path(b"out").unwrap_err(), OpenError::Forbidden);
    assert_eq!(r.open_path(b"abs").unwrap_err(), OpenError::Forbidden);
    assert_eq!(r.open_path(b"a.txt\0x").unwrap_err(), OpenError::NotFound);
    assert_eq!(r.open_path(b"missing").unwrap_err(), OpenError::NotFound);
    assert!(r.stat_beneath(b"in").is_some() && r.stat_beneath(b"sub").is_some());
    assert!(r.stat_beneath(b"abs").is_none() && r.stat_beneath(b"out").is_none());
    let (f, st) = r.open_read(b"sub/b.txt").unwrap();
    assert_eq!(st.st_size, 1);
    drop(f);
    assert_eq!(
        r.open_read(b"sub").unwrap_err().raw_os_error(),
        Some(libc::EISDIR)
    );
    assert!(is_escape(&r.open_read(b"out").unwrap_err()));
    assert!(is_escape(&r.stat(b"outdir/secret").unwrap_err()));
    assert_eq!(
        r.lstat(b"out").unwrap().st_mode & libc::S_IFMT,
        libc::S_IFLNK,
        "lstat does not follow"
    );
    std::fs::remove_dir_all(base).unwrap();
}

#[test]
fn changes_stay_beneath_the_root() {
    let (base, r) = tree("ops");
    let root = base.join("root");
    r.mkdir(b"sub/new").unwrap();
    assert!(root.join("sub/new").is_dir());
    assert_eq!(
        r.mkdir(b"sub/new").unwrap_err().raw_os_error(),
        Some(libc::EEXIST)
    );
    assert!(is_escape(&r.mkdir(b"../evil").unwrap_err()));
    assert!(is_escape(&r.mkdir(b"outdir/evil").unwrap_err()));
    assert!(!base.join("evil").exists());
    r.rmdir(b"sub/new").unwrap();
    assert!(!root.join("sub/new").exists());
    assert!(r.rmdir(b"sub/..").is_err(), "no operation on `..`");
    // Removing a link removes the link, never its target outside.
    r.unlink(b"out").unwrap();
    assert_eq!(std::fs::read(base.join("secret")).unwrap(), b"no");
    assert!(is_escape(&r.unlink(b"outdir/secret").unwrap_err()));
    assert!(base.join("secret").exists());
    r.rename(b"a.txt", b"sub/c.txt").unwrap();
    assert_eq!(std::fs::read(root.join("sub/c.txt")).unwrap(), b"a");
    assert!(is_escape(
        &r.rename(b"sub/c.txt", b"../stolen").unwrap_err()
    ));
    assert!(is_escape(&r.rename(b"outdir/secret", b"mine").unwrap_err()));
    // Writing in place (resume) never follows a final symlink.
    assert!(r.open_write(b"abs", true).is_err());
    let mut w = r.open_write(b"sub/c.txt", true).unwrap();
    w.write_all(b"bc").unwrap();
    assert_eq!(std::fs::read(root.join("sub/c.txt")).unwrap(), b"abc");
    std::fs::remove_dir_all(base).unwrap();
}

#[test]
fn temp_files_appear_only_when_persisted() {
    let (base, r) = tree("temp");
    let root = base.join("root");
    let names = || {
        let mut v: Vec<_> = std::fs::read_dir(root.join("sub"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        v.sort();
        v
    };
    // Dropped: nothing left, the old file untouched.
    let mut t = r.create_temp(b"sub").unwrap();
    t.write_all(b"partial").unwrap();
    drop(t);
    assert_eq!(names(), ["b.txt"]);
    // Persisted: replaces the old file atomically.
    let mut t = r.create_temp(b"sub").unwrap();
    t.write_all(b"new contents").unwrap();
    t.persist(b"b.txt").unwrap();
    assert_eq!(
        std::fs::read(root.join("sub/b.txt")).unwrap(),
        b"new contents"
    );
    assert_eq!(names(), ["b.txt"]);
    assert!(is_escape(&r.create_temp(b"outdir").unwrap_err()));
    // A scratch file: usable, never named.
    let mut t = r.create_temp(b"sub").unwrap();
    t.write_all(b"scratch").unwrap();
    let f = t.into_unnamed();
    let mut back = String::new();
    std::io::Read::read_to_string(
        &mut std::fs::File::open(format!(
            "/proc/self/fd/{}",
            std::os::fd::AsRawFd::as_raw_fd(&f)
        ))
        .unwrap(),
        &mut back,
    )
    .unwrap();
    assert_eq!(back, "scratch");
    assert_eq!(names(), ["b.txt"]);
    std::fs::remove_dir_all(base).unwrap();
}

#[test]
fn persist_new_never_replaces() {
    let (base, r) = tree("noreplace");
    let root = base.join("root");
    // A name taken after the upload began (another client's STOR): kept, and the next free
    // name is used instead.
    let mut t = r.create_temp(b"sub").unwrap();
    t.write_all(b"unique").unwrap();
    let got = t
        .persist_new([&b"b.txt"[..], b"b.txt.1", b"b.txt.2"])
        .unwrap();
    assert_eq!(got, b"b.txt.1");
    assert_eq!(std::fs::read(root.join("sub/b.txt")).unwrap(), b"b");
    assert_eq!(std::fs::read(root.join("sub/b.txt.1")).unwrap(), b"unique");
    // Every name taken: EEXIST, nothing replaced, nothing left behind.
    let mut t = r.create_temp(b"sub").unwrap();
    t.write_all(b"other").unwrap();
    let e = t.persist_new([&b"b.txt"[..], b"b.txt.1"]).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::EEXIST));
    let mut names: Vec<_> = std::fs::read_dir(root.join("sub"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["b.txt", "b.txt.1"]);
    assert_eq!(std::fs::read(root.join("sub/b.txt.1")).unwrap(), b"unique");
    // A bad name is refused, not created.
    let t = r.create_temp(b"sub").unwrap();
    assert!(t.persist_new([&b"x/y"[..]]).is_err());
    std::fs::remove_dir_all(base).unwrap();
}

#[test]
fn listing_types_entries_beneath_the_root() {
    let (base, r) = tree("list");
    let e = r.read_dir(b"").unwrap();
    let names: Vec<_> = e
        .iter()
        .map(|e| String::from_utf8_lossy(&e.name).into_owned())
        .collect();
    assert_eq!(names, ["a.txt", "abs", "in", "out", "outdir", "sub"]);
    let get = |n: &str| e.iter().find(|e| e.name == n.as_bytes()).unwrap();
    assert!(get("sub").is_dir() && !get("a.txt").is_dir());
    assert!(get("in").is_symlink() && get("in").target.is_some());
    assert!(get("out").target.is_none() && get("abs").target.is_none());
    assert!(
        get("outdir").target.is_none(),
        "`..` of the root is outside"
    );
    assert!(is_escape(&r.read_dir(b"outdir").unwrap_err()));
    std::fs::remove_dir_all(base).unwrap();
}
