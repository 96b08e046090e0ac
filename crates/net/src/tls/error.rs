//! The one error of the TLS layer's files: a certificate or key that could not be used, with
//! the file it came from (shared by the config, which loads at start, and the store, which
//! reloads after SIGHUP).

use std::path::{Path, PathBuf};

/// A certificate or key that could not be used, naming the file.
#[derive(Debug, thiserror::Error)]
#[error("{}: {what}", file.display())]
pub struct TlsError {
    /// The certificate or key file at fault (a placeholder name for a generated one).
    pub file: PathBuf,
    /// What is wrong with it, for the operator: unreadable, not PEM, no key, rejected by rustls.
    pub what: String,
}

pub(super) fn err(file: &Path, what: impl Into<String>) -> TlsError {
    TlsError {
        file: file.to_path_buf(),
        what: what.into(),
    }
}
