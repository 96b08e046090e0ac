//! The client's view of paths: an absolute virtual path (`/a/b`) made from the working
//! directory and an argument. `.` is dropped and `..` pops a component; a `..` above the root
//! is refused (550) rather than clamped, so the client learns it cannot go there. The result,
//! without its leading slash, is what the `Root` resolves beneath the user's directory: the
//! kernel then refuses symlinks that lead outside, so no string trick escapes.
//!
//! LIST, NLST and STAT expand a wildcard in the last component ([`has_magic`], [`matches`]:
//! `*`, `?`, `[a-z]`, `[!x]`/`[^x]`, as vsftpd, ProFTPD and pyftpdlib do, so `mget *.txt`
//! works); the directory part is resolved as any path, so a pattern never reaches past it.

/// An absolute virtual path, normalised: starts with `/`, no `.`/`..`/empty components.
pub(crate) fn resolve(cwd: &str, arg: &str) -> Option<String> {
    let mut parts: Vec<&str> = Vec::new();
    let start = if arg.starts_with('/') { "" } else { cwd };
    for comp in start.split('/').chain(arg.split('/')) {
        match comp {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            c => parts.push(c),
        }
    }
    Some(format!("/{}", parts.join("/")))
}

/// The path relative to the root, as bytes for `bingfa_root` (empty = the root itself).
pub(crate) fn rel(vpath: &str) -> &[u8] {
    vpath.trim_start_matches('/').as_bytes()
}

/// The last component (the name a file is created under); `None` for the root.
pub(crate) fn split(vpath: &str) -> Option<(&str, &str)> {
    let i = vpath.rfind('/')?;
    let name = &vpath[i + 1..];
    (!name.is_empty()).then(|| (if i == 0 { "/" } else { &vpath[..i] }, name))
}

/// Whether a name is a wildcard pattern.
pub(crate) fn has_magic(name: &str) -> bool {
    name.contains(['*', '?', '['])
}

enum Tok {
    Char(char),
    Any,
    Star,
    /// `[...]`: ranges (a single character is a range of one), negated with `!` or `^`.
    Class(bool, Vec<(char, char)>),
}

fn tokens(pat: &str) -> Vec<Tok> {
    let cs: Vec<char> = pat.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < cs.len() {
        match cs[i] {
            '*' => out.push(Tok::Star),
            '?' => out.push(Tok::Any),
            '[' => {
                let mut j = i + 1;
                let neg = matches!(cs.get(j), Some('!') | Some('^'));
                if neg {
                    j += 1;
                }
                let mut ranges = Vec::new();
                let mut first = true;
                // `]` right after `[` (or `[!`) is a member, as in the shell.
                while j < cs.len() && (cs[j] != ']' || first) {
                    first = false;
                    if cs.get(j + 1) == Some(&'-') && j + 2 < cs.len() && cs[j + 2] != ']' {
                        ranges.push((cs[j], cs[j + 2]));
                        j += 3;
                    } else {
                        ranges.push((cs[j], cs[j]));
                        j += 1;
                    }
                }
                if j < cs.len() {
                    out.push(Tok::Class(neg, ranges));
                    i = j;
                } else {
                    out.push(Tok::Char('[')); // unterminated: a plain `[`
                }
            }
            c => out.push(Tok::Char(c)),
        }
        i += 1;
    }
    out
}

/// Whether `name` matches the wildcard pattern `pat`. A leading dot is matched only by a dot
/// (as the shell: `*` does not list hidden files). Linear backtracking over the last `*`, so
/// no pattern costs more than len(pattern) × len(name).
pub(crate) fn matches(pat: &str, name: &str) -> bool {
    if name.starts_with('.') && !pat.starts_with('.') {
        return false;
    }
    let p = tokens(pat);
    let n: Vec<char> = name.chars().collect();
    let one = |t: &Tok, c: char| match t {
        Tok::Char(x) => *x == c,
        Tok::Any => true,
        Tok::Class(neg, r) => r.iter().any(|&(a, b)| a <= c && c <= b) != *neg,
        Tok::Star => false,
    };
    let (mut pi, mut ni) = (0, 0);
    let mut back: Option<(usize, usize)> = None;
    while ni < n.len() {
        if pi < p.len() {
            if let Tok::Star = p[pi] {
                back = Some((pi, ni));
                pi += 1;
                continue;
            }
            if one(&p[pi], n[ni]) {
                pi += 1;
                ni += 1;
                continue;
            }
        }
        match back {
            Some((bp, bn)) => {
                back = Some((bp, bn + 1));
                pi = bp + 1;
                ni = bn + 1;
            }
            None => return false,
        }
    }
    p[pi..].iter().all(|t| matches!(t, Tok::Star))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolving() {
        assert_eq!(resolve("/", "a/b").unwrap(), "/a/b");
        assert_eq!(resolve("/a", "../b/./c/").unwrap(), "/b/c");
        assert_eq!(resolve("/a", "/x").unwrap(), "/x");
        assert_eq!(resolve("/a/b", "..").unwrap(), "/a");
        assert_eq!(resolve("/", "").unwrap(), "/");
        assert!(resolve("/", "..").is_none());
        assert!(resolve("/a", "../../etc/passwd").is_none());
        assert!(resolve("/", "/../etc").is_none());
        assert_eq!(rel("/a/b"), b"a/b");
        assert_eq!(rel("/"), b"");
        assert_eq!(split("/a/b"), Some(("/a", "b")));
        assert_eq!(split("/b"), Some(("/", "b")));
        assert_eq!(split("/"), None);
    }

    #[test]
    fn wildcards() {
        for (p, n, want) in [
            ("*.txt", "a.txt", true),
            ("*.txt", "a.txt.gz", false),
            ("*.txt", ".hidden.txt", false),
            (".*", ".hidden.txt", true),
            ("?.txt", "ab.txt", false),
            ("??.txt", "ab.txt", true),
            ("[ab]*", "b1", true),
            ("[!ab]*", "b1", false),
            ("[^ab]*", "c1", true),
            ("[a-c]x", "bx", true),
            ("[a-c]x", "dx", false),
            ("[]]", "]", true),
            ("[", "[", true),
            ("a[", "a[", true),
            ("*", "", true),
            ("ü*", "über", true),
        ] {
            assert_eq!(matches(p, n), want, "{p} {n}");
        }
        assert!(!matches("*a*a*a*a*a*a*a*a*b", &"a".repeat(5000)));
        assert!(has_magic("*.txt") && has_magic("a?") && has_magic("[x]"));
        assert!(!has_magic("plain.txt"));
    }
}
