//! TLS on the way out. Between MTAs TLS is opportunistic (RFC 3207, RFC
//! 7435): most MX certificates do not match the MX name or are
//! self-signed, so a failed verification must not stop mail; encryption
//! still protects against passive listeners. Domains listed in
//! `require_tls` get their mail deferred, never sent in clear, when the
//! remote does not offer STARTTLS or the handshake fails; for the others
//! a failed handshake means one more connection to the same MX without
//! STARTTLS ([`TlsPolicy::Cleartext`]).

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, SignatureScheme};
use std::sync::Arc;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TlsPolicy {
    /// STARTTLS when offered, plaintext otherwise or when it fails.
    Opportunistic,
    /// STARTTLS or no delivery (deferred with 4.7.5).
    Required,
    /// No STARTTLS even when offered: the second try at an MX whose
    /// handshake failed under `Opportunistic`. A server that offers TLS
    /// but cannot complete it (expired setup, broken middlebox) still gets
    /// its mail, as Postfix retries such a server in cleartext.
    Cleartext,
}

/// Accepts any certificate but still checks the handshake signatures.
#[derive(Debug)]
struct AnyCertificate(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(&self, message: &[u8], cert: &CertificateDer<'_>, dss: &DigitallySignedStruct) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }
    fn verify_tls13_signature(&self, message: &[u8], cert: &CertificateDer<'_>, dss: &DigitallySignedStruct) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// The client configuration for STARTTLS to remote MXes.
pub fn client_config() -> Arc<ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .expect("ring supports the default protocol versions")
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
        .with_no_client_auth();
    Arc::new(config)
}

/// The policy for a destination: `require` lists domains (any case).
pub fn policy_for(domain: &str, require: &[String]) -> TlsPolicy {
    if require.iter().any(|d| d.eq_ignore_ascii_case(domain)) {
        TlsPolicy::Required
    } else {
        TlsPolicy::Opportunistic
    }
}
