//! `shell URL`: the prompt-guided client. On a terminal it has line editing and history
//! (rustyline); otherwise it reads one command per line from stdin, prints no prompt, and
//! exits 1 at the end if any command failed. A server refusal is printed with its code and
//! text and the session goes on; a lost connection ends it. What the server says (the
//! directory in the prompt and from `pwd`/`mkdir`, reply texts) is printed escaped.

use super::{print_entries, transfer};
use anyhow::Context as _;
use bingfa_ftp::client::{display_name, local_name, Client, FtpUrl};
use rustyline::error::ReadlineError;
use std::io::{BufRead as _, IsTerminal as _};
use std::path::{Path, PathBuf};

const HELP: &str = "\
commands (quote names with spaces: get \"a b.txt\"):
  ls [-l] [DIR]          list a directory (long form with -l)
  cd DIR                 change the remote directory
  pwd                    print the remote directory
  get REMOTE [LOCAL]     download (resumes LOCAL.part if present)
  put [-c] LOCAL [REMOTE] upload (-c: resume, appending what the server lacks)
  mkdir DIR              create a directory
  rmdir DIR              remove an empty directory
  rm FILE                delete a file
  rename FROM TO         rename a file or directory
  help                   this list
  quit                   leave (also exit, bye, end of input)";

enum Flow {
    Continue,
    Quit,
}

pub(super) fn run(mut c: Client, url: &FtpUrl) -> anyhow::Result<()> {
    if !url.path.is_empty() {
        c.cwd(&url.path)?;
    }
    let interactive = std::io::stdin().is_terminal();
    let mut failed = false;
    if interactive {
        let mut rl = rustyline::DefaultEditor::new()?;
        println!(
            "connected to {}; type help for the commands",
            url.authority()
        );
        loop {
            let cwd = c.pwd().map_or("?".into(), |d| display_name(&d));
            let line = match rl.readline(&format!("ftp {cwd}> ")) {
                Ok(l) => l,
                Err(ReadlineError::Interrupted) => continue,
                Err(ReadlineError::Eof) => break,
                Err(e) => return Err(e.into()),
            };
            if !line.trim().is_empty() {
                let _ = rl.add_history_entry(line.as_str());
            }
            match step(&mut c, &line, &mut failed)? {
                Flow::Continue => {}
                Flow::Quit => break,
            }
        }
    } else {
        for line in std::io::stdin().lock().lines() {
            match step(&mut c, &line?, &mut failed)? {
                Flow::Continue => {}
                Flow::Quit => break,
            }
        }
    }
    c.quit();
    if failed && !interactive {
        anyhow::bail!("some commands failed");
    }
    Ok(())
}

/// Runs one line; prints its error and carries on unless the connection is gone.
fn step(c: &mut Client, line: &str, failed: &mut bool) -> anyhow::Result<Flow> {
    match exec(c, line) {
        Ok(flow) => Ok(flow),
        Err(e) => {
            if transfer::connection_lost(&e) {
                return Err(e.context("the connection to the server is lost"));
            }
            eprintln!("error: {e:#}");
            *failed = true;
            Ok(Flow::Continue)
        }
    }
}

fn exec(c: &mut Client, line: &str) -> anyhow::Result<Flow> {
    let words = shlex::split(line).context("unbalanced quotes")?;
    let Some((cmd, args)) = words.split_first() else {
        return Ok(Flow::Continue);
    };
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    match (cmd.as_str(), args.as_slice()) {
        ("ls" | "dir", rest) => {
            let long = rest.first() == Some(&"-l");
            let rest = if long { &rest[1..] } else { rest };
            let path = match rest {
                [] => "",
                [p] => p,
                _ => anyhow::bail!("usage: ls [-l] [DIR]"),
            };
            print_entries(&c.list(path)?, long);
        }
        ("cd", [dir]) => c.cwd(dir)?,
        ("pwd", []) => println!("{}", display_name(&c.pwd()?)),
        ("get", [remote, rest @ ..]) if rest.len() <= 1 => {
            let local = match rest.first() {
                Some(l) if Path::new(l).is_dir() => Path::new(l).join(name_of(remote)?),
                Some(l) => PathBuf::from(l),
                None => PathBuf::from(name_of(remote)?),
            };
            let n = transfer::download(c, remote, &local, false)?;
            println!(
                "got {} ({n} bytes)",
                display_name(&local.display().to_string())
            );
        }
        ("put", rest) => {
            let resume = rest.first() == Some(&"-c");
            let rest = if resume { &rest[1..] } else { rest };
            let (local, remote) = match rest {
                [l] => (*l, name_of(l)?),
                [l, r] => (*l, r.to_string()),
                _ => anyhow::bail!("usage: put [-c] LOCAL [REMOTE]"),
            };
            let n = transfer::upload(c, Path::new(local), &remote, resume)?;
            println!("put {} ({n} bytes sent)", display_name(&remote));
        }
        ("mkdir", [dir]) => println!("created {}", display_name(&c.mkd(dir)?)),
        ("rmdir", [dir]) => c.rmd(dir)?,
        ("rm" | "delete", [file]) => c.dele(file)?,
        ("rename" | "mv", [from, to]) => c.rename(from, to)?,
        ("help" | "?", _) => println!("{HELP}"),
        ("quit" | "exit" | "bye", []) => return Ok(Flow::Quit),
        (
            "cd" | "pwd" | "get" | "mkdir" | "rmdir" | "rm" | "delete" | "rename" | "mv" | "quit"
            | "exit" | "bye",
            _,
        ) => anyhow::bail!("wrong arguments for {cmd}; type help"),
        _ => anyhow::bail!("unknown command {cmd:?}; type help"),
    }
    Ok(Flow::Continue)
}

/// The sanitised last component of a path typed or listed.
fn name_of(path: &str) -> anyhow::Result<String> {
    local_name(path).with_context(|| format!("no usable file name in {path:?}"))
}
