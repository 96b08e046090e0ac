//! Directory listings: MLSD lines (RFC 3659 facts, machine-readable) when the server offers
//! them, else LIST lines in the `ls -l` form most servers send (and the DOS form some send).
//! A line that fits neither is skipped rather than guessed at. A time that is not made of
//! the characters a time is written with is dropped (`modified: None`), so only the name is
//! free text.

/// Whether `s` looks like a time field (`20240102030405.123`, `12:00`, `2024`, `01-31-24`,
/// `10:00AM`): anything else from a server is not shown as one.
fn time_like(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 32
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, ':' | '.' | '-'))
}

/// What a listing entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A plain file.
    File,
    /// A directory.
    Dir,
    /// A symbolic link.
    Link,
    /// Anything else (a device, a socket, a type the listing did not say).
    Other,
}

/// One entry of a listing. `name` is exactly what the server sent: untrusted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The name, as sent.
    pub name: String,
    /// What the entry is.
    pub kind: Kind,
    /// Its size in bytes, when the listing gave one.
    pub size: Option<u64>,
    /// The modification time as the server gave it (MLSD: `YYYYMMDDHHMMSS`; LIST: `Jan 2 12:00`).
    pub modified: Option<String>,
}

/// Parses one MLSD line (`type=file;size=5;modify=20240101000000; name`). The current and
/// parent directory entries (`cdir`, `pdir`) give `None`.
pub fn parse_mlsd_line(line: &str) -> Option<Entry> {
    let (facts, name) = line.split_once(' ')?;
    // `.` and `..` are never entries, whatever facts a server puts before them (LIST agrees).
    if name.is_empty() || name == "." || name == ".." {
        return None;
    }
    let mut e = Entry {
        name: name.to_string(),
        kind: Kind::Other,
        size: None,
        modified: None,
    };
    for fact in facts.split(';').filter(|f| !f.is_empty()) {
        let (k, v) = fact.split_once('=')?;
        match k.to_ascii_lowercase().as_str() {
            "type" => {
                e.kind = match v.to_ascii_lowercase().as_str() {
                    "file" => Kind::File,
                    "dir" => Kind::Dir,
                    "cdir" | "pdir" => return None,
                    t if t.contains("slink") || t.contains("symlink") => Kind::Link,
                    _ => Kind::Other,
                }
            }
            "size" | "sizd" => e.size = v.parse().ok(),
            "modify" => e.modified = time_like(v).then(|| v.to_string()),
            _ => {}
        }
    }
    Some(e)
}

const MONTHS: [&str; 12] = [
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];

/// Whitespace-separated tokens with their byte ranges, so the name keeps its inner spaces.
fn tokens(line: &str) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut start = None;
    for (i, c) in line.char_indices() {
        match (c.is_whitespace(), start) {
            (true, Some(s)) => {
                out.push((s, i));
                start = None;
            }
            (false, None) => start = Some(i),
            _ => {}
        }
    }
    if let Some(s) = start {
        out.push((s, line.len()));
    }
    out
}

/// Parses one LIST line, `ls -l` form (with or without a group column) or DOS form.
/// `total N` lines, `.` and `..` give `None`.
pub fn parse_list_line(line: &str) -> Option<Entry> {
    let t = tokens(line);
    if t.is_empty() {
        return None;
    }
    let tok = |i: usize| &line[t[i].0..t[i].1];
    if t.len() >= 4 && tok(0).contains('-') && tok(1).to_ascii_uppercase().ends_with('M') {
        return parse_dos(line, &t);
    }
    let perms = tok(0);
    let kind = match perms.as_bytes().first()? {
        b'-' => Kind::File,
        b'd' => Kind::Dir,
        b'l' => Kind::Link,
        _ if perms.len() == 10 => Kind::Other,
        _ => return None,
    };
    // Find "MONTH DAY TIME|YEAR" preceded by a numeric size; the name is the rest of the line.
    let m = (3..t.len().saturating_sub(3)).find(|&i| {
        MONTHS.contains(&tok(i).to_ascii_lowercase().as_str())
            && tok(i + 1).parse::<u8>().is_ok()
            && tok(i - 1).parse::<u64>().is_ok()
    })?;
    let mut name = line[t[m + 2].1..].strip_prefix(' ')?;
    if kind == Kind::Link {
        name = name.split(" -> ").next().unwrap_or(name);
    }
    if name.is_empty() || name == "." || name == ".." {
        return None;
    }
    Some(Entry {
        name: name.to_string(),
        kind,
        size: tok(m - 1).parse().ok(),
        modified: time_like(tok(m + 2))
            .then(|| format!("{} {} {}", tok(m), tok(m + 1), tok(m + 2))),
    })
}

/// `01-31-24  10:00AM       <DIR>          name` or `... 1234 name`.
fn parse_dos(line: &str, t: &[(usize, usize)]) -> Option<Entry> {
    let tok = |i: usize| &line[t[i].0..t[i].1];
    let (kind, size) = if tok(2).eq_ignore_ascii_case("<DIR>") {
        (Kind::Dir, None)
    } else {
        (Kind::File, Some(tok(2).parse().ok()?))
    };
    let name = line[t[2].1..].trim_start();
    if name.is_empty() || name == "." || name == ".." {
        return None;
    }
    Some(Entry {
        name: name.to_string(),
        kind,
        size,
        modified: (time_like(tok(0)) && time_like(tok(1)))
            .then(|| format!("{} {}", tok(0), tok(1))),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(name: &str, kind: Kind, size: Option<u64>) -> (String, Kind, Option<u64>) {
        (name.into(), kind, size)
    }
    fn short(x: Entry) -> (String, Kind, Option<u64>) {
        (x.name, x.kind, x.size)
    }

    #[test]
    fn mlsd() {
        let l = "type=file;size=1048576;modify=20240102030405;perm=r; a b.txt";
        let x = parse_mlsd_line(l).unwrap();
        assert_eq!(x.modified.as_deref(), Some("20240102030405"));
        assert_eq!(short(x), e("a b.txt", Kind::File, Some(1048576)));
        let x = parse_mlsd_line("Type=dir;Modify=20240102030405; sub").unwrap();
        assert_eq!(short(x), e("sub", Kind::Dir, None));
        assert_eq!(parse_mlsd_line("type=cdir; ."), None);
        assert_eq!(parse_mlsd_line("type=pdir; .."), None);
        assert_eq!(parse_mlsd_line("garbage"), None);
        // Found by fuzz/ (ftp_client): without a `type` fact, or with another type, `.` and
        // `..` came back as entries named `.` and `..`.
        for l in [
            "x=y; .",
            "x=y; ..",
            "type=dir; ..",
            "type=file;size=1; .",
            "; ..",
        ] {
            assert_eq!(parse_mlsd_line(l), None, "{l:?}");
        }
        // A modify fact that is not a time is dropped, the entry kept.
        let x = parse_mlsd_line("type=file;modify=2024\x1b[2J\x07; f").unwrap();
        assert_eq!((x.name.as_str(), x.modified), ("f", None));
    }

    #[test]
    fn list_time_that_is_not_a_time_is_dropped() {
        let x = parse_list_line("-rw-r--r-- 1 u g 3 Jan 01 12:00\x1b[2J name").unwrap();
        assert_eq!((x.name.as_str(), x.modified), ("name", None));
        let x = parse_list_line("-rw-r--r-- 1 u g 3 Jan 01 2024 name").unwrap();
        assert_eq!(x.modified.as_deref(), Some("Jan 01 2024"));
    }

    #[test]
    fn unix_ls() {
        let cases = [
            (
                "-rw-r--r--    1 1000     1000      5242880 Jan 02 12:00 big.bin",
                e("big.bin", Kind::File, Some(5242880)),
            ),
            (
                "drwxr-xr-x   2 ftp ftp 4096 Dec 31  2023 my dir",
                e("my dir", Kind::Dir, Some(4096)),
            ),
            (
                "lrwxrwxrwx 1 owner 7 Mar  1 09:15 link -> target",
                e("link", Kind::Link, Some(7)),
            ),
            (
                "-rw-r--r-- 1 u g 3 Feb 29 2024 ../../evil",
                e("../../evil", Kind::File, Some(3)),
            ),
            (
                "-rw-r--r-- 1 u g 3 Feb 29 2024  leading space",
                e(" leading space", Kind::File, Some(3)),
            ),
        ];
        for (line, want) in cases {
            assert_eq!(parse_list_line(line).map(short), Some(want), "{line}");
        }
        for skip in [
            "total 12",
            "drwxr-xr-x 2 u g 4096 Jan 1 12:00 .",
            "drwxr-xr-x 2 u g 4096 Jan 1 12:00 ..",
            "",
        ] {
            assert_eq!(parse_list_line(skip), None, "{skip}");
        }
    }

    #[test]
    fn dos() {
        let x = parse_list_line("01-31-24  10:00AM       <DIR>          Program Files").unwrap();
        assert_eq!(short(x), e("Program Files", Kind::Dir, None));
        let x = parse_list_line("01-31-24  10:00PM                 1234 a.txt").unwrap();
        assert_eq!(short(x), e("a.txt", Kind::File, Some(1234)));
    }
}
