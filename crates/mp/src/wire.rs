//! Framing for the private socket between a parent and each child it starts: the spawn
//! arguments go down it (with any handles as SCM_RIGHTS), the result comes back up it.
//!
//! A frame is `[u32 len][u32 nfds]` then `len` bytes. Payloads over [`INLINE_MAX`] travel in a
//! memfd attached to the frame instead of through the socket buffer, so the writer never
//! blocks waiting for the reader: a child can return a large result and exit at once, and
//! `is_alive()` polling followed by `join()` can never deadlock on a full socket.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use crate::shm::Segment;
use crate::sys::retry;

const INLINE_MAX: usize = 64 * 1024;
const IN_MEMFD: u32 = u32::MAX;
/// The kernel's limit of descriptors in one SCM_RIGHTS message.
pub(crate) const MAX_FDS: usize = 253;

fn write_all(fd: RawFd, mut buf: &[u8]) -> io::Result<()> {
    while !buf.is_empty() {
        // SAFETY: `buf` is a live slice and the length passed is its own; send only reads it.
        let n = retry(|| unsafe {
            libc::send(fd, buf.as_ptr().cast(), buf.len(), libc::MSG_NOSIGNAL)
        })?;
        buf = &buf[n as usize..];
    }
    Ok(())
}

/// Send one frame with `fds` attached.
pub(crate) fn send_frame(sock: &impl AsRawFd, payload: &[u8], fds: &[RawFd]) -> io::Result<()> {
    let mut fds = fds.to_vec();
    let (len, inline, _keep);
    if payload.len() > INLINE_MAX {
        let seg = Segment::new(payload.len())?;
        // SAFETY: `seg` was just created with `payload.len()` bytes and is ours alone; the source
        // is a live slice of that length, in other memory.
        unsafe { std::ptr::copy_nonoverlapping(payload.as_ptr(), seg.as_ptr(), payload.len()) };
        fds.push(seg_fd(&seg));
        len = IN_MEMFD;
        inline = &[][..];
        _keep = Some(seg);
    } else {
        len = payload.len() as u32;
        inline = payload;
        _keep = None;
    }
    if fds.len() > MAX_FDS {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("at most {MAX_FDS} handles can be passed at once"),
        ));
    }
    let mut head = [0u8; 8];
    head[..4].copy_from_slice(&len.to_le_bytes());
    head[4..].copy_from_slice(&(fds.len() as u32).to_le_bytes());

    // The header (and descriptors) go in one sendmsg; the payload follows as a stream.
    let mut iov = libc::iovec {
        iov_base: head.as_mut_ptr().cast(),
        iov_len: head.len(),
    };
    // SAFETY: CMSG_SPACE is pure arithmetic on its argument.
    let space = unsafe { libc::CMSG_SPACE((fds.len() * 4) as u32) } as usize;
    let mut cbuf = vec![0u8; space.max(1)];
    // SAFETY: msghdr is integers and raw pointers; all-zero (null pointers, zero lengths) is valid.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    if !fds.is_empty() {
        msg.msg_control = cbuf.as_mut_ptr().cast();
        msg.msg_controllen = space;
        // SAFETY: msg_control points to `cbuf`, CMSG_SPACE(n*4) bytes (so CMSG_FIRSTHDR is non-null
        // and its data has room for n ints), and `fds` holds n <= MAX_FDS descriptors; `cbuf`
        // outlives the use.
        unsafe {
            let c = libc::CMSG_FIRSTHDR(&msg);
            (*c).cmsg_level = libc::SOL_SOCKET;
            (*c).cmsg_type = libc::SCM_RIGHTS;
            (*c).cmsg_len = libc::CMSG_LEN((fds.len() * 4) as u32) as usize;
            std::ptr::copy_nonoverlapping(fds.as_ptr(), libc::CMSG_DATA(c).cast(), fds.len());
        }
    }
    // SAFETY: `msg` points to `iov` (-> `head`) and `cbuf`, all live until sendmsg returns.
    let n = retry(|| unsafe { libc::sendmsg(sock.as_raw_fd(), &msg, libc::MSG_NOSIGNAL) })?;
    write_all(sock.as_raw_fd(), &head[n as usize..])?;
    write_all(sock.as_raw_fd(), inline)
}

fn seg_fd(seg: &Segment) -> RawFd {
    // Segment keeps its descriptor private; borrow it through the Serialize path's accessor.
    seg.raw_fd()
}

fn read_exact(fd: RawFd, mut buf: &mut [u8]) -> io::Result<bool> {
    let mut got_any = false;
    while !buf.is_empty() {
        // SAFETY: `buf` is a live, writable slice and read writes at most its length.
        let n = retry(|| unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) })?;
        if n == 0 {
            if got_any {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "truncated frame",
                ));
            }
            return Ok(false);
        }
        got_any = true;
        buf = &mut buf[n as usize..];
    }
    Ok(true)
}

/// Receive one frame. `Ok(None)` means the peer closed the socket before a frame started.
pub(crate) fn recv_frame(sock: &impl AsRawFd) -> io::Result<Option<(Vec<u8>, Vec<OwnedFd>)>> {
    let fd = sock.as_raw_fd();
    let mut head = [0u8; 8];
    let mut iov = libc::iovec {
        iov_base: head.as_mut_ptr().cast(),
        iov_len: head.len(),
    };
    // SAFETY: CMSG_SPACE is pure arithmetic on its argument.
    let space = unsafe { libc::CMSG_SPACE((MAX_FDS * 4) as u32) } as usize;
    let mut cbuf = vec![0u8; space];
    // SAFETY: msghdr is integers and raw pointers; all-zero is valid.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = cbuf.as_mut_ptr().cast();
    msg.msg_controllen = space;
    // SAFETY: `msg` points to `iov` (-> `head`) and `cbuf` (`space` bytes), all live until recvmsg
    // returns.
    let n = retry(|| unsafe { libc::recvmsg(fd, &mut msg, libc::MSG_CMSG_CLOEXEC) })? as usize;
    let mut fds = Vec::new();
    // SAFETY: the kernel filled `cbuf` with well-formed cmsg headers within msg_controllen, which
    // CMSG_FIRSTHDR/CMSG_NXTHDR walk; each SCM_RIGHTS entry's count comes from its own cmsg_len, so
    // the reads stay inside `cbuf` (read_unaligned: the data need not be aligned). The descriptors
    // were just installed in our table by the kernel: fresh, and owned by nothing else.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(&msg);
        while !c.is_null() {
            if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SCM_RIGHTS {
                let count = ((*c).cmsg_len - libc::CMSG_LEN(0) as usize) / 4;
                let data = libc::CMSG_DATA(c) as *const RawFd;
                for i in 0..count {
                    fds.push(OwnedFd::from_raw_fd(data.add(i).read_unaligned()));
                }
            }
            c = libc::CMSG_NXTHDR(&msg, c);
        }
    }
    if msg.msg_flags & libc::MSG_CTRUNC != 0 {
        // The kernel dropped descriptors (we are at our limit): indices would be wrong.
        return Err(io::Error::other(
            "descriptors lost in transit (open-file limit reached?)",
        ));
    }
    if n == 0 {
        return Ok(None);
    }
    if n < head.len() && !read_exact(fd, &mut head[n..])? {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "truncated frame",
        ));
    }
    let len = u32::from_le_bytes(head[..4].try_into().unwrap());
    let nfds = u32::from_le_bytes(head[4..].try_into().unwrap()) as usize;
    if nfds != fds.len() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("frame announced {nfds} descriptors, {} arrived", fds.len()),
        ));
    }
    if len == IN_MEMFD {
        let memfd = fds
            .pop()
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "frame lost its payload"))?;
        let seg = Segment::from_fd(memfd)?;
        // SAFETY: the mapping is `seg.len()` bytes and lives until `seg` drops after the copy.
        // Frames come only from our own parent or child (a private socketpair), whose send_frame
        // never writes the segment after sending it.
        let payload = unsafe { std::slice::from_raw_parts(seg.as_ptr(), seg.len()) }.to_vec();
        return Ok(Some((payload, fds)));
    }
    // A payload past INLINE_MAX always travels in a memfd, so a bigger inline length is a
    // corrupt header: refuse it before allocating the up to 4 GiB it announces.
    if len as usize > INLINE_MAX {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("frame announces {len} inline bytes, more than {INLINE_MAX}"),
        ));
    }
    let mut payload = vec![0u8; len as usize];
    if !read_exact(fd, &mut payload)? && len > 0 {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "truncated frame",
        ));
    }
    Ok(Some((payload, fds)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::unix::net::UnixStream;

    /// Found by fuzz/ (mp_wire): a corrupt header's length was allocated before any payload
    /// arrived, up to 4 GiB for 8 bytes of input.
    #[test]
    fn a_corrupt_inline_length_is_refused_before_allocating() {
        let (mut a, b) = UnixStream::pair().unwrap();
        a.write_all(&[0xff, 0xff, 0xff, 0x7f, 0, 0, 0, 0]).unwrap();
        drop(a);
        let e = recv_frame(&b).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData, "{e}");
    }

    #[test]
    fn frames_inline_and_in_a_memfd_still_arrive() {
        let (a, b) = UnixStream::pair().unwrap();
        for len in [0, 5, INLINE_MAX, INLINE_MAX + 1] {
            let payload: Vec<u8> = (0..len).map(|i| i as u8).collect();
            let t = std::thread::scope(|s| {
                let h = s.spawn(|| recv_frame(&b).unwrap().unwrap());
                send_frame(&a, &payload, &[]).unwrap();
                h.join().unwrap()
            });
            assert_eq!(t.0, payload);
            assert!(t.1.is_empty());
        }
    }
}
