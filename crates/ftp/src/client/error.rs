//! The client's typed errors. A server refusal keeps its reply code and text so a caller can
//! both show the user exactly what the server said and branch on the code (e.g. 550).

use std::io;

/// Everything the client can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The server answered a command with a reply the client did not expect.
    #[error("{command}: {code} {text}")]
    Reply {
        /// The command as sent (the PASS argument is masked).
        command: String,
        code: u16,
        /// The reply text, lines joined with '\n', without the code prefixes.
        text: String,
    },
    #[error("connection to the server lost: the server closed it")]
    Closed,
    #[error("I/O error: {0}")]
    Io(#[from] io::Error),
    /// The server said something that is not FTP (a malformed reply, a bad PASV answer).
    #[error("protocol error: {0}")]
    Protocol(String),
    #[error("bad ftp URL: {0}")]
    Url(String),
    /// A path or name the client refuses to send (CR/LF would inject a second command).
    #[error("refusing to send {0:?}: it contains CR or LF")]
    BadArgument(String),
    #[error("the server asks for a password and none was given")]
    NeedPassword,
    /// `AUTH TLS` was answered with something other than 234: the client does not go on in
    /// plaintext.
    #[error("the server refused TLS (AUTH TLS: {code} {text}); not continuing without it")]
    TlsRefused { code: u16, text: String },
    /// The server's certificate failed verification; the text names the reason.
    #[error("the server's certificate was rejected: {0}")]
    Certificate(String),
    /// Any other TLS failure (a handshake that is not TLS, a bad CA file, a truncated
    /// protected transfer).
    #[error("TLS: {0}")]
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
