//! A scripted FTP server for the client's behaviour against a hostile or broken server: every
//! reply text, the listing and each file's SIZE, preliminary reply, bytes and final reply are
//! set by the test. It speaks just enough FTP for `ls`, `get` and the shell (greeting,
//! USER/PASS, FEAT, TYPE, PWD, CWD, MKD, EPSV, SIZE, LIST/MLSD, RETR); anything else gets
//! `unknown`'s text with 502.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::time::Duration;

/// One file the server offers to RETR.
#[derive(Clone)]
pub(crate) struct File {
    pub name: &'static str,
    /// The SIZE answer: `Some(n)` is `213 n`, `None` is a 550.
    pub size: Option<u64>,
    /// RETR's first reply; a code other than 1xx refuses the transfer with it.
    pub preliminary: String,
    pub body: Vec<u8>,
    /// The reply after the data connection is closed; empty: the server closes the control
    /// connection instead.
    pub end: String,
}

impl File {
    /// A file served whole and truthfully.
    pub(crate) fn good(name: &'static str, body: &[u8]) -> File {
        File {
            name,
            size: Some(body.len() as u64),
            preliminary: "150 here it comes".into(),
            body: body.to_vec(),
            end: "226 done".into(),
        }
    }

    /// A file whose RETR is refused with `reply` (e.g. `550 Not a regular file.`).
    pub(crate) fn refused(name: &'static str, reply: &str) -> File {
        File {
            name,
            size: None,
            preliminary: reply.into(),
            body: Vec::new(),
            end: String::new(),
        }
    }
}

/// What the server says. Texts are sent as given (CRLF is appended to one-line replies).
#[derive(Clone)]
pub(crate) struct Fake {
    /// The whole greeting, line ends included.
    pub greeting: String,
    pub pwd: String,
    pub mkd: String,
    /// CWD's answer (any code).
    pub cwd: String,
    /// The reply to unknown commands (AUTH TLS among them).
    pub unknown: String,
    /// FEAT offers MLST: listings are MLSD, else LIST.
    pub mlst: bool,
    /// The LIST or MLSD body, line ends included.
    pub listing: String,
    pub files: Vec<File>,
    /// RETR of a name not in `files`.
    pub missing: String,
}

impl Default for Fake {
    fn default() -> Fake {
        Fake {
            greeting: "220 fake server ready\r\n".into(),
            pwd: "257 \"/\" is the current directory".into(),
            mkd: "257 \"/new\" created".into(),
            cwd: "250 ok".into(),
            unknown: "502 not implemented".into(),
            mlst: true,
            listing: String::new(),
            files: Vec::new(),
            missing: "550 no such file".into(),
        }
    }
}

/// Starts `fake` on a free loopback port; it serves until the test process ends.
pub(crate) fn start(fake: Fake) -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let fake = Arc::new(fake);
    std::thread::spawn(move || {
        for s in l.incoming().flatten() {
            let fake = fake.clone();
            std::thread::spawn(move || {
                let _ = session(s, &fake);
            });
        }
    });
    port
}

/// Accepts the client's data connection, or gives up after 20 s.
fn accept(d: TcpListener) -> std::io::Result<TcpStream> {
    d.set_nonblocking(true)?;
    for _ in 0..2000 {
        match d.accept() {
            Ok((s, _)) => {
                s.set_nonblocking(false)?;
                return Ok(s);
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(10))
            }
            Err(e) => return Err(e),
        }
    }
    Err(std::io::ErrorKind::TimedOut.into())
}

fn session(s: TcpStream, f: &Fake) -> std::io::Result<()> {
    s.set_read_timeout(Some(Duration::from_secs(20)))?;
    let mut r = BufReader::new(s.try_clone()?);
    let mut w = s;
    w.write_all(f.greeting.as_bytes())?;
    let mut data: Option<TcpListener> = None;
    loop {
        let mut line = String::new();
        if r.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let line = line.trim_end_matches(['\r', '\n']);
        let (cmd, arg) = line.split_once(' ').unwrap_or((line, ""));
        let reply = match cmd.to_ascii_uppercase().as_str() {
            "USER" => "331 password please".to_string(),
            "PASS" => "230 in".to_string(),
            "FEAT" if f.mlst => {
                "211-Features:\r\n EPSV\r\n SIZE\r\n MLST type*;size*;\r\n211 End".into()
            }
            "FEAT" => "211-Features:\r\n EPSV\r\n SIZE\r\n211 End".into(),
            "TYPE" | "OPTS" => "200 ok".into(),
            "PWD" => f.pwd.clone(),
            "CWD" => f.cwd.clone(),
            "MKD" => f.mkd.clone(),
            "EPSV" => {
                let d = TcpListener::bind("127.0.0.1:0")?;
                let p = d.local_addr()?.port();
                data = Some(d);
                format!("229 Entering Extended Passive Mode (|||{p}|)")
            }
            "SIZE" => match f.files.iter().find(|x| x.name == arg).and_then(|x| x.size) {
                Some(n) => format!("213 {n}"),
                None => "550 SIZE not available".into(),
            },
            "LIST" | "MLSD" | "RETR" => {
                let Some(d) = data.take() else {
                    w.write_all(b"425 use EPSV first\r\n")?;
                    continue;
                };
                let (pre, body, end) = if cmd.eq_ignore_ascii_case("RETR") {
                    match f.files.iter().find(|x| x.name == arg) {
                        Some(x) => (x.preliminary.as_str(), &x.body[..], x.end.as_str()),
                        None => (f.missing.as_str(), &[][..], ""),
                    }
                } else {
                    ("150 listing", f.listing.as_bytes(), "226 listed")
                };
                w.write_all(format!("{pre}\r\n").as_bytes())?;
                if !pre.starts_with('1') {
                    continue;
                }
                let mut ds = accept(d)?;
                ds.write_all(body)?;
                drop(ds);
                if end.is_empty() {
                    return Ok(());
                }
                end.to_string()
            }
            "QUIT" => {
                w.write_all(b"221 bye\r\n")?;
                return Ok(());
            }
            _ => f.unknown.clone(),
        };
        w.write_all(format!("{reply}\r\n").as_bytes())?;
    }
}
