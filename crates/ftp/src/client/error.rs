//! The client's typed errors. A server refusal keeps its reply code and text so a caller can
//! both show the user exactly what the server said and branch on the code (e.g. 550). The
//! fields hold what the server sent, raw; every message (`Display`) escapes it, since a
//! hostile server's text would otherwise reach the user's terminal (`display_text`).

use super::sanitize::{display_name, display_text as esc};
use std::io;

/// Everything the client can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The server answered a command with a reply the client did not expect.
    #[error("{}: {code} {}", esc(.command), esc(.text))]
    Reply {
        /// The command as sent (the PASS argument is masked).
        command: String,
        /// The reply's code.
        code: u16,
        /// The reply text, lines joined with '\n', without the code prefixes.
        text: String,
    },
    /// The control connection ended before a reply.
    #[error("connection to the server lost: the server closed it")]
    Closed,
    /// A socket or local file failed.
    #[error("I/O error: {}", esc(&.0.to_string()))]
    Io(#[from] io::Error),
    /// The server said something that is not FTP (a malformed reply, a bad PASV answer).
    #[error("protocol error: {}", esc(.0))]
    Protocol(String),
    /// A URL that is not `ftp://` or `ftps://` as [`crate::client::FtpUrl`] reads them.
    #[error("bad ftp URL: {}", esc(.0))]
    Url(String),
    /// A path or name the client refuses to send (CR/LF would inject a second command).
    #[error("refusing to send \"{}\": it contains CR or LF", display_name(.0))]
    BadArgument(String),
    /// The server wants a password (`331`) and none was given.
    #[error("the server asks for a password and none was given")]
    NeedPassword,
    /// `AUTH TLS` was answered with something other than 234: the client does not go on in
    /// plaintext.
    #[error(
        "the server refused TLS (AUTH TLS: {code} {}); not continuing without it",
        esc(.text)
    )]
    TlsRefused {
        /// The reply's code.
        code: u16,
        /// The reply's text.
        text: String,
    },
    /// The server's certificate failed verification; the text names the reason.
    #[error("the server's certificate was rejected: {}", esc(.0))]
    Certificate(String),
    /// Any other TLS failure (a handshake that is not TLS, a bad CA file, a truncated
    /// protected transfer).
    #[error("TLS: {}", esc(.0))]
    Tls(String),
}

impl Error {
    /// The server's reply code, if this error is a server refusal.
    pub fn code(&self) -> Option<u16> {
        match self {
            Error::Reply { code, .. } => Some(*code),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_escape_what_the_server_sent() {
        let e = Error::Reply {
            command: "RETR a\x1b[2Jb".into(),
            code: 550,
            text: "no\r\x1b]0;title\x07\nsecond \u{9b}31m".into(),
        };
        assert_eq!(
            e.to_string(),
            "RETR a\\u{1b}[2Jb: 550 no\\r\\u{1b}]0;title\\u{7}\nsecond \\u{9b}31m"
        );
        let e = Error::TlsRefused {
            code: 500,
            text: "\x1b[31m".into(),
        };
        assert!(!e.to_string().contains('\x1b'), "{e}");
        let e = Error::BadArgument("a\r\nDELE x".into());
        assert_eq!(
            e.to_string(),
            "refusing to send \"a\\r\\nDELE x\": it contains CR or LF"
        );
    }
}
