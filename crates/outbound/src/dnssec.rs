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
//! DNSKEY and DS records of `[outbound] dane_trust_anchor` (a private
//! root or a test zone); for a DS record the zone's DNSKEY records are
//! fetched and the one its digest matches is trusted.

use crate::dane::Tlsa;
use crate::dns::DnsFailure;
use hickory_resolver::config::ResolverOpts;
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::net::{DnsError, NetError};
use hickory_resolver::proto::dnssec::rdata::{DNSSECRData, DS};
use hickory_resolver::proto::dnssec::{Algorithm, DigestType, Proof, TrustAnchors};
use hickory_resolver::proto::op::ResponseCode;
use hickory_resolver::proto::rr::{LowerName, Name, RData, RecordType};
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
    /// Built at the first lookup: DS anchors need the zone's DNSKEY
    /// records first.
    resolver: Arc<tokio::sync::OnceCell<TokioResolver>>,
    servers: Vec<SocketAddr>,
    timeout: Duration,
    /// The DNSKEY anchors, and the DS anchors (owner, DS) whose keys are
    /// fetched and added when the resolver is built.
    anchors: TrustAnchors,
    ds: Vec<(Name, DS)>,
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
    /// and/or DS records replacing the IANA root anchor.
    pub fn new(servers: &[SocketAddr], timeout: Duration, anchor: Option<&Path>) -> Result<Dnssec, String> {
        let (anchors, ds) = match anchor {
            Some(path) => {
                let text =
                    std::fs::read_to_string(path).map_err(|e| format!("dane_trust_anchor {}: {e}", path.display()))?;
                let (anchors, ds) = parse_anchors(&text).map_err(|e| {
                    format!("dane_trust_anchor {}: {e} (DNSKEY or DS records expected)", path.display())
                })?;
                // TrustAnchors::is_empty counts the root's keys only.
                let keys = text.lines().filter(|l| l.split_whitespace().any(|f| f.eq_ignore_ascii_case("DNSKEY")));
                if keys.count() == 0 && ds.is_empty() {
                    return Err(format!("dane_trust_anchor {}: no DNSKEY or DS record", path.display()));
                }
                (anchors, ds)
            }
            None => (TrustAnchors::default(), Vec::new()),
        };
        Ok(Dnssec {
            resolver: Arc::default(),
            servers: servers.to_vec(),
            timeout,
            anchors,
            ds,
            zone: anchor_zone(anchor),
            probed: Arc::default(),
        })
    }

    fn builder(&self, validate: bool) -> hickory_resolver::ResolverBuilder<TokioRuntimeProvider> {
        let mut opts = ResolverOpts::default();
        opts.timeout = self.timeout;
        opts.attempts = 2;
        opts.ndots = 0;
        opts.validate = validate;
        let mut builder = TokioResolver::builder_with_config(
            crate::dns::resolver_config(&self.servers),
            TokioRuntimeProvider::default(),
        );
        *builder.options_mut() = opts;
        builder
    }

    /// The validating resolver; with DS anchors, the DNSKEY records of
    /// their zones are fetched (unvalidated: the DS digest is the check)
    /// and those a DS covers become anchors. A failure is not kept: the
    /// next lookup tries again.
    async fn resolver(&self) -> Result<&TokioResolver, String> {
        self.resolver
            .get_or_try_init(|| async {
                let mut anchors = self.anchors.clone();
                if !self.ds.is_empty() {
                    let mut matched = 0;
                    let plain = self.builder(false).build().map_err(|e| format!("DNSSEC resolver: {e}"))?;
                    for (name, ds) in &self.ds {
                        let keys = plain
                            .lookup(name.clone(), RecordType::DNSKEY)
                            .await
                            .map_err(|e| format!("the DNSKEY records of {name} for the DS anchor: {e}"))?;
                        for r in keys.answers() {
                            if let RData::DNSSEC(DNSSECRData::DNSKEY(key)) = &r.data {
                                if ds.covers(name, key).unwrap_or(false) {
                                    anchors.insert_with_name(key.public_key(), LowerName::from(name));
                                    matched += 1;
                                }
                            }
                        }
                    }
                    if matched == 0 {
                        return Err("no DNSKEY record matches the DS records of dane_trust_anchor".to_owned());
                    }
                }
                self.builder(true)
                    .with_trust_anchor(Arc::new(anchors))
                    .build()
                    .map_err(|e| format!("DNSSEC resolver: {e}"))
            })
            .await
    }

    async fn lookup<T>(
        &self,
        name: &str,
        rtype: RecordType,
        pick: impl Fn(&RData) -> Option<T>,
    ) -> Result<Validated<T>, DnsFailure> {
        let fqdn = if name.ends_with('.') { name.to_owned() } else { format!("{name}.") };
        let resolver = self.resolver().await.map_err(|reason| DnsFailure { permanent: false, reason })?;
        match resolver.lookup(fqdn.as_str(), rtype).await {
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

    /// Whether validation applies, as the last probe (at most
    /// [`PROBE_EVERY`] ago) found. When the name servers give no DNSKEY
    /// records for the anchor's zone at all (they serve no DNSSEC), every
    /// answer counts as insecure: no DANE, as Postfix has none without a
    /// validating resolver. When they give them but they do not validate,
    /// validation stays on (every signed answer is bogus: deferred).
    /// Either is logged at each probe.
    pub async fn validating(&self) -> bool {
        let last = *self.probed.lock().expect("dnssec probe");
        if let Some((at, ok)) = last {
            if at.elapsed() < PROBE_EVERY {
                return ok;
            }
        }
        let result = self.probe().await;
        let ok = match &result {
            Ok(()) => true,
            // The DNSKEY records are there but do not validate (a wrong
            // anchor, stripped signatures, an attack): fail closed, every
            // signed answer is bogus and its mail deferred.
            Err((served, _)) => *served,
        };
        if let Err((_, e)) = &result {
            // At most once per PROBE_EVERY: only an expired result is probed again.
            emit!(warn, ev::OUTBOUND_DANE_NO_VALIDATION, error = %e, dane = if ok { "enforced" } else { "off" });
        }
        *self.probed.lock().expect("dnssec probe") = Some((Instant::now(), ok));
        ok
    }

    /// Whether the DNSKEY records of the trust anchor's zone validate
    /// through the configured name servers; when not, whether the name
    /// servers give DNSKEY records at all (`true`: DNSSEC is served, so
    /// validation stays on and fails closed; `false`: they serve no DNSSEC).
    pub async fn probe(&self) -> Result<(), (bool, String)> {
        let zone = self.zone.as_str();
        let why = match self.lookup(zone, RecordType::DNSKEY, |_| Some(())).await {
            Ok(Validated { security: Security::Secure, .. }) => return Ok(()),
            Ok(Validated { security: Security::Bogus(why), .. }) => why,
            Ok(_) => format!("the DNSKEY records of {zone} are not signed"),
            Err(f) => f.reason,
        };
        let served = match self.builder(false).build() {
            Ok(plain) => plain
                .lookup(zone, RecordType::DNSKEY)
                .await
                .is_ok_and(|l| l.answers().iter().any(|r| matches!(&r.data, RData::DNSSEC(DNSSECRData::DNSKEY(_))))),
            Err(_) => false,
        };
        Err((served, why))
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

/// The DNSKEY records (hickory's parser) and the DS records (`NAME [TTL]
/// [IN] DS TAG ALGORITHM DIGEST-TYPE HEX`) of a trust anchor file.
fn parse_anchors(text: &str) -> Result<(TrustAnchors, Vec<(Name, DS)>), String> {
    let mut keys = String::new();
    let mut ds = Vec::new();
    for line in text.lines() {
        let fields: Vec<&str> = line.split(';').next().unwrap_or("").split_whitespace().collect();
        match fields.iter().position(|f| f.eq_ignore_ascii_case("DS")) {
            Some(at) if at >= 1 && fields.len() >= at + 5 => {
                let name = Name::from_ascii(fields[0]).map_err(|e| format!("{}: {e}", fields[0]))?;
                let num = |i: usize| fields[at + i].parse::<u16>().map_err(|_| format!("bad DS record: {line}"));
                let (tag, alg, digest_type) = (num(1)?, num(2)?, num(3)?);
                let hex: String = fields[at + 4..].concat();
                let digest = (0..hex.len())
                    .step_by(2)
                    .map(|i| hex.get(i..i + 2).and_then(|b| u8::from_str_radix(b, 16).ok()))
                    .collect::<Option<Vec<u8>>>()
                    .filter(|d| !d.is_empty())
                    .ok_or_else(|| format!("bad DS digest: {line}"))?;
                let (Ok(alg), Ok(digest_type)) = (u8::try_from(alg), u8::try_from(digest_type)) else {
                    return Err(format!("bad DS record: {line}"));
                };
                ds.push((name, DS::new(tag, Algorithm::from_u8(alg), DigestType::from(digest_type), digest)));
            }
            Some(_) => return Err(format!("bad DS record: {line}")),
            None => {
                keys.push_str(line);
                keys.push('\n');
            }
        }
    }
    let anchors = keys.parse::<TrustAnchors>().map_err(|e| e.to_string())?;
    Ok((anchors, ds))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trust_anchor_files_hold_dnskey_and_ds_records() {
        let (keys, ds) = parse_anchors(
            "; the root KSK-2017, as IANA publishes it\n\
             . IN DS 20326 8 2 E06D44B80B8F1D39A95C0B0D7C65D08458E880409BBC683457104237C7F8EC8D\n\
             example. 3600 IN DS 1 13 2 e06d44b8 0b8f\n",
        )
        .unwrap();
        assert!(keys.is_empty());
        assert_eq!(ds.len(), 2);
        assert_eq!(ds[0].0, Name::root());
        assert_eq!((ds[0].1.key_tag(), ds[0].1.digest().len()), (20326, 32));
        assert_eq!(ds[1].1.digest(), &[0xe0, 0x6d, 0x44, 0xb8, 0x0b, 0x8f]);
        for bad in ["x. IN DS 1 13 2", "x. IN DS 1 13 2 zz", "x. IN DS 70000 13 2 00", "DS 1 13 2 00"] {
            assert!(parse_anchors(bad).is_err(), "{bad}");
        }
        assert_eq!(anchor_zone(None), ".");
    }

    /// The anchor file is the operator's, but a broken one must be an
    /// error, never a panic: random lines made of the tokens that matter.
    #[test]
    fn random_anchor_files_never_panic() {
        let tokens = ["x.", ".", "IN", "DS", "DNSKEY", "257", "3", "13", "2", "0", "70000", "ab", "é", ";", "\t", "zz"];
        let mut rng = fastrand::Rng::with_seed(15);
        for _ in 0..20_000 {
            let n = rng.usize(0..12);
            let line: Vec<&str> = (0..n).map(|_| tokens[rng.usize(0..tokens.len())]).collect();
            let _ = parse_anchors(&line.join(" "));
        }
    }
}
