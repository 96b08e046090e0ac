//! The FTP client: a blocking control connection (`Client`), its replies, the data channel
//! (EPSV with PASV fallback, or EPRT/PORT active mode), directory listings (MLSD or `ls -l`
//! LIST), FTP over TLS (RFC 4217, explicit `AUTH TLS` and implicit `ftps://`), `ftp://` and
//! `ftps://` URLs, and the sanitising of names that come from a server before they
//! become local file names. The CLI (`bingfa ftp ls|get|put|shell`) is a thin layer on this.

mod conn;
mod data;
mod error;
mod listing;
mod open;
mod reply;
mod sanitize;
mod tls;
mod url;

pub use conn::{Client, Features, Options, StoreMode};
pub use error::Error;
pub use listing::{parse_list_line, parse_mlsd_line, Entry, Kind};
pub use reply::{read_reply, Reply};
pub use sanitize::{display_name, display_text, local_name};
pub use tls::{TlsOptions, Trust};
pub use url::FtpUrl;

/// The client's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
