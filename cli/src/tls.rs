//! The server's TLS configuration from PEM files.

use std::path::PathBuf;
use std::sync::Arc;

use ws_server::rustls;
use ws_server::rustls::pki_types::pem::PemObject;
use ws_server::rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::config::TlsFiles;

/// Why the TLS configuration cannot be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// A PEM file cannot be read or holds no certificate (or no key).
    #[error("cannot read {path}")]
    Pem {
        /// The file.
        path: PathBuf,
        /// Why.
        source: rustls::pki_types::pem::Error,
    },
    /// rustls refused the certificate chain or the key (a key that does not match, an
    /// unsupported algorithm).
    #[error("invalid certificate or key")]
    Rustls(#[from] rustls::Error),
}

/// Builds the [`TlsError::Pem`] of `path`.
fn pem(path: &std::path::Path) -> impl Fn(rustls::pki_types::pem::Error) -> TlsError + '_ {
    move |source| TlsError::Pem { path: path.to_owned(), source }
}

/// A rustls server configuration with the `ring` provider, the safe default protocol
/// versions, ALPN `http/1.1` (the only HTTP the server speaks) and `files`' chain and key.
pub fn server_config(files: &TlsFiles) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let chain = CertificateDer::pem_file_iter(&files.cert)
        .map_err(pem(&files.cert))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(pem(&files.cert))?;
    if chain.is_empty() {
        return Err(TlsError::Pem {
            path: files.cert.clone(),
            source: rustls::pki_types::pem::Error::NoItemsFound,
        });
    }
    let key = PrivateKeyDer::from_pem_file(&files.key).map_err(pem(&files.key))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(chain, key)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// A rustls client configuration with the `ring` provider that trusts the certificates of
/// the PEM file at `ca` only (a private CA, or a self-signed server), for `realtime connect
/// --ca-cert`.
pub fn client_config_trusting(ca: &std::path::Path) -> Result<Arc<rustls::ClientConfig>, TlsError> {
    let mut roots = rustls::RootCertStore::empty();
    for certificate in CertificateDer::pem_file_iter(ca).map_err(pem(ca))? {
        roots.add(certificate.map_err(pem(ca))?)?;
    }
    if roots.is_empty() {
        return Err(TlsError::Pem {
            path: ca.to_owned(),
            source: rustls::pki_types::pem::Error::NoItemsFound,
        });
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}
