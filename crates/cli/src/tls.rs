//! The TLS flags shared by `bingfa http serve`, `bingfa chat serve` (its `--web` face) and
//! `bingfa ftp serve`:
//! a certificate from PEM files, or a self-signed one made at start for trying things out.

use anyhow::Context as _;
use bingfa_net::tls::{self, TlsConfig};
use std::path::PathBuf;

#[derive(clap::Args, Debug, Default)]
pub(crate) struct TlsArgs {
    /// Serve TLS with this certificate chain (PEM, leaf first); needs --tls-key. SIGHUP
    /// re-reads it (and the key, and --tls-ocsp) for new connections, and logs the outcome.
    #[arg(long, value_name = "PEM", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert (PEM: PKCS#8, PKCS#1 or SEC1).
    #[arg(long, value_name = "PEM", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Staple this OCSP response (DER, as `openssl ocsp -respout` writes it) to every
    /// handshake, as nginx's ssl_stapling_file; SIGHUP re-reads it with the certificate.
    /// Fetching a fresh one before it expires is the operator's job (cron + SIGHUP).
    #[arg(long, value_name = "DER", requires = "tls_cert")]
    pub tls_ocsp: Option<PathBuf>,
    /// Serve TLS with a certificate for localhost made now (its fingerprint goes to stderr).
    #[arg(long, conflicts_with_all = ["tls_cert", "tls_key", "tls_ocsp"])]
    pub tls_self_signed: bool,
}

impl TlsArgs {
    /// The TLS settings asked for, if any. Installs the SIGHUP reload before any worker forks.
    pub(crate) fn config(&self, alpn: &[&[u8]]) -> anyhow::Result<Option<TlsConfig>> {
        if self.tls_self_signed {
            let (config, made) = TlsConfig::self_signed(&["localhost", "127.0.0.1"], alpn)
                .context("cannot make a self-signed certificate")?;
            eprintln!(
                "tls: self-signed certificate for localhost, SHA-256 fingerprint {}",
                made.fingerprint
            );
            eprintln!("tls: public key pin sha256//{}", made.spki_sha256);
            return Ok(Some(config));
        }
        let (Some(cert), Some(key)) = (&self.tls_cert, &self.tls_key) else {
            return Ok(None);
        };
        let config = TlsConfig::from_files(cert, key, self.tls_ocsp.as_deref(), alpn)
            .context("cannot use the TLS certificate")?;
        tls::install_sighup().context("cannot install the SIGHUP handler")?;
        Ok(Some(config))
    }
}
