//! The control connection: connect, log in, negotiate (FEAT, OPTS UTF8 ON, TYPE I), and the
//! commands a client needs. Every command's reply is checked against the codes that mean
//! success; anything else becomes `Error::Reply` with the server's code and text.

use super::tls::{Setup, Stream};
use super::{read_reply, Entry, Error, Reply, Result, TlsOptions};
use std::io::{BufReader, Read, Write};
use std::net::SocketAddr;
use std::time::Duration;

/// Connection options.
#[derive(Debug, Clone)]
pub struct Options {
    /// Timeout for connecting and for every read or write (control and data).
    pub timeout: Duration,
    /// Active mode: the server connects to us (EPRT, falling back to PORT).
    pub active: bool,
    /// FTP over TLS (RFC 4217): the control connection and every data connection.
    pub tls: Option<TlsOptions>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            timeout: Duration::from_secs(30),
            active: false,
            tls: None,
        }
    }
}

/// What FEAT announced.
#[derive(Debug, Clone, Default)]
pub struct Features {
    /// `MLST`: machine listings (`MLSD`) are understood.
    pub mlst: bool,
    /// `UTF8`: paths are UTF-8.
    pub utf8: bool,
    /// `SIZE`.
    pub size: bool,
    /// `MDTM`.
    pub mdtm: bool,
    /// `REST STREAM`: transfers may resume.
    pub rest_stream: bool,
    /// `EPSV`.
    pub epsv: bool,
    /// Every feature line, trimmed.
    pub lines: Vec<String>,
}

/// How `store` writes the remote file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreMode {
    /// STOR: create or replace.
    Store,
    /// APPE: append (resume when the remote file is a prefix of ours).
    Append,
    /// REST n + STOR: overwrite from offset n (resume for servers without APPE).
    RestartAt(u64),
}

/// A logged-in (or about to be) FTP control connection.
pub struct Client {
    /// The control connection; commands are written through `get_mut` (a TLS stream cannot
    /// be split into a reading and a writing half).
    pub(super) reader: BufReader<Stream>,
    pub(super) opts: Options,
    /// Set when TLS is on: data connections then do a TLS handshake too (PROT P).
    pub(super) tls: Option<Setup>,
    /// Set once EPSV has been refused, so later transfers go straight to PASV.
    pub(super) no_epsv: bool,
    pub(super) no_eprt: bool,
    /// PBSZ/PROT still to send after login (the server refused them before it).
    pub(super) protect_after_login: bool,
    pub(super) features: Features,
    pub(super) welcome: Reply,
    /// The size the last transfer's 1xx reply announced (`150 ... (1234 bytes)`), if any.
    pub(super) announced: Option<u64>,
}

fn check_arg(arg: &str) -> Result<()> {
    if arg.contains(['\r', '\n']) {
        return Err(Error::BadArgument(arg.to_string()));
    }
    Ok(())
}

impl Client {
    /// The server's greeting.
    pub fn welcome(&self) -> &Reply {
        &self.welcome
    }

    /// The byte count the last transfer's preliminary reply announced, as vsftpd and
    /// wu-ftpd do (`150 Opening BINARY mode data connection for f (1234 bytes).`): a check of
    /// a download's length where SIZE is missing. `None` when the reply named none.
    pub fn announced_size(&self) -> Option<u64> {
        self.announced
    }

    /// What FEAT announced (empty before `negotiate`).
    pub fn features(&self) -> &Features {
        &self.features
    }

    /// The control connection's peer (where passive data connections go).
    pub fn peer_addr(&self) -> Result<SocketAddr> {
        Ok(self.reader.get_ref().tcp().peer_addr()?)
    }

    pub(super) fn local_addr(&self) -> Result<SocketAddr> {
        Ok(self.reader.get_ref().tcp().local_addr()?)
    }

    pub(super) fn options(&self) -> &Options {
        &self.opts
    }

    /// Sends one command line and reads the final reply (whatever its code).
    pub fn raw(&mut self, line: &str) -> Result<Reply> {
        check_arg(line)?;
        self.send(line)?;
        read_reply(&mut self.reader)
    }

    /// Writes one command line (flushed: a TLS stream buffers until then).
    pub(super) fn send(&mut self, line: &str) -> Result<()> {
        let s = self.reader.get_mut();
        s.write_all(format!("{line}\r\n").as_bytes())?;
        s.flush()?;
        Ok(())
    }

    /// Reads one more reply (after a preliminary 1xx).
    pub(super) fn next_reply(&mut self) -> Result<Reply> {
        read_reply(&mut self.reader)
    }

    /// Sends `line`; a reply whose code is not in `ok` becomes `Error::Reply`.
    pub(super) fn expect(&mut self, line: &str, ok: &[u16]) -> Result<Reply> {
        let r = self.raw(line)?;
        if ok.contains(&r.code) {
            Ok(r)
        } else {
            Err(refused(line, &r))
        }
    }

    /// USER/PASS. `user` None logs in as `anonymous`. A 331 without a password is
    /// `Error::NeedPassword`.
    pub fn login(&mut self, user: Option<&str>, password: Option<&str>) -> Result<()> {
        let (user, password) = match user {
            Some(u) => (u, password),
            None => ("anonymous", Some(password.unwrap_or("anonymous@"))),
        };
        let r = self.expect(&format!("USER {user}"), &[230, 331, 332])?;
        if r.code != 230 {
            let pass = password.ok_or(Error::NeedPassword)?;
            check_arg(pass)?;
            self.send(&format!("PASS {pass}"))?;
            let r = read_reply(&mut self.reader)?;
            if !matches!(r.code, 230 | 202) {
                return Err(refused("PASS ****", &r));
            }
        }
        if std::mem::take(&mut self.protect_after_login) && !self.protect_data()? {
            return Err(Error::Protocol(
                "PBSZ 0 refused with 530 even after login".into(),
            ));
        }
        Ok(())
    }

    /// FEAT, OPTS UTF8 ON (when offered) and TYPE I. FEAT is optional (RFC 2389): a server
    /// without it simply has no features.
    pub fn negotiate(&mut self) -> Result<()> {
        let r = self.raw("FEAT")?;
        if r.code == 211 {
            // "211-Features:", the features, "211 End"; a one-line 211 means none.
            let inner = match r.lines.len() {
                0..=2 => &[][..],
                n => &r.lines[1..n - 1],
            };
            let lines: Vec<String> = inner.iter().map(|l| l.trim().to_string()).collect();
            let has = |name: &str| {
                lines.iter().any(|l| {
                    l.split_whitespace()
                        .next()
                        .is_some_and(|w| w.eq_ignore_ascii_case(name))
                })
            };
            self.features = Features {
                mlst: has("MLST"),
                utf8: has("UTF8"),
                size: has("SIZE"),
                mdtm: has("MDTM"),
                rest_stream: lines.iter().any(|l| l.eq_ignore_ascii_case("REST STREAM")),
                epsv: has("EPSV"),
                lines,
            };
        }
        if self.features.utf8 {
            // Some servers answer 202 "always on"; any refusal is harmless here.
            let _ = self.raw("OPTS UTF8 ON")?;
        }
        self.expect("TYPE I", &[200])?;
        Ok(())
    }

    /// PWD: the working directory, as the server quotes it.
    pub fn pwd(&mut self) -> Result<String> {
        let r = self.expect("PWD", &[257])?;
        Ok(parse_257(&r.lines[0]))
    }

    /// CWD.
    pub fn cwd(&mut self, path: &str) -> Result<()> {
        self.expect(&format!("CWD {path}"), &[200, 250]).map(drop)
    }

    /// CDUP.
    pub fn cdup(&mut self) -> Result<()> {
        self.expect("CDUP", &[200, 250]).map(drop)
    }

    /// MKD; returns the created directory's name as the server quotes it.
    pub fn mkd(&mut self, path: &str) -> Result<String> {
        let r = self.expect(&format!("MKD {path}"), &[257, 250])?;
        Ok(parse_257(&r.lines[0]))
    }

    /// RMD.
    pub fn rmd(&mut self, path: &str) -> Result<()> {
        self.expect(&format!("RMD {path}"), &[250, 200]).map(drop)
    }

    /// DELE.
    pub fn dele(&mut self, path: &str) -> Result<()> {
        self.expect(&format!("DELE {path}"), &[250, 200]).map(drop)
    }

    /// RNFR then RNTO.
    pub fn rename(&mut self, from: &str, to: &str) -> Result<()> {
        self.expect(&format!("RNFR {from}"), &[350])?;
        self.expect(&format!("RNTO {to}"), &[250, 200]).map(drop)
    }

    /// SIZE (in TYPE I this is the exact byte count).
    pub fn size(&mut self, path: &str) -> Result<u64> {
        let r = self.expect(&format!("SIZE {path}"), &[213])?;
        r.lines[0]
            .trim()
            .parse()
            .map_err(|_| Error::Protocol(format!("bad SIZE reply {:?}", r.lines[0])))
    }

    /// MDTM: the modification time as `YYYYMMDDHHMMSS` (UTC).
    pub fn mdtm(&mut self, path: &str) -> Result<String> {
        let r = self.expect(&format!("MDTM {path}"), &[213])?;
        Ok(r.lines[0].trim().to_string())
    }

    /// Lists `path` (the current directory when empty): MLSD when FEAT offered MLST, else
    /// LIST parsed as `ls -l`. Entries are sorted by name.
    pub fn list(&mut self, path: &str) -> Result<Vec<Entry>> {
        let arg = |cmd: &str| {
            if path.is_empty() {
                cmd.to_string()
            } else {
                format!("{cmd} {path}")
            }
        };
        let mut entries: Vec<Entry> = if self.features.mlst {
            self.lines(&arg("MLSD"))?
                .iter()
                .filter_map(|l| super::parse_mlsd_line(l))
                .collect()
        } else {
            self.lines(&arg("LIST"))?
                .iter()
                .filter_map(|l| super::parse_list_line(l))
                .collect()
        };
        entries.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(entries)
    }

    /// NLST: bare names.
    pub fn nlst(&mut self, path: &str) -> Result<Vec<String>> {
        let cmd = if path.is_empty() {
            "NLST".to_string()
        } else {
            format!("NLST {path}")
        };
        self.lines(&cmd)
    }

    fn lines(&mut self, cmd: &str) -> Result<Vec<String>> {
        let mut buf = Capped(Vec::new());
        self.retrieve_cmd(cmd, 0, &mut buf, &mut |_| {})?;
        Ok(String::from_utf8_lossy(&buf.0)
            .split('\n')
            .map(|l| l.strip_suffix('\r').unwrap_or(l).to_string())
            .filter(|l| !l.is_empty())
            .collect())
    }

    /// RETR `path` from byte `offset` (REST first when non-zero) into `out`; `progress` gets
    /// the bytes received so far. Returns the bytes received.
    pub fn retrieve(
        &mut self,
        path: &str,
        offset: u64,
        out: &mut dyn Write,
        progress: &mut dyn FnMut(u64),
    ) -> Result<u64> {
        self.retrieve_cmd(&format!("RETR {path}"), offset, out, progress)
    }

    /// STOR/APPE/REST+STOR `path` from `input`. Returns the bytes sent.
    pub fn store(
        &mut self,
        path: &str,
        mode: StoreMode,
        input: &mut dyn Read,
        progress: &mut dyn FnMut(u64),
    ) -> Result<u64> {
        let (cmd, offset) = match mode {
            StoreMode::Store => ("STOR", 0),
            StoreMode::Append => ("APPE", 0),
            StoreMode::RestartAt(n) => ("STOR", n),
        };
        self.store_cmd(&format!("{cmd} {path}"), offset, input, progress)
    }

    /// QUIT, ignoring the answer: the session is over either way. On TLS, close_notify
    /// then ends the control connection cleanly.
    pub fn quit(mut self) {
        let _ = self.raw("QUIT");
        self.reader.get_mut().close_notify();
    }
}

/// The most bytes of one listing kept in memory (some 500,000 entries): a server that sends
/// more ends the listing with an error instead of exhausting the client's memory.
pub(super) const MAX_LISTING: usize = 64 * 1024 * 1024;

/// A listing's buffer, refusing to grow past [`MAX_LISTING`].
struct Capped(Vec<u8>);

impl Write for Capped {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        if self.0.len() + b.len() > MAX_LISTING {
            return Err(std::io::Error::other(format!(
                "the listing is longer than {} MiB",
                MAX_LISTING >> 20
            )));
        }
        self.0.extend_from_slice(b);
        Ok(b.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

pub(super) fn refused(command: &str, r: &Reply) -> Error {
    Error::Reply {
        command: command.to_string(),
        code: r.code,
        text: r.text(),
    }
}

/// The quoted path of a 257 reply (`"/a ""b"""` is `/a "b"`), or the whole text.
fn parse_257(text: &str) -> String {
    let Some(start) = text.find('"') else {
        return text.to_string();
    };
    let mut out = String::new();
    let mut chars = text[start + 1..].chars().peekable();
    while let Some(c) = chars.next() {
        if c == '"' {
            if chars.peek() == Some(&'"') {
                chars.next();
                out.push('"');
            } else {
                return out;
            }
        } else {
            out.push(c);
        }
    }
    text.to_string()
}

#[cfg(test)]
mod tests {
    use std::io::Write as _;

    #[test]
    fn a_listing_is_bounded() {
        let mut c = super::Capped(Vec::new());
        c.write_all(&vec![b'x'; super::MAX_LISTING - 1]).unwrap();
        c.write_all(b"y").unwrap();
        let e = c.write_all(b"z").unwrap_err();
        assert_eq!(e.to_string(), "the listing is longer than 64 MiB");
        assert_eq!(c.0.len(), super::MAX_LISTING);
    }

    #[test]
    fn parse_257() {
        assert_eq!(super::parse_257(r#""/a ""b""" is current"#), r#"/a "b""#);
        assert_eq!(super::parse_257(r#""/" "#), "/");
        assert_eq!(super::parse_257("no quotes"), "no quotes");
    }
}
