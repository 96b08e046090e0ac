//! Downloads and uploads with a progress bar and resume. A download is written to
//! `NAME.part` and renamed only when complete, so NAME is never half-written and an
//! interrupted or short download leaves a `.part` that the next run continues (REST); the
//! `.part` itself is opened with care (`part.rs`). An upload resumes from the server copy's
//! SIZE with APPE (or REST + STOR where APPE is not implemented). Every name printed is
//! escaped: remote names, and local ones made from them.

use super::part::{self, part_path, shown};
use anyhow::{bail, Context as _};
use bingfa_ftp::client::{display_name, local_name, Client, Error, Kind, StoreMode};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::collections::HashSet;
use std::fs::{self, File};
use std::io::{Seek, SeekFrom};
use std::path::Path;

/// A progress bar on stderr (indicatif hides it when stderr is not a terminal).
fn bar(len: Option<u64>, pos: u64, label: &str) -> ProgressBar {
    let pb = ProgressBar::with_draw_target(len, ProgressDrawTarget::stderr());
    let style = if len.is_some() {
        "{msg} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} ETA {eta}"
    } else {
        "{msg} {bytes} {binary_bytes_per_sec}"
    };
    pb.set_style(
        ProgressStyle::with_template(style)
            .expect("a valid template")
            .progress_chars("=> "),
    );
    pb.set_message(label.to_string());
    pb.set_position(pos);
    pb
}

fn is_refusal_of(e: &Error, command: &str) -> bool {
    matches!(e, Error::Reply { command: c, .. } if c.starts_with(command))
}

/// Whether `e` leaves the control connection unusable (closed, or out of step after an I/O
/// error mid-transfer): then nothing more can be asked of the server.
pub(super) fn connection_lost(e: &anyhow::Error) -> bool {
    e.chain().any(|x| {
        matches!(
            x.downcast_ref::<Error>(),
            Some(Error::Closed | Error::Io(_))
        )
    })
}

/// Downloads `remote` to `local` through `local.part`, resuming an existing `.part` (and
/// `local` itself when `resume_local`). Returns the file's size. When the server told the
/// size (SIZE, or else the 150 reply's `(N bytes)`) and another number of bytes came, the
/// download is an error and the `.part` is kept, as curl's exit 18: a server (or a path)
/// that ends a transfer early with 226 does not leave a short file under the proper name.
pub(super) fn download(
    c: &mut Client,
    remote: &str,
    local: &Path,
    resume_local: bool,
) -> anyhow::Result<u64> {
    let part = part_path(local);
    let what = display_name(remote);
    // SIZE is optional (RFC 3659): without it the 150 reply's count, if any, is the check.
    let remote_size = c.size(remote).ok();
    let part_missing = matches!(
        fs::symlink_metadata(&part),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound
    );
    if resume_local && part_missing && fs::symlink_metadata(local).is_ok_and(|m| m.is_file()) {
        fs::rename(local, &part).with_context(|| format!("renaming {}", shown(local)))?;
    }
    let mut f = part::open(&part)?;
    let mut offset = f.metadata()?.len();
    if let Some(size) = remote_size {
        if offset > size {
            eprintln!(
                "{} is larger than the server's file; downloading it again",
                shown(&part)
            );
            offset = 0;
        } else if offset == size && offset > 0 {
            drop(f);
            fs::rename(&part, local)?;
            return Ok(size);
        }
    }
    f.set_len(offset)?;
    f.seek(SeekFrom::Start(offset))?;
    let pb = bar(remote_size, offset, &shown(local));
    let mut result = c.retrieve(remote, offset, &mut f, &mut |n| pb.set_position(offset + n));
    if offset > 0 && matches!(&result, Err(e) if is_refusal_of(e, "REST")) {
        pb.println(format!(
            "the server cannot resume ({}); downloading from the start",
            result.as_ref().unwrap_err()
        ));
        offset = 0;
        f.set_len(0)?;
        f.seek(SeekFrom::Start(0))?;
        result = c.retrieve(remote, 0, &mut f, &mut |n| pb.set_position(n));
    }
    let expected = remote_size.or_else(|| c.announced_size().filter(|_| offset == 0));
    match result {
        Ok(n) if expected.is_some_and(|want| offset + n != want) => {
            pb.abandon();
            f.sync_all()?;
            let (got, want) = (offset + n, expected.unwrap_or_default());
            let (how, next) = if got < want {
                ("incomplete", " and the next get resumes it")
            } else {
                ("too long", "")
            };
            bail!(
                "download of {what} {how}: {got} bytes received but the server said {want}; \
                 {} is kept{next}",
                shown(&part)
            )
        }
        Ok(n) => {
            pb.finish_and_clear();
            f.sync_all()?;
            drop(f);
            fs::rename(&part, local).with_context(|| format!("renaming {}", shown(&part)))?;
            Ok(offset + n)
        }
        Err(e) => {
            pb.abandon();
            let empty = f.metadata().map(|m| m.len()).unwrap_or(0) == 0;
            drop(f);
            if empty {
                let _ = fs::remove_file(&part);
                Err(e.into())
            } else {
                Err(anyhow::Error::new(e).context(format!(
                    "download of {what} interrupted; {} is kept and the next get resumes it",
                    shown(&part)
                )))
            }
        }
    }
}

/// Downloads every regular file of the remote directory `dir` into the local `to` (one
/// level: subdirectories are not entered). Names from the listing are sanitised. A file that
/// cannot be fetched or saved (a refusal, an unusable or duplicate name, a short transfer, a
/// `.part` refused) is reported and skipped, and the others are still fetched; at the end
/// the result is an error naming how many were skipped. Links and special files (FIFOs,
/// sockets, devices) are not fetched, with a note, and are not counted. Only a lost
/// connection stops it early.
pub(super) fn download_dir(c: &mut Client, dir: &str, to: &Path) -> anyhow::Result<()> {
    fs::create_dir_all(to).with_context(|| format!("creating {}", shown(to)))?;
    let entries = c.list(dir)?;
    let mut seen = HashSet::new();
    let mut files = 0usize;
    let mut skipped = Vec::new();
    for e in &entries {
        let shown_name = display_name(&e.name);
        match e.kind {
            Kind::File => files += 1,
            Kind::Dir => continue,
            Kind::Link => {
                eprintln!("not fetching \"{shown_name}\": a symbolic link");
                continue;
            }
            Kind::Other => {
                eprintln!("not fetching \"{shown_name}\": not a regular file");
                continue;
            }
        }
        let Some(name) = local_name(&e.name) else {
            eprintln!("skipping \"{shown_name}\": not a usable local file name");
            skipped.push(shown_name);
            continue;
        };
        if !seen.insert(name.clone()) {
            eprintln!(
                "skipping \"{shown_name}\": another file was already saved as \"{}\"",
                display_name(&name)
            );
            skipped.push(shown_name);
            continue;
        }
        if name != e.name {
            eprintln!("saving \"{shown_name}\" as \"{}\"", display_name(&name));
        }
        let remote = if dir.is_empty() || dir.ends_with('/') {
            format!("{dir}{}", e.name)
        } else {
            format!("{dir}/{}", e.name)
        };
        match download(c, &remote, &to.join(&name), false) {
            Ok(_) => {}
            Err(err) if connection_lost(&err) => {
                return Err(err.context("stopping: the session cannot go on after this error"));
            }
            Err(err) => {
                eprintln!("skipping \"{shown_name}\": {err:#}");
                skipped.push(shown_name);
            }
        }
    }
    if !skipped.is_empty() {
        bail!(
            "{} of {files} files not saved: \"{}\"",
            skipped.len(),
            skipped.join("\", \"")
        );
    }
    Ok(())
}

/// Uploads `local` to `remote`; with `resume`, only what the server's copy lacks. Returns
/// the bytes sent.
pub(super) fn upload(
    c: &mut Client,
    local: &Path,
    remote: &str,
    resume: bool,
) -> anyhow::Result<u64> {
    let mut f = File::open(local).with_context(|| format!("opening {}", shown(local)))?;
    let len = f.metadata()?.len();
    let mut offset = 0;
    if resume {
        match c.size(remote) {
            Ok(have) if have == len => return Ok(0),
            Ok(have) if have < len => offset = have,
            Ok(have) => eprintln!(
                "the server's {} ({have} bytes) is larger than {}; uploading it all",
                display_name(remote),
                shown(local)
            ),
            // No remote file (or no SIZE): a whole upload.
            Err(_) => {}
        }
    }
    f.seek(SeekFrom::Start(offset))?;
    let pb = bar(Some(len), offset, &shown(local));
    let mode = if offset > 0 {
        StoreMode::Append
    } else {
        StoreMode::Store
    };
    let mut result = c.store(remote, mode, &mut f, &mut |n| pb.set_position(offset + n));
    if let Err(Error::Reply {
        code: 500..=504,
        command,
        ..
    }) = &result
    {
        if command.starts_with("APPE") {
            f.seek(SeekFrom::Start(offset))?;
            result = c.store(remote, StoreMode::RestartAt(offset), &mut f, &mut |n| {
                pb.set_position(offset + n)
            });
        }
    }
    match result {
        Ok(n) => {
            pb.finish_and_clear();
            Ok(n)
        }
        Err(e) => {
            pb.abandon();
            Err(e.into())
        }
    }
}
