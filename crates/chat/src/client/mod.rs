//! The terminal client (`bingfa chat join`): connect to a room, show incoming lines while the
//! user types, send what they type. On a terminal it runs a small line editor in raw mode
//! ([`editor`]), so a message that arrives mid-typing is printed above the prompt and the
//! half-typed line is redrawn intact; anywhere else (a pipe, a script) it is plain
//! line-by-line I/O. Either way receiving runs on its own thread, concurrently with input.
//!
//! What a server sends is held to a bound: a line longer than [`MAX_INCOMING_LINE`] is
//! dropped as it arrives (never held whole) and the user is told; the session goes on.

mod editor;
mod render;
mod terminal;

use std::io::{BufRead, BufReader, IsTerminal, Write};
use std::net::{Shutdown, TcpStream, ToSocketAddrs};
use std::sync::mpsc;
use std::time::Duration;

/// How long to try to reach the server.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The longest line from the server the client holds; a longer one is dropped. The room's own
/// longest line is `/who` of a full room (1,000 names of 32 characters: about 130 KB).
pub const MAX_INCOMING_LINE: usize = 1024 * 1024;

/// Why the terminal client stopped.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The room's address could not be reached.
    #[error("cannot connect to {addr}: {source}")]
    Connect {
        /// The address as given.
        addr: String,
        /// Why the connection failed.
        source: std::io::Error,
    },
    /// Reading the room or the terminal failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// How a session ended (all of them are normal ends: the CLI exits 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The server closed the connection ("connection closed by server").
    ServerClosed,
    /// The user pressed Ctrl-C, or Ctrl-D on an empty line.
    UserQuit,
    /// Standard input ended (non-terminal mode) and the server then closed.
    InputEnded,
}

/// What the receiving thread and the input side tell the main loop.
enum Event {
    Line(String),
    Closed,
    /// Non-terminal mode: a line from standard input, or its end (`None`).
    Input(Option<String>),
}

/// Connect to `addr`, send `name` first if given, and run until the server closes or the
/// user quits.
pub fn run(addr: &str, name: Option<&str>) -> Result<Outcome, ClientError> {
    let stream = connect(addr)?;
    let mut out = stream.try_clone()?;
    if let Some(name) = name {
        out.write_all(format!("{name}\n").as_bytes())?;
    }
    let (tx, rx) = mpsc::channel();
    spawn_receiver(stream, tx.clone())?;
    if std::io::stdin().is_terminal() && std::io::stdout().is_terminal() {
        terminal::run(out, rx)
    } else {
        plain(out, rx, tx)
    }
}

fn connect(addr: &str) -> Result<TcpStream, ClientError> {
    let err = |source| ClientError::Connect {
        addr: addr.to_string(),
        source,
    };
    let mut last = std::io::Error::new(std::io::ErrorKind::NotFound, "no address");
    for a in addr.to_socket_addrs().map_err(err)? {
        match TcpStream::connect_timeout(&a, CONNECT_TIMEOUT) {
            Ok(s) => return Ok(s),
            Err(e) => last = e,
        }
    }
    Err(err(last))
}

/// Room lines come from the network: keep control characters (escape sequences that could
/// repaint or retitle the user's terminal) and bidi controls (which reorder what follows them)
/// out of what is printed, whatever the server let through.
pub fn sanitize(line: &str) -> String {
    line.trim_end_matches(['\r', '\n'])
        .chars()
        .map(|c| {
            let bidi = matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}');
            if (c.is_control() && c != '\t') || bidi {
                '\u{FFFD}'
            } else {
                c
            }
        })
        .collect()
}

fn spawn_receiver(stream: TcpStream, tx: mpsc::Sender<Event>) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("chat-receive".into())
        .spawn(move || {
            let mut r = BufReader::new(stream);
            let mut buf = Vec::new();
            loop {
                let line = match read_line(&mut r, &mut buf, MAX_INCOMING_LINE) {
                    Ok(Incoming::Line) => sanitize(&String::from_utf8_lossy(&buf)),
                    Ok(Incoming::TooLong(n)) => too_long_note(n),
                    Ok(Incoming::End) | Err(_) => break,
                };
                if tx.send(Event::Line(line)).is_err() {
                    return;
                }
            }
            let _ = tx.send(Event::Closed);
        })?;
    Ok(())
}

/// What [`read_line`] found.
#[derive(Debug, PartialEq, Eq)]
enum Incoming {
    /// A line (in the buffer, without its newline).
    Line,
    /// A line of this many bytes (newline not counted), longer than the bound: dropped.
    TooLong(u64),
    /// The end of the stream (a last line without a newline is still a line).
    End,
}

/// Read one line into `buf`, holding at most `max` bytes of it: past that the rest of the
/// line is read and thrown away as it comes.
fn read_line(r: &mut impl BufRead, buf: &mut Vec<u8>, max: usize) -> std::io::Result<Incoming> {
    buf.clear();
    let mut len: u64 = 0;
    loop {
        let chunk = r.fill_buf()?;
        if chunk.is_empty() {
            return Ok(match len {
                0 => Incoming::End,
                n if n > max as u64 => Incoming::TooLong(n),
                _ => Incoming::Line,
            });
        }
        let (part, done) = match chunk.iter().position(|&b| b == b'\n') {
            Some(i) => (&chunk[..i], i + 1),
            None => (chunk, chunk.len()),
        };
        len += part.len() as u64;
        if len <= max as u64 {
            buf.extend_from_slice(part);
        } else {
            buf.clear();
        }
        let ended = done > part.len();
        r.consume(done);
        if ended {
            return Ok(if len > max as u64 {
                Incoming::TooLong(len)
            } else {
                Incoming::Line
            });
        }
    }
}

/// What the user is shown instead of a line over [`MAX_INCOMING_LINE`].
fn too_long_note(bytes: u64) -> String {
    format!(
        "[chat join] the server sent a line of {bytes} bytes, over the {} KiB this client holds; it was dropped",
        MAX_INCOMING_LINE / 1024
    )
}

/// Pipes and scripts: server lines to stdout as they come, stdin lines to the server. At the
/// end of stdin the connection is half-closed and the client waits for the server to finish.
fn plain(
    mut out: TcpStream,
    rx: mpsc::Receiver<Event>,
    tx: mpsc::Sender<Event>,
) -> Result<Outcome, ClientError> {
    // A blocked stdin read cannot be cancelled; when the server goes first, the thread is
    // simply left behind as the process exits.
    std::thread::Builder::new()
        .name("chat-stdin".into())
        .spawn(move || {
            for line in std::io::stdin().lock().lines() {
                let Ok(line) = line else { break };
                if tx.send(Event::Input(Some(line))).is_err() {
                    return;
                }
            }
            let _ = tx.send(Event::Input(None));
        })?;
    let stdout = std::io::stdout();
    let mut input_ended = false;
    for ev in rx {
        match ev {
            Event::Line(l) => {
                let mut o = stdout.lock();
                writeln!(o, "{l}")?;
                o.flush()?;
            }
            Event::Input(Some(l)) => out.write_all(format!("{l}\n").as_bytes())?,
            Event::Input(None) => {
                input_ended = true;
                let _ = out.shutdown(Shutdown::Write);
            }
            Event::Closed => break,
        }
    }
    eprintln!("connection closed by server");
    Ok(if input_ended {
        Outcome::InputEnded
    } else {
        Outcome::ServerClosed
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_never_reach_the_terminal() {
        assert_eq!(sanitize("bob: hi\r\n"), "bob: hi");
        assert_eq!(sanitize("x\x1b]0;pwned\x07y"), "x\u{FFFD}]0;pwned\u{FFFD}y");
        assert_eq!(sanitize("tab\there ✓"), "tab\there ✓");
        assert_eq!(sanitize("a\u{202e}b\u{2067}"), "a\u{FFFD}b\u{FFFD}");
    }

    #[test]
    fn an_incoming_line_is_held_to_a_bound() {
        let input = [&b"short\n"[..], &b"x".repeat(100), b"\nlast\n", b"tail"].concat();
        let mut r = std::io::BufReader::with_capacity(7, &input[..]);
        let mut buf = Vec::new();
        let mut got = Vec::new();
        loop {
            let i = read_line(&mut r, &mut buf, 10).unwrap();
            assert!(buf.capacity() <= 64, "never held whole");
            if i == Incoming::End {
                break;
            }
            got.push((i, String::from_utf8_lossy(&buf).to_string()));
        }
        assert_eq!(
            got,
            [
                (Incoming::Line, "short".into()),
                (Incoming::TooLong(100), "".into()),
                (Incoming::Line, "last".into()),
                (Incoming::Line, "tail".into()),
            ]
        );
    }

    #[test]
    fn an_unreachable_server_is_a_clear_error() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap().to_string();
        drop(l);
        let e = connect(&addr).unwrap_err();
        assert!(
            e.to_string()
                .starts_with(&format!("cannot connect to {addr}: ")),
            "{e}"
        );
    }
}
