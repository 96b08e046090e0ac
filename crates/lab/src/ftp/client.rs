//! The lab's own FTP client: just the raw commands the benchmark needs (USER/PASS, TYPE I,
//! EPSV with a PASV fallback, RETR, STOR, QUIT) over blocking sockets with timeouts. It is not
//! bingfa-ftp's client on purpose: the lab must not depend on the crate it measures, and the
//! same few lines of protocol must cost the same against every server.
//!
//! The client's side of a transfer is kept as cheap as Linux allows, so that what is measured
//! is the server: a download is drained with `recv(MSG_TRUNC)` (the kernel discards the bytes,
//! nothing is copied to the lab), an upload is `sendfile` from a file in the page cache, and
//! the upload socket holds at most `NOTSENT_LOWAT` unsent bytes, so the lab's thread transmits
//! its own data instead of leaving a backlog that the server's reads would push out from the
//! server's thread (on loopback, an ACK sends the queued data in the receiver's context).

use std::fs::File;
use std::io::{self, BufRead, BufReader, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

/// Most unsent bytes an upload socket queues (TCP_NOTSENT_LOWAT), see the module comment.
const NOTSENT_LOWAT: libc::c_int = 16 * 1024;
/// Most bytes one drain call or one `sendfile` asks for.
const STEP: usize = 1 << 20;

/// One control connection.
pub struct Control {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
    peer: SocketAddr,
    line: String,
}

fn fail(what: String) -> io::Error {
    io::Error::other(what)
}

impl Control {
    /// Connect and read the greeting (220); every read and write waits at most `timeout`.
    pub fn connect(addr: SocketAddr, timeout: Duration) -> io::Result<Control> {
        let s = TcpStream::connect_timeout(&addr, timeout)?;
        s.set_read_timeout(Some(timeout))?;
        s.set_write_timeout(Some(timeout))?;
        // Commands are single short lines answered one at a time: Nagle would only add delay.
        s.set_nodelay(true)?;
        let mut c = Control {
            reader: BufReader::new(s.try_clone()?),
            writer: s,
            peer: addr,
            line: String::new(),
        };
        c.expect(220)?;
        Ok(c)
    }

    /// The next reply: its code and last line (multi-line replies `NNN-` … `NNN ` are read
    /// to their end).
    pub fn reply(&mut self) -> io::Result<(u16, String)> {
        let mut first: Option<u16> = None;
        loop {
            self.line.clear();
            if self.reader.read_line(&mut self.line)? == 0 {
                return Err(fail("control connection closed".into()));
            }
            let l = self.line.trim_end();
            let code = l.get(..3).and_then(|c| c.parse::<u16>().ok());
            let done = match (first, code) {
                (None, Some(c)) => {
                    first = Some(c);
                    l.as_bytes().get(3) != Some(&b'-')
                }
                (Some(f), Some(c)) => c == f && l.as_bytes().get(3) == Some(&b' '),
                (None, None) => return Err(fail(format!("not a reply: {l:?}"))),
                (Some(_), None) => false,
            };
            if done {
                return Ok((first.unwrap_or(0), l.to_string()));
            }
        }
    }

    /// Send one command line and read its reply.
    pub fn cmd(&mut self, line: &str) -> io::Result<(u16, String)> {
        self.writer.write_all(format!("{line}\r\n").as_bytes())?;
        self.reply()
    }

    fn expect(&mut self, code: u16) -> io::Result<String> {
        let (c, l) = self.reply()?;
        if c != code {
            return Err(fail(format!("expected {code}, got {l:?}")));
        }
        Ok(l)
    }

    fn cmd_expect(&mut self, line: &str, ok: impl Fn(u16) -> bool) -> io::Result<String> {
        let (c, l) = self.cmd(line)?;
        if !ok(c) {
            return Err(fail(format!("{line}: {l:?}")));
        }
        Ok(l)
    }

    /// USER anonymous, PASS (unless the server already said 230).
    pub fn login_anonymous(&mut self) -> io::Result<()> {
        self.login("anonymous", "lab@bingfa")
    }

    /// `USER` then `PASS`; an error unless the server answers 230.
    pub fn login(&mut self, user: &str, pass: &str) -> io::Result<()> {
        let (c, l) = self.cmd(&format!("USER {user}"))?;
        match c {
            230 => Ok(()),
            331 => self
                .cmd_expect(&format!("PASS {pass}"), |c| c == 230)
                .map(drop),
            _ => Err(fail(format!("USER: {l:?}"))),
        }
    }

    /// TYPE I: every transfer here is binary.
    pub fn binary(&mut self) -> io::Result<()> {
        self.cmd_expect("TYPE I", |c| c == 200).map(drop)
    }

    /// A passive data connection: EPSV, or PASV if the server refuses EPSV.
    pub fn passive(&mut self) -> io::Result<TcpStream> {
        let (c, l) = self.cmd("EPSV")?;
        let addr = if c == 229 {
            // 229 Entering Extended Passive Mode (|||PORT|)
            let port = l
                .rsplit_once("|||")
                .and_then(|(_, r)| r.split('|').next())
                .and_then(|p| p.parse::<u16>().ok())
                .ok_or_else(|| fail(format!("EPSV reply: {l:?}")))?;
            SocketAddr::new(self.peer.ip(), port)
        } else {
            let l = self.cmd_expect("PASV", |c| c == 227)?;
            let nums: Vec<u16> = l
                .split(|ch: char| !ch.is_ascii_digit())
                .filter(|s| !s.is_empty())
                .skip(1) // the 227
                .filter_map(|s| s.parse().ok())
                .collect();
            if nums.len() < 6 {
                return Err(fail(format!("PASV reply: {l:?}")));
            }
            // The announced host is ignored: on loopback it is the control peer anyway.
            SocketAddr::new(self.peer.ip(), nums[4] * 256 + nums[5])
        };
        let timeout = self
            .writer
            .read_timeout()?
            .unwrap_or(Duration::from_secs(30));
        let d = TcpStream::connect_timeout(&addr, timeout)?;
        d.set_read_timeout(Some(timeout))?;
        d.set_write_timeout(Some(timeout))?;
        Ok(d)
    }

    /// Download `path`, discarding the bytes as they arrive; returns the byte count and the
    /// time from the RETR command to the server's confirmation (226/250), once the server has
    /// confirmed and every byte was received. The data connection is opened before the clock
    /// starts.
    pub fn retr(&mut self, path: &str) -> io::Result<(u64, Duration)> {
        let data = self.passive()?;
        let t = Instant::now();
        self.cmd_expect(&format!("RETR {path}"), |c| c == 150 || c == 125)?;
        let n = drain(&data)?;
        drop(data);
        let (c, l) = self.reply()?;
        let took = t.elapsed();
        if c != 226 && c != 250 {
            return Err(fail(format!("RETR {path}: {l:?}")));
        }
        Ok((n, took))
    }

    /// Upload the first `total` bytes of `src` as `path`; returns the time from the STOR command
    /// to the server's 226 (the server has the whole file in place by then).
    pub fn stor(&mut self, path: &str, src: &File, total: u64) -> io::Result<Duration> {
        let data = self.passive()?;
        let fd = data.as_raw_fd();
        // SAFETY: a valid socket and an option of the right size.
        unsafe {
            libc::setsockopt(
                fd,
                libc::IPPROTO_TCP,
                libc::TCP_NOTSENT_LOWAT,
                &NOTSENT_LOWAT as *const libc::c_int as *const libc::c_void,
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        let t = Instant::now();
        self.cmd_expect(&format!("STOR {path}"), |c| c == 150 || c == 125)?;
        let mut off: libc::off_t = 0;
        while (off as u64) < total {
            let want = (total - off as u64).min(STEP as u64) as usize;
            // SAFETY: valid fds; `off` is a valid pointer the kernel advances.
            let k = unsafe { libc::sendfile(fd, src.as_raw_fd(), &mut off, want) };
            if k < 0 {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            if k == 0 {
                return Err(fail(format!(
                    "STOR {path}: the source is shorter than {total}"
                )));
            }
        }
        // End of file is the end of the data connection (stream mode).
        data.shutdown(Shutdown::Write)?;
        drop(data);
        let (c, l) = self.reply()?;
        let took = t.elapsed();
        if c != 226 && c != 250 {
            return Err(fail(format!("STOR {path}: {l:?}")));
        }
        Ok(took)
    }

    /// QUIT and wait for the goodbye (221), so the server has done its part of the close.
    pub fn quit(mut self) -> io::Result<()> {
        self.cmd_expect("QUIT", |c| c == 221).map(drop)
    }
}

/// Read `data` to its end, the kernel discarding the bytes (`MSG_TRUNC` on a TCP socket:
/// nothing is copied out); returns how many there were. The socket's read timeout applies.
fn drain(data: &TcpStream) -> io::Result<u64> {
    // Never written (MSG_TRUNC leaves it alone), so its zeroed pages are never even mapped in;
    // the kernel is still handed a real buffer of the length asked for.
    let mut sink = vec![0u8; STEP];
    let mut n = 0u64;
    loop {
        // SAFETY: a valid socket and a buffer of `STEP` bytes.
        let k = unsafe {
            libc::recv(
                data.as_raw_fd(),
                sink.as_mut_ptr().cast(),
                STEP,
                libc::MSG_TRUNC,
            )
        };
        match k {
            0 => return Ok(n),
            k if k > 0 => n += k as u64,
            _ => {
                let e = io::Error::last_os_error();
                if e.kind() != io::ErrorKind::Interrupted {
                    return Err(e);
                }
            }
        }
    }
}
