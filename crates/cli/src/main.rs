//! `bingfa`: the one binary. Each subcommand lives in its own module and only parses arguments
//! and calls into a library crate; no protocol or model logic lives here.

mod chat;
mod chat_join;
mod config;
mod ftp;
mod ftp_client;
mod generate;
mod http;
mod lab;
mod logs;
mod metrics;
mod model_arg;
mod serve;
mod tls;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use std::process::ExitCode;

/// `bingfa --version`: the crate's version and the git revision it was built from (build.rs),
/// e.g. `bingfa 0.1.0 (1a2b3c4)`, `(1a2b3c4-dirty)`, or `(unknown)` outside a checkout.
const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), " (", env!("BINGFA_GIT_REV"), ")");

#[derive(Parser)]
#[command(
    name = "bingfa",
    version = VERSION,
    about = "并发 — concurrency toolkit, servers and lab"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Experiments and benchmarks that compare the models.
    Lab(lab::Args),
    /// The static HTTP server.
    Http(http::Args),
    /// The group chat room: serve, join, announce.
    Chat(chat::Args),
    /// FTP: the server (serve, passwd) and the client (ls, get, put, shell).
    Ftp(ftp::Args),
    /// The main job: the HTTP server, the chat room (line and web) and the FTP server, under
    /// one model, on 127.0.0.1 by default.
    Serve(serve::Args),
    /// Print the shell completion script for bash, zsh or fish (also elvish, powershell).
    Completions(generate::CompletionsArgs),
    /// Write the manual pages, one per command (`--out DIR`), or print `bingfa.1`.
    Man(generate::ManArgs),
}

fn main() -> ExitCode {
    // A child started by re-exec (bingfa-mp's spawn) enters here and never returns.
    let _mp = bingfa_mp::init();
    // The command line, with `--config FILE` read in (and `--print-config` answered).
    let matches = config::resolve(Cli::command());
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    // A service's own --log-format/--log-level; the defaults for the other commands.
    logs::init(match &cli.command {
        Command::Http(a) => a.log_args(),
        Command::Chat(a) => a.log_args(),
        Command::Ftp(a) => a.log_args(),
        Command::Serve(a) => Some(&a.log),
        Command::Lab(_) | Command::Completions(_) | Command::Man(_) => None,
    });
    let result = match cli.command {
        Command::Lab(args) => lab::run(args),
        Command::Http(args) => http::run(args),
        Command::Chat(args) => chat::run(args),
        Command::Ftp(args) => ftp::run(args),
        Command::Serve(args) => serve::run(args),
        Command::Completions(args) => generate::completions(args),
        Command::Man(args) => generate::man(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", error_text(&e));
            ExitCode::FAILURE
        }
    }
}

/// An error and its causes on one line, `what: why: root cause`, each said once: a cause whose
/// text the one before already contains (a library error that prints its source, e.g.
/// `I/O error: Connection refused (os error 111)` over that io::Error) is not repeated.
fn error_text(e: &anyhow::Error) -> String {
    let mut out = String::new();
    let mut last = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if text.is_empty() || last.contains(&text) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&text);
        last = text;
    }
    out
}
