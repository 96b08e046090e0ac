//! A tiny scripted FTP server whose listing is hostile: names with `..`, absolute paths,
//! backslashes and terminal escape sequences. It speaks just enough FTP for `ls` and `get`
//! (multi-line greeting, USER/PASS, FEAT with or without MLST, EPSV, SIZE, LIST/MLSD, RETR).

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::time::Duration;

/// The names the hostile server lists (all regular files) and what a client may save each as.
pub(crate) const HOSTILE: &[(&str, Option<&str>)] = &[
    ("../../escape.txt", Some("escape.txt")),
    ("/tmp/abs.txt", Some("abs.txt")),
    ("..\\win.txt", Some("win.txt")),
    ("a\x1b[31mred.txt", Some("a_[31mred.txt")),
    ("sub/inner.txt", Some("inner.txt")),
    ("..", None),
    ("good.txt", Some("good.txt")),
];

/// A file (not in the listing) whose download from offset 0 always breaks after `CUT_AT`
/// bytes with 426, and which is served whole only from a REST offset: only a client that
/// resumes can ever get it.
pub(crate) const CUT_NAME: &str = "cut.bin";
pub(crate) const CUT_AT: usize = 100_000;

pub(crate) fn cut_data() -> Vec<u8> {
    (0..250_000u32).map(|i| (i % 251) as u8).collect()
}

/// The content the server sends for `name`.
pub(crate) fn content(name: &str) -> String {
    format!("content of {name}\n")
}

/// Starts the server on a free port; it serves connections until the test process ends.
pub(crate) fn start(mlst: bool) -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for s in l.incoming().flatten() {
            std::thread::spawn(move || {
                let _ = session(s, mlst);
            });
        }
    });
    port
}

fn session(s: TcpStream, mlst: bool) -> std::io::Result<()> {
    s.set_read_timeout(Some(Duration::from_secs(20)))?;
    let mut r = BufReader::new(s.try_clone()?);
    let mut w = s;
    w.write_all(b"220-hostile test server\r\n 220 this line does not end it\r\n220 ready\r\n")?;
    let mut data: Option<TcpListener> = None;
    let mut rest = 0usize;
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
            "FEAT" if mlst => "211-Features:\r\n EPSV\r\n MLST type*;size*;\r\n211 End".into(),
            "FEAT" => "211-Features:\r\n EPSV\r\n SIZE\r\n211 End".into(),
            "TYPE" | "OPTS" => "200 ok".into(),
            "PWD" => "257 \"/\"".into(),
            "EPSV" => {
                let d = TcpListener::bind("127.0.0.1:0")?;
                let p = d.local_addr()?.port();
                data = Some(d);
                format!("229 Entering Extended Passive Mode (|||{p}|)")
            }
            "REST" => {
                rest = arg.parse().unwrap_or(0);
                "350 restarting".into()
            }
            "SIZE" if arg == CUT_NAME => format!("213 {}", cut_data().len()),
            "SIZE" => match HOSTILE.iter().find(|(n, _)| *n == arg) {
                Some((n, _)) => format!("213 {}", content(n).len()),
                None => "550 no such file".into(),
            },
            "LIST" | "MLSD" | "RETR" => {
                let Some(d) = data.take() else {
                    w.write_all(b"425 use EPSV first\r\n")?;
                    continue;
                };
                if cmd.eq_ignore_ascii_case("RETR") && arg == CUT_NAME {
                    w.write_all(b"150 here it comes\r\n")?;
                    let (mut ds, _) = d.accept()?;
                    let all = cut_data();
                    let from = std::mem::take(&mut rest).min(all.len());
                    if from == 0 {
                        ds.write_all(&all[..CUT_AT])?;
                        drop(ds);
                        w.write_all(b"426 Connection closed; transfer aborted.\r\n")?;
                    } else {
                        ds.write_all(&all[from..])?;
                        drop(ds);
                        w.write_all(b"226 done\r\n")?;
                    }
                    continue;
                }
                let body = match cmd.to_ascii_uppercase().as_str() {
                    "LIST" => HOSTILE
                        .iter()
                        .map(|(n, _)| {
                            let kind = if *n == ".." { 'd' } else { '-' };
                            format!(
                                "{kind}rw-r--r-- 1 u g {} Jan 01 12:00 {n}\r\n",
                                content(n).len()
                            )
                        })
                        .collect::<String>(),
                    "MLSD" => HOSTILE
                        .iter()
                        .map(|(n, _)| format!("type=file;size={}; {n}\r\n", content(n).len()))
                        .collect(),
                    _ => match HOSTILE.iter().find(|(n, _)| *n == arg) {
                        Some((n, _)) => content(n),
                        None => {
                            w.write_all(b"550 no such file\r\n")?;
                            continue;
                        }
                    },
                };
                w.write_all(b"150 here it comes\r\n")?;
                let (mut ds, _) = d.accept()?;
                ds.write_all(body.as_bytes())?;
                drop(ds);
                "226 done".into()
            }
            "QUIT" => {
                w.write_all(b"221 bye\r\n")?;
                return Ok(());
            }
            _ => "502 not implemented".into(),
        };
        w.write_all(format!("{reply}\r\n").as_bytes())?;
    }
}

/// How the fake TLS server misbehaves after `AUTH TLS`.
#[derive(Clone, Copy)]
pub(crate) enum BadTls {
    /// Answers 234 and sends plaintext in the same write, before any handshake.
    PlaintextAfter234,
    /// Answers 234, waits for the ClientHello, and answers it with bytes that are not TLS.
    GarbageHandshake,
    /// Answers 234 and then says nothing, holding the connection open.
    Silent,
}

/// Starts a server that greets, accepts `AUTH TLS` with 234, and then misbehaves as `how`.
/// Each connection is held open for up to 60 s, so a client that does not time out hangs.
pub(crate) fn start_bad_tls(how: BadTls) -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for s in l.incoming().flatten() {
            std::thread::spawn(move || {
                let _ = bad_tls_session(s, how);
            });
        }
    });
    port
}

fn bad_tls_session(s: TcpStream, how: BadTls) -> std::io::Result<()> {
    s.set_read_timeout(Some(Duration::from_secs(60)))?;
    let mut r = BufReader::new(s.try_clone()?);
    let mut w = s;
    w.write_all(b"220 ready\r\n")?;
    let mut line = String::new();
    r.read_line(&mut line)?;
    if !line.eq_ignore_ascii_case("AUTH TLS\r\n") {
        return w.write_all(b"500 expected AUTH TLS\r\n");
    }
    match how {
        BadTls::PlaintextAfter234 => w.write_all(b"234 go ahead\r\n230 logged in\r\n")?,
        BadTls::GarbageHandshake => {
            w.write_all(b"234 go ahead\r\n")?;
            let mut hello = [0u8; 5];
            std::io::Read::read_exact(&mut r, &mut hello)?;
            w.write_all(b"HTTP/1.1 400 Bad Request\r\n\r\nthis is not TLS\r\n")?;
        }
        BadTls::Silent => w.write_all(b"234 go ahead\r\n")?,
    }
    // Hold the connection open (until the client closes it, or 60 s).
    let mut sink = Vec::new();
    let _ = std::io::Read::read_to_end(&mut r, &mut sink);
    Ok(())
}
