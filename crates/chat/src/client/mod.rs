//! The terminal client (`bingfa chat join`): connect to a room, show incoming lines while the
//! user types, send what they type. On a terminal it runs a small line editor in raw mode
//! ([`editor`]), so a message that arrives mid-typing is printed above the prompt and the
//! half-typed line is redrawn intact; anywhere else (a pipe, a script) it is plain
//! line-by-line I/O. Either way receiving runs on its own thread, concurrently with input.

mod editor;
mod terminal;

use std::io::{BufRead, BufReader, IsTerminal, Write};
use std::net::{Shutdown, TcpStream, ToSocketAddrs};
use std::sync::mpsc;
use std::time::Duration;

/// How long to try to reach the server.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot connect to {addr}: {source}")]
    Connect {
        addr: String,
        source: std::io::Error,
    },
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
/// repaint or retitle the user's terminal) out of what is printed.
pub fn sanitize(line: &str) -> String {
    line.trim_end_matches(['\r', '\n'])
        .chars()
        .map(|c| {
            if c.is_control() && c != '\t' {
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
                buf.clear();
                match r.read_until(b'\n', &mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {
                        let line = sanitize(&String::from_utf8_lossy(&buf));
                        if tx.send(Event::Line(line)).is_err() {
                            return;
                        }
                    }
                }
            }
            let _ = tx.send(Event::Closed);
        })?;
    Ok(())
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
