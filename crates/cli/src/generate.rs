//! `bingfa completions SHELL` and `bingfa man`: the shell completions and the manual pages,
//! generated from the same clap definitions that parse the command line (clap_complete,
//! clap_mangen), so they never drift from the flags. The Debian package ships both
//! (scripts/deb.sh writes them from the binary it packages).

use anyhow::Context as _;
use clap::CommandFactory as _;
use std::io::Write as _;
use std::path::PathBuf;

/// Arguments of `bingfa completions`.
#[derive(clap::Args, Debug)]
pub(crate) struct CompletionsArgs {
    /// The shell to complete for; the script goes to standard output (e.g. `bingfa completions
    /// bash > /etc/bash_completion.d/bingfa`).
    shell: clap_complete::Shell,
}

/// Arguments of `bingfa man`.
#[derive(clap::Args, Debug)]
pub(crate) struct ManArgs {
    /// Write one page per command into this directory (`bingfa.1`, `bingfa-serve.1`,
    /// `bingfa-http-serve.1`…) and print each file's path; without it, print `bingfa.1` to
    /// standard output (`bingfa man | man -l -`).
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
}

/// The whole command tree as users type it (`bingfa`, then its subcommands), without clap's
/// `help` subcommand, which has no page or completion worth having.
fn command() -> clap::Command {
    let mut cmd = crate::Cli::command().disable_help_subcommand(true);
    // Fills in each subcommand's display name (`bingfa-http-serve`, the page's name) and bin
    // name (`bingfa http serve`, what its synopsis shows).
    cmd.build();
    cmd
}

pub(crate) fn completions(args: CompletionsArgs) -> anyhow::Result<()> {
    let mut cmd = command();
    let mut out = Vec::new();
    clap_complete::generate(args.shell, &mut cmd, "bingfa", &mut out);
    std::io::stdout()
        .write_all(&out)
        .context("cannot write the completions")
}

pub(crate) fn man(args: ManArgs) -> anyhow::Result<()> {
    let cmd = command();
    let Some(dir) = args.out else {
        let mut page = Vec::new();
        page_of(cmd).render(&mut page)?;
        return std::io::stdout()
            .write_all(&page)
            .context("cannot write the manual page");
    };
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let mut stack = vec![cmd];
    while let Some(cmd) = stack.pop() {
        stack.extend(cmd.get_subcommands().filter(|s| !s.is_hide_set()).cloned());
        let page = page_of(cmd);
        let path = dir.join(page.get_filename());
        let mut text = Vec::new();
        page.render(&mut text)?;
        std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
        println!("{}", path.display());
    }
    Ok(())
}

/// One command's page, in section 1. The footer names the package and its version (a
/// subcommand has no version of its own), and no date, so a rebuild gives the same bytes.
fn page_of(cmd: clap::Command) -> clap_mangen::Man {
    clap_mangen::Man::new(cmd)
        .source(format!("bingfa {}", env!("CARGO_PKG_VERSION")))
        .manual("bingfa manual")
}
