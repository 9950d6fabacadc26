//! TLS server configuration for every port25 listener (the SMTP engine's,
//! the collector's HTTPS): an operator's certificate, or a self-signed one
//! generated on first start (and kept, so clients that pinned it keep working).

use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::ServerConfig;
use std::path::{Path, PathBuf};
use std::sync::Arc;

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

/// Reads a PEM certificate chain and its private key.
pub fn load_pair(cert: &Path, key: &Path) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), TlsError> {
    let read = |p: &Path| std::fs::read(p).map_err(|source| TlsError::Read { path: p.to_owned(), source });
    let cert_pem = read(cert)?;
    let key_pem = read(key)?;
    let certs: Vec<CertificateDer<'static>> =
        rustls_pemfile::certs(&mut cert_pem.as_slice()).collect::<Result<_, _>>().map_err(|source| TlsError::Read { path: cert.to_owned(), source })?;
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
