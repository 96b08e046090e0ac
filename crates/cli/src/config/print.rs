//! `--print-config`: the effective configuration as a TOML file that loads back: every key of
//! the command with its value (defaults filled in, unset ones as `# key =`), each under its
//! flag's help, paths absolute, and secrets elided.

use super::load::{File, Val};
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
}

/// The file `reader` (its command `cmd`, run with `m`) would print.
pub(crate) fn effective(
    reader: Reader,
    root: &Command,
    cmd: &Command,
    m: &ArgMatches,
    file: Option<&File>,
) -> String {
    let mut lines: Vec<Line> = Vec::new();
    for k in schema::keys(reader, cmd) {
        let id = k.arg.get_id().as_str();
        let source = m.value_source(id);
        if k.arg.is_hide_set() && matches!(source, None | Some(ValueSource::DefaultValue)) {
            continue; // a knob for tests, shown only when set
        }
        let raw: Option<Vec<String>> = m
            .get_raw(id)
            .map(|v| v.map(|s| s.to_string_lossy().into_owned()).collect());
        let value = raw.and_then(|vals| to_value(&k, &vals));
        lines.push(line(&k, value));
    }
    // Under `serve`, what the file sets for the services beyond `serve`'s own flags.
    if let (Reader::Serve, Some(file)) = (reader, file) {
        let mut seen: HashSet<(String, String)> = lines
            .iter()
            .map(|l| (l.section.clone(), l.key.clone()))
            .collect();
        for svc in schema::SERVICES {
            let r = Reader::Service(svc);
            for (k, entry) in file.for_reader(r, &r.command(root)) {
                if !seen.insert((k.section.clone(), k.key.clone())) {
                    continue;
                }
                let value = match &entry.val {
                    Val::Bool(b) => Some(Value::from(*b)),
                    Val::Text { text, quoted } => to_value(&k, &[file.text(&k.arg, text, *quoted)]),
                    Val::List(v) => {
                        let v: Vec<String> = v.iter().map(|t| file.text(&k.arg, t, true)).collect();
                        to_value(&k, &v)
                    }
                };
                lines.push(line(&k, value));
            }
        }
    }
    render(reader, file, lines)
}

fn line(k: &Key, value: Option<Value>) -> Line {
    Line {
        section: k.section.clone(),
        key: k.key.clone(),
        help: k.arg.get_help().map(|h| h.to_string()).unwrap_or_default(),
        value,
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
                    let _ = writeln!(out, "{} = {v}", l.key);
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
