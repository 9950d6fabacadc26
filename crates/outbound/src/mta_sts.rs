//! MTA-STS (RFC 8461) for outbound delivery: which policy a recipient
//! domain has, fetched over HTTPS with a verified certificate and cached.
//!
//! Discovery (§3, §5.1): the `_mta-sts.DOMAIN` TXT record names the
//! policy's `id`. A cached policy that has not outlived its `max_age` and
//! has the same id is used as is; a new id (or no cached policy) means a
//! fetch of `https://mta-sts.DOMAIN/.well-known/mta-sts.txt` — certificate
//! verified for `mta-sts.DOMAIN` against the system's CAs plus
//! `mta_sts_ca`, 64 KiB at most, a timeout, no redirects — parsed by
//! `port25_wire::mta_sts`. A fetch that fails, a policy that does not
//! parse, a TXT record that is gone or a DNS failure all fall back to the
//! cached policy while it lasts (or to none): an attacker who blocks the
//! fetch cannot downgrade a domain whose policy we already hold. A failed
//! fetch is not repeated for [`FETCH_RETRY`], so a dead policy host does
//! not cost every delivery attempt a timeout.
//!
//! The cache is kept in memory and in `data_dir/mta-sts/DOMAIN` (the id,
//! when it was fetched and the policy text, read back with the same
//! parser), so a restart keeps every policy.
//!
//! The certificate of an MX under a policy is checked for its MX name
//! with the same roots ([`Sts::verify_mx`]).

use crate::dns::Dns;
use port25_events as ev;
use port25_events::emit;
use port25_wire::mta_sts::{self, Mode, Policy};
use rustls::client::danger::ServerCertVerifier;
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::ClientConfig;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// After a failed fetch, how long before the same policy id is fetched
/// again (the cached policy, if any, applies meanwhile).
pub const FETCH_RETRY: Duration = Duration::from_secs(300);

/// Why a policy could not be had, as TLS-RPT (RFC 8460 §4.3) names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchError {
    /// `sts-policy-fetch-error`, `sts-webpki-invalid` or `sts-policy-invalid`.
    pub result_type: &'static str,
    pub reason: String,
}

/// Fetches policies over verified HTTPS; its roots also verify MX
/// certificates under a policy.
#[derive(Clone)]
pub struct Fetcher {
    https: Arc<ClientConfig>,
    verifier: Arc<WebPkiServerVerifier>,
    /// 443, except in tests.
    pub port: u16,
    pub timeout: Duration,
}

impl std::fmt::Debug for Fetcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Fetcher(port {}, timeout {:?})", self.port, self.timeout)
    }
}

impl std::fmt::Debug for Sts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Sts({})", self.dir.display())
    }
}

impl Fetcher {
    /// The system's CA certificates, and those of `extra_ca` (a PEM file)
    /// when given.
    pub fn new(extra_ca: Option<&Path>, port: u16, timeout: Duration) -> Result<Fetcher, String> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = rustls::RootCertStore::empty();
        roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
        if let Some(path) = extra_ca {
            crate::tls_policy::add_ca_file(&mut roots, path, "mta_sts_ca")?;
        }
        if roots.is_empty() {
            // Every fetch and every MX check fails then: enforced policies
            // already cached defer their mail rather than go unverified.
            emit!(warn, ev::OUTBOUND_MTA_STS_NO_ROOTS);
        }
        let roots = Arc::new(roots);
        let verifier = WebPkiServerVerifier::builder_with_provider(roots.clone(), provider.clone())
            .build()
            .map_err(|e| format!("MTA-STS certificate verification: {e}"))?;
        let https = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("ring supports the default protocol versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(Fetcher { https: Arc::new(https), verifier, port, timeout })
    }

    /// Fetches and parses the policy of `domain` from `addrs` (those of
    /// mta-sts.DOMAIN), the first that answers.
    pub async fn fetch(&self, domain: &str, addrs: &[IpAddr]) -> Result<Policy, FetchError> {
        let host = format!("mta-sts.{domain}");
        let fetch_error = |reason: String| FetchError { result_type: "sts-policy-fetch-error", reason };
        let Some(&ip) = addrs.first() else { return Err(fetch_error(format!("{host} has no address"))) };
        let body = match tokio::time::timeout(self.timeout, self.get(&host, SocketAddr::new(ip, self.port))).await {
            Err(_) => {
                return Err(fetch_error(format!("https://{host}: no answer within {} s", self.timeout.as_secs())))
            }
            Ok(r) => r?,
        };
        mta_sts::parse_policy(&body).map_err(|e| FetchError {
            result_type: "sts-policy-invalid",
            reason: format!("the policy of {domain}: {e}"),
        })
    }

    async fn get(&self, host: &str, addr: SocketAddr) -> Result<Vec<u8>, FetchError> {
        let fetch_error = |reason: String| FetchError { result_type: "sts-policy-fetch-error", reason };
        let name = ServerName::try_from(host.to_owned()).map_err(|e| fetch_error(format!("{host}: {e}")))?;
        let tcp = tokio::net::TcpStream::connect(addr)
            .await
            .map_err(|e| fetch_error(format!("connect to {host}[{addr}]: {e}")))?;
        let connector = tokio_rustls::TlsConnector::from(self.https.clone());
        let mut tls = connector.connect(name, tcp).await.map_err(|e| {
            let webpki = e
                .get_ref()
                .and_then(|i| i.downcast_ref::<rustls::Error>())
                .is_some_and(|r| matches!(r, rustls::Error::InvalidCertificate(_)));
            FetchError {
                result_type: if webpki { "sts-webpki-invalid" } else { "sts-policy-fetch-error" },
                reason: format!("TLS with {host}[{addr}]: {e}"),
            }
        })?;
        tls.write_all(mta_sts::request(host).as_bytes())
            .await
            .map_err(|e| fetch_error(format!("write to {host}: {e}")))?;
        // The header and at most the policy's limit: anything longer is
        // refused without reading the rest.
        let cap = mta_sts::MAX_POLICY_BYTES + 8192;
        let mut response = Vec::new();
        let mut chunk = [0u8; 8192];
        loop {
            match tls.read(&mut chunk).await {
                Ok(0) => break,
                Ok(n) => {
                    response.extend_from_slice(&chunk[..n]);
                    if response.len() > cap {
                        return Err(fetch_error(format!("https://{host}: the answer is larger than {cap} bytes")));
                    }
                }
                // A server that closes without close_notify has still sent
                // what it sent; Content-Length (if any) is checked below.
                Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => break,
                Err(e) => return Err(fetch_error(format!("read from {host}: {e}"))),
            }
        }
        mta_sts::response_body(&response)
            .map(<[u8]>::to_vec)
            .map_err(|e| fetch_error(format!("https://{host}{}: {e}", mta_sts::POLICY_PATH)))
    }

    /// Whether the certificate chain an MX presented is valid for `host`
    /// (RFC 8461 §4.2); `Err` holds the TLS-RPT result type and the reason.
    pub fn verify_mx(&self, chain: &[CertificateDer<'_>], host: &str) -> Result<(), (&'static str, String)> {
        let Some((ee, rest)) = chain.split_first() else {
            return Err(("validation-failure", "no certificate".into()));
        };
        let name = ServerName::try_from(host.trim_end_matches('.').to_owned())
            .map_err(|e| ("validation-failure", format!("{host}: {e}")))?;
        self.verifier.verify_server_cert(ee, rest, &name, &[], UnixTime::now()).map(|_| ()).map_err(|e| {
            use rustls::CertificateError as C;
            let kind = match &e {
                rustls::Error::InvalidCertificate(C::NotValidForName | C::NotValidForNameContext { .. }) => {
                    "certificate-host-mismatch"
                }
                rustls::Error::InvalidCertificate(C::Expired | C::ExpiredContext { .. }) => "certificate-expired",
                rustls::Error::InvalidCertificate(C::UnknownIssuer | C::BadSignature) => "certificate-not-trusted",
                _ => "validation-failure",
            };
            (kind, format!("the certificate of {host}: {e}"))
        })
    }
}

/// A policy as cached: its TXT id and when it was fetched (Unix seconds).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cached {
    pub id: String,
    pub fetched: u64,
    pub policy: Policy,
}

impl Cached {
    fn fresh(&self, now: u64) -> bool {
        now < self.fetched.saturating_add(self.policy.max_age)
    }

    /// The file format: three header lines, an empty line, the policy.
    fn to_file(&self) -> String {
        format!("port25-mta-sts 1\nid: {}\nfetched: {}\n\n{}\n", self.id, self.fetched, self.policy.lines().join("\n"))
    }

    fn from_file(text: &str) -> Option<Cached> {
        let (head, body) = text.split_once("\n\n")?;
        let mut lines = head.lines();
        (lines.next()? == "port25-mta-sts 1").then_some(())?;
        let id = lines.next()?.strip_prefix("id: ")?.to_owned();
        let fetched = lines.next()?.strip_prefix("fetched: ")?.parse().ok()?;
        let policy = mta_sts::parse_policy(body.as_bytes()).ok()?;
        Some(Cached { id, fetched, policy })
    }
}

/// What a lookup found: the policy to apply (None: no policy, or mode
/// none) and, when discovery failed, why (for TLS-RPT).
#[derive(Debug, Clone, Default)]
pub struct Found {
    pub policy: Option<Policy>,
    pub failure: Option<FetchError>,
}

/// The policies of recipient domains.
pub struct Sts {
    pub fetcher: Fetcher,
    dir: PathBuf,
    cache: Mutex<HashMap<String, Cached>>,
    /// (domain, id) whose fetch failed, and until when it is not retried.
    failed: Mutex<HashMap<(String, String), u64>>,
}

/// A domain whose policy may be looked up and cached under its own name:
/// letters, digits, hyphens and dots only (no path can be made of it).
fn cacheable(domain: &str) -> bool {
    !domain.is_empty()
        && domain.len() <= 253
        && domain
            .split('.')
            .all(|l| !l.is_empty() && l.len() <= 63 && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
}

impl Sts {
    /// Policies cached in `dir` (created mode 0700 if missing).
    pub fn new(fetcher: Fetcher, dir: PathBuf) -> std::io::Result<Sts> {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new().recursive(true).mode(0o700).create(&dir)?;
        Ok(Sts { fetcher, dir, cache: Mutex::default(), failed: Mutex::default() })
    }

    fn cached(&self, domain: &str) -> Option<Cached> {
        if let Some(c) = self.cache.lock().expect("sts cache").get(domain) {
            return Some(c.clone());
        }
        let text = std::fs::read_to_string(self.dir.join(domain)).ok()?;
        let c = Cached::from_file(&text)?;
        self.cache.lock().expect("sts cache").insert(domain.to_owned(), c.clone());
        Some(c)
    }

    fn store(&self, domain: &str, c: Cached) {
        let path = self.dir.join(domain);
        let tmp = self.dir.join(format!(".{domain}.tmp"));
        let written = std::fs::write(&tmp, c.to_file()).and_then(|()| std::fs::rename(&tmp, &path));
        if let Err(e) = written {
            // Still used from memory; only a restart forgets it.
            emit!(warn, ev::OUTBOUND_MTA_STS_FAILED, destination = %domain, reason = %format!("cannot store the policy in {}: {e}", path.display()));
        }
        self.cache.lock().expect("sts cache").insert(domain.to_owned(), c);
    }

    /// The policy of `domain` now (module documentation: the order).
    pub async fn lookup(&self, dns: &Dns, domain: &str) -> Found {
        let domain = domain.trim_end_matches('.').to_ascii_lowercase();
        if !cacheable(&domain) {
            return Found::default();
        }
        let now = port25_time::unix_secs();
        let cached = self.cached(&domain).filter(|c| c.fresh(now));
        let usable = |c: Option<Cached>, failure: Option<FetchError>| Found {
            policy: c.map(|c| c.policy).filter(|p| p.mode != Mode::None),
            failure,
        };
        let id = match dns.txt(&format!("_mta-sts.{domain}")).await {
            Ok(records) => match mta_sts::txt_id(&records) {
                Ok(id) => id,
                // No record (or a broken one): the cached policy while it lasts.
                Err(_) => return usable(cached, None),
            },
            Err(_) => return usable(cached, None),
        };
        if cached.as_ref().is_some_and(|c| c.id == id) {
            return usable(cached, None);
        }
        let key = (domain.clone(), id.clone());
        if self.failed.lock().expect("sts failed").get(&key).is_some_and(|&until| now < until) {
            return usable(cached, None);
        }
        let host = format!("mta-sts.{domain}");
        let fetched = match dns.addresses(&host).await {
            Ok(addrs) => self.fetcher.fetch(&domain, &addrs).await,
            Err(e) => Err(FetchError { result_type: "sts-policy-fetch-error", reason: e.reason }),
        };
        match fetched {
            Ok(policy) => {
                emit!(info, ev::OUTBOUND_MTA_STS_POLICY, destination = %domain, id = %id, mode = policy.mode.as_str(), max_age = policy.max_age, mx = %policy.mx.join(","));
                let c = Cached { id, fetched: now, policy };
                self.store(&domain, c.clone());
                usable(Some(c), None)
            }
            Err(e) => {
                let mut failed = self.failed.lock().expect("sts failed");
                failed.retain(|_, until| now < *until);
                failed.insert(key, now + FETCH_RETRY.as_secs());
                drop(failed);
                let fallback = if cached.is_some() { "the cached policy" } else { "no policy" };
                emit!(warn, ev::OUTBOUND_MTA_STS_FAILED, destination = %domain, result = e.result_type, reason = %e.reason, fallback = fallback);
                usable(cached, Some(e))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cache_file_reads_back() {
        let policy =
            mta_sts::parse_policy(b"version: STSv1\nmode: enforce\nmx: *.example.net\nmax_age: 600\n").unwrap();
        let c = Cached { id: "abc123".into(), fetched: 1_700_000_000, policy };
        assert_eq!(Cached::from_file(&c.to_file()), Some(c.clone()));
        assert!(c.fresh(1_700_000_599) && !c.fresh(1_700_000_600));
        assert_eq!(Cached::from_file("port25-mta-sts 1\nid: x\n\nversion: STSv1\n"), None);
    }

    #[test]
    fn only_plain_domain_names_are_cached_under_their_name() {
        assert!(cacheable("mail.example.com"));
        for bad in ["", "..", "a/b", "../x", "a..b", "é.example", "a b"] {
            assert!(!cacheable(bad), "{bad:?}");
        }
    }
}
