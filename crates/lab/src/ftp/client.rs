//! The lab's own FTP client: just the raw commands the benchmark needs (USER/PASS, TYPE I,
//! EPSV with a PASV fallback, RETR, STOR, QUIT) over blocking sockets with timeouts. It is not
//! bingfa-ftp's client on purpose: the lab must not depend on the crate it measures, and the
//! same few lines of protocol must cost the same against every server.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::time::Duration;

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

    /// Download `path` into `buf` (overwritten, the bytes thrown away); returns the byte count
    /// once the server has confirmed the transfer (226/250).
    pub fn retr(&mut self, path: &str, buf: &mut [u8]) -> io::Result<u64> {
        let mut data = self.passive()?;
        self.cmd_expect(&format!("RETR {path}"), |c| c == 150 || c == 125)?;
        let mut n = 0u64;
        loop {
            match data.read(buf)? {
                0 => break,
                k => n += k as u64,
            }
        }
        drop(data);
        let (c, l) = self.reply()?;
        if c != 226 && c != 250 {
            return Err(fail(format!("RETR {path}: {l:?}")));
        }
        Ok(n)
    }

    /// Upload `total` bytes (repeating `chunk`) as `path`, and wait for the server's 226.
    pub fn stor(&mut self, path: &str, chunk: &[u8], total: u64) -> io::Result<()> {
        let mut data = self.passive()?;
        self.cmd_expect(&format!("STOR {path}"), |c| c == 150 || c == 125)?;
        let mut left = total;
        while left > 0 {
            let k = (chunk.len() as u64).min(left) as usize;
            data.write_all(&chunk[..k])?;
            left -= k as u64;
        }
        // End of file is the end of the data connection (stream mode).
        data.shutdown(Shutdown::Write)?;
        drop(data);
        let (c, l) = self.reply()?;
        if c != 226 && c != 250 {
            return Err(fail(format!("STOR {path}: {l:?}")));
        }
        Ok(())
    }

    /// QUIT and wait for the goodbye (221), so the server has done its part of the close.
    pub fn quit(mut self) -> io::Result<()> {
        self.cmd_expect("QUIT", |c| c == 221).map(drop)
    }
}
