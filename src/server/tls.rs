//! TLS for `docket serve`: the certificate chain and key read from PEM files, held by a
//! certificate resolver that every new handshake asks, so that a reload (SIGHUP, or the files'
//! modification changing) swaps the certificate without a restart.
//!
//! Invariants: the resolver always holds a certificate whose key matched it when loaded; a
//! reload that fails (unreadable file, bad PEM, unusable key, key not matching the leaf) keeps
//! the certificate in force and is reported without any key material; only TLS 1.3 and 1.2
//! with the ring provider's suites are offered, and ALPN is HTTP/1.1 (actix adds `http/1.1`;
//! HTTP/2 is not built in).

mod reload;

use std::path::Path;
use std::sync::{Arc, PoisonError, RwLock};

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use thiserror::Error;
use zeroize::Zeroizing;

pub use reload::{RELOAD_POLL, spawn_reloader};

use crate::config::TlsFiles;

/// Why a certificate could not be loaded. Messages name the files and the kind of failure,
/// never their contents.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum TlsError {
    #[error("cannot read the TLS file {path}: {reason}")]
    Unreadable { path: String, reason: String },
    #[error("the TLS certificate file {0} holds no PEM certificate")]
    NoCertificate(String),
    #[error("the TLS certificate file {0} is not valid PEM")]
    CertificatePem(String),
    #[error("the first certificate in {0} is not a valid X.509 certificate")]
    BadCertificate(String),
    #[error("the TLS key file {0} holds no PEM private key (PKCS#8, SEC1 or RSA)")]
    NoKey(String),
    #[error("the private key in {0} cannot be used (malformed or an unsupported algorithm)")]
    UnusableKey(String),
    #[error("the private key in {key} does not match the certificate in {cert}")]
    KeyMismatch { cert: String, key: String },
    #[error("the TLS configuration was refused: {0}")]
    Configuration(String),
}

/// The ring provider, which the rest of Docket's TLS (webhooks, NATS) uses too.
fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Reads `files` and checks that the key belongs to the chain's first (leaf) certificate.
pub fn load(files: &TlsFiles) -> Result<CertifiedKey, TlsError> {
    let cert_shown = files.cert.display().to_string();
    let key_shown = files.key.display().to_string();
    let cert_pem = read(&files.cert)?;
    let chain = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| TlsError::CertificatePem(cert_shown.clone()))?;
    if chain.is_empty() {
        return Err(TlsError::NoCertificate(cert_shown));
    }
    let key_pem = read(&files.key)?;
    let key = match PrivateKeyDer::from_pem_slice(&key_pem) {
        Ok(key) => key,
        Err(rustls::pki_types::pem::Error::NoItemsFound) => {
            return Err(TlsError::NoKey(key_shown));
        }
        Err(_) => return Err(TlsError::UnusableKey(key_shown)),
    };
    let signing_key = provider()
        .key_provider
        .load_private_key(key)
        .map_err(|_| TlsError::UnusableKey(key_shown.clone()))?;
    let certified = CertifiedKey::new(chain, signing_key);
    match certified.keys_match() {
        Ok(()) => Ok(certified),
        Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch)) => {
            Err(TlsError::KeyMismatch {
                cert: cert_shown,
                key: key_shown,
            })
        }
        // ring's keys always know their public half, so "unknown" does not arise; any other
        // failure is the leaf not parsing.
        Err(_) => Err(TlsError::BadCertificate(cert_shown)),
    }
}

/// A file's bytes, wiped from memory when dropped (the key file is secret).
fn read(path: &Path) -> Result<Zeroizing<Vec<u8>>, TlsError> {
    std::fs::read(path)
        .map(Zeroizing::new)
        .map_err(|error| TlsError::Unreadable {
            path: path.display().to_string(),
            reason: error.kind().to_string(),
        })
}

/// Whether the file's permissions let every user read it.
fn readable_by_anyone(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|metadata| metadata.permissions().mode() & 0o004 != 0)
}

/// The certificate in force, and the files it is reloaded from. Every TLS handshake asks it
/// for the certificate, so a reload reaches every connection made after it; connections
/// already open keep the certificate they began with.
pub struct CertificateStore {
    files: TlsFiles,
    current: RwLock<Arc<CertifiedKey>>,
}

impl std::fmt::Debug for CertificateStore {
    /// The files only: the certificate in force is not worth printing, its key never is.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertificateStore")
            .field("files", &self.files)
            .finish_non_exhaustive()
    }
}

impl CertificateStore {
    /// Loads `files`; a failure here stops start-up. A key file any user may read is allowed
    /// (deployments share keys through groups and mounts) but warned about.
    pub fn open(files: &TlsFiles) -> Result<Arc<Self>, TlsError> {
        let loaded = load(files)?;
        if readable_by_anyone(&files.key) {
            tracing::warn!(
                key = %files.key.display(),
                "the TLS key file is readable by other users; make it readable by Docket only"
            );
        }
        Ok(Arc::new(CertificateStore {
            files: files.clone(),
            current: RwLock::new(Arc::new(loaded)),
        }))
    }

    /// The files this store reloads from.
    pub fn files(&self) -> &TlsFiles {
        &self.files
    }

    /// Reads the files again and, when they load, puts them in force for new handshakes. A
    /// failure leaves the certificate in force unchanged and is returned (the caller logs it).
    pub fn reload(&self) -> Result<(), TlsError> {
        let loaded = Arc::new(load(&self.files)?);
        // The lock only guards an `Arc` swap, so a poisoned lock still holds a whole value.
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = loaded;
        Ok(())
    }

    /// The certificate chain in force (leaf first).
    pub fn chain(&self) -> Vec<CertificateDer<'static>> {
        self.certified().cert.clone()
    }

    fn certified(&self) -> Arc<CertifiedKey> {
        self.current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The rustls server configuration that serves from this store: TLS 1.3 and 1.2, no
    /// client certificates.
    pub fn server_config(self: &Arc<Self>) -> Result<rustls::ServerConfig, TlsError> {
        let versions = [&rustls::version::TLS13, &rustls::version::TLS12];
        let config = rustls::ServerConfig::builder_with_provider(provider())
            .with_protocol_versions(&versions)
            .map_err(|error| TlsError::Configuration(error.to_string()))?
            .with_no_client_auth()
            .with_cert_resolver(self.clone());
        Ok(config)
    }
}

impl ResolvesServerCert for CertificateStore {
    /// One certificate for every name: the client's server name does not choose among several.
    fn resolve(&self, _client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.certified())
    }
}
