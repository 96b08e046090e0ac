//! Downloads and uploads with a progress bar and resume. A download is written to
//! `NAME.part` and renamed only when complete, so NAME is never half-written and an
//! interrupted download leaves a `.part` that the next run continues (REST). An upload resumes
//! from the server copy's SIZE with APPE (or REST + STOR where APPE is not implemented).

use anyhow::Context as _;
use bingfa_ftp::client::{display_name, local_name, Client, Error, Kind, StoreMode};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::collections::HashSet;
use std::fs::{self, File, OpenOptions};
use std::io::{Seek, SeekFrom};
use std::path::{Path, PathBuf};

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

/// `local` with `.part` appended to its file name.
pub fn part_path(local: &Path) -> PathBuf {
    let mut s = local.as_os_str().to_owned();
    s.push(".part");
    PathBuf::from(s)
}

fn is_refusal_of(e: &Error, command: &str) -> bool {
    matches!(e, Error::Reply { command: c, .. } if c.starts_with(command))
}

/// Downloads `remote` to `local` through `local.part`, resuming an existing `.part` (and
/// `local` itself when `resume_local`). Returns the file's size.
pub fn download(
    c: &mut Client,
    remote: &str,
    local: &Path,
    resume_local: bool,
) -> anyhow::Result<u64> {
    let part = part_path(local);
    // SIZE is optional (RFC 3659): without it there is no total and no completeness check.
    let remote_size = c.size(remote).ok();
    let mut offset = match fs::metadata(&part) {
        Ok(m) => m.len(),
        Err(_) if resume_local && local.is_file() => {
            fs::rename(local, &part).with_context(|| format!("renaming {}", local.display()))?;
            fs::metadata(&part)?.len()
        }
        Err(_) => 0,
    };
    if let Some(size) = remote_size {
        if offset > size {
            eprintln!(
                "{} is larger than the server's file; downloading it again",
                part.display()
            );
            offset = 0;
        } else if offset == size && offset > 0 {
            fs::rename(&part, local)?;
            return Ok(size);
        }
    }
    let mut f = OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(false)
        .open(&part)
        .with_context(|| format!("creating {}", part.display()))?;
    f.set_len(offset)?;
    f.seek(SeekFrom::Start(offset))?;
    let label = display_name(&local.display().to_string());
    let pb = bar(remote_size, offset, &label);
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
    match result {
        Ok(n) => {
            pb.finish_and_clear();
            f.sync_all()?;
            drop(f);
            fs::rename(&part, local).with_context(|| format!("renaming {}", part.display()))?;
            Ok(offset + n)
        }
        Err(e) => {
            pb.abandon();
            drop(f);
            if fs::metadata(&part).map(|m| m.len()).unwrap_or(0) == 0 {
                let _ = fs::remove_file(&part);
                Err(e.into())
            } else {
                Err(anyhow::Error::new(e).context(format!(
                    "download of {remote} interrupted; {} is kept and the next get resumes it",
                    part.display()
                )))
            }
        }
    }
}

/// Downloads every regular file of the remote directory `dir` into the local `to`. Names
/// from the listing are sanitised; unusable or duplicate ones are skipped with a warning.
pub fn download_dir(c: &mut Client, dir: &str, to: &Path) -> anyhow::Result<()> {
    fs::create_dir_all(to).with_context(|| format!("creating {}", to.display()))?;
    let entries = c.list(dir)?;
    let mut seen = HashSet::new();
    for e in entries.iter().filter(|e| e.kind == Kind::File) {
        let shown = display_name(&e.name);
        let Some(name) = local_name(&e.name) else {
            eprintln!("skipping {shown:?}: not a usable local file name");
            continue;
        };
        if !seen.insert(name.clone()) {
            eprintln!("skipping {shown:?}: another file was already saved as {name:?}");
            continue;
        }
        if name != e.name {
            eprintln!("saving {shown:?} as {:?}", display_name(&name));
        }
        let remote = if dir.is_empty() || dir.ends_with('/') {
            format!("{dir}{}", e.name)
        } else {
            format!("{dir}/{}", e.name)
        };
        download(c, &remote, &to.join(&name), false)?;
    }
    Ok(())
}

/// Uploads `local` to `remote`; with `resume`, only what the server's copy lacks. Returns
/// the bytes sent.
pub fn upload(c: &mut Client, local: &Path, remote: &str, resume: bool) -> anyhow::Result<u64> {
    let mut f = File::open(local).with_context(|| format!("opening {}", local.display()))?;
    let len = f.metadata()?.len();
    let mut offset = 0;
    if resume {
        match c.size(remote) {
            Ok(have) if have == len => return Ok(0),
            Ok(have) if have < len => offset = have,
            Ok(have) => eprintln!(
                "the server's {remote} ({have} bytes) is larger than {}; uploading it all",
                local.display()
            ),
            // No remote file (or no SIZE): a whole upload.
            Err(_) => {}
        }
    }
    f.seek(SeekFrom::Start(offset))?;
    let pb = bar(
        Some(len),
        offset,
        &display_name(&local.display().to_string()),
    );
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
