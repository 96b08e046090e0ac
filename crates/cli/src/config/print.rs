//! `--print-config`: the effective configuration as a TOML file that loads back: every key of
//! the command with its value (defaults filled in, unset ones as `# key =`), each under its
//! flag's help, paths absolute, and secrets elided.

use super::load::File;
use super::schema::{self, Key, Reader};
use clap::parser::ValueSource;
use clap::{ArgMatches, Command};
use std::collections::HashSet;
use std::fmt::Write as _;
use std::path::Path;
use toml_edit::{Array, Value};

/// What stands in for a secret.
const ELIDED: &str = "<elided>";

struct Line {
    section: String,
    key: String,
    help: String,
    value: Option<Value>,
    /// Shown as `# key = value`: a service's default under `serve`, which as a setting would
    /// hide the top level's value for that service when the printed file is read back.
    commented: bool,
}

/// What `bingfa serve` prints: its own options (`m`), then for each service the options not
/// derived from them, as that service would run with `children`' command lines.
pub(crate) fn serve(
    root: &Command,
    m: &ArgMatches,
    file: Option<&File>,
    children: &[super::Flags],
) -> String {
    let serve_cmd = Reader::Serve.command(root);
    let mut lines = own_lines(Reader::Serve, &serve_cmd, m, false, |_| false);
    let mut broken = Vec::new();
    let mut seen: HashSet<(String, String)> = lines
        .iter()
        .map(|l| (l.section.clone(), l.key.clone()))
        .collect();
    for child in children {
        let reader = Reader::Service(child.service());
        let cmd = reader.command(root);
        let derived = child.derived(&cmd);
        // `SERVICE serve FLAGS` to `cmd`, the `serve` subcommand itself: its name, then FLAGS.
        let argv = child.argv().into_iter().skip(1);
        let cm = match cmd.clone().try_get_matches_from(argv) {
            Ok(cm) => cm,
            Err(e) => {
                // The service would refuse it at start: say so where its section would be.
                let why = e.render().to_string();
                let why = why.split("\n\n").next().unwrap_or_default();
                broken.push(format!(
                    "# [{}] is not shown: `bingfa {} serve` would refuse what it is given: {}",
                    child.service(),
                    child.service(),
                    why.lines().map(str::trim).collect::<Vec<_>>().join(" ")
                ));
                continue;
            }
        };
        let more = own_lines(reader, &cmd, &cm, true, |k| {
            derived.contains(k.arg.get_id().as_str())
                || seen.contains(&(k.section.clone(), k.key.clone()))
        });
        for l in more {
            seen.insert((l.section.clone(), l.key.clone()));
            lines.push(l);
        }
    }
    let mut out = render(Reader::Serve, file, lines);
    for b in broken {
        out.push_str(&format!("\n{b}\n"));
    }
    out
}

/// A line per flag of `cmd` (run with `m`) but those `skip` says.
fn own_lines(
    reader: Reader,
    cmd: &Command,
    m: &ArgMatches,
    comment_defaults: bool,
    skip: impl Fn(&Key) -> bool,
) -> Vec<Line> {
    let mut lines = Vec::new();
    for k in schema::keys(reader, cmd) {
        if skip(&k) {
            continue;
        }
        let id = k.arg.get_id().as_str();
        let source = m.value_source(id);
        if k.arg.is_hide_set() && matches!(source, None | Some(ValueSource::DefaultValue)) {
            continue; // a knob for tests, shown only when set
        }
        let raw: Option<Vec<String>> = m
            .get_raw(id)
            .map(|v| v.map(|s| s.to_string_lossy().into_owned()).collect());
        let value = raw.and_then(|vals| to_value(&k, &vals));
        let mut l = line(&k, value);
        l.commented = comment_defaults && source == Some(ValueSource::DefaultValue);
        lines.push(l);
    }
    lines
}

/// What `bingfa X serve` (`reader`, its command `cmd`, run with `m`) prints.
pub(crate) fn effective(
    reader: Reader,
    cmd: &Command,
    m: &ArgMatches,
    file: Option<&File>,
) -> String {
    render(reader, file, own_lines(reader, cmd, m, false, |_| false))
}

fn line(k: &Key, value: Option<Value>) -> Line {
    Line {
        section: k.section.clone(),
        key: k.key.clone(),
        help: k.arg.get_help().map(|h| h.to_string()).unwrap_or_default(),
        value,
        commented: false,
    }
}

/// The TOML value of a flag given `vals` (None: unset).
fn to_value(k: &Key, vals: &[String]) -> Option<Value> {
    let arg = &k.arg;
    if schema::is_switch(arg) {
        return Some(Value::from(vals.first().is_some_and(|v| v == "true")));
    }
    if schema::value_optional(arg) && vals.is_empty() {
        return Some(Value::from(true));
    }
    // A relative path on the command line or as a default is relative to where we run: say
    // where that is, so the printed file means the same from any directory. (The file's own
    // relative paths were made absolute when it was read.)
    let one = |v: &str| -> Value {
        let v = elide(&k.key, v);
        if schema::is_number(arg) {
            if let Ok(i) = v.parse::<i64>() {
                return Value::from(i);
            }
            if let Ok(f) = v.parse::<f64>() {
                return Value::from(f);
            }
        }
        if schema::is_path(arg) && v != "-" && v != ELIDED && Path::new(&v).is_relative() {
            if let Ok(cwd) = std::env::current_dir() {
                let p = cwd.join(&v);
                let p = if v == "." { cwd } else { p };
                return Value::from(p.display().to_string());
            }
        }
        Value::from(v)
    };
    if schema::is_list(arg) {
        return Some(Value::Array(vals.iter().map(|v| one(v)).collect::<Array>()));
    }
    vals.first().map(|v| one(v))
}

/// A secret's stand-in: a key naming a password, secret or token is elided whole; a URL's
/// password (`redis://user:PASSWORD@host`) is elided from it.
fn elide(key: &str, value: &str) -> String {
    if ["password", "secret", "token"]
        .iter()
        .any(|w| key.contains(w))
    {
        return ELIDED.into();
    }
    if let Some((scheme, rest)) = value.split_once("://") {
        let auth_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        if let Some(at) = rest[..auth_end].rfind('@') {
            let userinfo = &rest[..at];
            if let Some((user, _)) = userinfo.split_once(':') {
                return format!("{scheme}://{user}:{ELIDED}@{}", &rest[at + 1..]);
            }
        }
    }
    value.into()
}

fn render(reader: Reader, file: Option<&File>, lines: Vec<Line>) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# The effective configuration of `{}`{}: flags given on the command line,",
        reader.name(),
        file.map(|f| format!(" with {}", f.shown()))
            .unwrap_or_default()
    );
    let _ = writeln!(
        out,
        "# then the file, then the defaults. Secrets are elided; `# key =` is unset."
    );
    let order: Vec<&str> = std::iter::once("")
        .chain(schema::SERVICES)
        .chain(schema::SHARED)
        .collect();
    for section in order {
        let here: Vec<&Line> = lines.iter().filter(|l| l.section == section).collect();
        if here.is_empty() {
            continue;
        }
        if !section.is_empty() {
            let _ = writeln!(out, "\n[{section}]");
        }
        for l in here {
            out.push('\n');
            for h in wrap(&l.help, 94) {
                let _ = writeln!(out, "# {h}");
            }
            match &l.value {
                Some(v) => {
                    let hash = if l.commented { "# " } else { "" };
                    let _ = writeln!(out, "{hash}{} = {v}", l.key);
                }
                None => {
                    let _ = writeln!(out, "# {} =", l.key);
                }
            }
        }
    }
    out
}

/// `text` in lines of at most `width` characters, broken at spaces.
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for para in text.lines() {
        let mut cur = String::new();
        for word in para.split_whitespace() {
            if !cur.is_empty() && cur.chars().count() + 1 + word.chars().count() > width {
                out.push(std::mem::take(&mut cur));
            }
            if !cur.is_empty() {
                cur.push(' ');
            }
            cur.push_str(word);
        }
        if !cur.is_empty() {
            out.push(cur);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::elide;

    #[test]
    fn a_url_keeps_its_user_and_host_but_not_its_password() {
        assert_eq!(
            elide("backplane", "redis://app:s3cr3t@db:6379/2"),
            "redis://app:<elided>@db:6379/2"
        );
        assert_eq!(
            elide("backplane", "redis://:s3cr3t@db"),
            "redis://:<elided>@db"
        );
        assert_eq!(elide("backplane", "redis://db:6379"), "redis://db:6379");
        assert_eq!(elide("ftp_password", "hunter2"), "<elided>");
    }
}
