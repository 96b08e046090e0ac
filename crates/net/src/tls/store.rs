//! The certificate store behind every handshake: the certificate chain, its key and the OCSP
//! response stapled to it, loaded from files and re-read after SIGHUP.
//!
//! The process that installed the SIGHUP handler reloads its stores at once, from
//! `reload.rs`'s thread, and logs the outcome then, once: the new certificate's fingerprint,
//! or why the files were refused and the old certificate kept. Good files are published to
//! the store's [`Snapshot`], shared with the worker processes forked before the signal
//! (`prefork`): each parses it at its next handshake, logging only at debug level, so an
//! operator sees one line per SIGHUP and every worker serves what the parent validated.
//! Workers forked after it (`fork`) inherit the reloaded store.

use super::error::{err, TlsError};
use super::snapshot::{Parts, Snapshot};
use rustls::crypto::ring as provider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock, Weak};

/// Where a certificate came from.
#[derive(Debug, Clone)]
pub(super) struct Files {
    pub(super) cert: PathBuf,
    pub(super) key: PathBuf,
    /// A DER OCSP response to staple (nginx's `ssl_stapling_file`).
    pub(super) ocsp: Option<PathBuf>,
}

/// The certificate store behind every handshake.
#[derive(Debug)]
pub(super) struct Store {
    /// Where the certificate came from; `None` for a self-signed one (nothing to reload).
    files: Option<Files>,
    current: RwLock<Arc<CertifiedKey>>,
    /// The files' last good contents, shared by every process (with `files` only).
    snapshot: Option<Snapshot>,
    /// The snapshot stamp `current` was parsed from.
    seen: AtomicU64,
}

/// Every store of this process that has files, for the SIGHUP thread.
static STORES: Mutex<Vec<Weak<Store>>> = Mutex::new(Vec::new());

impl Store {
    pub(super) fn new(key: CertifiedKey, files: Option<Files>) -> Arc<Store> {
        let snapshot = files.as_ref().and_then(|_| {
            Snapshot::new()
                .map_err(|e| tracing::warn!("workers will not see SIGHUP reloads: {e}"))
                .ok()
        });
        let store = Arc::new(Store {
            files,
            current: RwLock::new(Arc::new(key)),
            snapshot,
            seen: AtomicU64::new(0),
        });
        if store.files.is_some() {
            let mut all = STORES.lock().unwrap_or_else(|e| e.into_inner());
            all.retain(|w| w.strong_count() > 0);
            all.push(Arc::downgrade(&store));
        }
        store
    }

    /// The SIGHUP thread: re-read and validate the files now, publish them, log the outcome.
    fn reload_now(&self) {
        let Some(f) = &self.files else { return };
        let parsed = read_files(f).and_then(|parts| Ok((parse(f, &parts)?, parts)));
        match parsed {
            Ok((k, parts)) => {
                if let Some(snap) = &self.snapshot {
                    if !snap.publish(&parts) {
                        tracing::error!(cert = %f.cert.display(), "TLS certificate not reloaded, keeping the old one: its files are larger than 1 MiB");
                        return;
                    }
                    self.seen.store(snap.stamp(), Ordering::Release);
                }
                let fp = fingerprint(&k.cert[0]);
                let stapled = k.ocsp.as_ref().map_or(0, |o| o.len());
                self.set(k);
                tracing::info!(cert = %f.cert.display(), sha256 = %fp, ocsp_bytes = stapled, "TLS certificate reloaded");
            }
            // A broken file mid-life keeps the old certificate: better stale than down.
            Err(e) => tracing::error!("TLS certificate not reloaded, keeping the old one: {e}"),
        }
    }

    /// A worker's handshake: take up what the reload thread published since, if anything.
    fn follow(&self) {
        let (Some(f), Some(snap)) = (&self.files, &self.snapshot) else {
            return;
        };
        let stamp = snap.stamp();
        let seen = self.seen.load(Ordering::Acquire);
        if stamp == seen
            || self
                .seen
                .compare_exchange(seen, stamp, Ordering::AcqRel, Ordering::Relaxed)
                .is_err()
        {
            return;
        }
        let Some((_, parts)) = snap.read() else {
            return;
        };
        match parse(f, &parts) {
            Ok(k) => {
                tracing::debug!(sha256 = %fingerprint(&k.cert[0]), "TLS certificate taken up by a worker");
                self.set(k);
            }
            // Validated before it was published: only a bug gets here.
            Err(e) => tracing::error!("TLS certificate published but unusable: {e}"),
        }
    }

    fn set(&self, k: CertifiedKey) {
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(k);
    }

    pub(super) fn current(&self) -> Arc<CertifiedKey> {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

/// The SIGHUP thread's work: reload every store of this process now, logging the outcome.
pub(super) fn reload_all() {
    let stores: Vec<Arc<Store>> = STORES
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .filter_map(Weak::upgrade)
        .collect();
    // Listeners built from one configuration share its store (chat's web face and line
    // port): one line per store.
    for s in stores {
        s.reload_now();
    }
}

impl ResolvesServerCert for Store {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.follow();
        Some(self.current())
    }
}

/// The certificate chain, its key and the OCSP response, checked to belong together.
pub(super) fn load(f: &Files) -> Result<CertifiedKey, TlsError> {
    parse(f, &read_files(f)?)
}

/// The three files' bytes (the OCSP part empty without one).
fn read_files(f: &Files) -> Result<Parts, TlsError> {
    let read = |p: &Path| std::fs::read(p).map_err(|e| err(p, format!("cannot read: {e}")));
    let ocsp = match &f.ocsp {
        Some(o) => read(o)?,
        None => Vec::new(),
    };
    Ok([read(&f.cert)?, read(&f.key)?, ocsp])
}

/// What the files' bytes say, checked (`f` names them in errors).
fn parse(f: &Files, [cert_pem, key_pem, ocsp]: &Parts) -> Result<CertifiedKey, TlsError> {
    let (cert, key) = (&f.cert, &f.key);
    let chain = CertificateDer::pem_slice_iter(cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| err(cert, format!("not a PEM certificate file: {e}")))?;
    if chain.is_empty() {
        return Err(err(cert, "no certificate in it (expected PEM CERTIFICATE)"));
    }
    if is_encrypted_key(key_pem) {
        // rustls reads only clear keys; without this it would say "no private key".
        return Err(err(
            key,
            "the private key is encrypted (with a passphrase); decrypt it first, e.g. \
             `openssl pkey -in KEY -out KEY.clear` (and keep the result mode 0600)",
        ));
    }
    let der = PrivateKeyDer::from_pem_slice(key_pem)
        .map_err(|e| err(key, format!("no private key in it (expected PEM): {e}")))?;
    let signer = provider::sign::any_supported_type(&der)
        .map_err(|e| err(key, format!("unsupported private key: {e}")))?;
    let mut k = CertifiedKey::new(chain, signer);
    k.keys_match().map_err(|e| {
        err(
            key,
            format!("does not match the certificate {}: {e}", cert.display()),
        )
    })?;
    if let Some(path) = &f.ocsp {
        k.ocsp = Some(check_ocsp(path, ocsp)?);
    }
    Ok(k)
}

/// A DER OCSP response, stapled as it is. Checked only to be one DER SEQUENCE filling the
/// file (a PEM file or a truncated download is refused); whether it is current and for this
/// certificate is the operator's job, as with nginx's `ssl_stapling_file`.
fn check_ocsp(path: &Path, bytes: &[u8]) -> Result<Vec<u8>, TlsError> {
    if der_sequence_len(bytes) != Some(bytes.len()) {
        return Err(err(
            path,
            "not a DER OCSP response (e.g. `openssl ocsp ... -respout FILE` writes one)",
        ));
    }
    Ok(bytes.to_vec())
}

/// The length of the DER SEQUENCE at the start of `b`, header included.
fn der_sequence_len(b: &[u8]) -> Option<usize> {
    if b.len() < 2 || b[0] != 0x30 {
        return None;
    }
    let (len, head) = match b[1] {
        n @ 0..=0x7f => (n as usize, 2),
        0x81..=0x84 => {
            let k = (b[1] & 0x7f) as usize;
            let bytes = b.get(2..2 + k)?;
            (
                bytes.iter().fold(0usize, |a, &x| a << 8 | x as usize),
                2 + k,
            )
        }
        _ => return None,
    };
    len.checked_add(head)
}

/// PKCS#8 `ENCRYPTED PRIVATE KEY`, or a traditional PEM key with `Proc-Type: 4,ENCRYPTED`
/// (`openssl genrsa -aes256`).
fn is_encrypted_key(pem: &[u8]) -> bool {
    let has = |needle: &[u8]| pem.windows(needle.len()).any(|w| w == needle);
    has(b"-----BEGIN ENCRYPTED PRIVATE KEY-----") || has(b"Proc-Type: 4,ENCRYPTED")
}

/// SHA-256 of `bytes`.
pub(super) fn sha256(bytes: &[u8]) -> ring::digest::Digest {
    ring::digest::digest(&ring::digest::SHA256, bytes)
}

/// A certificate's SHA-256, `AA:BB:…` as `openssl x509 -fingerprint -sha256` shows it.
pub(super) fn fingerprint(der: &[u8]) -> String {
    let mut s = String::new();
    for (i, b) in sha256(der).as_ref().iter().enumerate() {
        if i > 0 {
            s.push(':');
        }
        let _ = write!(s, "{b:02X}");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ocsp_files_must_be_one_der_sequence() {
        assert_eq!(der_sequence_len(&[0x30, 0x03, 1, 2, 3]), Some(5));
        assert_eq!(der_sequence_len(&[0x30, 0x81, 0x80]), Some(0x83));
        assert_eq!(der_sequence_len(&[0x30, 0x82, 0x01, 0x00]), Some(0x104));
        assert_eq!(der_sequence_len(b"-----BEGIN"), None);
        assert_eq!(der_sequence_len(&[0x30]), None);
        assert_eq!(der_sequence_len(&[0x30, 0x82, 0x01]), None);
        let short = Path::new("short.der");
        assert_eq!(check_ocsp(short, &[0x30, 3, 0x0a, 1, 0]).unwrap().len(), 5);
        let e = check_ocsp(short, &[0x30, 5, 0x0a, 1, 0]).unwrap_err();
        assert!(
            e.to_string().contains("short.der: not a DER OCSP response"),
            "{e}"
        );
    }
}
