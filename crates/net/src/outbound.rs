//! A connection's (or data channel's) outbound queue: bytes and file ranges in push order,
//! written until the socket is full. File ranges go out with `sendfile(2)` (falling back to
//! `pread` + `write` for files it refuses).

use crate::sys;
use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, Write};
use std::net::TcpStream;
use std::os::fd::AsRawFd;
use std::sync::Arc;

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
        self.chunks.is_empty()
    }

    /// Write until done (Ok(true)) or the socket is full (Ok(false)); `moved` reports progress.
    pub(crate) fn write_to(&mut self, sock: &TcpStream, moved: &mut bool) -> io::Result<bool> {
        let fd = sock.as_raw_fd();
        while let Some(front) = self.chunks.front_mut() {
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
                    let want = (*remaining).min(1 << 20) as usize;
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
                            Ok(n)
                        }
                        Err(e) => Err(e),
                    }
                }
            };
            match r {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(_) => {
                    *moved = true;
                    let done = match front {
                        Chunk::Bytes { buf, pos } => *pos == buf.len(),
                        Chunk::File { remaining, .. } => *remaining == 0,
                    };
                    if done {
                        self.chunks.pop_front();
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) => return Err(e),
            }
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
