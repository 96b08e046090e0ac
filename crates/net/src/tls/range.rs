//! File ranges through TLS in user space (no `sendfile` into a rustls stream): read and
//! encrypt a step at a time, for the control connection (`session`) and data channels
//! (`channel`) alike.

use std::fs::File;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::sync::Arc;

/// Plaintext of a file range read and encrypted per drain: large records, few wakeups, and well
/// under the driver's outbound limit.
pub(super) const FILE_CHUNK: u64 = 512 * 1024;

/// A drain's chunk is read, encrypted and gathered this much at a time: the plaintext buffer and
/// rustls's records (allocated per record, freed by the gather) stay small and cache-hot, and
/// the allocator reuses the same few blocks instead of growing and trimming its heap by half a
/// MiB per drain. Four whole 16 KiB records.
const FILE_STEP: usize = 64 * 1024;

pub(super) struct FileRange {
    pub(super) file: Arc<File>,
    pub(super) offset: u64,
    pub(super) left: u64,
}

/// Read and encrypt up to `budget` bytes of `f` (in [`FILE_STEP`]s through `buf`, one buffer
/// reused per range: no zeroing, no allocator churn), appending the ciphertext to `out`.
/// `Err` = the file is shorter than the range.
pub(super) fn encrypt_range(
    tls: &mut rustls::ServerConnection,
    f: &mut FileRange,
    buf: &mut Vec<u8>,
    mut budget: u64,
    out: &mut Vec<u8>,
) -> std::io::Result<()> {
    if out.capacity() == 0 {
        // Each 16 KiB record adds 22 bytes (header, content type, tag).
        let plain = f.left.min(budget) as usize;
        out.reserve(plain + plain / 16384 * 32 + 1024);
    }
    while f.left > 0 && budget > 0 {
        let n = f.left.min(budget).min(FILE_STEP as u64) as usize;
        buf.resize(n, 0);
        f.file.read_exact_at(buf, f.offset)?;
        f.offset += n as u64;
        f.left -= n as u64;
        budget -= n as u64;
        // The buffer limit is off, so rustls takes all of it.
        let _ = tls.writer().write_all(buf);
        gather(tls, out);
    }
    Ok(())
}

/// Move what rustls has encrypted to the end of `out`.
pub(super) fn gather(tls: &mut rustls::ServerConnection, out: &mut Vec<u8>) {
    while tls.wants_write() {
        if tls.write_tls(out).is_err() {
            break;
        }
    }
}
