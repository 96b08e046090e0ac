//! RFC 6455 WebSocket as a sans-IO core: the opening handshake ([`handshake`]), frames and
//! their encoding ([`frame`]), and a streaming decoder that enforces the protocol's rules and
//! the message size limit ([`decoder`]). No sockets here: `crate::web::WebSession` drives it
//! inside a bingfa-net session, and the tests drive it with byte slices.

pub mod decoder;
pub mod frame;
pub mod handshake;

pub use decoder::{Decoder, Event};
pub use frame::{close_payload, encode, encode_masked, Opcode};
pub use handshake::{accept_key, check_upgrade, HandshakeError};

/// Close status codes this crate sends (RFC 6455 §7.4.1).
pub mod code {
    /// Normal closure: the session ended (the room said goodbye, or the peer asked to close).
    pub const NORMAL: u16 = 1000;
    /// The server is going away (graceful shutdown).
    pub const GOING_AWAY: u16 = 1001;
    /// A frame broke the protocol (unmasked client frame, reserved bits, bad control frame...).
    pub const PROTOCOL: u16 = 1002;
    /// A data type the endpoint does not accept (the room speaks text; binary is refused).
    pub const UNSUPPORTED: u16 = 1003;
    /// A text message (or close reason) that is not valid UTF-8.
    pub const INVALID_DATA: u16 = 1007;
    /// A message larger than the configured maximum.
    pub const TOO_BIG: u16 = 1009;
}

/// Why a connection must be failed; [`WsError::code`] is the close code to send.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WsError {
    /// A frame breaks RFC 6455 (what rule, as text).
    #[error("protocol error: {0}")]
    Protocol(&'static str),
    /// A text message or close reason is not UTF-8.
    #[error("invalid UTF-8 in a text message or close reason")]
    InvalidUtf8,
    /// A message over the limit (its size so far).
    #[error("message of {0} bytes or more is over the limit")]
    TooBig(u64),
}

impl WsError {
    /// The close code to send.
    pub fn code(&self) -> u16 {
        match self {
            WsError::Protocol(_) => code::PROTOCOL,
            WsError::InvalidUtf8 => code::INVALID_DATA,
            WsError::TooBig(_) => code::TOO_BIG,
        }
    }
}
