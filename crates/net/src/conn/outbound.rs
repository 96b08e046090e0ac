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
//!   full, so the loop waits for writability instead of paying for a call that says EAGAIN;
//! - one turn sends at most [`TURN_FILE_BYTES`] of file data per socket, then *pauses*
//!   ([`Outbound::paused`]) with the socket still writable, so the others on its loop go next
//!   (nginx's `sendfile_max_chunk`). On loopback, or to any peer that drains as fast as it is
//!   written, a call never comes back short, and without the bound one connection held its loop
//!   for the whole file (64 MiB: ~30 ms on a quiet machine; a bigger file, longer) while the
//!   others' requests waited unread. The bound is sixteen full calls (64 MiB): a bound of one
//!   call (4 MiB) cost a quarter to half of the 64 MiB throughput, and four calls (16 MiB) still
//!   a third on a quiet machine, because each paused connection waits a poll turn while its
//!   buffer drains (BENCHMARKS.md, issue 23). A paused
//!   connection is served again next turn without waiting for a readiness change: a
//!   level-triggered poller reports the still-writable socket again, and for edge-triggered
//!   drivers `settle` wakes the connection as it does when input yields its turn.

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

/// Most file bytes one turn sends on one socket before pausing for the others on its loop
/// (nginx's `sendfile_max_chunk` is 2 MiB, and it then waits a 1 ms timer). 64 MiB: a bound
/// for very big files, not pacing. At 16 MiB the 64 MiB benchmark lost a third of its
/// throughput on a quiet machine (`-t1 -c4` 0.92× nginx against 1.60× without the bound,
/// BENCHMARKS.md), because a connection that paused waits a whole loop turn while its socket
/// buffer drains; pacing that keeps the buffer full is still to find.
pub(crate) const TURN_FILE_BYTES: u64 = 16 * FILE_CHUNK;

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
    /// The last `write_to` stopped at [`TURN_FILE_BYTES`] with the socket still writable: the
    /// owner must come back next turn even if no readiness change is reported.
    pub(crate) paused: bool,
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

    /// Write until done (Ok(true)), the socket is full or the turn's file budget is spent
    /// (Ok(false); [`paused`](Self::paused) tells the last apart); `moved` reports progress.
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
        self.paused = false;
        let mut file_bytes = 0u64;
        while let Some(front) = self.chunks.front_mut() {
            if file_bytes >= TURN_FILE_BYTES {
                // This socket had its share of the turn (and the last call was not short, so
                // it is still writable): the others on the loop go next.
                self.paused = true;
                return Ok(false);
            }
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
                    // Never past the turn's share: the bound is exact.
                    let want = (*remaining)
                        .min(FILE_CHUNK)
                        .min(TURN_FILE_BYTES - file_bytes) as usize;
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
                            file_bytes += n as u64;
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::net::TcpListener;
    use std::time::{Duration, Instant};

    /// A turn pauses after its share of a big file even when the peer drains as fast as it is
    /// sent (loopback), under both readiness disciplines, and the next turns finish the file,
    /// every byte in order.
    #[test]
    fn a_turn_sends_at_most_its_share_of_a_file() {
        let len: u64 = 3 * TURN_FILE_BYTES + 12345;
        let path = std::env::temp_dir().join(format!("bingfa-turn-{}", std::process::id()));
        let body: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
        std::fs::write(&path, &body).unwrap();
        let file = Arc::new(File::open(&path).unwrap());
        let _ = std::fs::remove_file(&path);
        for level_triggered in [true, false] {
            let l = TcpListener::bind("127.0.0.1:0").unwrap();
            let sock = TcpStream::connect(l.local_addr().unwrap()).unwrap();
            let (mut peer, _) = l.accept().unwrap();
            sock.set_nonblocking(true).unwrap();
            let reader = std::thread::spawn(move || {
                let mut got = Vec::with_capacity(len as usize);
                peer.read_to_end(&mut got).unwrap();
                got
            });
            let mut out = Outbound::default();
            out.push_bytes(b"head".to_vec());
            out.push_file(file.clone(), 0, len);
            let mut turns = 0;
            let deadline = Instant::now() + Duration::from_secs(60);
            loop {
                let mut moved = false;
                let done = out.write_to(&sock, &mut moved, level_triggered).unwrap();
                let sent = std::mem::take(&mut out.sent);
                // The share, plus the head.
                assert!(
                    sent <= TURN_FILE_BYTES + 4,
                    "one turn sent {sent} bytes (level-triggered: {level_triggered})"
                );
                turns += 1;
                if done {
                    assert!(!out.paused, "a finished queue is not paused");
                    break;
                }
                assert!(Instant::now() < deadline, "the file never finished");
                if !moved {
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
            drop(sock);
            let mut want = b"head".to_vec();
            want.extend_from_slice(&body);
            let got = reader.join().unwrap();
            assert!(
                got == want,
                "the file arrived changed ({} bytes)",
                got.len()
            );
            assert!(turns >= 4, "{turns} turns");
        }
    }
}
