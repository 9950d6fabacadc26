//! TLS on the way out. Between MTAs TLS is opportunistic (RFC 3207, RFC
//! 7435): most MX certificates do not match the MX name or are
//! self-signed, so a failed verification must not stop mail; encryption
//! still protects against passive listeners. Domains listed in
//! `require_tls` get their mail deferred, never sent in clear, when the
//! remote does not offer STARTTLS or the handshake fails; for the others
//! a failed handshake means one more connection to the same MX without
//! STARTTLS ([`TlsPolicy::Cleartext`]).
//!
//! The smarthost is different: it is one server the operator chose, it
//! gets every message and, with AUTH, our password. Its certificate is
//! verified ([`SmarthostTrust`]: the system's CAs, `smarthost_ca`, or a
//! pinned key) and a failed verification defers the mail
//! ([`TlsPolicy::Verified`]); credentials are only ever sent over verified
//! TLS.

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, SignatureScheme};
use sha2::Digest;
use std::path::PathBuf;
use std::sync::Arc;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
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
    /// The smarthost with credentials or `smarthost_require_tls`: STARTTLS
    /// with a verified certificate ([`smarthost_config`]), or no delivery
    /// (4.7.5) and never AUTH.
    Verified,
    /// The smarthost without either: STARTTLS with a verified certificate
    /// when offered (a failed verification defers the mail, it never
    /// falls back), plaintext only when it offers no STARTTLS at all.
    VerifiedIfOffered,
    /// A domain with an MTA-STS policy in `enforce` mode (RFC 8461 §5):
    /// STARTTLS with a certificate valid for the MX name
    /// (`mta_sts::Fetcher::verify_mx`), or no delivery (4.7.5). The MX
    /// names that do not match the policy were dropped from the route.
    Sts,
    /// MTA-STS in `testing` mode: as [`TlsPolicy::Opportunistic`], with the
    /// certificate checked as under `Sts` and any failure reported
    /// (TLS-RPT) rather than acted on.
    StsTesting,
    /// An MX host with usable TLSA records from DNSSEC-secure answers
    /// (RFC 7672): STARTTLS with a certificate chain that matches them
    /// (crate::dane::verify), or no delivery (4.7.5). Takes precedence
    /// over MTA-STS.
    Dane,
}

impl TlsPolicy {
    /// Under an MTA-STS policy or DANE: sessions are checked and counted
    /// (TLS-RPT).
    pub fn sts(self) -> bool {
        matches!(self, TlsPolicy::Sts | TlsPolicy::StsTesting | TlsPolicy::Dane)
    }

    /// A failed check defers the mail (never sent unverified).
    pub fn enforced(self) -> bool {
        matches!(self, TlsPolicy::Sts | TlsPolicy::Dane)
    }
}

/// Checks the handshake signatures with the certificate's key, and the
/// key against `pins`; `pins: None` accepts any certificate (remote MXes:
/// opportunistic TLS).
#[derive(Debug)]
struct KeyVerifier {
    provider: Arc<rustls::crypto::CryptoProvider>,
    pins: Option<Vec<[u8; 32]>>,
}

impl ServerCertVerifier for KeyVerifier {
    fn verify_server_cert(
        &self,
        cert: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let Some(pins) = &self.pins else { return Ok(ServerCertVerified::assertion()) };
        let digest = spki_sha256(cert)?;
        if pins.contains(&digest) {
            Ok(ServerCertVerified::assertion())
        } else {
            let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
            Err(rustls::Error::General(format!("the certificate's key (SHA-256 {hex}) is not in smarthost_pin_sha256")))
        }
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider.signature_verification_algorithms.supported_schemes()
    }
}

/// The client configuration for STARTTLS to remote MXes.
pub fn client_config() -> Arc<ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .expect("ring supports the default protocol versions")
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(KeyVerifier { provider, pins: None }))
        .with_no_client_auth();
    Arc::new(config)
}

/// How the smarthost's certificate is verified: never "any certificate",
/// since the smarthost gets our password and all our mail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SmarthostTrust {
    /// The system's CA certificates (rustls-native-certs), and the
    /// certificate must name the smarthost as configured (host or IP).
    SystemRoots,
    /// Only the CA certificates in this PEM file (`smarthost_ca`); the name
    /// is checked as with the system roots.
    Ca(PathBuf),
    /// SHA-256 digests of the certificate's SubjectPublicKeyInfo
    /// (`smarthost_pin_sha256`), as DANE's "3 1 1": the key is what is
    /// trusted, so neither a CA nor the name is needed, and a renewal with
    /// the same key keeps working. The handshake signature still proves
    /// the server holds that key.
    Pins(Vec<[u8; 32]>),
}

/// The client configuration for STARTTLS to the smarthost.
pub fn smarthost_config(trust: &SmarthostTrust) -> Result<Arc<ClientConfig>, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .expect("ring supports the default protocol versions");
    let verifier: Arc<dyn ServerCertVerifier> = match trust {
        SmarthostTrust::Pins(pins) => Arc::new(KeyVerifier { provider: provider.clone(), pins: Some(pins.clone()) }),
        SmarthostTrust::SystemRoots | SmarthostTrust::Ca(_) => {
            let mut roots = rustls::RootCertStore::empty();
            let source = match trust {
                SmarthostTrust::Ca(path) => {
                    add_ca_file(&mut roots, path, "smarthost_ca")?;
                    path.display().to_string()
                }
                _ => {
                    let found = rustls_native_certs::load_native_certs();
                    roots.add_parsable_certificates(found.certs);
                    if roots.is_empty() {
                        let errors: Vec<String> = found.errors.iter().map(|e| e.to_string()).collect();
                        return Err(format!(
                            "no CA certificates found on this system for verifying the smarthost ({}); install ca-certificates, or set smarthost_ca or smarthost_pin_sha256",
                            errors.join("; ")
                        ));
                    }
                    "the system's CA certificates".to_owned()
                }
            };
            rustls::client::WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                .build()
                .map_err(|e| format!("cannot verify the smarthost with {source}: {e}"))?
        }
    };
    Ok(Arc::new(builder.dangerous().with_custom_certificate_verifier(verifier).with_no_client_auth()))
}

/// Adds the CA certificates of the PEM file at `path` (the setting `key`)
/// to `roots`; a file without any usable one is an error.
pub(crate) fn add_ca_file(roots: &mut rustls::RootCertStore, path: &std::path::Path, key: &str) -> Result<(), String> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|i| i.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("{key} {}: {e}", path.display()))?;
    let (added, _) = roots.add_parsable_certificates(certs);
    if added == 0 {
        return Err(format!("{key} {} holds no usable CA certificate", path.display()));
    }
    Ok(())
}

/// The SHA-256 of a certificate's SubjectPublicKeyInfo (DER, with its
/// SEQUENCE header: what `openssl pkey -pubin -outform der` writes).
pub fn spki_sha256(cert: &CertificateDer<'_>) -> Result<[u8; 32], rustls::Error> {
    let ee = webpki::EndEntityCert::try_from(cert).map_err(|e| {
        rustls::Error::InvalidCertificate(rustls::CertificateError::Other(rustls::OtherError(Arc::new(e))))
    })?;
    Ok(sha2::Sha256::digest(ee.subject_public_key_info().as_ref()).into())
}

/// The policy for a destination: `require` lists domains (any case).
pub fn policy_for(domain: &str, require: &[String]) -> TlsPolicy {
    if require.iter().any(|d| d.eq_ignore_ascii_case(domain)) {
        TlsPolicy::Required
    } else {
        TlsPolicy::Opportunistic
    }
}
