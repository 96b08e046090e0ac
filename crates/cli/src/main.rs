//! `bingfa`: the one binary. Each subcommand lives in its own module and only parses arguments
//! and calls into a library crate; no protocol or model logic lives here.

mod chat;
mod chat_join;
mod ftp_client;
mod http;
mod lab;
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
    /// The project's main job: the HTTP server (same options as `bingfa http serve`).
    Serve(http::ServeArgs),
    /// TEMPORARY (until the ftp server branch is merged; the lead moves these variants under
    /// `bingfa ftp`): the FTP client, `ftp-client ls|get|put|shell`.
    #[command(name = "ftp-client", hide = true)]
    FtpClient {
        #[command(subcommand)]
        cmd: ftp_client::ClientCommand,
    },
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
        Command::Serve(args) => http::serve(args),
        // TEMPORARY: see Command::FtpClient.
        Command::FtpClient { cmd } => ftp_client::run(cmd),
    }
}
