//! The certificate store behind every handshake: the certificate chain, its key and the OCSP
//! response stapled to it, loaded from files and re-read after SIGHUP.
//!
//! Two readers of a SIGHUP: the process that installed the handler reloads every store of its
//! own at once, from `reload.rs`'s thread, and logs the outcome then, once (the new
//! certificate's fingerprint, or why the files were refused and the old certificate kept).
//! Worker processes forked before the signal (`prefork`) hold copies of the stores; each copy
//! re-reads the files at its next handshake, logging only at debug level, so an operator sees
//! one line per SIGHUP, not one per worker. Workers forked after it (`fork`) inherit the
//! reloaded store.

use super::config::{err, fingerprint, TlsError};
use super::reload;
use rustls::crypto::ring as provider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
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
    /// The SIGHUP generation `current` was loaded at.
    generation: AtomicU64,
}

/// Every store of this process that has files, for the SIGHUP thread.
static STORES: Mutex<Vec<Weak<Store>>> = Mutex::new(Vec::new());

impl Store {
    pub(super) fn new(key: CertifiedKey, files: Option<Files>) -> Arc<Store> {
        let has_files = files.is_some();
        let store = Arc::new(Store {
            files,
            current: RwLock::new(Arc::new(key)),
            generation: AtomicU64::new(reload::generation()),
        });
        if has_files {
            let mut all = STORES.lock().unwrap_or_else(|e| e.into_inner());
            all.retain(|w| w.strong_count() > 0);
            all.push(Arc::downgrade(&store));
        }
        store
    }

    /// Re-read the files if a SIGHUP came since they were last read (once per generation).
    /// `announce`: log the outcome at info/error level (the SIGHUP thread) rather than debug
    /// (a worker's copy, at its next handshake).
    fn reload_if_signalled(&self, announce: bool) {
        let g = reload::generation();
        let seen = self.generation.load(Ordering::Relaxed);
        // One caller per generation does the reload; the others use the current key.
        if g == seen
            || self
                .generation
                .compare_exchange(seen, g, Ordering::AcqRel, Ordering::Relaxed)
                .is_err()
        {
            return;
        }
        let Some(f) = &self.files else { return };
        match load(f) {
            Ok(k) => {
                let fp = fingerprint(&k.cert[0]);
                let stapled = k.ocsp.as_ref().map_or(0, |o| o.len());
                *self.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(k);
                if announce {
                    tracing::info!(cert = %f.cert.display(), sha256 = %fp, ocsp_bytes = stapled, "TLS certificate reloaded");
                } else {
                    tracing::debug!(cert = %f.cert.display(), sha256 = %fp, "TLS certificate reloaded by a worker");
                }
            }
            // A broken file mid-life keeps the old certificate: better stale than down.
            Err(e) if announce => {
                tracing::error!("TLS certificate not reloaded, keeping the old one: {e}")
            }
            Err(e) => tracing::debug!("TLS certificate not reloaded by a worker: {e}"),
        }
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
    // A process with several listeners built from the same files (chat's web face and line
    // port share one store) logs once per store.
    for s in stores {
        s.reload_if_signalled(true);
    }
}

impl ResolvesServerCert for Store {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.reload_if_signalled(false);
        Some(self.current())
    }
}

/// The certificate chain, its key and the OCSP response, checked to belong together.
pub(super) fn load(f: &Files) -> Result<CertifiedKey, TlsError> {
    let (cert, key) = (&f.cert, &f.key);
    let bytes = std::fs::read(cert).map_err(|e| err(cert, format!("cannot read: {e}")))?;
    let chain = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| err(cert, format!("not a PEM certificate file: {e}")))?;
    if chain.is_empty() {
        return Err(err(cert, "no certificate in it (expected PEM CERTIFICATE)"));
    }
    let bytes = std::fs::read(key).map_err(|e| err(key, format!("cannot read: {e}")))?;
    if is_encrypted_key(&bytes) {
        // rustls reads only clear keys; without this it would say "no private key".
        return Err(err(
            key,
            "the private key is encrypted (with a passphrase); decrypt it first, e.g. \
             `openssl pkey -in KEY -out KEY.clear` (and keep the result mode 0600)",
        ));
    }
    let der = PrivateKeyDer::from_pem_slice(&bytes)
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
    if let Some(ocsp) = &f.ocsp {
        k.ocsp = Some(load_ocsp(ocsp)?);
    }
    Ok(k)
}

/// A DER OCSP response, stapled as it is. Checked only to be one DER SEQUENCE filling the
/// file (a PEM file or a truncated download is refused); whether it is current and for this
/// certificate is the operator's job, as with nginx's `ssl_stapling_file`.
fn load_ocsp(path: &Path) -> Result<Vec<u8>, TlsError> {
    let bytes = std::fs::read(path).map_err(|e| err(path, format!("cannot read: {e}")))?;
    if der_sequence_len(&bytes) != Some(bytes.len()) {
        return Err(err(
            path,
            "not a DER OCSP response (e.g. `openssl ocsp ... -respout FILE` writes one)",
        ));
    }
    Ok(bytes)
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
        let dir = std::env::temp_dir().join(format!("bingfa-ocsp-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (ok, short) = (dir.join("ok.der"), dir.join("short.der"));
        std::fs::write(&ok, [0x30, 0x03, 0x0a, 0x01, 0x00]).unwrap();
        std::fs::write(&short, [0x30, 0x05, 0x0a, 0x01, 0x00]).unwrap();
        assert_eq!(load_ocsp(&ok).unwrap().len(), 5);
        let e = load_ocsp(&short).unwrap_err();
        assert!(
            e.to_string().contains("short.der: not a DER OCSP response"),
            "{e}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
