//! Directory listings in the forms clients parse: `LIST` as `ls -l` lines (what FileZilla,
//! lftp, curl and ftplib's parsers expect), `NLST` bare names, and RFC 3659 `MLSD`/`MLST`
//! facts. Times are UTC; file owners are shown as `ftp` (the server's uids mean nothing to a
//! client and would leak local account names). Which names are listed at all is [`listable`].

use bingfa_root::Entry;
use std::io::{self, Write};

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// (year, month 1-12, day, hour, minute, second) of a Unix time, UTC (Howard Hinnant's
/// civil-from-days).
pub(crate) fn civil(t: i64) -> (i64, u32, u32, u32, u32, u32) {
    let days = t.div_euclid(86400);
    let secs = t.rem_euclid(86400);
    let z = days + 719468;
    let era = z.div_euclid(146097);
    let doe = z.rem_euclid(146097);
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (
        y,
        m,
        d,
        (secs / 3600) as u32,
        (secs % 3600 / 60) as u32,
        (secs % 60) as u32,
    )
}

/// The earliest and latest times a 14-digit `YYYYMMDDHHMMSS` can say: 0001-01-01 00:00:00
/// and 9999-12-31 23:59:59 UTC.
const FIRST: i64 = -62_135_596_800;
const LAST: i64 = 253_402_300_799;

/// `YYYYMMDDHHMMSS` (MDTM, MLSD `modify`); a time outside years 1–9999 (a file touched to year
/// 20000 or before year 1) is clamped, so the value is always the 14 digits clients parse.
pub(crate) fn timeval(t: i64) -> String {
    let (y, mo, d, h, mi, s) = civil(t.clamp(FIRST, LAST));
    format!("{y:04}{mo:02}{d:02}{h:02}{mi:02}{s:02}")
}

/// Days since 1970-01-01 of a civil date (Howard Hinnant's days-from-civil).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (i64::from(m) + 9) % 12;
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

/// The Unix time of a `YYYYMMDDHHMMSS` (an optional `.fff` fraction is ignored), `None` unless
/// it is a real date and time (MFMT's argument).
pub(crate) fn parse_timeval(v: &str) -> Option<i64> {
    let digits = v.split_once('.').map_or(v, |(d, f)| {
        if f.is_empty() || !f.bytes().all(|b| b.is_ascii_digit()) {
            ""
        } else {
            d
        }
    });
    if digits.len() != 14 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n = |a: usize, b: usize| digits[a..b].parse::<u32>().ok();
    let (y, mo, d, h, mi, s) = (
        n(0, 4)?,
        n(4, 6)?,
        n(6, 8)?,
        n(8, 10)?,
        n(10, 12)?,
        n(12, 14)?,
    );
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let mdays = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    if y == 0 || !(1..=12).contains(&mo) || d == 0 || d > mdays[mo as usize - 1] {
        return None;
    }
    if h > 23 || mi > 59 || s > 59 {
        return None;
    }
    let days = days_from_civil(i64::from(y), mo, d);
    Some(days * 86400 + i64::from(h * 3600 + mi * 60 + s))
}

/// Whether a name on disk may appear in a listing. One rule for LIST, NLST, MLSD and STAT:
/// a name must be UTF-8 (commands are, so any other name could be listed but never named
/// back) and have no control characters (a CR or LF would end the line and forge an entry;
/// ESC and the like would reach the user's terminal). Such names are left out, never mangled.
pub(crate) fn listable(name: &[u8]) -> bool {
    std::str::from_utf8(name).is_ok_and(|s| !s.chars().any(char::is_control))
}

fn mode_string(st: &libc::stat) -> String {
    let kind = match st.st_mode & libc::S_IFMT {
        libc::S_IFDIR => 'd',
        libc::S_IFLNK => 'l',
        libc::S_IFIFO => 'p',
        libc::S_IFSOCK => 's',
        libc::S_IFCHR => 'c',
        libc::S_IFBLK => 'b',
        _ => '-',
    };
    let mut s = String::with_capacity(10);
    s.push(kind);
    for shift in [6, 3, 0] {
        let bits = (st.st_mode >> shift) & 7;
        s.push(if bits & 4 != 0 { 'r' } else { '-' });
        s.push(if bits & 2 != 0 { 'w' } else { '-' });
        s.push(if bits & 1 != 0 { 'x' } else { '-' });
    }
    s
}

fn regular(st: &libc::stat) -> bool {
    st.st_mode & libc::S_IFMT == libc::S_IFREG
}

/// One `ls -l` line: `-rw-r--r--    1 ftp      ftp          1234 Nov 30 11:34 name`; the
/// year replaces the time for files older than six months or in the future (as `ls` does).
/// FIFOs, sockets and devices show as what they are (`p`, `s`, `c`, `b`), size 0.
pub(crate) fn ls_line(name: &str, st: &libc::stat, now: i64) -> String {
    let t = st.st_mtime.clamp(FIRST, LAST);
    let (y, mo, d, h, mi, _) = civil(t);
    let when = if t > now - 182 * 86400 && t <= now + 3600 {
        format!("{} {d:>2} {h:02}:{mi:02}", MONTHS[mo as usize - 1])
    } else {
        format!("{} {d:>2}  {y}", MONTHS[mo as usize - 1])
    };
    let size = match st.st_mode & libc::S_IFMT {
        libc::S_IFREG | libc::S_IFDIR | libc::S_IFLNK => st.st_size,
        _ => 0,
    };
    format!(
        "{} {:>4} ftp      ftp      {:>12} {when} {name}",
        mode_string(st),
        st.st_nlink,
        size
    )
}

/// A symlink is shown as what it leads to (beneath the root), so clients can enter linked
/// directories; a link leading outside or nowhere is shown as a link, and nothing else about it.
fn shown(e: &Entry) -> libc::stat {
    e.target.unwrap_or(e.lstat)
}

pub(crate) fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// `LIST` (and `STAT` of a directory, with `indent`: each line starts with a space, as a
/// multi-line reply's body) of entries, CRLF-terminated lines.
pub(crate) fn list_to(entries: &[Entry], indent: bool, out: &mut impl Write) -> io::Result<()> {
    let now = now();
    for e in entries {
        let name = String::from_utf8_lossy(&e.name);
        let sp = if indent { " " } else { "" };
        write!(out, "{sp}{}\r\n", ls_line(&name, &shown(e), now))?;
    }
    Ok(())
}

/// `NLST`: names only.
pub(crate) fn nlst_to(entries: &[Entry], out: &mut impl Write) -> io::Result<()> {
    for e in entries {
        out.write_all(&e.name)?;
        out.write_all(b"\r\n")?;
    }
    Ok(())
}

/// RFC 3659 facts for one entry: `type=file;size=3;modify=20261130113400;perm=rwadf; name`.
/// A FIFO, socket or device is `type=OS.unix=fifo` (`socket`, `chr`, `blk`; RFC 3659 §7.5.1)
/// with no size and no permissions: it can't be retrieved.
pub(crate) fn facts(name: &str, st: &libc::stat, kind: &str, write: bool) -> String {
    let dir = st.st_mode & libc::S_IFMT == libc::S_IFDIR;
    let perm = match (dir, regular(st), write) {
        (true, _, true) => "elcmpdf",
        (true, _, false) => "el",
        (false, true, true) => "rwadf",
        (false, true, false) => "r",
        (false, false, true) => "df",
        (false, false, false) => "",
    };
    let size = if regular(st) {
        format!("size={};", st.st_size)
    } else {
        String::new()
    };
    format!(
        "type={kind};{size}modify={};perm={perm};unix.mode=0{:o}; {name}",
        timeval(st.st_mtime),
        st.st_mode & 0o7777
    )
}

pub(crate) fn kind(st: &libc::stat) -> &'static str {
    match st.st_mode & libc::S_IFMT {
        libc::S_IFDIR => "dir",
        libc::S_IFREG => "file",
        libc::S_IFIFO => "OS.unix=fifo",
        libc::S_IFSOCK => "OS.unix=socket",
        libc::S_IFCHR => "OS.unix=chr",
        libc::S_IFBLK => "OS.unix=blk",
        _ => "OS.unix=unknown",
    }
}

/// `MLSD`: a `cdir` line for the directory itself, then one per entry.
pub(crate) fn mlsd_to(
    dir: &libc::stat,
    entries: &[Entry],
    write: bool,
    out: &mut impl Write,
) -> io::Result<()> {
    write!(out, "{}\r\n", facts(".", dir, "cdir", write))?;
    for e in entries {
        let Some(st) = e.target else { continue }; // a link out or dangling: nothing to tell
        let name = String::from_utf8_lossy(&e.name);
        write!(out, "{}\r\n", facts(&name, &st, kind(&st), write))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(timeval(0), "19700101000000");
        assert_eq!(timeval(1_700_000_000), "20231114221320");
        assert_eq!(timeval(951_782_400), "20000229000000");
        // SAFETY: zeroed stat is valid plain data.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        st.st_mode = libc::S_IFREG | 0o644;
        st.st_nlink = 1;
        st.st_size = 1234;
        st.st_mtime = 1_700_000_000;
        assert_eq!(
            ls_line("a b.txt", &st, 1_700_000_000 + 86400),
            "-rw-r--r--    1 ftp      ftp              1234 Nov 14 22:13 a b.txt"
        );
        assert_eq!(
            ls_line("old", &st, 1_800_000_000),
            "-rw-r--r--    1 ftp      ftp              1234 Nov 14  2023 old"
        );
        st.st_mode = libc::S_IFDIR | 0o755;
        assert!(ls_line("d", &st, 0).starts_with("drwxr-xr-x "));
        assert_eq!(
            facts("d", &st, "dir", false),
            "type=dir;modify=20231114221320;perm=el;unix.mode=0755; d"
        );
    }

    #[test]
    fn times_are_always_fourteen_digits() {
        assert_eq!(timeval(253_402_300_800), "99991231235959");
        assert_eq!(timeval(i64::MAX), "99991231235959");
        assert_eq!(timeval(-62_135_596_801), "00010101000000");
        assert_eq!(timeval(i64::MIN), "00010101000000");
        assert_eq!(timeval(-1), "19691231235959");
        // SAFETY: zeroed stat is valid plain data.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        st.st_mode = libc::S_IFREG | 0o644;
        st.st_mtime = i64::MAX;
        assert!(ls_line("x", &st, 0).contains(" Dec 31  9999 x"));
        assert!(facts("x", &st, "file", false).contains(";modify=99991231235959;"));
        for (v, t) in [
            ("19700101000000", 0),
            ("20231114221320", 1_700_000_000),
            ("20231114221320.123", 1_700_000_000),
            ("20000229000000", 951_782_400),
            ("99991231235959", 253_402_300_799),
            ("00010101000000", -62_135_596_800),
        ] {
            assert_eq!(parse_timeval(v), Some(t), "{v}");
            assert_eq!(timeval(t), v.split('.').next().unwrap());
        }
        for bad in [
            "",
            "2023111422132",
            "202311142213200",
            "20231314221320",
            "20230229000000",
            "20231114241320",
            "00000101000000",
            "2023111422132x",
            "20231114221320.",
            "+2023111422132",
        ] {
            assert_eq!(parse_timeval(bad), None, "{bad}");
        }
    }

    #[test]
    fn special_files_show_as_what_they_are() {
        // SAFETY: zeroed stat is valid plain data.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        st.st_mtime = 1_700_000_000;
        for (mode, c, k) in [
            (libc::S_IFIFO, 'p', "OS.unix=fifo"),
            (libc::S_IFSOCK, 's', "OS.unix=socket"),
            (libc::S_IFCHR, 'c', "OS.unix=chr"),
            (libc::S_IFBLK, 'b', "OS.unix=blk"),
        ] {
            st.st_mode = mode | 0o644;
            st.st_size = 7;
            assert!(ls_line("n", &st, 1_700_000_000).starts_with(&format!("{c}rw-r--r-- ")));
            assert!(ls_line("n", &st, 1_700_000_000).contains(" 0 Nov 14"));
            assert_eq!(kind(&st), k);
            st.st_mode = libc::S_IFLNK | 0o777;
            assert!(
                ls_line("n", &st, 1_700_000_000).contains(" 7 Nov 14"),
                "a link's own size"
            );
            st.st_mode = mode | 0o644;
            assert_eq!(
                facts("n", &st, k, false),
                format!("type={k};modify=20231114221320;perm=;unix.mode=0644; n")
            );
        }
    }

    #[test]
    fn names_that_cannot_be_listed() {
        assert!(listable(b"plain name.txt") && listable("ü €".as_bytes()));
        for bad in [
            &b"a\r\n-rw-r--r-- 1 ftp ftp 999999 Jan 1 2000 FORGED-ENTRY"[..],
            b"a\nb",
            b"tab\there",
            b"esc\x1b]0;title\x07",
            b"del\x7f",
            "c1\u{9b}31m".as_bytes(),
            b"new\xff.bin",
        ] {
            assert!(!listable(bad), "{bad:?}");
        }
    }
}
