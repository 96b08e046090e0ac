//! `bingfa lab`: experiments and benchmarks, printed as a table or as JSON. One file per
//! experiment; each only parses its arguments, calls bingfa-lab and prints.

mod chat;
mod efficiency;
mod ftp;
mod ipc;
mod models;

use std::net::SocketAddr;

/// Arguments of `bingfa lab`.
#[derive(clap::Args)]
pub(crate) struct Args {
    #[command(subcommand)]
    what: Lab,
}

#[derive(clap::Subcommand)]
enum Lab {
    /// The same server under each concurrency model, driven by the lab's own load generator:
    /// rate, p50/p99 latency, errors and peak RSS per model.
    Models(models::Args),
    /// The course's efficiency test: 10 CPU-bound and 10 IO-bound jobs in one line, on
    /// threads, on processes, on a pool and as coroutines, beside CPython (the GIL, measured).
    Efficiency(efficiency::Args),
    /// bingfa-mp's IPC (queues, pipes, process start) beside CPython's multiprocessing.
    Ipc(ipc::Args),
    /// Fan-out load on the chat room per model, beside Redis PUBLISH/SUBSCRIBE and a
    /// tokio-chat baseline (the pseudo-models `redis` and `tokio-chat`).
    Chat(chat::Args),
    /// bingfa's FTP server beside vsftpd and pyftpdlib on loopback: RETR/STOR throughput,
    /// anonymous logins/s, many clients downloading at once, memory of idle sessions.
    Ftp(ftp::Args),
    /// The tokio `examples/chat.rs`-style room `lab chat` measures as its baseline.
    #[command(hide = true)]
    ChatBaseline {
        #[arg(long, default_value = "127.0.0.1:0")]
        bind: SocketAddr,
    },
}

pub(crate) fn run(args: Args) -> anyhow::Result<()> {
    // Ctrl-C, SIGTERM or SIGHUP stop every server and script the lab started, then exit.
    bingfa_lab::spawn::stop_children_on_signals();
    match args.what {
        Lab::Models(a) => models::run(a),
        Lab::Efficiency(a) => efficiency::run(a),
        Lab::Ipc(a) => ipc::run(a),
        Lab::Chat(a) => chat::run(a),
        Lab::Ftp(a) => ftp::run(a),
        Lab::ChatBaseline { bind } => Ok(bingfa_lab::chat::baseline::serve(bind)?),
    }
}
