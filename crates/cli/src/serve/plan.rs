//! `serve`'s plan: each service's command line, derived from `serve`'s own options and merged
//! with the configuration file's service sections, and the one self-signed certificate every
//! service shares under `--tls-self-signed`.

use super::Args;
use crate::config::Flags;
use anyhow::Context as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// The TLS flags as the services take them: the given files, or those of the self-signed
/// certificate made in `made`.
fn tls_flags(t: &crate::tls::TlsArgs, made: Option<&SelfSignedFiles>) -> Vec<String> {
    let mut v = Vec::new();
    let files = match made {
        Some(m) => Some((&m.cert, &m.key)),
        None => t.tls_cert.as_ref().zip(t.tls_key.as_ref()),
    };
    if let Some((c, k)) = files {
        v.extend(["--tls-cert".into(), c.display().to_string()]);
        v.extend(["--tls-key".into(), k.display().to_string()]);
    }
    if let (Some(o), None) = (&t.tls_ocsp, made) {
        v.extend(["--tls-ocsp".into(), o.display().to_string()]);
    }
    v
}

/// `--tls-self-signed` under `serve`: one certificate for every service (each making its own
/// would show a browser two certificates to trust), in a private directory removed at exit.
pub(super) struct SelfSignedFiles {
    dir: PathBuf,
    cert: PathBuf,
    key: PathBuf,
}

impl SelfSignedFiles {
    pub(super) fn make() -> anyhow::Result<Self> {
        use std::os::unix::fs::DirBuilderExt;
        let dir = std::env::temp_dir().join(format!("bingfa-tls-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&dir)
            .with_context(|| format!("creating {}", dir.display()))?;
        let (cert, key, made) =
            bingfa_net::tls::TlsConfig::write_self_signed(&["localhost", "127.0.0.1"], &dir)
                .context("cannot make a self-signed certificate")?;
        eprintln!(
            "tls: self-signed certificate for localhost, SHA-256 fingerprint {}",
            made.fingerprint
        );
        eprintln!("tls: public key pin sha256//{}", made.spki_sha256);
        eprintln!(
            "tls: trust it with `curl --cacert {}` (removed when serve stops)",
            cert.display()
        );
        Ok(SelfSignedFiles { dir, cert, key })
    }
}

impl Drop for SelfSignedFiles {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Each service's command line: what `serve` derives from its own options `a` (`root` is the
/// directory served, `made` the self-signed certificate), each flag tagged with the options it
/// comes from (`Flags::by`) so the configuration file's service sections slot in between.
pub(super) fn plan(
    a: &Args,
    root: &Path,
    anonymous: &str,
    made: Option<&SelfSignedFiles>,
) -> [Flags; 3] {
    let common = |svc: &'static str| -> Flags {
        let mut v = Flags::new(svc);
        v.by(&["model"])
            .extend(["--model".into(), a.model.to_string()]);
        v.by(&["workers"])
            .extend(["--workers".into(), a.workers.to_string()]);
        if a.edge_triggered {
            v.by(&["edge_triggered"]).push("--edge-triggered".into());
        }
        if a.hidden && svc != "chat" {
            v.by(&["hidden"]).push("--hidden".into());
        }
        v.by(&["log_format", "log_level"]).extend(a.log.to_flags());
        if a.metrics.is_some() {
            // Each service's own endpoint, private: this process serves the merge.
            v.by(&["metrics"])
                .extend(["--metrics".into(), "127.0.0.1:0".into()]);
        }
        v
    };
    const TLS: &[&str] = &["tls_cert", "tls_key", "tls_ocsp", "tls_self_signed"];
    let mut chat = common("chat");
    chat.by(&["chat_bind"])
        .extend(["--bind".into(), a.chat_bind.to_string()]);
    chat.by(&["web_bind"])
        .extend(["--web".into(), a.web_bind.to_string()]);
    chat.by(TLS).extend(tls_flags(&a.tls, made));
    if let Some(url) = &a.backplane {
        chat.by(&["backplane"])
            .extend(["--backplane".into(), url.clone()]);
    }
    if let Some(room) = &a.room {
        chat.by(&["room"]).extend(["--room".into(), room.clone()]);
    }
    chat.by(&["chat_max_per_ip"])
        .extend(["--max-per-ip".into(), a.chat_max_per_ip.to_string()]);
    if a.chat_log_messages {
        chat.by(&["chat_log_messages"])
            .push("--log-messages".into());
    }
    for o in &a.chat_allow_origin {
        chat.by(&["chat_allow_origin"])
            .extend(["--allow-origin".into(), o.clone()]);
    }
    if let Some(path) = &a.admin_socket {
        chat.by(&["admin_socket"])
            .extend(["--admin-socket".into(), path.display().to_string()]);
    }
    let mut ftp = common("ftp");
    ftp.by(&["ftp_bind"])
        .extend(["--bind".into(), a.ftp_bind.to_string()]);
    ftp.by(&["root"])
        .extend(["--root".into(), root.display().to_string()]);
    ftp.by(&["ftp_anonymous"])
        .extend(["--anonymous".into(), anonymous.to_string()]);
    if let Some(u) = &a.ftp_users {
        ftp.by(&["ftp_users"])
            .extend(["--users".into(), u.display().to_string()]);
    }
    if let Some(p) = &a.ftp_xferlog {
        ftp.by(&["ftp_xferlog"])
            .extend(["--xferlog".into(), p.display().to_string()]);
    }
    ftp.by(TLS).extend(tls_flags(&a.tls, made));
    let mut http = common("http");
    http.by(&["http_bind"])
        .extend(["--bind".into(), a.http_bind.to_string()]);
    http.by(&["root"])
        .extend(["--root".into(), root.display().to_string()]);
    if a.compress {
        http.by(&["compress"]).push("--compress".into());
    }
    http.by(TLS).extend(tls_flags(&a.tls, made));
    if let Some(p) = &a.http_access_log {
        http.by(&["http_access_log"])
            .extend(["--access-log".into(), p.display().to_string()]);
        http.by(&["http_access_log_format"]).extend([
            "--access-log-format".into(),
            a.http_access_log_format.clone(),
        ]);
    }
    for h in &a.http_header {
        http.by(&["http_header"])
            .extend(["--header".into(), h.clone()]);
    }
    if let Some(secs) = a.hsts {
        http.by(&["hsts"])
            .extend(["--hsts".into(), secs.to_string()]);
        if a.hsts_include_subdomains {
            http.by(&["hsts_include_subdomains"])
                .push("--hsts-include-subdomains".into());
        }
    }
    http.by(&["http_listing"])
        .extend(["--listing".into(), a.http_listing.clone()]);
    [chat, ftp, http]
}

/// Whether a service's command line gives `flag` (`--flag VALUE` or `--flag=VALUE`).
pub(super) fn has_flag(argv: &[String], flag: &str) -> bool {
    argv.iter()
        .any(|w| w == flag || w.strip_prefix(flag).is_some_and(|r| r.starts_with('=')))
}

/// The address a service is given with `flag` (`--bind ADDR` or `--bind=ADDR`, the last one):
/// the configuration file's section may have replaced `serve`'s own, and an error names it.
pub(super) fn last_value(argv: &[String], flag: &str, or: SocketAddr) -> SocketAddr {
    let mut found = None;
    for (i, w) in argv.iter().enumerate() {
        if w == flag {
            found = argv.get(i + 1).and_then(|v| v.parse().ok());
        } else if let Some(v) = w.strip_prefix(flag).and_then(|r| r.strip_prefix('=')) {
            found = v.parse().ok();
        }
    }
    found.unwrap_or(or)
}
