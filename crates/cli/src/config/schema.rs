//! Where each flag sits in the configuration file, read off clap's own definition of the
//! commands, so a flag added to a service is a key of the file with no table to update.
//!
//! The rules: a flag `--some-name` of `bingfa X serve` is the key `some_name` of the section
//! `[X]` (the top level for `bingfa serve` itself), except the flags shared by several services,
//! which have a section of their own: the TLS certificate flags (clap's group `TlsArgs`,
//! `--tls-cert` → `[tls] cert`), the backplane (`--backplane` → `[backplane] url`, `--room` →
//! `[backplane] room`) and the log flags (`--log-NAME` → `[logs] NAME`). A top-level key that
//! is not a flag of `bingfa serve` but is one of a service (`head_timeout`) is a default for
//! every service that has it; the service's own section wins over it.

use clap::{Arg, ArgAction, Command};

/// The services, each a section of the file and a `bingfa NAME serve` command.
pub(crate) const SERVICES: [&str; 3] = ["http", "chat", "ftp"];
/// The sections shared by the services (and `bingfa serve`).
pub(crate) const SHARED: [&str; 3] = ["tls", "backplane", "logs"];
/// The flags that are about the file itself, not keys in it.
const OWN: [&str; 2] = ["config", "print_config"];

/// Who reads the file: `bingfa serve` (the top level) or one service's `serve`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Reader {
    /// `bingfa serve`.
    Serve,
    /// `bingfa NAME serve`, NAME one of [`SERVICES`].
    Service(&'static str),
}

impl Reader {
    /// The reader of the command at this subcommand path, if it reads a configuration file.
    pub(crate) fn of_path(path: &[&str]) -> Option<Reader> {
        match path {
            ["serve"] => Some(Reader::Serve),
            [svc, "serve"] => SERVICES
                .iter()
                .find(|s| *s == svc)
                .map(|s| Reader::Service(s)),
            _ => None,
        }
    }

    /// Its section: "" for the top level.
    pub(crate) fn section(self) -> &'static str {
        match self {
            Reader::Serve => "",
            Reader::Service(s) => s,
        }
    }

    /// Every reader.
    pub(crate) fn all() -> [Reader; 4] {
        [
            Reader::Serve,
            Reader::Service("http"),
            Reader::Service("chat"),
            Reader::Service("ftp"),
        ]
    }

    /// Its command in the binary's tree (built, so its arguments are final).
    pub(crate) fn command(self, root: &Command) -> Command {
        let mut c = match self {
            Reader::Serve => root.find_subcommand("serve"),
            Reader::Service(s) => root
                .find_subcommand(s)
                .and_then(|c| c.find_subcommand("serve")),
        }
        .expect("every reader is a subcommand of bingfa")
        .clone();
        c.build();
        c
    }

    /// How it is named in messages.
    pub(crate) fn name(self) -> String {
        match self {
            Reader::Serve => "bingfa serve".into(),
            Reader::Service(s) => format!("bingfa {s} serve"),
        }
    }
}

/// A flag of a reader and its place in the file.
#[derive(Clone, Debug)]
pub(crate) struct Key {
    /// Section ("" = top level).
    pub(crate) section: String,
    /// Key inside it.
    pub(crate) key: String,
    /// The flag.
    pub(crate) arg: Arg,
}

impl Key {
    /// `section.key`, or `key` at the top level: how messages name it.
    pub(crate) fn dotted(&self) -> String {
        dotted(&self.section, &self.key)
    }
}

/// `section.key`, or `key` at the top level.
pub(crate) fn dotted(section: &str, key: &str) -> String {
    if section.is_empty() {
        key.to_string()
    } else {
        format!("{section}.{key}")
    }
}

/// Every flag of `cmd` (the command of `reader`) that the file can set, with its place.
pub(crate) fn keys(reader: Reader, cmd: &Command) -> Vec<Key> {
    let tls: Vec<String> = cmd
        .get_groups()
        .filter(|g| g.get_id() == "TlsArgs")
        .flat_map(|g| g.get_args().map(|a| a.to_string()).collect::<Vec<_>>())
        .collect();
    cmd.get_arguments()
        .filter(|a| a.get_long().is_some())
        .filter(|a| !matches!(a.get_action(), ArgAction::Help | ArgAction::Version))
        .filter(|a| !matches!(a.get_action(), ArgAction::HelpShort | ArgAction::HelpLong))
        .filter(|a| !OWN.contains(&a.get_id().as_str()))
        .map(|a| {
            let id = a.get_id().as_str();
            let (section, key) = if tls.iter().any(|t| t == id) {
                ("tls", id.strip_prefix("tls_").unwrap_or(id))
            } else if id == "backplane" {
                ("backplane", "url")
            } else if id == "room" {
                ("backplane", "room")
            } else if let Some(rest) = id.strip_prefix("log_") {
                ("logs", rest)
            } else {
                (reader.section(), id)
            };
            Key {
                section: section.into(),
                key: key.into(),
                arg: a.clone(),
            }
        })
        .collect()
}

/// Whether the flag is a switch (`--hidden`): a boolean in the file.
pub(crate) fn is_switch(arg: &Arg) -> bool {
    matches!(arg.get_action(), ArgAction::SetTrue | ArgAction::SetFalse)
}

/// Whether the flag may be given without its value (`--admin-socket [PATH]`): `true` in the
/// file gives it bare.
pub(crate) fn value_optional(arg: &Arg) -> bool {
    arg.get_num_args().is_some_and(|n| n.min_values() == 0) && !is_switch(arg)
}

/// Whether the flag takes a list (repeatable): an array in the file.
pub(crate) fn is_list(arg: &Arg) -> bool {
    matches!(arg.get_action(), ArgAction::Append)
        || arg.get_num_args().is_some_and(|n| n.max_values() > 1)
}

/// Whether the flag's value is a path: relative ones in the file resolve against its directory.
pub(crate) fn is_path(arg: &Arg) -> bool {
    arg.get_value_parser().type_id() == std::any::TypeId::of::<std::path::PathBuf>()
}

/// How its value is written in TOML: a number where clap parses a number.
pub(crate) fn is_number(arg: &Arg) -> bool {
    use std::any::TypeId;
    let t = arg.get_value_parser().type_id();
    [
        TypeId::of::<u8>(),
        TypeId::of::<u16>(),
        TypeId::of::<u32>(),
        TypeId::of::<u64>(),
        TypeId::of::<usize>(),
        TypeId::of::<i32>(),
        TypeId::of::<i64>(),
        TypeId::of::<f32>(),
        TypeId::of::<f64>(),
    ]
    .iter()
    .any(|n| t == *n)
}
