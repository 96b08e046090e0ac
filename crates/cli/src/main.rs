//! `bingfa`: the one binary. Each subcommand lives in its own module and only parses arguments
//! and calls into a library crate; no protocol or model logic lives here.

mod chat;
mod chat_join;
mod ftp;
mod ftp_client;
mod http;
mod lab;
mod serve;
mod tls;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "bingfa",
    version,
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
    /// The group chat room: serve, announce.
    Chat(chat::Args),
    /// FTP: the server (serve, passwd) and the client (ls, get, put, shell).
    Ftp(ftp::Args),
    /// The main job: the HTTP server, the chat room (line and web) and the FTP server, under
    /// one model, on 127.0.0.1 by default.
    Serve(serve::Args),
}

fn main() -> anyhow::Result<()> {
    // A child started by re-exec (bingfa-mp's spawn) enters here and never returns.
    let _mp = bingfa_mp::init();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    match cli.command {
        Command::Lab(args) => lab::run(args),
        Command::Http(args) => http::run(args),
        Command::Chat(args) => chat::run(args),
        Command::Ftp(args) => ftp::run(args),
        Command::Serve(args) => serve::run(args),
    }
}
