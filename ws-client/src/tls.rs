//! The TLS client configuration for `wss://`.

use std::sync::Arc;

/// A rustls client with the ring provider chosen explicitly and the Mozilla roots of
/// `webpki-roots`.
///
/// rustls's default config builder needs a process-wide crypto provider, and would panic
/// at the first handshake unless the application had installed one. Naming the provider
/// here makes `wss://` work in every application.
pub(crate) fn client_config() -> Result<Arc<rustls::ClientConfig>, rustls::Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}
