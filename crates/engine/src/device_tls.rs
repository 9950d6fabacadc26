//! TLS client certificates for devices that cannot do SMTP AUTH (printers,
//! scanners, cron on a server): a submission listener may ask every client
//! for a certificate signed by the operator's device CA. Clients without
//! one are served as usual (they log in with AUTH); a client whose
//! certificate the CA verified is identified by the certificate's SHA-256,
//! which the policy sees in [`crate::TlsInfo::client_cert`].

use crate::stream::Stream;
use port25_listen::tls::{CertStore, TlsError};
use rustls::pki_types::CertificateDer;
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use std::path::Path;
use std::sync::Arc;

/// A server configuration that verifies, but does not require, client
/// certificates issued by the CA(s) in `device_ca` (PEM).
pub fn server_config_with_device_ca(cert: &Path, key: &Path, device_ca: &Path) -> Result<Arc<ServerConfig>, TlsError> {
    server_config_with_device_ca_store(&CertStore::load(cert, key)?, device_ca)
}

/// The same, serving the certificate of `store` (replaced on reload).
pub fn server_config_with_device_ca_store(
    store: &Arc<CertStore>,
    device_ca: &Path,
) -> Result<Arc<ServerConfig>, TlsError> {
    let ca_err = |reason: String| TlsError::DeviceCa { path: device_ca.to_owned(), reason };
    let pem = std::fs::read(device_ca).map_err(|e| ca_err(e.to_string()))?;
    let mut roots = RootCertStore::empty();
    for c in rustls_pemfile::certs(&mut pem.as_slice()) {
        let c: CertificateDer<'static> = c.map_err(|e| ca_err(e.to_string()))?;
        roots.add(c).map_err(|e| ca_err(format!("not a usable CA certificate: {e}")))?;
    }
    if roots.is_empty() {
        return Err(ca_err("holds no PEM certificate".into()));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .allow_unauthenticated()
        .build()
        .map_err(|e| ca_err(e.to_string()))?;
    let config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_client_cert_verifier(verifier)
        .with_cert_resolver(store.clone());
    Ok(Arc::new(config))
}

impl Stream {
    /// SHA-256 (lower-case hex) of the client's verified certificate.
    pub fn client_cert_sha256(&self) -> Option<String> {
        let Stream::Tls(tls) = self else { return None };
        let (_, conn) = tls.get_ref();
        let leaf = conn.peer_certificates()?.first()?;
        let digest = ring::digest::digest(&ring::digest::SHA256, leaf.as_ref());
        Some(digest.as_ref().iter().map(|b| format!("{b:02x}")).collect())
    }
}
