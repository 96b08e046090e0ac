//! A connection's (or data channel's) outbound queue: bytes and file ranges in push order,
//! written until the socket is full. File ranges go out with `sendfile(2)` (falling back to
//! `pread` + `write` for files it refuses).
//!
//! Pacing a big file (measured against nginx, see BENCHMARKS.md "Big files"):
//! - while a file range is queued the socket is corked (TCP_CORK, nginx's `tcp_nopush`): the
//!   head leaves with the first file bytes and every segment is full-sized, so the client
//!   handles fewer, larger packets; the cork comes off when the queue drains, flushing the tail;
//! - one `sendfile` call may fill the whole send buffer (up to [`FILE_CHUNK`], the default
//!   maximum `tcp_wmem`), and under level-triggered readiness a short count means the buffer is
//!   full, so the loop waits for writability instead of paying for a call that says EAGAIN.

use crate::sys;
use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, Write};
use std::net::TcpStream;
use std::os::fd::AsRawFd;
use std::sync::Arc;

/// Most one `sendfile` call asks for: the default maximum send buffer (`tcp_wmem[2]`), so one
/// call can fill it. Larger would only matter with raised `tcp_wmem`; a connection still
/// yields after each call that fills its buffer.
const FILE_CHUNK: u64 = 4 << 20;

pub(crate) enum Chunk {
    Bytes {
        buf: Vec<u8>,
        pos: usize,
    },
    File {
        file: Arc<File>,
        offset: u64,
        remaining: u64,
        copy: bool,
    },
}

#[derive(Default)]
pub(crate) struct Outbound {
    pub(crate) chunks: VecDeque<Chunk>,
    pub(crate) bytes: usize,
    /// TCP_CORK is on (a file range is being sent).
    corked: bool,
    /// Bytes written since the owner last took this count (metrics, see `tally.rs`).
    pub(crate) sent: u64,
    /// Bytes handed to the driver to send (`uring`, see `ring.rs`) and not confirmed yet:
    /// counted in `bytes`, and the queue is not empty while there are any.
    pub(crate) in_ring: usize,
}

impl Outbound {
    pub(crate) fn push_bytes(&mut self, buf: Vec<u8>) {
        if buf.is_empty() {
            return;
        }
        self.bytes += buf.len();
        if let Some(Chunk::Bytes { buf: last, pos }) = self.chunks.back_mut() {
            if last.len() - *pos + buf.len() <= 64 * 1024 {
                last.extend_from_slice(&buf);
                return;
            }
        }
        self.chunks.push_back(Chunk::Bytes { buf, pos: 0 });
    }

    pub(crate) fn push_file(&mut self, file: Arc<File>, offset: u64, len: u64) {
        self.chunks.push_back(Chunk::File {
            file,
            offset,
            remaining: len,
            copy: false,
        });
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.chunks.is_empty() && self.in_ring == 0
    }

    /// Write until done (Ok(true)) or the socket is full (Ok(false)); `moved` reports progress.
    /// `level_triggered`: the caller's readiness is level-triggered, so a short `sendfile` may
    /// end the turn (an edge-triggered caller must see EAGAIN before it waits).
    pub(crate) fn write_to(
        &mut self,
        sock: &TcpStream,
        moved: &mut bool,
        level_triggered: bool,
    ) -> io::Result<bool> {
        let fd = sock.as_raw_fd();
        if !self.corked && self.chunks.iter().any(|c| matches!(c, Chunk::File { .. })) {
            sys::set_cork(fd, true);
            self.corked = true;
        }
        while let Some(front) = self.chunks.front_mut() {
            let mut short = false;
            let r = match front {
                Chunk::Bytes { buf, pos } => match (&*sock).write(&buf[*pos..]) {
                    Ok(n) => {
                        *pos += n;
                        self.bytes -= n;
                        Ok(n)
                    }
                    Err(e) => Err(e),
                },
                Chunk::File {
                    file,
                    offset,
                    remaining,
                    copy,
                } => {
                    let want = (*remaining).min(FILE_CHUNK) as usize;
                    let r = if *copy {
                        copy_range(file, *offset, want, sock)
                    } else {
                        match sys::sendfile(fd, file.as_raw_fd(), *offset, want) {
                            Err(e)
                                if matches!(
                                    e.raw_os_error(),
                                    Some(libc::EINVAL) | Some(libc::ENOSYS)
                                ) =>
                            {
                                // Not a sendfile-able file (e.g. a pipe): copy instead.
                                *copy = true;
                                copy_range(file, *offset, want, sock)
                            }
                            r => r,
                        }
                    };
                    match r {
                        Ok(0) => Err(io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            "file shorter than the range queued",
                        )),
                        Ok(n) => {
                            *offset += n as u64;
                            *remaining -= n as u64;
                            // (The copy fallback moves 64 KiB at most: short by design.)
                            short = n < want && !*copy;
                            Ok(n)
                        }
                        Err(e) => Err(e),
                    }
                }
            };
            match r {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => {
                    *moved = true;
                    self.sent += n as u64;
                    let done = match front {
                        Chunk::Bytes { buf, pos } => *pos == buf.len(),
                        Chunk::File { remaining, .. } => *remaining == 0,
                    };
                    if done {
                        self.chunks.pop_front();
                    } else if short && level_triggered {
                        // The send buffer is full: the next call would only say EAGAIN.
                        return Ok(false);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) => return Err(e),
            }
        }
        if self.corked {
            // Everything is out: uncorking sends the last partial segment now.
            sys::set_cork(fd, false);
            self.corked = false;
        }
        Ok(true)
    }
}

/// The read/write fallback when sendfile cannot be used: one pread, one write.
fn copy_range(file: &File, offset: u64, want: usize, sock: &TcpStream) -> io::Result<usize> {
    let mut buf = [0u8; 64 * 1024];
    let n = sys::pread(file.as_raw_fd(), &mut buf[..want.min(64 * 1024)], offset)?;
    if n == 0 {
        return Ok(0);
    }
    // A short write just means the rest is read again next time.
    (&*sock).write(&buf[..n])
}
