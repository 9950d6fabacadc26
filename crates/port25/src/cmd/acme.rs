//! `[tls.acme]`: the server's certificate from an ACME CA (RFC 8555) with
//! instant-acme. At start a stored certificate that is usable (its key,
//! the configured names, within its dates) is served; otherwise the
//! self-signed one is, while an order is placed as soon as the listeners
//! are bound. Renewal starts when `renew_when_left` of the lifetime is left
//! (a third by default), less a random jitter of up to a tenth of that.
//!
//! HTTP-01 is answered by the public `[http]` listener
//! (crates/http/src/acme.rs), TLS-ALPN-01 by the implicit-TLS listeners
//! (crates/listen/src/tls.rs, `acme-tls/1` only when the client offers it).
//!
//! Whatever the CA answers is checked before it is used: a certificate
//! that does not belong to our key, does not name every domain, or is not
//! within its dates is refused. A failed order (unreachable CA, an error,
//! garbage, a refused certificate) changes nothing: the current
//! certificate stays, `port25.tls.acme.order_failed` says when the next
//! try is, and the delay doubles from `retry_first_secs` to
//! `retry_max_secs`. The new pair goes live through the one `CertStore`
//! (the same swap SIGHUP makes): new handshakes get it, sessions in
//! progress finish on theirs.
//!
//! Files, in data_dir/acme (0700): `account.json` (the account key),
//! `cert.pem` (the chain), `key.pem`; all 0600, each replaced by a rename.

use anyhow::{anyhow, bail, Context};
use instant_acme::{
    Account, AccountCredentials, AuthorizationStatus, ChallengeType, Identifier, NewAccount, NewOrder, OrderStatus,
    RetryPolicy,
};
use port25_config::{Acme as Settings, AcmeChallenge, Config};
use port25_events as ev;
use port25_events::emit;
use port25_http::acme::Http01Tokens;
use port25_listen::tls::{AcmeAlpnCerts, CertStore};
use rustls::pki_types::CertificateDer;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio_util::sync::CancellationToken;

/// One order, start to certificate, at most this long.
const ORDER_TIMEOUT: Duration = Duration::from_secs(300);
/// A chain (PEM) longer than this is garbage.
const MAX_CHAIN: usize = 64 * 1024;

/// The ACME side of `port25 serve`.
pub struct Acme {
    settings: Settings,
    dir: PathBuf,
    /// HTTP-01 tokens, for the public HTTP listener.
    pub http01: Arc<Http01Tokens>,
    /// TLS-ALPN-01 certificates, for the implicit-TLS listeners.
    pub alpn: Arc<AcmeAlpnCerts>,
}

/// The stored pair's paths under data_dir/acme.
pub fn paths(data_dir: &Path) -> (PathBuf, PathBuf) {
    let dir = data_dir.join("acme");
    (dir.join("cert.pem"), dir.join("key.pem"))
}

/// What a usable certificate tells the renewal loop.
#[derive(Debug, Clone)]
pub struct Facts {
    pub serial: String,
    pub not_before: u64,
    pub not_after: u64,
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// The chain `pem` with `key_pem` is one we may serve for `domains` at
/// `at` (Unix seconds): the key is the certificate's, every domain is
/// named, `at` is within its dates. Otherwise why not.
pub fn check(pem: &[u8], key_pem: &[u8], domains: &[String], at: u64) -> Result<Facts, String> {
    if pem.len() > MAX_CHAIN {
        return Err(format!("the chain is {} bytes, more than {MAX_CHAIN}", pem.len()));
    }
    let chain: Vec<CertificateDer<'static>> = rustls_pemfile::certs(&mut &pem[..])
        .collect::<Result<_, _>>()
        .map_err(|e| format!("not PEM certificates: {e}"))?;
    let first = chain.first().ok_or("no certificate")?.clone();
    let key =
        rustls_pemfile::private_key(&mut &key_pem[..]).map_err(|e| format!("key: {e}"))?.ok_or("no private key")?;
    // Refuses a key that is not the certificate's.
    rustls::sign::CertifiedKey::from_der(chain, key, &rustls::crypto::ring::default_provider())
        .map_err(|e| format!("the certificate is not for our key: {e}"))?;
    let (_, cert) =
        x509_parser::parse_x509_certificate(&first).map_err(|e| format!("not an X.509 certificate: {e}"))?;
    let validity = cert.validity();
    let (not_before, not_after) = (validity.not_before.timestamp(), validity.not_after.timestamp());
    let (not_before, not_after) = (u64::try_from(not_before).unwrap_or(0), u64::try_from(not_after).unwrap_or(0));
    if not_after <= not_before {
        return Err("its dates are inverted".into());
    }
    if at < not_before {
        return Err("not valid yet (is the clock right?)".into());
    }
    if at >= not_after {
        return Err("expired".into());
    }
    let ee = webpki::EndEntityCert::try_from(&first).map_err(|e| format!("unreadable: {e}"))?;
    for d in domains {
        let name = rustls::pki_types::ServerName::try_from(d.as_str()).map_err(|e| format!("{d}: {e}"))?;
        if ee.verify_is_valid_for_subject_name(&name).is_err() {
            return Err(format!("it does not name {d}"));
        }
    }
    Ok(Facts { serial: cert.raw_serial_as_string(), not_before, not_after })
}

/// Reads the stored pair and checks it.
pub fn usable(data_dir: &Path, domains: &[String]) -> Result<Facts, String> {
    stored(data_dir, domains)
}

fn stored(data_dir: &Path, domains: &[String]) -> Result<Facts, String> {
    let (cert, key) = paths(data_dir);
    let read = |p: &Path| {
        use std::io::Read;
        let mut buf = Vec::new();
        std::fs::File::open(p)
            .and_then(|f| f.take(MAX_CHAIN as u64 + 1).read_to_end(&mut buf))
            .map_err(|e| format!("{}: {e}", p.display()))?;
        Ok::<_, String>(buf)
    };
    check(&read(&cert)?, &read(&key)?, domains, now())
}

/// When to renew: `left` of the lifetime before its end, less a jitter of
/// up to a tenth of that (`jitter` in [0, 1)).
pub fn renew_at(facts: &Facts, left: f64, jitter: f64) -> u64 {
    let life = facts.not_after.saturating_sub(facts.not_before) as f64;
    let window = life * left;
    let before = window + window * 0.1 * jitter.clamp(0.0, 1.0);
    facts.not_after.saturating_sub(before as u64)
}

fn jitter() -> f64 {
    let mut b = [0u8; 4];
    let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b);
    f64::from(u32::from_le_bytes(b)) / (f64::from(u32::MAX) + 1.0)
}

/// Writes `bytes` to `path` 0600 through a temporary file and a rename.
fn write_private(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    let tmp = path.with_extension("tmp");
    let _ = std::fs::remove_file(&tmp);
    port25_groupcommit::private::private_file(&tmp).with_context(|| format!("cannot create {}", tmp.display()))?;
    let mut f = std::fs::OpenOptions::new().write(true).truncate(true).open(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot rename {} to {}", tmp.display(), path.display()))?;
    Ok(())
}

impl Acme {
    /// None without `[tls.acme]`. Makes data_dir/acme (0700).
    pub fn new(config: &Config) -> anyhow::Result<Option<Arc<Acme>>> {
        let Some(settings) = config.acme.clone() else { return Ok(None) };
        let dir = config.data_dir.join("acme");
        std::os::unix::fs::DirBuilderExt::mode(std::fs::DirBuilder::new().recursive(true), 0o700)
            .create(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        Ok(Some(Arc::new(Acme { settings, dir, http01: Arc::default(), alpn: Arc::default() })))
    }

    /// The HTTP-01 tokens, when that is the challenge.
    pub fn http01(&self) -> Option<Arc<Http01Tokens>> {
        (self.settings.challenge == AcmeChallenge::Http01).then(|| self.http01.clone())
    }

    /// The TLS-ALPN-01 certificates, when that is the challenge.
    pub fn alpn(&self) -> Option<Arc<AcmeAlpnCerts>> {
        (self.settings.challenge == AcmeChallenge::TlsAlpn01).then(|| self.alpn.clone())
    }

    /// Orders and renews until `stop`; never returns an error (each
    /// failure is logged and retried).
    pub async fn run(self: Arc<Self>, data_dir: PathBuf, store: Arc<CertStore>, stop: CancellationToken) {
        let s = &self.settings;
        let mut delay = s.retry_first;
        let mut attempt: u32 = 0;
        loop {
            let (wait, reason) = match stored(&data_dir, &s.domains) {
                Ok(facts) => {
                    let at = renew_at(&facts, s.renew_when_left, jitter());
                    (Duration::from_secs(at.saturating_sub(now())), "renewal".to_owned())
                }
                Err(e) if attempt == 0 && !paths(&data_dir).0.exists() => {
                    (Duration::ZERO, format!("none stored ({e})"))
                }
                Err(e) => (Duration::ZERO, format!("stored one unusable: {e}")),
            };
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(wait) => {}
            }
            attempt += 1;
            emit!(info, ev::ACME_ORDER_STARTED, directory = %s.directory, domains = %s.domains.join(","), reason = %reason);
            let result = tokio::select! {
                _ = stop.cancelled() => return,
                r = tokio::time::timeout(ORDER_TIMEOUT, self.order()) => r.unwrap_or_else(|_| Err(anyhow!("no certificate within {} s", ORDER_TIMEOUT.as_secs()))),
            };
            self.clear_challenges();
            match result.and_then(|(chain, key)| self.install(&data_dir, &store, &chain, &key)) {
                Ok(()) => {
                    delay = s.retry_first;
                    attempt = 0;
                }
                Err(e) => {
                    emit!(warn, ev::ACME_ORDER_FAILED, directory = %s.directory, error = %format!("{e:#}"), retry_in_secs = delay.as_secs(), attempt = attempt);
                    tokio::select! {
                        _ = stop.cancelled() => return,
                        _ = tokio::time::sleep(delay) => {}
                    }
                    delay = (delay * 2).min(s.retry_max);
                }
            }
        }
    }

    fn clear_challenges(&self) {
        for d in &self.settings.domains {
            self.alpn.remove(d);
        }
        self.http01.clear();
    }

    /// Checks the pair, stores it, and makes it the one served.
    fn install(&self, data_dir: &Path, store: &CertStore, chain: &str, key: &str) -> anyhow::Result<()> {
        let facts = check(chain.as_bytes(), key.as_bytes(), &self.settings.domains, now())
            .map_err(|e| anyhow!("the CA's certificate is refused: {e}"))?;
        let (cert_path, key_path) = paths(data_dir);
        write_private(&key_path, key.as_bytes())?;
        write_private(&cert_path, chain.as_bytes())?;
        store.reload(&cert_path, &key_path)?;
        emit!(info, ev::ACME_CERT_INSTALLED,
            path = %cert_path.display(),
            domains = %self.settings.domains.join(","),
            serial = %facts.serial,
            not_after = facts.not_after,
            renew_at = renew_at(&facts, self.settings.renew_when_left, 0.0));
        Ok(())
    }

    /// The account: the stored one for this directory, else a new one
    /// (stored before it is used).
    async fn account(&self) -> anyhow::Result<Account> {
        let s = &self.settings;
        let builder = || anyhow::Ok(Account::builder_with_http(Box::new(Bounded::new(s.ca_file.as_deref())?)));
        let path = self.dir.join("account.json");
        #[derive(serde::Serialize, serde::Deserialize)]
        struct Stored {
            directory: String,
            credentials: AccountCredentials,
        }
        if let Ok(text) = std::fs::read(&path) {
            match serde_json::from_slice::<Stored>(&text) {
                Ok(st) if st.directory == s.directory => {
                    return builder()?.from_credentials(st.credentials).await.context("the stored account");
                }
                // Another CA's (the directory changed) or unreadable: a new one.
                _ => {}
            }
        }
        let contact: Vec<&str> = s.contact.iter().map(String::as_str).collect();
        let (account, credentials) = builder()?
            .create(
                &NewAccount { contact: &contact, terms_of_service_agreed: true, only_return_existing: false },
                s.directory.clone(),
                None,
            )
            .await
            .context("creating the account")?;
        let text = serde_json::to_vec(&Stored { directory: s.directory.clone(), credentials })?;
        write_private(&path, &text)?;
        Ok(account)
    }

    /// One order: (chain PEM, key PEM).
    async fn order(&self) -> anyhow::Result<(String, String)> {
        let s = &self.settings;
        let account = self.account().await?;
        let ids: Vec<Identifier> = s.domains.iter().map(|d| Identifier::Dns(d.clone())).collect();
        let mut order = account.new_order(&NewOrder::new(&ids)).await.context("new order")?;
        let kind = match s.challenge {
            AcmeChallenge::Http01 => ChallengeType::Http01,
            AcmeChallenge::TlsAlpn01 => ChallengeType::TlsAlpn01,
        };
        let mut authorizations = order.authorizations();
        while let Some(authz) = authorizations.next().await {
            let mut authz = authz.context("authorization")?;
            match authz.status {
                AuthorizationStatus::Pending => {}
                AuthorizationStatus::Valid => continue,
                other => bail!("an authorization is {other:?}"),
            }
            let mut challenge =
                authz.challenge(kind.clone()).ok_or_else(|| anyhow!("the CA offers no {kind:?} challenge"))?;
            let domain = match &challenge.identifier().identifier {
                Identifier::Dns(d) => d.to_ascii_lowercase(),
                other => bail!("the CA asks about {other:?}, which was not ordered"),
            };
            if !s.domains.contains(&domain) {
                bail!("the CA asks about {domain}, which was not ordered");
            }
            let answer = challenge.key_authorization();
            match s.challenge {
                AcmeChallenge::Http01 => self.http01.insert(&challenge.token, answer.as_str()),
                AcmeChallenge::TlsAlpn01 => {
                    self.alpn.insert(&domain, Arc::new(alpn_certificate(&domain, answer.digest().as_ref())?))
                }
            }
            challenge.set_ready().await.context("challenge ready")?;
        }
        let patience = RetryPolicy::new().initial_delay(Duration::from_millis(250)).timeout(Duration::from_secs(120));
        let status = order.poll_ready(&patience).await.context("waiting for validation")?;
        if status != OrderStatus::Ready {
            let problem = order.state().error.as_ref().map(|p| p.to_string()).unwrap_or_default();
            bail!("the order is {status:?}, not ready {problem}");
        }
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
        let csr = rcgen::CertificateParams::new(s.domains.clone())?.serialize_request(&key)?;
        order.finalize_csr(csr.der()).await.context("finalize")?;
        let chain = order.poll_certificate(&patience).await.context("the certificate")?;
        Ok((chain, key.serialize_pem()))
    }
}

/// The most an ACME answer's body may be (a directory, an order, a
/// chain: a few KiB); longer is garbage, and the order fails.
const MAX_RESPONSE: usize = 256 * 1024;

/// The ACME client's HTTPS: verified with `ca_file`'s roots or the
/// system's, each response body cut off (an error) past [`MAX_RESPONSE`].
struct Bounded(
    hyper_util::client::legacy::Client<
        hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>,
        instant_acme::BodyWrapper<bytes::Bytes>,
    >,
);

impl Bounded {
    fn new(ca_file: Option<&Path>) -> anyhow::Result<Bounded> {
        let mut roots = rustls::RootCertStore::empty();
        match ca_file {
            Some(ca) => {
                let pem = std::fs::read(ca).with_context(|| format!("[tls.acme] ca_file {}", ca.display()))?;
                for c in rustls_pemfile::certs(&mut pem.as_slice()) {
                    roots.add(c?).with_context(|| format!("[tls.acme] ca_file {}", ca.display()))?;
                }
            }
            None => {
                for c in rustls_native_certs::load_native_certs().certs {
                    let _ = roots.add(c);
                }
            }
        }
        if roots.is_empty() {
            bail!("no roots to verify the directory with (ca_file, or the system's store)");
        }
        let tls = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let https = hyper_rustls::HttpsConnectorBuilder::new().with_tls_config(tls).https_only().enable_http1().build();
        Ok(Bounded(hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new()).build(https)))
    }
}

impl instant_acme::HttpClient for Bounded {
    fn request(
        &self,
        req: http::Request<instant_acme::BodyWrapper<bytes::Bytes>>,
    ) -> std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<instant_acme::BytesResponse, instant_acme::Error>> + Send>,
    > {
        let answer = self.0.request(req);
        Box::pin(async move {
            let rsp = answer.await.map_err(|e| instant_acme::Error::Other(Box::new(e)))?;
            Ok(instant_acme::BytesResponse::from(rsp.map(|b| http_body_util::Limited::new(b, MAX_RESPONSE))))
        })
    }
}

/// The self-signed TLS-ALPN-01 certificate for `domain` (RFC 8737 section
/// 3): its only name is the domain, and the acmeIdentifier extension holds
/// the SHA-256 of the key authorization.
fn alpn_certificate(domain: &str, digest: &[u8]) -> anyhow::Result<rustls::sign::CertifiedKey> {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
    let mut params = rcgen::CertificateParams::new(vec![domain.to_owned()])?;
    params.custom_extensions = vec![rcgen::CustomExtension::new_acme_identifier(digest)];
    let cert = params.self_signed(&key)?;
    let der = rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into());
    // Not `from_der`: its key check parses the certificate with webpki,
    // which refuses the critical acmeIdentifier extension. The pair was
    // made together just above.
    let signer = rustls::crypto::ring::sign::any_supported_type(&der)?;
    Ok(rustls::sign::CertifiedKey::new(vec![cert.der().clone()], signer))
}

#[cfg(test)]
mod tests {
    fn pair(names: &[&str], days: (i64, i64)) -> (String, String) {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut p = rcgen::CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
        let at = |d: i64| {
            let secs = (super::now() as i64 + d * 86400) as u64;
            rcgen::date_time_ymd(1970, 1, 1) + std::time::Duration::from_secs(secs)
        };
        (p.not_before, p.not_after) = (at(days.0), at(days.1));
        (p.self_signed(&key).unwrap().pem(), key.serialize_pem())
    }

    /// A certificate is used only with its key, for every configured
    /// name, within its dates.
    #[test]
    fn only_a_matching_current_certificate_is_used() {
        let domains = vec!["mail.example.net".to_owned()];
        let (cert, key) = pair(&["mail.example.net"], (-1, 89));
        let facts = super::check(cert.as_bytes(), key.as_bytes(), &domains, super::now()).unwrap();
        let at = super::renew_at(&facts, 1.0 / 3.0, 0.0);
        assert_eq!(at, facts.not_after - 30 * 86400);
        assert!(super::renew_at(&facts, 1.0 / 3.0, 0.99) < at);
        let (_, other_key) = pair(&["mail.example.net"], (-1, 89));
        let e = super::check(cert.as_bytes(), other_key.as_bytes(), &domains, super::now()).unwrap_err();
        assert!(e.contains("not for our key"), "{e}");
        let more = vec!["mail.example.net".to_owned(), "smtp.example.net".to_owned()];
        let e = super::check(cert.as_bytes(), key.as_bytes(), &more, super::now()).unwrap_err();
        assert!(e.contains("smtp.example.net"), "{e}");
        let (old, old_key) = pair(&["mail.example.net"], (-90, -1));
        let e = super::check(old.as_bytes(), old_key.as_bytes(), &domains, super::now()).unwrap_err();
        assert_eq!(e, "expired");
        let e = super::check(b"<html>garbage</html>", key.as_bytes(), &domains, super::now()).unwrap_err();
        assert!(e.contains("no certificate"), "{e}");
    }
}
