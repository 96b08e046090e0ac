//! Where an upload's bytes go, and when that place is made.
//!
//! A refused upload changes nothing: `STOR`/`APPE`/`STOU` only check (permission, path, a
//! directory in the way, the parent existing) and record a [`Plan`]; the file is opened,
//! created or truncated only when the first byte (or the EOF of an empty upload) arrives on an
//! established data connection, after every check that can refuse (no data connection `425`,
//! `521` under `--tls-required`, a refused connect, a data handshake that did not resume the
//! control connection's TLS session `522`) has passed.

use super::ascii::Decoder;
use crate::vpath;
use bingfa_root::{Root, TempFile};
use std::fs::File;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::sync::Arc;

/// With `fsync_uploads`: bytes written between two starts of writeback.
const WRITEBACK_STEP: u64 = 8 << 20;
/// How many `name.N` STOU tries before giving up.
pub(crate) const UNIQUE_TRIES: usize = 1000;

/// How an upload meets the file already there.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// `STOR`: replaces it (or, after `REST n`, writes over it from `n`).
    Replace,
    /// `APPE`: adds to its end.
    Append,
    /// `STOU`: never touches it; the upload takes a free name.
    Unique,
}

/// What an upload will write, decided when the command was accepted.
pub(crate) struct Plan {
    pub(crate) root: Arc<Root>,
    /// The absolute virtual path (for STOU: the name announced in the `150`).
    pub(crate) path: String,
    pub(crate) mode: Mode,
    /// `REST n` before a `STOR`: written in place from `n`.
    pub(crate) rest: u64,
    /// The user may replace files (`write`); an upload-only user (`perm`) may only add names.
    pub(crate) replace: bool,
    pub(crate) fsync: bool,
}

impl Plan {
    /// Make the sink: only now is anything on disk created or truncated.
    pub(crate) fn open(&self) -> std::io::Result<(Sink, Option<Durable>)> {
        let rel = vpath::rel(&self.path);
        let sink = match (self.mode, self.rest) {
            (Mode::Append, _) => Sink::InPlace(self.root.open_write(rel, true)?, None),
            (Mode::Replace, n) if n > 0 => {
                let f = self.root.open_write(rel, false)?;
                f.set_len(n)?;
                Sink::InPlace(f, Some(n))
            }
            _ => {
                let (dir, _) = vpath::split(&self.path).expect("checked by the command");
                Sink::Temp(self.root.create_temp(vpath::rel(dir))?)
            }
        };
        let durable = self.fsync.then(|| {
            // Where this upload's bytes start: an append writes at the current end.
            let at = match &sink {
                Sink::Temp(..) => 0,
                Sink::InPlace(_, Some(n)) => *n,
                Sink::InPlace(f, None) => f.metadata().map_or(0, |m| m.len()),
            };
            Durable {
                written: at,
                started: at,
            }
        });
        Ok((sink, durable))
    }

    /// The complete upload in place: renamed over the target (`STOR`), or under the first free
    /// name from the announced one on (`STOU`: never over a file that appeared meanwhile).
    /// Returns the name it got when that is not the announced one.
    pub(crate) fn finish(&self, sink: Sink) -> std::io::Result<Option<String>> {
        let (_, name) = vpath::split(&self.path).expect("checked by the command");
        match sink {
            Sink::InPlace(..) => Ok(None),
            Sink::Temp(t) if self.mode == Mode::Unique => {
                let names = (0..UNIQUE_TRIES).map(|i| unique_name(name, i));
                let got = t.persist_new(names)?;
                let got = String::from_utf8(got).expect("made from a str");
                Ok((got != name).then_some(got))
            }
            // Upload-only: a name taken between the STOR and now still wins (EEXIST, 550).
            Sink::Temp(t) if !self.replace => t.persist_new([name.as_bytes()]).map(|_| None),
            Sink::Temp(t) => t.persist(name.as_bytes()).map(|()| None),
        }
    }
}

/// STOU's `i`th candidate: `name`, `name.1`, `name.2`…
pub(crate) fn unique_name(name: &str, i: usize) -> String {
    if i == 0 {
        name.to_string()
    } else {
        format!("{name}.{i}")
    }
}

pub(crate) enum Sink {
    /// Named on completion ([`Plan::finish`]).
    Temp(TempFile),
    /// Resume: written in place at the offset (`None`: appending).
    InPlace(File, Option<u64>),
}

impl Sink {
    pub(crate) fn file(&self) -> &File {
        match self {
            Sink::Temp(t) => t.file(),
            Sink::InPlace(f, _) => f,
        }
    }

    /// Writes upload bytes, through `ascii` in TYPE A; returns how many bytes the file got.
    pub(crate) fn write(
        &mut self,
        bytes: &[u8],
        ascii: Option<&mut Decoder>,
    ) -> std::io::Result<usize> {
        let converted;
        let bytes = match ascii {
            Some(d) => {
                let mut out = Vec::new();
                d.decode(bytes, &mut out);
                converted = out;
                &converted[..]
            }
            None => bytes,
        };
        match self {
            Sink::Temp(t) => t.write_all(bytes)?,
            Sink::InPlace(f, Some(off)) => {
                f.write_all_at(bytes, *off)?;
                *off += bytes.len() as u64;
            }
            Sink::InPlace(f, None) => f.write_all(bytes)?,
        }
        Ok(bytes.len())
    }
}

/// An upload that is synced before its `226`: how far it was written, and where the last
/// writeback started.
pub(crate) struct Durable {
    written: u64,
    started: u64,
}

impl Durable {
    /// Start writing back what arrived since the last start, once it is `WRITEBACK_STEP`: the
    /// disk works while the network does, instead of all at the end. Only a start (it does not
    /// wait for the disk); a failure shows at the final `fdatasync`.
    pub(crate) fn wrote(&mut self, file: &File, n: usize) {
        self.written += n as u64;
        if self.written - self.started >= WRITEBACK_STEP {
            // SAFETY: a valid fd; the range is one this upload wrote.
            unsafe {
                libc::sync_file_range(
                    std::os::fd::AsRawFd::as_raw_fd(file),
                    self.started as libc::off64_t,
                    (self.written - self.started) as libc::off64_t,
                    libc::SYNC_FILE_RANGE_WRITE,
                )
            };
            self.started = self.written;
        }
    }
}
