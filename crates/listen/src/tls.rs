//! TLS server configuration for every port25 listener (the SMTP engine's,
//! the collector's HTTPS): an operator's certificate, or a self-signed one
//! generated on first start (and kept, so clients that pinned it keep working).

use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::ServerConfig;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("cannot write {path}: {source}")]
    Write { path: PathBuf, source: std::io::Error },
    #[error("{path} holds no PEM certificate")]
    NoCertificate { path: PathBuf },
    #[error("{path} holds no PEM private key (PKCS#8, PKCS#1 or SEC1)")]
    NoKey { path: PathBuf },
    #[error("certificate and key do not form a usable TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
    #[error("cannot generate a self-signed certificate: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("device CA {path}: {reason}")]
    DeviceCa { path: PathBuf, reason: String },
}

/// Builds the rustls configuration from PEM files.
pub fn server_config(cert: &Path, key: &Path) -> Result<Arc<ServerConfig>, TlsError> {
    let (certs, key) = load_pair(cert, key)?;
    let config = ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certs, key)?;
    Ok(Arc::new(config))
}

/// The server's certificate and key, replaceable while it serves (SIGHUP,
/// `port25 reload`): a handshake that starts after [`CertStore::reload`]
/// gets the new pair, a connection already established keeps the one it
/// was made with, and a pair that does not load leaves the current one in
/// place. Every listener's rustls configuration resolves through it.
#[derive(Debug)]
pub struct CertStore {
    current: RwLock<Arc<CertifiedKey>>,
}

impl CertStore {
    pub fn load(cert: &Path, key: &Path) -> Result<Arc<CertStore>, TlsError> {
        Ok(Arc::new(CertStore { current: RwLock::new(Arc::new(certified(cert, key)?)) }))
    }

    /// Loads the pair (PEM, the key belongs to the certificate) and makes it
    /// the one new handshakes get; on error nothing changes.
    pub fn reload(&self, cert: &Path, key: &Path) -> Result<(), TlsError> {
        let fresh = Arc::new(certified(cert, key)?);
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = fresh;
        Ok(())
    }

    /// The end-entity certificate new handshakes get.
    pub fn certificate(&self) -> CertificateDer<'static> {
        self.current.read().unwrap_or_else(|e| e.into_inner()).cert[0].clone()
    }

    /// A server configuration (no client certificates) resolving through this store.
    pub fn server_config(self: &Arc<Self>) -> Result<Arc<ServerConfig>, TlsError> {
        let config = ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_cert_resolver(self.clone());
        Ok(Arc::new(config))
    }
}

impl ResolvesServerCert for CertStore {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.read().unwrap_or_else(|e| e.into_inner()).clone())
    }
}

/// The ALPN protocol of ACME's TLS-ALPN-01 validation (RFC 8737).
pub const ACME_TLS_ALPN: &[u8] = b"acme-tls/1";

/// The TLS-ALPN-01 challenge certificates being validated, by domain: a
/// handshake offering ALPN `acme-tls/1` (and only such a handshake) gets
/// the one for its SNI name, or fails.
#[derive(Debug, Default)]
pub struct AcmeAlpnCerts(RwLock<std::collections::HashMap<String, Arc<CertifiedKey>>>);

impl AcmeAlpnCerts {
    pub fn insert(&self, domain: &str, cert: Arc<CertifiedKey>) {
        self.0.write().unwrap_or_else(|e| e.into_inner()).insert(domain.to_ascii_lowercase(), cert);
    }

    pub fn remove(&self, domain: &str) {
        self.0.write().unwrap_or_else(|e| e.into_inner()).remove(&domain.to_ascii_lowercase());
    }

    fn get(&self, domain: &str) -> Option<Arc<CertifiedKey>> {
        self.0.read().unwrap_or_else(|e| e.into_inner()).get(&domain.to_ascii_lowercase()).cloned()
    }
}

fn offers_acme_alpn(hello: &ClientHello<'_>) -> bool {
    hello.alpn().is_some_and(|mut protocols| protocols.any(|p| p == ACME_TLS_ALPN))
}

/// The store's pair, or the challenge certificate when the client asks for
/// `acme-tls/1`.
#[derive(Debug)]
struct AcmeResolver {
    store: Arc<CertStore>,
    challenges: Arc<AcmeAlpnCerts>,
}

impl ResolvesServerCert for AcmeResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        match offers_acme_alpn(&hello) {
            true => self.challenges.get(hello.server_name()?),
            false => self.store.resolve(hello),
        }
    }
}

impl CertStore {
    /// As [`CertStore::server_config`], answering ACME TLS-ALPN-01
    /// validations too: for the implicit-TLS listeners, whose handshakes
    /// go through [`for_client_hello`] (which takes `acme-tls/1` out of the
    /// ALPN list for every other client, so that a client offering some
    /// other protocol is not refused).
    pub fn server_config_with_acme_alpn(
        self: &Arc<Self>,
        challenges: Arc<AcmeAlpnCerts>,
    ) -> Result<Arc<ServerConfig>, TlsError> {
        let mut config = ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_cert_resolver(Arc::new(AcmeResolver { store: self.clone(), challenges }));
        config.alpn_protocols = vec![ACME_TLS_ALPN.to_vec()];
        Ok(Arc::new(config))
    }
}

/// The configuration an implicit-TLS handshake goes on with, once its
/// ClientHello is read, and whether it is an ACME TLS-ALPN-01 validation
/// (the connection is closed after the handshake, RFC 8737 section 3). A
/// configuration that does not answer ACME is returned as it is.
pub fn for_client_hello(config: &Arc<ServerConfig>, hello: &ClientHello<'_>) -> (Arc<ServerConfig>, bool) {
    if !config.alpn_protocols.iter().any(|p| p == ACME_TLS_ALPN) {
        return (config.clone(), false);
    }
    if offers_acme_alpn(hello) {
        return (config.clone(), true);
    }
    let mut plain = (**config).clone();
    plain.alpn_protocols.retain(|p| p != ACME_TLS_ALPN);
    (Arc::new(plain), false)
}

/// The pair as rustls signs with it, refused when the key is not the
/// certificate's.
fn certified(cert: &Path, key: &Path) -> Result<CertifiedKey, TlsError> {
    let (certs, key) = load_pair(cert, key)?;
    Ok(CertifiedKey::from_der(certs, key, &rustls::crypto::ring::default_provider())?)
}

/// Reads a PEM certificate chain and its private key.
pub fn load_pair(cert: &Path, key: &Path) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), TlsError> {
    let read = |p: &Path| std::fs::read(p).map_err(|source| TlsError::Read { path: p.to_owned(), source });
    let cert_pem = read(cert)?;
    let key_pem = read(key)?;
    let certs: Vec<CertificateDer<'static>> = rustls_pemfile::certs(&mut cert_pem.as_slice())
        .collect::<Result<_, _>>()
        .map_err(|source| TlsError::Read { path: cert.to_owned(), source })?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate { path: cert.to_owned() });
    }
    let key: PrivateKeyDer<'static> = rustls_pemfile::private_key(&mut key_pem.as_slice())
        .map_err(|source| TlsError::Read { path: key.to_owned(), source })?
        .ok_or_else(|| TlsError::NoKey { path: key.to_owned() })?;
    Ok((certs, key))
}

/// Returns (cert, key) paths under `dir`, generating a self-signed pair for
/// `hostname` when none exists yet. `true` in the result means "generated now".
pub fn self_signed(dir: &Path, hostname: &str) -> Result<(PathBuf, PathBuf, bool), TlsError> {
    let cert = dir.join("selfsigned.crt");
    let key = dir.join("selfsigned.key");
    if cert.exists() && key.exists() {
        return Ok((cert, key, false));
    }
    // It holds the private key: 0700 whatever the umask.
    std::os::unix::fs::DirBuilderExt::mode(std::fs::DirBuilder::new().recursive(true), 0o700)
        .create(dir)
        .map_err(|source| TlsError::Write { path: dir.to_owned(), source })?;
    let names = vec![hostname.to_owned(), "localhost".to_owned()];
    let rcgen::CertifiedKey { cert: c, key_pair } = rcgen::generate_simple_self_signed(names)?;
    write_private(&key, key_pair.serialize_pem().as_bytes())?;
    std::fs::write(&cert, c.pem()).map_err(|source| TlsError::Write { path: cert.clone(), source })?;
    Ok((cert, key, true))
}

fn write_private(path: &Path, bytes: &[u8]) -> Result<(), TlsError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(|source| TlsError::Write { path: path.to_owned(), source })?;
    f.write_all(bytes).map_err(|source| TlsError::Write { path: path.to_owned(), source })
}

#[cfg(test)]
mod tests {
    /// A new pair is served to new handshakes; a broken one changes nothing.
    #[test]
    fn the_store_swaps_only_a_pair_that_loads() {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let (ca, ka, _) = super::self_signed(a.path(), "a.example").unwrap();
        let (cb, kb, _) = super::self_signed(b.path(), "b.example").unwrap();
        let store = super::CertStore::load(&ca, &ka).unwrap();
        store.server_config().unwrap();
        let first = store.certificate();
        // b's certificate with a's key: refused, a stays.
        let e = store.reload(&cb, &ka).unwrap_err().to_string();
        assert!(e.contains("do not form"), "{e}");
        let e = store.reload(&a.path().join("missing.crt"), &ka).unwrap_err().to_string();
        assert!(e.contains("missing.crt"), "{e}");
        assert_eq!(store.certificate(), first);
        store.reload(&cb, &kb).unwrap();
        assert_ne!(store.certificate(), first);
    }

    #[test]
    fn generated_pair_loads_and_is_reused() {
        let dir = tempfile::tempdir().unwrap();
        let (c, k, fresh) = super::self_signed(dir.path(), "mx.example").unwrap();
        assert!(fresh);
        super::server_config(&c, &k).unwrap();
        let before = std::fs::read(&c).unwrap();
        let (_, _, fresh) = super::self_signed(dir.path(), "mx.example").unwrap();
        assert!(!fresh);
        assert_eq!(std::fs::read(&c).unwrap(), before);
    }
}
