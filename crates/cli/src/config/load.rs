//! Reading the file: TOML with each key's line kept (toml_edit keeps spans), every key checked
//! against the flags of the commands that read it and every value against the flag's own clap
//! value parser, so an error reads `FILE:LINE: KEY: clap's reason`.

use super::schema::{self, dotted, Key, Reader};
use clap::{Arg, Command};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use toml_edit::{ImDocument, Item, Value};

/// A value as the file gives it.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Val {
    /// `true` / `false`.
    Bool(bool),
    /// A string, or a number written as text (`"5"` and `5` mean the same to clap).
    Text {
        /// The text clap parses.
        text: String,
        /// It was a TOML string (a path candidate), not a number.
        quoted: bool,
    },
    /// An array of the above, for a repeatable flag.
    List(Vec<String>),
}

/// A key set in the file.
#[derive(Clone, Debug)]
pub(crate) struct Entry {
    /// 1-based line of the key.
    pub(crate) line: usize,
    /// Its value.
    pub(crate) val: Val,
}

/// A loaded, checked configuration file.
#[derive(Debug)]
pub(crate) struct File {
    /// The path as given (for messages).
    pub(crate) path: PathBuf,
    /// Where relative paths in it resolve.
    dir: PathBuf,
    /// (section, key) → what the file sets; section "" is the top level.
    pub(crate) entries: BTreeMap<(String, String), Entry>,
}

/// A file error, already worded `FILE:LINE: KEY: why`.
#[derive(Debug)]
pub(crate) struct Error(pub(crate) String);

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())]
        .iter()
        .filter(|b| **b == b'\n')
        .count()
        + 1
}

impl File {
    /// Read and check `path` against every reader's flags (`root` is the binary's command).
    pub(crate) fn load(path: &Path, root: &Command) -> Result<File, Error> {
        let shown = path.display();
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error(format!("{shown}: cannot read the configuration file: {e}")))?;
        let doc = ImDocument::parse(text.as_str()).map_err(|e| {
            let line = e.span().map_or(1, |s| line_of(&text, s.start));
            Error(format!(
                "{shown}:{line}: not valid TOML: {}",
                e.message().trim_end()
            ))
        })?;
        let dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let dir = std::fs::canonicalize(&dir).unwrap_or(dir);
        let mut file = File {
            path: path.to_path_buf(),
            dir,
            entries: BTreeMap::new(),
        };
        let at = |span: Option<std::ops::Range<usize>>| span.map_or(0, |s| line_of(&text, s.start));
        let sections: Vec<&str> = schema::SERVICES
            .iter()
            .chain(schema::SHARED.iter())
            .copied()
            .collect();
        for (name, item) in doc.as_table().iter() {
            let (key, _) = doc.as_table().get_key_value(name).expect("iterated");
            let line = at(key.span());
            match item {
                Item::Table(t) => {
                    let section = name.replace('-', "_");
                    if !sections.contains(&section.as_str()) {
                        return Err(Error(format!(
                            "{shown}:{line}: [{name}]: unknown section (the sections are {})",
                            sections.join(", ")
                        )));
                    }
                    for (k, v) in t.iter() {
                        let (kk, _) = t.get_key_value(k).expect("iterated");
                        file.add(&section, k, at(kk.span()), v)?;
                    }
                }
                Item::Value(Value::InlineTable(_)) => {
                    return Err(Error(format!(
                        "{shown}:{line}: {name}: write the section as a [{name}] header, not an \
                         inline table"
                    )))
                }
                other => file.add("", name, line, other)?,
            }
        }
        file.check(root)?;
        Ok(file)
    }

    fn add(&mut self, section: &str, key: &str, line: usize, item: &Item) -> Result<(), Error> {
        let shown = self.path.display();
        let name = dotted(section, key);
        let scalar = |v: &Value| -> Option<(String, bool)> {
            match v {
                Value::String(s) => Some((s.value().clone(), true)),
                Value::Integer(i) => Some((i.value().to_string(), false)),
                Value::Float(f) => Some((f.value().to_string(), false)),
                _ => None,
            }
        };
        let val = match item {
            Item::Value(Value::Boolean(b)) => Val::Bool(*b.value()),
            Item::Value(Value::Array(a)) => {
                let mut out = Vec::new();
                for v in a.iter() {
                    match scalar(v) {
                        Some((t, _)) => out.push(t),
                        None => {
                            return Err(Error(format!(
                                "{shown}:{line}: {name}: an array of strings or numbers expected"
                            )))
                        }
                    }
                }
                Val::List(out)
            }
            Item::Value(v) => match scalar(v) {
                Some((text, quoted)) => Val::Text { text, quoted },
                None => {
                    return Err(Error(format!(
                        "{shown}:{line}: {name}: expected a string, a number, a boolean or an array"
                    )))
                }
            },
            _ => {
                return Err(Error(format!(
                    "{shown}:{line}: {name}: expected a value, not a table"
                )))
            }
        };
        let k = (section.to_string(), key.replace('-', "_"));
        if let Some(first) = self.entries.get(&k) {
            return Err(Error(format!(
                "{shown}:{line}: {name}: already set on line {} (`-` and `_` are the same)",
                first.line
            )));
        }
        self.entries.insert(k, Entry { line, val });
        Ok(())
    }

    /// Every key is a flag of some reader, and every value passes each reader's parser.
    fn check(&self, root: &Command) -> Result<(), Error> {
        let readers: Vec<(Reader, Command)> = Reader::all()
            .into_iter()
            .map(|r| (r, r.command(root)))
            .collect();
        let mut known = std::collections::BTreeSet::new();
        for (reader, cmd) in &readers {
            for k in schema::keys(*reader, cmd) {
                known.insert((k.section.clone(), k.key.clone()));
            }
            for (key, entry) in self.for_reader(*reader, cmd) {
                self.tokens(&key, entry)?;
            }
        }
        for ((section, key), e) in &self.entries {
            // A top-level key may be any service's flag (a default for the services having it).
            let ok = known.contains(&(section.clone(), key.clone()))
                || (section.is_empty()
                    && schema::SERVICES
                        .iter()
                        .any(|s| known.contains(&(s.to_string(), key.clone()))));
            if !ok {
                let of = if section.is_empty() {
                    "`bingfa serve` or of a service".to_string()
                } else if schema::SERVICES.contains(&section.as_str()) {
                    format!("`bingfa {section} serve`")
                } else {
                    format!("the [{section}] section")
                };
                let near = known
                    .iter()
                    .filter(|(s, _)| s == section)
                    .map(|(_, k)| k)
                    .filter(|k| distance(k, key) <= 2.max(key.len() / 4))
                    .min_by_key(|k| distance(k, key))
                    .map(|k| format!("; did you mean `{k}`?"))
                    .unwrap_or_default();
                return Err(Error(format!(
                    "{}:{}: {}: unknown key (not a flag of {of}){near}",
                    self.path.display(),
                    e.line,
                    dotted(section, key)
                )));
            }
        }
        Ok(())
    }

    /// What the file sets for `reader` (whose command is `cmd`): each of its flags at its own
    /// place, or, for a service's own flag not set in its section, the top-level key of the
    /// same name.
    pub(crate) fn for_reader<'a>(&'a self, reader: Reader, cmd: &Command) -> Vec<(Key, &'a Entry)> {
        schema::keys(reader, cmd)
            .into_iter()
            .filter_map(|k| {
                let own = self.entries.get(&(k.section.clone(), k.key.clone()));
                let inherited = || {
                    (reader != Reader::Serve && k.section == reader.section())
                        .then(|| self.entries.get(&(String::new(), k.key.clone())))
                        .flatten()
                };
                let e = own.or_else(inherited)?;
                // Messages name the key where the file has it.
                let k = match own {
                    Some(_) => k,
                    None => Key {
                        section: String::new(),
                        ..k
                    },
                };
                Some((k, e))
            })
            .collect()
    }

    /// The command-line words for `key` set to `entry` (`--name=value` per value, `--name` for
    /// a switch), checked by the flag's own clap value parser.
    pub(crate) fn tokens(&self, key: &Key, entry: &Entry) -> Result<Vec<String>, Error> {
        let arg = &key.arg;
        let long = arg.get_long().expect("keys have long names");
        let fail = |why: &str| {
            Error(format!(
                "{}:{}: {}: {why}",
                self.path.display(),
                entry.line,
                key.dotted()
            ))
        };
        let path = |text: &str, quoted: bool| self.text(arg, text, quoted);
        let words: Vec<String> = match &entry.val {
            Val::Bool(b) if schema::is_switch(arg) || schema::value_optional(arg) => {
                if *b {
                    vec![format!("--{long}")]
                } else {
                    vec![]
                }
            }
            Val::Bool(_) if schema::is_list(arg) => {
                return Err(fail("expected an array (this flag is repeatable)"))
            }
            Val::Bool(b) => vec![format!("--{long}={b}")],
            _ if schema::is_switch(arg) => return Err(fail("expected true or false")),
            Val::Text { text, quoted } => vec![format!("--{long}={}", path(text, *quoted))],
            Val::List(items) if schema::is_list(arg) => items
                .iter()
                .map(|t| format!("--{long}={}", path(t, true)))
                .collect(),
            Val::List(_) => return Err(fail("expected one value, not an array")),
        };
        if !words.is_empty() {
            check(arg, &words).map_err(|why| fail(&why))?;
        }
        Ok(words)
    }

    /// The value `text` means for `arg`: a relative path (a string, not `-`) is relative to the
    /// file's directory.
    pub(crate) fn text(&self, arg: &Arg, text: &str, quoted: bool) -> String {
        if quoted && schema::is_path(arg) && text != "-" && Path::new(text).is_relative() {
            self.dir.join(text).display().to_string()
        } else {
            text.to_string()
        }
    }

    /// The configuration file's path, for messages.
    pub(crate) fn shown(&self) -> String {
        self.path.display().to_string()
    }
}

impl Entry {
    /// Whether it sets the flag to its default (then it adds no flag: a printed configuration
    /// lists defaults, and `--access-log-format combined` alone would trip clap's `requires`).
    pub(crate) fn is_default(&self, arg: &Arg) -> bool {
        let defaults: Vec<String> = arg
            .get_default_values()
            .iter()
            .map(|d| d.to_string_lossy().into_owned())
            .collect();
        match &self.val {
            Val::Bool(b) => !b && (schema::is_switch(arg) || schema::value_optional(arg)),
            Val::Text { text, .. } => defaults == [text.clone()],
            Val::List(items) => &defaults == items,
        }
    }
}

/// Levenshtein distance, for the suggestion after an unknown key.
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}

/// Parse `words` with a command holding only a copy of `arg` (same action, arity and value
/// parser, none of its relations to other flags): clap's own verdict on the value.
fn check(arg: &Arg, words: &[String]) -> Result<(), String> {
    let mut a = Arg::new(arg.get_id().clone())
        .long(arg.get_long().expect("keys have long names").to_string())
        .action(arg.get_action().clone())
        .value_parser(arg.get_value_parser().clone());
    if let Some(n) = arg.get_num_args() {
        a = a.num_args(n);
    }
    if let Some(names) = arg.get_value_names() {
        a = a.value_names(names.iter().cloned());
    }
    let cmd = Command::new("bingfa")
        .no_binary_name(true)
        .disable_help_flag(true)
        .arg(a);
    match cmd.try_get_matches_from(words) {
        Ok(_) => Ok(()),
        Err(e) => {
            let text = e.render().to_string();
            let head = text.split("\n\n").next().unwrap_or(&text);
            let head = head.strip_prefix("error: ").unwrap_or(head);
            Err(head.lines().map(str::trim).collect::<Vec<_>>().join(" "))
        }
    }
}
