//! Directory listings in the forms clients parse: `LIST` as `ls -l` lines (what FileZilla,
//! lftp, curl and ftplib's parsers expect), `NLST` bare names, and RFC 3659 `MLSD`/`MLST`
//! facts. Times are UTC; file owners are shown as `ftp` (the server's uids mean nothing to a
//! client and would leak local account names).

use bingfa_root::Entry;

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// (year, month 1-12, day, hour, minute, second) of a Unix time, UTC (Howard Hinnant's
/// civil-from-days).
pub fn civil(t: i64) -> (i64, u32, u32, u32, u32, u32) {
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

/// `YYYYMMDDHHMMSS` (MDTM, MLSD `modify`).
pub fn timeval(t: i64) -> String {
    let (y, mo, d, h, mi, s) = civil(t);
    format!("{y:04}{mo:02}{d:02}{h:02}{mi:02}{s:02}")
}

fn mode_string(st: &libc::stat) -> String {
    let kind = match st.st_mode & libc::S_IFMT {
        libc::S_IFDIR => 'd',
        libc::S_IFLNK => 'l',
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

/// One `ls -l` line: `-rw-r--r--    1 ftp      ftp          1234 Nov 30 11:34 name`; the
/// year replaces the time for files older than six months or in the future (as `ls` does).
pub fn ls_line(name: &str, st: &libc::stat, now: i64) -> String {
    let (y, mo, d, h, mi, _) = civil(st.st_mtime);
    let when = if st.st_mtime > now - 182 * 86400 && st.st_mtime <= now + 3600 {
        format!("{} {d:>2} {h:02}:{mi:02}", MONTHS[mo as usize - 1])
    } else {
        format!("{} {d:>2}  {y}", MONTHS[mo as usize - 1])
    };
    format!(
        "{} {:>4} ftp      ftp      {:>12} {when} {name}",
        mode_string(st),
        st.st_nlink,
        st.st_size
    )
}

/// A symlink is shown as what it leads to (beneath the root), so clients can enter linked
/// directories; a link leading outside or nowhere is shown as a link, and nothing else about it.
fn shown(e: &Entry) -> libc::stat {
    e.target.unwrap_or(e.lstat)
}

pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// `LIST` of a directory, CRLF-terminated lines.
pub fn list(entries: &[Entry]) -> Vec<u8> {
    let now = now();
    let mut out = Vec::new();
    for e in entries {
        let name = String::from_utf8_lossy(&e.name);
        out.extend_from_slice(ls_line(&name, &shown(e), now).as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// `NLST`: names only.
pub fn nlst(entries: &[Entry]) -> Vec<u8> {
    let mut out = Vec::new();
    for e in entries {
        out.extend_from_slice(&e.name);
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// RFC 3659 facts for one entry: `type=file;size=3;modify=20261130113400;perm=rwadf; name`.
pub fn facts(name: &str, st: &libc::stat, kind: &str, write: bool) -> String {
    let dir = st.st_mode & libc::S_IFMT == libc::S_IFDIR;
    let perm = match (dir, write) {
        (true, true) => "elcmpdf",
        (true, false) => "el",
        (false, true) => "rwadf",
        (false, false) => "r",
    };
    let size = if dir {
        String::new()
    } else {
        format!("size={};", st.st_size)
    };
    format!(
        "type={kind};{size}modify={};perm={perm};unix.mode=0{:o}; {name}",
        timeval(st.st_mtime),
        st.st_mode & 0o7777
    )
}

pub fn kind(st: &libc::stat) -> &'static str {
    if st.st_mode & libc::S_IFMT == libc::S_IFDIR {
        "dir"
    } else {
        "file"
    }
}

/// `MLSD`: a `cdir` line for the directory itself, then one per entry.
pub fn mlsd(dir: &libc::stat, entries: &[Entry], write: bool) -> Vec<u8> {
    let mut out = facts(".", dir, "cdir", write).into_bytes();
    out.extend_from_slice(b"\r\n");
    for e in entries {
        let Some(st) = e.target else { continue }; // a link out or dangling: nothing to tell
        out.extend_from_slice(
            facts(&String::from_utf8_lossy(&e.name), &st, kind(&st), write).as_bytes(),
        );
        out.extend_from_slice(b"\r\n");
    }
    out
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
}
