//! The data channel. Passive: EPSV (RFC 2428), falling back to PASV once the server refuses
//! it; the client always connects to the control connection's peer address and ignores the
//! address a PASV reply announces (servers behind NAT announce private ones, and obeying it
//! would let a server point the client at a third host). Active: EPRT, falling back to PORT,
//! on a listener bound to the control connection's local address, accepting only the server.
//! With TLS (PROT P) every data connection does a client handshake after the 1xx reply to the
//! transfer command, in both modes (the server is the TLS server), resuming the control
//! connection's session; an upload ends with close_notify, a download reads to the server's.

use super::conn::refused;
use super::tls::Stream;
use super::{Client, Error, Result};
use std::io::{ErrorKind, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

enum Pending {
    Passive(TcpStream),
    Active(TcpListener),
}

/// The port of a 229 reply: `Entering Extended Passive Mode (|||6446|)`.
pub(super) fn parse_epsv(text: &str) -> Option<u16> {
    let inner = &text[text.find('(')? + 1..text.rfind(')')?];
    let d = inner.chars().next()?;
    let parts: Vec<&str> = inner.split(d).collect();
    (parts.len() == 5).then(|| parts[3].parse().ok())?
}

/// The port of a 227 reply: `Entering Passive Mode (h1,h2,h3,h4,p1,p2)` (parentheses optional).
pub(super) fn parse_pasv(text: &str) -> Option<u16> {
    let start = text.find(|c: char| c.is_ascii_digit())?;
    let nums: Vec<u16> = text[start..]
        .split(|c: char| !c.is_ascii_digit())
        .take_while(|s| !s.is_empty())
        .map(|s| s.parse().ok())
        .collect::<Option<_>>()?;
    if nums.len() < 6 || nums.iter().any(|&n| n > 255) {
        return None;
    }
    Some(nums[4] * 256 + nums[5])
}

/// The `(N bytes)` at the end of a 150 reply (the last one: the file's name may hold another).
pub(super) fn parse_announced(text: &str) -> Option<u64> {
    let open = text.rfind('(')?;
    let (n, rest) = text[open + 1..].split_once(' ')?;
    if !rest.starts_with("bytes)") || !n.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    n.parse().ok()
}

fn copy(from: &mut dyn Read, to: &mut dyn Write, progress: &mut dyn FnMut(u64)) -> Result<u64> {
    let mut buf = vec![0u8; 64 * 1024];
    let mut total = 0u64;
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) => return Ok(total),
            Ok(n) => n,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => return Err(e.into()),
        };
        to.write_all(&buf[..n])?;
        total += n as u64;
        progress(total);
    }
}

impl Client {
    fn data_stream(&self, s: TcpStream) -> Result<TcpStream> {
        let t = self.options().timeout;
        s.set_read_timeout(Some(t))?;
        s.set_write_timeout(Some(t))?;
        Ok(s)
    }

    fn connect_data(&self, ip: IpAddr, port: u16) -> Result<TcpStream> {
        let s = TcpStream::connect_timeout(&SocketAddr::new(ip, port), self.options().timeout)?;
        self.data_stream(s)
    }

    fn open_data(&mut self) -> Result<Pending> {
        let peer = self.peer_addr()?;
        if self.options().active {
            let local = self.local_addr()?;
            let l = TcpListener::bind((local.ip(), 0))?;
            let a = l.local_addr()?;
            if !self.no_eprt {
                let af = if a.is_ipv4() { 1 } else { 2 };
                let cmd = format!("EPRT |{af}|{}|{}|", a.ip(), a.port());
                let r = self.raw(&cmd)?;
                if r.code == 200 {
                    return Ok(Pending::Active(l));
                }
                if !(500..=504).contains(&r.code) || a.is_ipv6() {
                    return Err(refused(&cmd, &r));
                }
                self.no_eprt = true;
            }
            let IpAddr::V4(ip) = a.ip() else {
                unreachable!("IPv6 returned above")
            };
            let o = ip.octets();
            let cmd = format!(
                "PORT {},{},{},{},{},{}",
                o[0],
                o[1],
                o[2],
                o[3],
                a.port() >> 8,
                a.port() & 0xff
            );
            self.expect(&cmd, &[200])?;
            return Ok(Pending::Active(l));
        }
        if !self.no_epsv {
            let r = self.raw("EPSV")?;
            if r.code == 229 {
                let port = parse_epsv(&r.text())
                    .ok_or_else(|| Error::Protocol(format!("bad EPSV reply {:?}", r.text())))?;
                return Ok(Pending::Passive(self.connect_data(peer.ip(), port)?));
            }
            if !(500..=504).contains(&r.code) || peer.is_ipv6() {
                return Err(refused("EPSV", &r));
            }
            self.no_epsv = true;
        }
        let r = self.expect("PASV", &[227])?;
        let port = parse_pasv(&r.text())
            .ok_or_else(|| Error::Protocol(format!("bad PASV reply {:?}", r.text())))?;
        Ok(Pending::Passive(self.connect_data(peer.ip(), port)?))
    }

    fn accept(&self, l: TcpListener) -> Result<TcpStream> {
        let server = self.peer_addr()?.ip();
        l.set_nonblocking(true)?;
        let end = Instant::now() + self.options().timeout;
        loop {
            match l.accept() {
                // Only the server may connect; anyone else is dropped.
                Ok((s, from)) if from.ip() == server => {
                    s.set_nonblocking(false)?;
                    return self.data_stream(s);
                }
                Ok(_) => {}
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    if Instant::now() >= end {
                        return Err(Error::Io(ErrorKind::TimedOut.into()));
                    }
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Opens the data channel, sends REST when `offset` > 0, then `cmd`, and waits for the
    /// preliminary 125/150; then the TLS handshake when the data channel is protected.
    fn start(&mut self, cmd: &str, offset: u64) -> Result<Stream> {
        let pending = self.open_data()?;
        if offset > 0 {
            self.expect(&format!("REST {offset}"), &[350])?;
        }
        self.announced = None;
        let r = self.raw(cmd)?;
        if r.code != 125 && r.code != 150 {
            return Err(refused(cmd, &r));
        }
        self.announced = parse_announced(&r.text());
        let tcp = match pending {
            Pending::Passive(s) => s,
            Pending::Active(l) => self.accept(l)?,
        };
        match &self.tls {
            Some(setup) => match Stream::handshake(tcp, setup) {
                Ok(s) => Ok(s),
                Err(e) => {
                    // The server answers the failed transfer (425/522...) once it sees the
                    // data connection fail; read that so the next command gets its own reply.
                    let _ = self.next_reply();
                    Err(e)
                }
            },
            None => Ok(Stream::Plain(tcp)),
        }
    }

    fn finish(&mut self, cmd: &str) -> Result<()> {
        let r = self.next_reply()?;
        match r.code {
            226 | 250 => Ok(()),
            _ => Err(refused(cmd, &r)),
        }
    }

    pub(super) fn retrieve_cmd(
        &mut self,
        cmd: &str,
        offset: u64,
        out: &mut dyn Write,
        progress: &mut dyn FnMut(u64),
    ) -> Result<u64> {
        let mut data = self.start(cmd, offset)?;
        let n = match copy(&mut data, out, progress) {
            Err(Error::Io(e)) if data.is_tls() && e.kind() == ErrorKind::UnexpectedEof => {
                // The 226 may still come, but without close_notify the end of the data is
                // unauthenticated: an attacker could have cut it short. The final reply is
                // read all the same, so the control connection stays in step (the shell).
                let _ = self.next_reply();
                return Err(Error::Tls(format!(
                    "{cmd}: the server closed the data connection without TLS close_notify; \
                     the data may be truncated"
                )));
            }
            r => r?,
        };
        data.finish_download();
        self.finish(cmd)?;
        Ok(n)
    }

    pub(super) fn store_cmd(
        &mut self,
        cmd: &str,
        offset: u64,
        input: &mut dyn Read,
        progress: &mut dyn FnMut(u64),
    ) -> Result<u64> {
        let mut data = self.start(cmd, offset)?;
        let n = copy(input, &mut data, progress)?;
        data.flush()?;
        // The end of the file is the end of the connection (stream mode).
        data.finish_upload()?;
        self.finish(cmd)?;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epsv() {
        assert_eq!(
            parse_epsv("Entering Extended Passive Mode (|||6446|)"),
            Some(6446)
        );
        assert_eq!(parse_epsv("ok (!!!21!)"), Some(21));
        assert_eq!(parse_epsv("(|||x|)"), None);
        assert_eq!(parse_epsv("no parens"), None);
    }

    #[test]
    fn announced() {
        let t = "Opening BINARY mode data connection for a (2 bytes) (1048576 bytes).";
        assert_eq!(parse_announced(t), Some(1048576));
        assert_eq!(parse_announced("Here (12 bytes)"), Some(12));
        assert_eq!(
            parse_announced("File status okay. About to open data connection."),
            None
        );
        assert_eq!(parse_announced("for x (12 kbytes)"), None);
        assert_eq!(parse_announced("for x (-1 bytes)"), None);
    }

    #[test]
    fn pasv() {
        assert_eq!(
            parse_pasv("Entering Passive Mode (127,0,0,1,200,10)."),
            Some(200 * 256 + 10)
        );
        assert_eq!(parse_pasv("Entering Passive Mode 10,0,0,1,4,1"), Some(1025));
        assert_eq!(parse_pasv("(1,2,3,4,5)"), None);
        assert_eq!(parse_pasv("(1,2,3,4,5,256)"), None);
    }
}
