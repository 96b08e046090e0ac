//! The configuration file: `bingfa serve --config bingfa.toml` (and each `bingfa X serve
//! --config`), with flags given on the command line winning over it, and `--print-config`.
//!
//! The file's keys are not a second schema to keep in step with the flags: they are the flags,
//! read off clap's definition of each command (`schema`), so a flag added to a service is a key
//! at once. A key's value goes through that flag's own clap value parser (`load`), so a bad
//! value is refused with clap's reason and the file's name, line and key. The values become
//! command-line words added after the real ones for every flag the command line did not give
//! (`resolve`), and clap parses the whole once more: its checks between flags (`requires`,
//! `conflicts_with`) hold for the file too. `bingfa serve` runs each service as a child process
//! with flags: the file's service sections become that child's flags in between those this
//! supervisor derives from its own defaults and those it derives from flags given to it
//! (`child`). `--print-config` writes the result back as TOML (`print`).
//!
//! Precedence, most specific first: a flag on the command line; the service's section
//! (`[http] bind`); the top-level key (`http_bind`, or `model` for every service); the
//! default.

mod child;
mod load;
mod print;
mod schema;

pub(crate) use child::{service_sets, Flags};

use clap::parser::ValueSource;
use clap::{ArgMatches, Command, FromArgMatches};
use load::File;
use schema::Reader;
use std::collections::HashSet;
use std::ffi::OsString;
use std::path::PathBuf;
use std::sync::OnceLock;

/// `--config` and `--print-config`, on `bingfa serve` and each `bingfa X serve`.
#[derive(clap::Args, Debug, Default)]
pub(crate) struct ConfigArgs {
    /// Read settings from this TOML file (see dist/bingfa.toml); flags given here win over it.
    /// Relative paths in it are relative to the file's directory.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Print the effective configuration as TOML (defaults filled in, secrets elided) and exit.
    #[arg(long)]
    print_config: bool,
}

/// What the command being run got from the file, for `bingfa serve` to build its children.
struct State {
    root: Command,
    file: Option<File>,
    /// The flags given on the real command line (by id).
    explicit: HashSet<String>,
    /// `bingfa serve --print-config`: its matches, to print with what it gives the services.
    printing: Option<ArgMatches>,
}

/// Whether `bingfa serve` is to print its configuration ([`print_serve`]) instead of running.
pub(crate) fn printing() -> bool {
    STATE.get().is_some_and(|s| s.printing.is_some())
}

/// `bingfa serve --print-config`: its own options, then each service's options that it does
/// not derive from its own (`children`: the command lines it would run), defaults filled in.
pub(crate) fn print_serve(children: [Flags; 3]) {
    let state = STATE.get().expect("resolve ran");
    let m = state.printing.as_ref().expect("printing");
    print!(
        "{}",
        print::serve(&state.root, m, state.file.as_ref(), &children)
    );
}

static STATE: OnceLock<State> = OnceLock::new();

/// Exit as clap does on a usage error (status 2), with `message`.
fn usage_exit(message: impl std::fmt::Display) -> ! {
    eprintln!("error: {message}");
    std::process::exit(2)
}

/// Parse the command line of `root` (the binary's command), taking the configuration file into
/// account. A service's `--print-config` is answered here (exit 0); `bingfa serve`'s once it
/// has planned its services ([`printing`]). Usage errors exit 2, as clap's.
pub(crate) fn resolve(mut root: Command) -> ArgMatches {
    root.build();
    let argv: Vec<OsString> = std::env::args_os().collect();
    let first = root.clone().get_matches_from(&argv);
    let (path, leaf) = leaf_of(&first);
    let Some(reader) = Reader::of_path(&path) else {
        return first;
    };
    let cmd = reader.command(&root);
    let args = ConfigArgs::from_arg_matches(leaf).unwrap_or_else(|e| e.exit());
    let explicit: HashSet<String> = cmd
        .get_arguments()
        .map(|a| a.get_id().to_string())
        .filter(|id| leaf.value_source(id) == Some(ValueSource::CommandLine))
        .collect();
    let file = args
        .config
        .as_deref()
        .map(|p| File::load(p, &root).unwrap_or_else(|e| usage_exit(e)));
    let matches = match &file {
        None => first,
        Some(f) => {
            // A flag given beats the file's flags that cannot go with it, either way round
            // (`--tls-self-signed` given drops the file's `[tls] cert`, and the reverse).
            let mut beaten: HashSet<String> = HashSet::new();
            for a in cmd.get_arguments() {
                if explicit.contains(a.get_id().as_str()) {
                    beaten.extend(
                        cmd.get_arg_conflicts_with(a)
                            .iter()
                            .map(|c| c.get_id().to_string()),
                    );
                } else if cmd
                    .get_arg_conflicts_with(a)
                    .iter()
                    .any(|c| explicit.contains(c.get_id().as_str()))
                {
                    beaten.insert(a.get_id().to_string());
                }
            }
            let mut extra: Vec<OsString> = Vec::new();
            for (key, entry) in f.for_reader(reader, &cmd) {
                let id = key.arg.get_id().as_str();
                if entry.is_default(&key.arg) || explicit.contains(id) || beaten.contains(id) {
                    continue;
                }
                let words = f.tokens(&key, entry).unwrap_or_else(|e| usage_exit(e));
                extra.extend(words.into_iter().map(OsString::from));
            }
            root.clone()
                .try_get_matches_from(argv.iter().cloned().chain(extra))
                .unwrap_or_else(|e| {
                    eprintln!("{}: with the flags it gives:", f.shown());
                    e.exit()
                })
        }
    };
    let (_, leaf) = leaf_of(&matches);
    // `bingfa serve` prints once it knows what it would give each service (`print_serve`).
    if args.print_config && reader != Reader::Serve {
        print!("{}", print::effective(reader, &cmd, leaf, file.as_ref()));
        std::process::exit(0);
    }
    let printing = args.print_config.then(|| leaf.clone());
    let _ = STATE.set(State {
        root,
        file,
        explicit,
        printing,
    });
    matches
}

/// The subcommand path and the innermost subcommand's matches.
fn leaf_of(m: &ArgMatches) -> (Vec<&str>, &ArgMatches) {
    let mut path = Vec::new();
    let mut m = m;
    while let Some((name, sub)) = m.subcommand() {
        path.push(name);
        m = sub;
    }
    (path, m)
}
