//! Opening the control connection: TCP, then (with TLS) implicit FTPS's handshake before the
//! greeting or explicit `AUTH TLS` after it, then `PBSZ 0` and `PROT P`.

use super::conn::refused;
use super::tls::{Setup, Stream};
use super::{read_reply, Client, Error, Features, Options, Result};
use std::io::{BufReader, Write};
use std::net::{TcpStream, ToSocketAddrs};

impl Client {
    /// Connects to `host`:`port` and reads the greeting (which must be 220). With TLS:
    /// implicit FTPS does the handshake first; explicit sends `AUTH TLS` after the greeting
    /// (a refusal is `Error::TlsRefused`, never a silent fallback to plaintext). Either way
    /// `PBSZ 0` and `PROT P` follow, so every data connection is encrypted too.
    pub fn connect(host: &str, port: u16, opts: Options) -> Result<Self> {
        let tls = opts.tls.as_ref().map(|t| Setup::new(t, host)).transpose()?;
        let mut last = None;
        let mut stream = None;
        for a in (host, port).to_socket_addrs()? {
            match TcpStream::connect_timeout(&a, opts.timeout) {
                Ok(s) => {
                    stream = Some(s);
                    break;
                }
                Err(e) => last = Some(e),
            }
        }
        let stream = match (stream, last) {
            (Some(s), _) => s,
            (None, Some(e)) => return Err(e.into()),
            (None, None) => return Err(Error::Protocol("the host has no address".into())),
        };
        stream.set_read_timeout(Some(opts.timeout))?;
        stream.set_write_timeout(Some(opts.timeout))?;
        let _ = stream.set_nodelay(true);
        let implicit = opts.tls.as_ref().is_some_and(|t| t.implicit);
        let stream = match &tls {
            Some(setup) if implicit => Stream::handshake(stream, setup)?,
            _ => Stream::Plain(stream),
        };
        let mut reader = BufReader::new(stream);
        let mut greeting = read_reply(&mut reader)?;
        // 120: "ready in n minutes"; the real greeting follows.
        while greeting.code == 120 {
            greeting = read_reply(&mut reader)?;
        }
        if greeting.code != 220 {
            return Err(Error::Reply {
                command: "(greeting)".into(),
                code: greeting.code,
                text: greeting.text(),
            });
        }
        if let (Some(setup), false) = (&tls, implicit) {
            reader = auth_tls(reader, setup)?;
        }
        let protect = tls.is_some();
        let mut c = Client {
            reader,
            opts,
            tls,
            no_epsv: false,
            no_eprt: false,
            protect_after_login: false,
            features: Features::default(),
            welcome: greeting,
            announced: None,
        };
        if protect {
            c.protect_after_login = !c.protect_data()?;
        }
        Ok(c)
    }

    /// `PBSZ 0` and `PROT P` (RFC 4217 §8, §9): every data connection over TLS. Before USER
    /// (as RFC 4217 allows) so nothing is ever sent in the clear; a server that wants a login
    /// first answers 530 (not logged in), and then this is false and `login` does it again.
    pub(super) fn protect_data(&mut self) -> Result<bool> {
        let r = self.raw("PBSZ 0")?;
        match r.code {
            200 => {}
            530 => return Ok(false),
            _ => return Err(refused("PBSZ 0", &r)),
        }
        self.expect("PROT P", &[200])?;
        Ok(true)
    }
}

/// `AUTH TLS` (RFC 4217 §4) on the plain control connection, then the handshake on it.
fn auth_tls(mut reader: BufReader<Stream>, setup: &Setup) -> Result<BufReader<Stream>> {
    let s = reader.get_mut();
    s.write_all(b"AUTH TLS\r\n")?;
    s.flush()?;
    let r = read_reply(&mut reader)?;
    if r.code != 234 {
        return Err(Error::TlsRefused {
            code: r.code,
            text: r.text(),
        });
    }
    // Anything the server sent after 234 and before our ClientHello is not TLS; taking it
    // as the first encrypted reply would let a man in the middle inject replies.
    if !reader.buffer().is_empty() {
        return Err(Error::Tls(
            "the server sent plaintext after 234, before the TLS handshake".into(),
        ));
    }
    match reader.into_inner() {
        Stream::Plain(tcp) => Ok(BufReader::new(Stream::handshake(tcp, setup)?)),
        Stream::Tls(_) => Err(Error::Protocol("AUTH TLS on a TLS connection".into())),
    }
}
