//! `port25 dns check DOMAIN`: the provider's own DNS, checked against what
//! live DNS answers, before anyone is asked to accept its mail.
//!
//! What is checked, in order: the MX records and their addresses; the
//! reverse DNS (PTR) of each sending address and its forward confirmation
//! (FCrDNS); SPF, evaluated by mail-auth as receivers evaluate it, for each
//! sending address; each configured DKIM key against the published one;
//! DMARC; MTA-STS and TLS-RPT; the RFC 6186 submission SRV records; the
//! autoconfig/autodiscover names. Each [`Finding`] says what is wrong and
//! carries the records to publish, in zone-file syntax. A lookup that
//! fails (SERVFAIL, timeout) is a finding too: nothing is assumed fine
//! that could not be seen.
//!
//! `records` holds the pure readers of TXT records (fuzzed) and the
//! writers of suggested records; [`Dns`] asks the configured name servers.

pub mod records;

use hickory_resolver::config::{ConnectionConfig, NameServerConfig, ResolverConfig, ResolverOpts};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::net::{DnsError, NetError};
use hickory_resolver::proto::op::ResponseCode;
use hickory_resolver::proto::rr::{RData, RecordType};
use hickory_resolver::TokioResolver;
use mail_auth::spf::verify::SpfParameters;
use mail_auth::{MessageAuthenticator, SpfResult};
use records::{reverse_name, same_name, shown, spf_with, tag, tags, txt_rdata};
use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Ok,
    /// Works, but something receivers or clients look for is missing.
    Warn,
    /// Mail will be refused, junked or misrouted, or it could not be checked.
    Error,
}

#[derive(Debug, Clone)]
pub struct Finding {
    pub level: Level,
    /// MX, PTR, SPF, DKIM, DMARC, MTA-STS, TLS-RPT, SRV, autoconfig
    pub topic: &'static str,
    pub text: String,
    /// Zone-file lines to publish (empty when nothing is to change).
    pub publish: Vec<String>,
}

/// What the domain's records should say, from the configuration.
#[derive(Debug, Clone)]
pub struct Expect {
    pub domain: String,
    /// This server's name: the MX target, the HELO name outbound mail
    /// uses, the name the PTR records should give.
    pub hostname: String,
    /// The addresses mail leaves from; empty: the addresses of `hostname`.
    pub sending: Vec<IpAddr>,
    /// Each configured DKIM key of the domain.
    pub dkim: Vec<DkimExpect>,
    pub submission_host: String,
    pub submission_port: u16,
    pub submissions_port: u16,
    /// The HTTPS host for autoconfig/autodiscover and the MTA-STS policy.
    pub web_host: String,
    pub ttl: u32,
    /// Fetches the domain's MTA-STS policy to validate it (the outbound
    /// queue's fetcher: same CAs, size limit, timeout, no redirects);
    /// None: only the TXT record and the policy host's address are checked.
    pub sts: Option<port25_outbound::mta_sts::Fetcher>,
}

#[derive(Debug, Clone)]
pub struct DkimExpect {
    pub selector: String,
    /// The TXT value to publish ("v=DKIM1; k=rsa; p=...").
    pub record: String,
    /// The p= values that publish this key (its encodings).
    pub keys: Vec<String>,
}

/// A DNS question's answer: `Ok(vec![])` when the name or the type does
/// not exist (NXDOMAIN, NODATA), `Err` when the question could not be
/// answered.
type Answer<T> = Result<Vec<T>, String>;

pub struct Dns {
    resolver: TokioResolver,
    spf: MessageAuthenticator,
}

impl Dns {
    /// Asks `servers` (UDP, TCP for truncated answers).
    pub fn new(servers: &[SocketAddr], timeout: Duration) -> Result<Dns, String> {
        let config = || {
            let mut name_servers = Vec::new();
            for s in servers {
                let mut udp = ConnectionConfig::udp();
                udp.port = s.port();
                let mut tcp = ConnectionConfig::tcp();
                tcp.port = s.port();
                name_servers.push(NameServerConfig::new(s.ip(), true, vec![udp, tcp]));
            }
            ResolverConfig::from_parts(None, vec![], name_servers)
        };
        let mut opts = ResolverOpts::default();
        opts.timeout = timeout;
        opts.attempts = 2;
        opts.ndots = 0;
        // What the provider just published, not what was cached a minute ago.
        opts.cache_size = 0;
        let mut builder = TokioResolver::builder_with_config(config(), TokioRuntimeProvider::default());
        *builder.options_mut() = opts.clone();
        let resolver = builder.build().map_err(|e| e.to_string())?;
        let spf = MessageAuthenticator::new(config(), opts).map_err(|e| e.to_string())?;
        Ok(Dns { resolver, spf })
    }

    async fn query(&self, name: &str, rtype: RecordType) -> Answer<RData> {
        let fqdn = format!("{}.", name.trim_end_matches('.'));
        match self.resolver.lookup(fqdn.as_str(), rtype).await {
            Ok(l) => Ok(l.answers().iter().filter(|r| r.record_type() == rtype).map(|r| r.data.clone()).collect()),
            Err(NetError::Dns(DnsError::NoRecordsFound(n)))
                if matches!(n.response_code, ResponseCode::NXDomain | ResponseCode::NoError) =>
            {
                Ok(Vec::new())
            }
            Err(e) => Err(format!("{rtype} lookup of {name} failed: {e}")),
        }
    }

    /// Each TXT record's strings joined (RFC 7208 §3.3), as text.
    async fn txt(&self, name: &str) -> Answer<String> {
        Ok(self
            .query(name, RecordType::TXT)
            .await?
            .into_iter()
            .filter_map(|r| match r {
                RData::TXT(t) => Some(String::from_utf8_lossy(&t.txt_data.concat()).into_owned()),
                _ => None,
            })
            .collect())
    }

    async fn mx(&self, domain: &str) -> Answer<(u16, String)> {
        Ok(self
            .query(domain, RecordType::MX)
            .await?
            .into_iter()
            .filter_map(|r| match r {
                RData::MX(mx) => Some((mx.preference, mx.exchange.to_ascii().trim_end_matches('.').to_lowercase())),
                _ => None,
            })
            .collect())
    }

    async fn addresses(&self, host: &str) -> Answer<IpAddr> {
        let (v4, v6) = tokio::join!(self.query(host, RecordType::A), self.query(host, RecordType::AAAA));
        let mut out = Vec::new();
        for r in v4?.into_iter().chain(v6?) {
            match r {
                RData::A(a) => out.push(IpAddr::V4(a.0)),
                RData::AAAA(a) => out.push(IpAddr::V6(a.0)),
                _ => {}
            }
        }
        Ok(out)
    }

    async fn ptr(&self, ip: IpAddr) -> Answer<String> {
        Ok(self
            .query(&reverse_name(ip), RecordType::PTR)
            .await?
            .into_iter()
            .filter_map(|r| match r {
                RData::PTR(p) => Some(p.0.to_ascii().trim_end_matches('.').to_lowercase()),
                _ => None,
            })
            .collect())
    }

    async fn srv(&self, name: &str) -> Answer<(u16, u16, u16, String)> {
        Ok(self
            .query(name, RecordType::SRV)
            .await?
            .into_iter()
            .filter_map(|r| match r {
                RData::SRV(s) => {
                    Some((s.priority, s.weight, s.port, s.target.to_ascii().trim_end_matches('.').to_lowercase()))
                }
                _ => None,
            })
            .collect())
    }
}

struct Out {
    findings: Vec<Finding>,
    ttl: u32,
}

impl Out {
    fn push(&mut self, level: Level, topic: &'static str, text: String, publish: Vec<String>) {
        self.findings.push(Finding { level, topic, text, publish });
    }
    fn ok(&mut self, topic: &'static str, text: String) {
        self.push(Level::Ok, topic, text, Vec::new());
    }
    fn failed(&mut self, topic: &'static str, error: String) {
        self.push(
            Level::Error,
            topic,
            format!("could not check: {error}; run it again when the name servers answer"),
            Vec::new(),
        );
    }
    fn txt(&self, name: &str, value: &str) -> String {
        format!("{}. {} IN TXT {}", name.trim_end_matches('.'), self.ttl, txt_rdata(value))
    }
}

/// Runs every check; findings in the order above.
pub async fn check(dns: &Dns, e: &Expect) -> Vec<Finding> {
    let mut out = Out { findings: Vec::new(), ttl: e.ttl };
    mx(dns, e, &mut out).await;
    let sending = sending(dns, e, &mut out).await;
    for ip in &sending {
        ptr(dns, e, *ip, &mut out).await;
    }
    spf(dns, e, &sending, &mut out).await;
    helo_spf(dns, e, &sending, &mut out).await;
    dkim(dns, e, &mut out).await;
    dmarc(dns, e, &mut out).await;
    mta_sts(dns, e, &mut out).await;
    tls_rpt(dns, e, &mut out).await;
    srv(dns, e, &mut out).await;
    autoconfig(dns, e, &mut out).await;
    out.findings
}

async fn mx(dns: &Dns, e: &Expect, out: &mut Out) {
    let d = &e.domain;
    let want = format!("{d}. {} IN MX 10 {}.", out.ttl, e.hostname);
    let records = match dns.mx(d).await {
        Ok(r) => r,
        Err(err) => return out.failed("MX", err),
    };
    if records.is_empty() {
        return out.push(
            Level::Error,
            "MX",
            format!("{d} has no MX record: senders fall back to its address records, if any, and many refuse"),
            vec![want],
        );
    }
    if records.iter().any(|(p, h)| *p == 0 && (h.is_empty() || h == ".")) {
        return out.push(
            Level::Error,
            "MX",
            format!("{d} has a null MX (\"MX 0 .\", RFC 7505): it says it accepts no mail; replace it"),
            vec![want],
        );
    }
    if !records.iter().any(|(_, h)| same_name(h, &e.hostname)) {
        let hosts: Vec<String> = records.iter().map(|(p, h)| format!("{p} {}", shown(h))).collect();
        out.push(
            Level::Warn,
            "MX",
            format!("no MX of {d} names this server ({}); they are: {}", e.hostname, hosts.join(", ")),
            vec![want.clone()],
        );
    }
    for (pref, host) in &records {
        if host.parse::<IpAddr>().is_ok() {
            out.push(
                Level::Error,
                "MX",
                format!("MX {pref} {} is an address; an MX must name a host (RFC 5321 §5.1)", shown(host)),
                vec![want.clone()],
            );
            continue;
        }
        match dns.addresses(host).await {
            Err(err) => out.failed("MX", err),
            Ok(a) if a.is_empty() => {
                let publish = match same_name(host, &e.hostname) {
                    true => e.sending.iter().map(|ip| address_record(host, *ip, out.ttl)).collect(),
                    false => vec![format!("{h}. {} IN A <the address of {h}>", out.ttl, h = shown(host))],
                };
                out.push(
                    Level::Error,
                    "MX",
                    format!("MX host {} has no A or AAAA record: mail to {d} cannot be delivered", shown(host)),
                    publish,
                );
            }
            Ok(a) => out.ok("MX", format!("{d} MX {pref} {host} ({})", join(&a))),
        }
    }
}

fn address_record(host: &str, ip: IpAddr, ttl: u32) -> String {
    match ip {
        IpAddr::V4(_) => format!("{host}. {ttl} IN A {ip}"),
        IpAddr::V6(_) => format!("{host}. {ttl} IN AAAA {ip}"),
    }
}

fn join(a: &[IpAddr]) -> String {
    a.iter().map(IpAddr::to_string).collect::<Vec<_>>().join(", ")
}

/// The sending addresses: given, or those of the host name.
async fn sending(dns: &Dns, e: &Expect, out: &mut Out) -> Vec<IpAddr> {
    if !e.sending.is_empty() {
        return e.sending.iter().map(|ip| ip.to_canonical()).collect();
    }
    match dns.addresses(&e.hostname).await {
        Ok(a) if a.is_empty() => {
            out.push(
                Level::Error,
                "PTR",
                format!(
                    "{} (the HELO name) has no A or AAAA record, so its sending addresses are unknown; publish them, or name them with --sending-ip",
                    e.hostname
                ),
                vec![format!("{}. {} IN A <this server's address>", e.hostname, out.ttl)],
            );
            Vec::new()
        }
        Ok(a) => a,
        Err(err) => {
            out.failed("PTR", err);
            Vec::new()
        }
    }
}

async fn ptr(dns: &Dns, e: &Expect, ip: IpAddr, out: &mut Out) {
    let reverse = reverse_name(ip);
    let want = format!("{reverse}. {} IN PTR {}.", out.ttl, e.hostname);
    let names = match dns.ptr(ip).await {
        Ok(n) => n,
        Err(err) => return out.failed("PTR", err),
    };
    if names.is_empty() {
        return out.push(
            Level::Error,
            "PTR",
            format!("{ip} has no PTR record: receivers refuse or junk mail from addresses without reverse DNS; ask whoever delegated the address (the ISP or hosting provider) to publish"),
            vec![want],
        );
    }
    // Forward-confirmed: some name the PTR gives resolves back to the address.
    let mut confirmed = None;
    for name in &names {
        match dns.addresses(name).await {
            Ok(a) if a.iter().any(|x| x.to_canonical() == ip) => {
                confirmed = Some(name.clone());
                break;
            }
            Ok(_) => {}
            Err(err) => return out.failed("PTR", err),
        }
    }
    let Some(name) = confirmed else {
        let shown_names: Vec<String> = names.iter().map(|n| shown(n)).collect();
        let first = &names[0];
        return out.push(
            Level::Error,
            "PTR",
            format!(
                "{ip} has PTR {}, but that name does not resolve back to {ip} (no forward-confirmed reverse DNS)",
                shown_names.join(", ")
            ),
            vec![address_record(&shown(first), ip, out.ttl)],
        );
    };
    if !same_name(&name, &e.hostname) {
        return out.push(
            Level::Warn,
            "PTR",
            format!(
                "{ip} has PTR {}, confirmed, but the HELO name is {}: make them the same",
                shown(&name),
                e.hostname
            ),
            vec![want, address_record(&e.hostname, ip, out.ttl)],
        );
    }
    out.ok("PTR", format!("{ip} PTR {name}, which resolves back to {ip}"));
}

async fn spf(dns: &Dns, e: &Expect, sending: &[IpAddr], out: &mut Out) {
    let d = &e.domain;
    let records = match dns.txt(d).await {
        Ok(t) => t.into_iter().filter(|r| records::is_spf(r)).collect::<Vec<_>>(),
        Err(err) => return out.failed("SPF", err),
    };
    match records.as_slice() {
        [] => {
            return out.push(
                Level::Error,
                "SPF",
                format!("{d} has no SPF record: receivers cannot tell its mail from forgeries"),
                vec![out.txt(d, &spf_with(None, sending))],
            )
        }
        [_] => {}
        many => {
            // RFC 7208 §4.5: more than one is a permanent error.
            return out.push(
                Level::Error,
                "SPF",
                format!(
                    "{d} has {} SPF records; receivers treat that as an error (RFC 7208 §4.5): publish one",
                    many.len()
                ),
                vec![out.txt(d, &spf_with(Some(&many[0]), sending))],
            );
        }
    }
    let record = &records[0];
    let mut missing = Vec::new();
    for ip in sending {
        let sender = format!("postmaster@{d}");
        let result = dns.spf.verify_spf(SpfParameters::verify_mail_from(*ip, &e.hostname, &e.hostname, &sender)).await;
        match result.result() {
            SpfResult::Pass => out.ok("SPF", format!("{ip} passes the SPF record of {d}")),
            SpfResult::TempError => {
                out.failed("SPF", format!("evaluating the SPF record of {d} for {ip} hit a DNS failure"))
            }
            SpfResult::PermError => {
                out.push(
                    Level::Error,
                    "SPF",
                    format!("the SPF record of {d} is broken (permerror): \"{}\"", shown(record)),
                    vec![out.txt(d, &spf_with(None, sending))],
                );
                return;
            }
            other => {
                missing.push(*ip);
                out.push(
                    Level::Error,
                    "SPF",
                    format!("the SPF record of {d} does not cover {ip} (result {other:?}): \"{}\"", shown(record)),
                    Vec::new(),
                );
            }
        }
    }
    if !missing.is_empty() {
        let publish = out.txt(d, &spf_with(Some(record), &missing));
        if let Some(last) = out.findings.last_mut() {
            last.publish.push(publish);
        }
    }
    match records::spf_all(record) {
        Some('+') | Some('?') => out.push(
            Level::Warn,
            "SPF",
            format!(
                "the SPF record of {d} ends in \"+all\" or \"?all\": it authorizes (or says nothing about) everyone"
            ),
            vec![out.txt(d, &spf_with(Some(&record.replace("+all", "-all").replace("?all", "-all")), &[]))],
        ),
        _ => {}
    }
}

/// The HELO name's own SPF (RFC 7208 §2.3): what receivers check for mail
/// with an empty MAIL FROM, the bounces and DSNs this server sends.
async fn helo_spf(dns: &Dns, e: &Expect, sending: &[IpAddr], out: &mut Out) {
    let h = &e.hostname;
    if same_name(h, &e.domain) || sending.is_empty() {
        return;
    }
    let want = out.txt(h, "v=spf1 a -all");
    for ip in sending {
        let result = dns.spf.verify_spf(SpfParameters::verify_ehlo(*ip, h, h)).await;
        match result.result() {
            SpfResult::Pass => out.ok("SPF", format!("{ip} passes the SPF record of the HELO name {h}")),
            SpfResult::TempError => out.failed("SPF", format!("evaluating the SPF record of {h} for {ip} hit a DNS failure")),
            SpfResult::None => {
                return out.push(
                    Level::Warn,
                    "SPF",
                    format!("the HELO name {h} has no SPF record: bounces and DSNs (empty MAIL FROM) are judged by it"),
                    vec![want],
                )
            }
            other => out.push(
                Level::Warn,
                "SPF",
                format!("the SPF record of the HELO name {h} does not pass {ip} (result {other:?}): bounces and DSNs from it may be refused"),
                vec![want.clone()],
            ),
        }
    }
}

async fn dkim(dns: &Dns, e: &Expect, out: &mut Out) {
    let d = &e.domain;
    if e.dkim.is_empty() {
        return out.push(
            Level::Warn,
            "DKIM",
            format!("no [[outbound.dkim]] key signs mail from {d}: make one with `port25 dkim keygen --domain {d} --selector port25 --out KEYFILE`, publish its record and add it to the configuration"),
            Vec::new(),
        );
    }
    for DkimExpect { selector, record, keys: ours } in &e.dkim {
        let name = format!("{selector}._domainkey.{d}");
        let want = out.txt(&name, record);
        let published = match dns.txt(&name).await {
            Ok(t) => t,
            Err(err) => {
                out.failed("DKIM", err);
                continue;
            }
        };
        let keys: Vec<Option<String>> = published
            .iter()
            .map(|r| tags(r).and_then(|t| tag(&t, "p").map(|p| p.split_ascii_whitespace().collect())))
            .collect();
        if published.is_empty() {
            out.push(
                Level::Error,
                "DKIM",
                format!("no DKIM record at {name}: receivers cannot verify the signatures of the key for {d} selector {selector}"),
                vec![want],
            );
        } else if keys.iter().flatten().any(|k| ours.contains(k)) {
            out.ok("DKIM", format!("{name} publishes the configured key"));
        } else if keys.iter().any(|k| k.as_deref() == Some("")) {
            out.push(
                Level::Error,
                "DKIM",
                format!("the DKIM record at {name} is revoked (empty p=): signatures with the configured key fail"),
                vec![want],
            );
        } else if keys.iter().all(Option::is_none) {
            out.push(
                Level::Error,
                "DKIM",
                format!(
                    "the DKIM record at {name} cannot be read (not a tag list with p=): \"{}\"",
                    shown(&published[0])
                ),
                vec![want],
            );
        } else {
            out.push(
                Level::Error,
                "DKIM",
                format!("the DKIM record at {name} holds another key than the configured one: signatures fail; publish the configured key's record"),
                vec![want],
            );
        }
    }
}

async fn dmarc(dns: &Dns, e: &Expect, out: &mut Out) {
    let d = &e.domain;
    let name = format!("_dmarc.{d}");
    let suggested = out.txt(&name, &format!("v=DMARC1; p=quarantine; rua=mailto:postmaster@{d}"));
    let records: Vec<String> = match dns.txt(&name).await {
        Ok(t) => t.into_iter().filter(|r| r.to_ascii_lowercase().starts_with("v=dmarc1")).collect(),
        Err(err) => return out.failed("DMARC", err),
    };
    let record = match records.as_slice() {
        [] => {
            return out.push(
                Level::Error,
                "DMARC",
                format!("{d} has no DMARC record: large receivers (Gmail, Yahoo) require one from bulk senders, and forgeries of {d} go unreported"),
                vec![suggested],
            )
        }
        [one] => one,
        many => {
            return out.push(
                Level::Error,
                "DMARC",
                format!("{name} has {} DMARC records: receivers ignore them all (RFC 7489 §6.6.3)", many.len()),
                vec![suggested],
            )
        }
    };
    let Some(t) = tags(record).filter(|t| records::starts_with_version(t, "DMARC1")) else {
        return out.push(
            Level::Error,
            "DMARC",
            format!("the DMARC record of {d} cannot be read: \"{}\"", shown(record)),
            vec![suggested],
        );
    };
    match tag(&t, "p").map(str::to_ascii_lowercase).as_deref() {
        Some("reject") | Some("quarantine") => out.ok("DMARC", format!("{name}: \"{}\"", shown(record))),
        Some("none") => out.push(
            Level::Warn,
            "DMARC",
            format!("the DMARC policy of {d} is p=none: it reports but protects nothing; raise it once the reports (rua=) show only your own mail"),
            vec![suggested],
        ),
        _ => out.push(
            Level::Error,
            "DMARC",
            format!("the DMARC record of {d} has no valid p= (none, quarantine or reject): \"{}\"", shown(record)),
            vec![suggested],
        ),
    }
    if tag(&t, "rua").is_none() {
        out.push(
            Level::Warn,
            "DMARC",
            format!("the DMARC record of {d} has no rua=: nobody receives the aggregate reports"),
            Vec::new(),
        );
    }
}

async fn mta_sts(dns: &Dns, e: &Expect, out: &mut Out) {
    let d = &e.domain;
    let name = format!("_mta-sts.{d}");
    let policy_host = format!("mta-sts.{d}");
    let policy = format!(
        "and serve https://{policy_host}/.well-known/mta-sts.txt (a certificate valid for {policy_host}) with: version: STSv1 / mode: enforce / mx: {} / max_age: 604800",
        e.hostname
    );
    let suggested = out.txt(&name, "v=STSv1; id=1");
    let records: Vec<String> = match dns.txt(&name).await {
        Ok(t) => t.into_iter().filter(|r| r.starts_with("v=STSv1")).collect(),
        Err(err) => return out.failed("MTA-STS", err),
    };
    let record = match records.as_slice() {
        [] => {
            return out.push(
                Level::Warn,
                "MTA-STS",
                format!("{d} publishes no MTA-STS policy (RFC 8461): senders may deliver to it without verified TLS; publish the record {policy}"),
                vec![suggested, format!("{policy_host}. {} IN CNAME {}.", out.ttl, e.web_host)],
            )
        }
        [one] => one,
        many => {
            return out.push(
                Level::Error,
                "MTA-STS",
                format!("{name} has {} STSv1 records: senders ignore them all (RFC 8461 §3.1)", many.len()),
                vec![suggested],
            )
        }
    };
    let id_ok = tags(record).filter(|t| records::starts_with_version(t, "STSv1")).and_then(|t| {
        tag(&t, "id").map(|id| !id.is_empty() && id.len() <= 32 && id.chars().all(|c| c.is_ascii_alphanumeric()))
    });
    if id_ok != Some(true) {
        return out.push(
            Level::Error,
            "MTA-STS",
            format!(
                "the MTA-STS record of {d} is not \"v=STSv1; id=<1 to 32 letters or digits>\": \"{}\"",
                shown(record)
            ),
            vec![suggested],
        );
    }
    match dns.addresses(&policy_host).await {
        Err(err) => out.failed("MTA-STS", err),
        Ok(a) if a.is_empty() => out.push(
            Level::Error,
            "MTA-STS",
            format!("{name} announces a policy but {policy_host} has no address, so senders cannot fetch it; publish the name {policy}"),
            vec![format!("{policy_host}. {} IN CNAME {}.", out.ttl, e.web_host)],
        ),
        Ok(addrs) => match &e.sts {
            None => out.ok("MTA-STS", format!("{name}: \"{}\"; {policy_host} resolves (serve the policy there over HTTPS)", shown(record))),
            Some(fetcher) => sts_policy(fetcher, e, &addrs, &policy_host, out).await,
        },
    }
}

/// Fetches and reads the policy as a sending MTA would (RFC 8461 §3.3):
/// it must parse, and name this server among its MX patterns.
async fn sts_policy(
    fetcher: &port25_outbound::mta_sts::Fetcher,
    e: &Expect,
    addrs: &[IpAddr],
    policy_host: &str,
    out: &mut Out,
) {
    use port25_wire::mta_sts::Mode;
    let url = format!("https://{policy_host}{}", port25_wire::mta_sts::POLICY_PATH);
    let example = format!("version: STSv1 / mode: enforce / mx: {} / max_age: 604800", e.hostname);
    let policy = match fetcher.fetch(&e.domain, addrs).await {
        Ok(p) => p,
        Err(f) => {
            return out.push(
                Level::Error,
                "MTA-STS",
                format!(
                    "{url}: {} ({}): senders apply no policy; serve text/plain there with: {example}",
                    f.reason, f.result_type
                ),
                Vec::new(),
            )
        }
    };
    let summary = format!("mode {}, mx {}, max_age {}", policy.mode.as_str(), policy.mx.join(" "), policy.max_age);
    if policy.mode != Mode::None && !policy.allows(&e.hostname) {
        return out.push(
            Level::Error,
            "MTA-STS",
            format!("{url} ({summary}) does not name this server, {}: senders that enforce it will not deliver here; add \"mx: {}\"", e.hostname, e.hostname),
            Vec::new(),
        );
    }
    match policy.mode {
        Mode::Enforce => out.ok("MTA-STS", format!("{url}: {summary}")),
        Mode::Testing => out.push(
            Level::Warn,
            "MTA-STS",
            format!("{url}: {summary}: senders report TLS failures (TLS-RPT) but still deliver without verified TLS; switch to mode: enforce once the reports are clean"),
            Vec::new(),
        ),
        Mode::None => out.push(
            Level::Warn,
            "MTA-STS",
            format!("{url}: mode none withdraws the policy; serve: {example}"),
            Vec::new(),
        ),
    }
}

async fn tls_rpt(dns: &Dns, e: &Expect, out: &mut Out) {
    let d = &e.domain;
    let name = format!("_smtp._tls.{d}");
    let suggested = out.txt(&name, &format!("v=TLSRPTv1; rua=mailto:tlsrpt@{d}"));
    let records: Vec<String> = match dns.txt(&name).await {
        Ok(t) => t.into_iter().filter(|r| r.starts_with("v=TLSRPTv1")).collect(),
        Err(err) => return out.failed("TLS-RPT", err),
    };
    match records.as_slice() {
        [] => out.push(
            Level::Warn,
            "TLS-RPT",
            format!("{d} publishes no TLS-RPT record (RFC 8460): nobody hears about senders' TLS failures"),
            vec![suggested],
        ),
        [one] => {
            let rua = tags(one)
                .filter(|t| records::starts_with_version(t, "TLSRPTv1"))
                .and_then(|t| tag(&t, "rua").map(str::to_owned));
            match rua {
                Some(r) if r.split(',').all(|u| u.trim().starts_with("mailto:") || u.trim().starts_with("https:")) => {
                    out.ok("TLS-RPT", format!("{name}: \"{}\"", shown(one)))
                }
                _ => out.push(
                    Level::Error,
                    "TLS-RPT",
                    format!(
                        "the TLS-RPT record of {d} needs rua= with mailto: or https: addresses: \"{}\"",
                        shown(one)
                    ),
                    vec![suggested],
                ),
            }
        }
        many => out.push(
            Level::Error,
            "TLS-RPT",
            format!("{name} has {} TLSRPTv1 records: senders ignore them all (RFC 8460 §3)", many.len()),
            vec![suggested],
        ),
    }
}

async fn srv(dns: &Dns, e: &Expect, out: &mut Out) {
    let d = &e.domain;
    for (service, port, priority) in
        [("_submissions._tcp", e.submissions_port, 0), ("_submission._tcp", e.submission_port, 10)]
    {
        let name = format!("{service}.{d}");
        let want = format!("{name}. {} IN SRV {priority} 1 {port} {}.", out.ttl, e.submission_host);
        let records = match dns.srv(&name).await {
            Ok(r) => r,
            Err(err) => {
                out.failed("SRV", err);
                continue;
            }
        };
        if records.is_empty() {
            out.push(
                Level::Warn,
                "SRV",
                format!(
                    "no {name} record (RFC 6186): mail clients cannot find submission on port {port} by themselves"
                ),
                vec![want],
            );
            continue;
        }
        let right = records.iter().any(|(_, _, p, t)| *p == port && same_name(t, &e.submission_host));
        for (_, _, p, t) in &records {
            if *p == 25 {
                out.push(
                    Level::Error,
                    "SRV",
                    format!(
                        "{name} points clients at port 25, which is for transport only: clients must submit on {port}"
                    ),
                    vec![want.clone()],
                );
            } else if t.is_empty() || t == "." {
                out.push(
                    Level::Error,
                    "SRV",
                    format!("{name} says the service is not offered (target \".\")"),
                    vec![want.clone()],
                );
            }
        }
        if right {
            out.ok("SRV", format!("{name} -> {}:{port}", e.submission_host));
        } else {
            let have: Vec<String> = records.iter().map(|(pr, w, p, t)| format!("{pr} {w} {p} {}", shown(t))).collect();
            out.push(
                Level::Error,
                "SRV",
                format!(
                    "{name} is \"{}\", not {}:{port} where submission listens",
                    have.join("\", \""),
                    e.submission_host
                ),
                vec![want],
            );
        }
    }
}

async fn autoconfig(dns: &Dns, e: &Expect, out: &mut Out) {
    let d = &e.domain;
    for (label, what) in [("autoconfig", "Thunderbird"), ("autodiscover", "Outlook")] {
        let name = format!("{label}.{d}");
        match dns.addresses(&name).await {
            Err(err) => out.failed("autoconfig", err),
            Ok(a) if a.is_empty() => out.push(
                Level::Warn,
                "autoconfig",
                format!("{name} does not resolve: {what} cannot fetch its configuration from https://{name}/"),
                vec![format!("{name}. {} IN CNAME {}.", out.ttl, e.web_host)],
            ),
            Ok(a) => out.ok("autoconfig", format!("{name} ({})", join(&a))),
        }
    }
}

/// The findings as text: one line per finding, `publish:` lines under it,
/// then the counts.
pub fn render(domain: &str, findings: &[Finding]) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "DNS check of {domain}");
    for f in findings {
        let level = match f.level {
            Level::Ok => "ok   ",
            Level::Warn => "WARN ",
            Level::Error => "ERROR",
        };
        let _ = writeln!(s, "{level} {:<10} {}", f.topic, f.text);
        for p in &f.publish {
            let _ = writeln!(s, "      publish:   {p}");
        }
    }
    let count = |l: Level| findings.iter().filter(|f| f.level == l).count();
    let _ = writeln!(s, "{} errors, {} warnings, {} ok", count(Level::Error), count(Level::Warn), count(Level::Ok));
    s
}
