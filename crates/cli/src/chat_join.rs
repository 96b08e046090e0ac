//! `bingfa chat join ADDR [--name NAME]`: the terminal client (bingfa_chat::client). Exits 0
//! when the server closes or the user quits, non-zero with a clear error when it cannot
//! connect.

use anyhow::Context as _;
use bingfa_chat::client::{self, Outcome};
use clap::Parser;

#[derive(Parser, Debug)]
pub(crate) struct Args {
    /// The room's line port, HOST:PORT (what `chat listening on` printed).
    pub addr: String,
    /// Send this name first instead of typing it when the room asks.
    #[arg(long)]
    pub name: Option<String>,
}

pub(crate) fn run(args: Args) -> anyhow::Result<()> {
    let outcome = client::run(&args.addr, args.name.as_deref())
        .with_context(|| format!("chat join {}", args.addr))?;
    tracing::debug!(?outcome, "chat client finished");
    match outcome {
        Outcome::ServerClosed | Outcome::UserQuit | Outcome::InputEnded => Ok(()),
    }
}
