//! A service's command line as `bingfa serve` builds it: what this supervisor derives from its
//! own options, with the configuration file's settings for that service placed by precedence.
//!
//! Three layers, later winning: the flags derived from `serve` options that were not given on
//! its command line (their defaults, or the file's top level); the file's section for the
//! service (and top-level or shared keys `serve` itself has no flag for); the flags derived
//! from `serve` options given on its command line. A flag set in a later layer is removed from
//! the earlier ones, so a repeatable flag (`--header`) is replaced, not added to.

use super::schema::{self, Reader};
use super::STATE;
use std::collections::HashSet;

/// One service's command line under construction. Derefs to the first layer, so a plain
/// `flags.extend([...])` adds flags the file may override; [`Flags::by`] says which `serve`
/// options a flag comes from, so that when one of them was given on the command line the flag
/// wins over the file.
pub(crate) struct Flags {
    service: &'static str,
    base: Vec<String>,
    explicit: Vec<String>,
}

impl std::ops::Deref for Flags {
    type Target = Vec<String>;
    fn deref(&self) -> &Vec<String> {
        &self.base
    }
}

impl std::ops::DerefMut for Flags {
    fn deref_mut(&mut self) -> &mut Vec<String> {
        &mut self.base
    }
}

impl Flags {
    /// An empty command line for `bingfa SERVICE serve`.
    pub(crate) fn new(service: &'static str) -> Flags {
        Flags {
            service,
            base: Vec::new(),
            explicit: Vec::new(),
        }
    }

    /// Where to add flags derived from the `serve` options `ids`: the last layer if any of them
    /// was given on `serve`'s command line, else the first.
    pub(crate) fn by(&mut self, ids: &[&str]) -> &mut Vec<String> {
        let given = STATE
            .get()
            .is_some_and(|s| ids.iter().any(|id| s.explicit.contains(*id)));
        if given {
            &mut self.explicit
        } else {
            &mut self.base
        }
    }

    /// The service.
    pub(crate) fn service(&self) -> &'static str {
        self.service
    }

    /// The ids of the service's flags whose value `serve` decides: those it derives from flags
    /// given to it, and those it derives otherwise that the file does not set for the service.
    pub(crate) fn derived(&self, cmd: &clap::Command) -> HashSet<String> {
        let (base, middle, last) = self.layers(cmd);
        let from_file: HashSet<&String> = middle.iter().map(|(id, _)| id).collect();
        base.iter()
            .filter(|(id, _)| !from_file.contains(id))
            .chain(last.iter())
            .map(|(id, _)| id.clone())
            .collect()
    }

    /// The three layers, as (flag id, words) in order.
    #[allow(clippy::type_complexity)]
    fn layers(
        &self,
        cmd: &clap::Command,
    ) -> (
        Vec<(String, Vec<String>)>,
        Vec<(String, Vec<String>)>,
        Vec<(String, Vec<String>)>,
    ) {
        let base = split(cmd, &self.base);
        let last = split(cmd, &self.explicit);
        let mut middle: Vec<(String, Vec<String>)> = Vec::new();
        let Some(state) = STATE.get() else {
            return (base, middle, last);
        };
        let reader = Reader::Service(self.service);
        let serve = Reader::Serve.command(&state.root);
        let taken: HashSet<(String, String)> = schema::keys(Reader::Serve, &serve)
            .into_iter()
            .map(|k| (k.section, k.key))
            .collect();
        if let Some(file) = &state.file {
            for (key, entry) in file.for_reader(reader, cmd) {
                if taken.contains(&(key.section.clone(), key.key.clone())) {
                    continue; // `serve` reads it and passes it on as it sees fit
                }
                let id = key.arg.get_id().as_str();
                if entry.is_default(&key.arg) && !base.iter().any(|(b, _)| b == id) {
                    continue; // the service's default, which nothing before changes
                }
                // Checked when the file was loaded.
                let words = file.tokens(&key, entry).unwrap_or_default();
                middle.push((id.to_string(), words));
            }
        }
        (base, middle, last)
    }

    /// The whole command line: `SERVICE serve` and the three layers.
    pub(crate) fn argv(&self) -> Vec<String> {
        let mut out = vec![self.service.to_string(), "serve".to_string()];
        let cmd = match STATE.get() {
            Some(state) => Reader::Service(self.service).command(&state.root),
            None => {
                out.extend(self.base.iter().cloned());
                out.extend(self.explicit.iter().cloned());
                return out;
            }
        };
        let (base, middle, last) = self.layers(&cmd);
        let later: HashSet<&str> = middle
            .iter()
            .chain(last.iter())
            .map(|(id, _)| id.as_str())
            .collect();
        let last_ids: HashSet<&str> = last.iter().map(|(id, _)| id.as_str()).collect();
        for (id, words) in &base {
            if !later.contains(id.as_str()) {
                out.extend(words.iter().cloned());
            }
        }
        for (id, words) in &middle {
            if !last_ids.contains(id.as_str()) {
                out.extend(words.iter().cloned());
            }
        }
        for (_, words) in last {
            out.extend(words);
        }
        out
    }
}

/// Whether the configuration file sets the flag `id` of `bingfa SERVICE serve` for it in a way
/// `bingfa serve` does not read itself (its section, say `[ftp] root`).
pub(crate) fn service_sets(service: &'static str, id: &str) -> bool {
    let Some(state) = STATE.get() else {
        return false;
    };
    let Some(file) = &state.file else {
        return false;
    };
    let reader = Reader::Service(service);
    let serve = Reader::Serve.command(&state.root);
    let taken: HashSet<(String, String)> = schema::keys(Reader::Serve, &serve)
        .into_iter()
        .map(|k| (k.section, k.key))
        .collect();
    file.for_reader(reader, &reader.command(&state.root))
        .iter()
        .any(|(k, _)| k.arg.get_id() == id && !taken.contains(&(k.section.clone(), k.key.clone())))
}

/// Group command-line words by the flag they belong to: `--name`, `--name=value`, or `--name
/// value` for a flag that takes one. Words of unknown flags stay, under their own name.
fn split(cmd: &clap::Command, words: &[String]) -> Vec<(String, Vec<String>)> {
    let mut out: Vec<(String, Vec<String>)> = Vec::new();
    let mut i = 0;
    while i < words.len() {
        let w = &words[i];
        i += 1;
        let name = w.trim_start_matches("--");
        let (name, inline) = match name.split_once('=') {
            Some((n, _)) => (n, true),
            None => (name, false),
        };
        let arg = cmd.get_arguments().find(|a| a.get_long() == Some(name));
        let id = arg.map_or(name.to_string(), |a| a.get_id().to_string());
        let mut group = vec![w.clone()];
        // A value follows unless given inline; an optional one (`--admin-socket [PATH]`) only
        // if the next word is not a flag, as clap reads it.
        let takes = arg.is_some_and(|a| {
            !schema::is_switch(a)
                && (!schema::value_optional(a)
                    || words.get(i).is_some_and(|w| !w.starts_with("--")))
        });
        if takes && !inline && i < words.len() {
            group.push(words[i].clone());
            i += 1;
        }
        out.push((id, group));
    }
    out
}
