//! DNSSEC-validated lookups for DANE (RFC 7672 §2.1, §2.2): hickory's
//! validating resolver (the same name servers as crate::dns, with the DO
//! bit), whose answers are each known to be **secure** (a chain of
//! signatures up to the trust anchor), **insecure** (proven unsigned: an
//! insecure delegation) or **bogus** (signatures missing or wrong where
//! they must be). DANE applies to an MX host only when both the MX lookup
//! of the domain and the TLSA lookup of `_25._tcp.HOST` are secure; a
//! bogus answer defers the mail (an attacker may be in the path); an
//! insecure one means no DANE.
//!
//! The trust anchor is the IANA root key set hickory ships, or the
//! DNSKEY records of `[outbound] dane_trust_anchor` (a private root or a
//! test zone).

use crate::dane::Tlsa;
use crate::dns::DnsFailure;
use hickory_resolver::config::ResolverOpts;
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::net::{DnsError, NetError};
use hickory_resolver::proto::dnssec::{Proof, TrustAnchors};
use hickory_resolver::proto::op::ResponseCode;
use hickory_resolver::proto::rr::{RData, RecordType};
use hickory_resolver::TokioResolver;
use port25_events as ev;
use port25_events::emit;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What DNSSEC says of an answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Security {
    Secure,
    /// Proven unsigned (or outside every trust anchor): no DANE.
    Insecure,
    /// Validation failed: the answer cannot be trusted, nor its absence.
    Bogus(String),
}

/// A validated answer: its status and its records (empty: none exist).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Validated<T> {
    pub security: Security,
    pub records: Vec<T>,
}

#[derive(Clone)]
pub struct Dnssec {
    resolver: TokioResolver,
    /// The trust anchor's zone, whose DNSKEY records [`Dnssec::probe`]
    /// validates.
    zone: String,
    /// The last probe: when, and whether validation works.
    probed: Arc<Mutex<Option<(Instant, bool)>>>,
}

/// How long a probe's result is used before the next.
const PROBE_EVERY: Duration = Duration::from_secs(600);

impl std::fmt::Debug for Dnssec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Dnssec")
    }
}

impl Dnssec {
    /// A validating resolver asking `servers`; `anchor`: a file of DNSKEY
    /// records replacing the IANA root anchor.
    pub fn new(servers: &[SocketAddr], timeout: Duration, anchor: Option<&Path>) -> Result<Dnssec, String> {
        let anchors = match anchor {
            Some(path) => TrustAnchors::from_file(path)
                .map_err(|e| format!("dane_trust_anchor {}: {e} (DNSKEY records expected)", path.display()))?,
            None => TrustAnchors::default(),
        };
        let config = crate::dns::resolver_config(servers);
        let mut opts = ResolverOpts::default();
        opts.timeout = timeout;
        opts.attempts = 2;
        opts.ndots = 0;
        opts.validate = true;
        let mut builder = TokioResolver::builder_with_config(config, TokioRuntimeProvider::default())
            .with_trust_anchor(Arc::new(anchors));
        *builder.options_mut() = opts;
        Ok(Dnssec {
            resolver: builder.build().map_err(|e| format!("DNSSEC resolver: {e}"))?,
            zone: anchor_zone(anchor),
            probed: Arc::default(),
        })
    }

    async fn lookup<T>(
        &self,
        name: &str,
        rtype: RecordType,
        pick: impl Fn(&RData) -> Option<T>,
    ) -> Result<Validated<T>, DnsFailure> {
        let fqdn = if name.ends_with('.') { name.to_owned() } else { format!("{name}.") };
        match self.resolver.lookup(fqdn.as_str(), rtype).await {
            Ok(l) => {
                let mut security = Security::Secure;
                let mut records = Vec::new();
                for r in l.answers().iter().filter(|r| r.record_type() == rtype) {
                    match r.proof {
                        Proof::Secure => {}
                        Proof::Bogus => security = Security::Bogus(format!("{rtype} {name}: bogus signature")),
                        _ if security == Security::Secure => security = Security::Insecure,
                        _ => {}
                    }
                    records.extend(pick(&r.data));
                }
                if records.is_empty() && security == Security::Secure {
                    // An empty answer proves nothing by itself.
                    security = Security::Insecure;
                }
                Ok(Validated { security, records })
            }
            Err(NetError::Dns(DnsError::DnssecBogus)) => Ok(Validated {
                security: Security::Bogus(format!("{rtype} lookup for {name}: DNSSEC validation failed (bogus)")),
                records: Vec::new(),
            }),
            Err(NetError::Dns(DnsError::Nsec { proof, .. })) => Ok(Validated {
                security: match proof {
                    Proof::Secure => Security::Secure,
                    Proof::Bogus => Security::Bogus(format!("{rtype} lookup for {name}: bogus denial of existence")),
                    _ => Security::Insecure,
                },
                records: Vec::new(),
            }),
            Err(NetError::Dns(DnsError::NoRecordsFound(n)))
                if matches!(n.response_code, ResponseCode::NXDomain | ResponseCode::NoError) =>
            {
                Ok(Validated { security: Security::Insecure, records: Vec::new() })
            }
            Err(e) => {
                Err(DnsFailure { permanent: false, reason: format!("validated {rtype} lookup for {name} failed: {e}") })
            }
        }
    }

    /// Whether validation works through the configured name servers, as
    /// the last probe (at most [`PROBE_EVERY`] ago) found. When it does
    /// not (a resolver that strips DNSSEC records, which would make every
    /// answer bogus), every answer counts as insecure: no DANE, as Postfix
    /// has none without a validating resolver. Logged when it changes.
    pub async fn validating(&self) -> bool {
        let last = *self.probed.lock().expect("dnssec probe");
        if let Some((at, ok)) = last {
            if at.elapsed() < PROBE_EVERY {
                return ok;
            }
        }
        let result = self.probe().await;
        let ok = result.is_ok();
        if let Err(e) = result {
            if last.is_none_or(|(_, was)| was) {
                emit!(warn, ev::OUTBOUND_DANE_NO_VALIDATION, error = %e);
            }
        }
        *self.probed.lock().expect("dnssec probe") = Some((Instant::now(), ok));
        ok
    }

    /// Whether the DNSKEY records of the trust anchor's zone validate
    /// through the configured name servers.
    pub async fn probe(&self) -> Result<(), String> {
        let zone = self.zone.as_str();
        let v = self.lookup(zone, RecordType::DNSKEY, |_| Some(())).await.map_err(|f| f.reason)?;
        match v.security {
            Security::Secure => Ok(()),
            Security::Insecure => Err(format!("the DNSKEY records of {zone} are not signed or not passed on")),
            Security::Bogus(why) => Err(why),
        }
    }

    /// The MX exchanges of `domain` (lower case, no trailing dot).
    pub async fn mx(&self, domain: &str) -> Result<Validated<String>, DnsFailure> {
        self.lookup(domain, RecordType::MX, |d| match d {
            RData::MX(mx) => Some(mx.exchange.to_ascii().trim_end_matches('.').to_ascii_lowercase()),
            _ => None,
        })
        .await
    }

    /// The TLSA records at `_25._tcp.HOST`.
    pub async fn tlsa(&self, host: &str) -> Result<Validated<Tlsa>, DnsFailure> {
        let name = format!("_25._tcp.{}", host.trim_end_matches('.'));
        self.lookup(&name, RecordType::TLSA, |d| match d {
            RData::TLSA(t) => Some(Tlsa {
                usage: t.cert_usage.into(),
                selector: t.selector.into(),
                matching: t.matching.into(),
                data: t.cert_data.clone(),
            }),
            _ => None,
        })
        .await
    }
}

/// The zone a trust anchor file is for (the owner of its first record),
/// or the root for the IANA anchor.
pub fn anchor_zone(anchor: Option<&Path>) -> String {
    let text = anchor.and_then(|p| std::fs::read_to_string(p).ok()).unwrap_or_default();
    text.lines()
        .map(|l| l.split(';').next().unwrap_or("").trim())
        .find(|l| !l.is_empty() && !l.starts_with('$'))
        .and_then(|l| l.split_whitespace().next())
        .unwrap_or(".")
        .to_owned()
}
