//! Where mail for a domain goes (RFC 5321 §5.1): MX records in preference
//! order (equal preferences shuffled), the domain's own A/AAAA records when
//! it has no MX, and RFC 7505's null MX ("MX 0 .") meaning "this domain
//! accepts no mail", which is a permanent failure without any connection.
//!
//! hickory-resolver talks to the configured name servers (default: those in
//! /etc/resolv.conf), so tests point it at a DNS server of their own.

use hickory_resolver::config::{ConnectionConfig, NameServerConfig, ResolverConfig, ResolverOpts};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::net::DnsError;
use hickory_resolver::net::NetError;
use hickory_resolver::proto::op::ResponseCode;
use hickory_resolver::proto::rr::{RData, RecordType};
use hickory_resolver::TokioResolver;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Host {
    pub name: String,
    pub preference: u16,
    pub addrs: Vec<IpAddr>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// Hosts to try in order.
    Hosts(Vec<Host>),
    /// RFC 7505: the domain accepts no mail.
    NullMx,
}

/// A lookup that did not give a route: permanent (the domain does not
/// exist or has no address) or temporary (DNS server failure, timeout).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsFailure {
    pub permanent: bool,
    pub reason: String,
}

/// A definite "there are none": NXDOMAIN, or NOERROR without records of
/// that type (NODATA). hickory reports other answers (SERVFAIL, REFUSED)
/// as "no records" too; those, like timeouts, are temporary failures.
fn no_such_records(e: &NetError) -> bool {
    match e {
        NetError::Dns(DnsError::NoRecordsFound(n)) => {
            matches!(n.response_code, ResponseCode::NXDomain | ResponseCode::NoError)
        }
        _ => false,
    }
}

#[derive(Clone)]
pub struct Dns {
    resolver: TokioResolver,
    /// DNSSEC-validated lookups for DANE (`[outbound] dane = "auto"`).
    pub dnssec: Option<crate::dnssec::Dnssec>,
}

/// Name servers from resolv.conf text ("nameserver 192.0.2.53" lines).
pub fn resolv_conf_servers(text: &str) -> Vec<SocketAddr> {
    text.lines()
        .filter_map(|l| l.trim().strip_prefix("nameserver"))
        .filter_map(|a| a.trim().split('%').next()?.parse::<IpAddr>().ok())
        .map(|ip| SocketAddr::new(ip, 53))
        .collect()
}

/// `servers` for hickory: UDP, then TCP for truncated answers.
pub(crate) fn resolver_config(servers: &[SocketAddr]) -> ResolverConfig {
    let mut name_servers = Vec::new();
    for s in servers {
        let mut udp = ConnectionConfig::udp();
        udp.port = s.port();
        let mut tcp = ConnectionConfig::tcp();
        tcp.port = s.port();
        name_servers.push(NameServerConfig::new(s.ip(), true, vec![udp, tcp]));
    }
    ResolverConfig::from_parts(None, vec![], name_servers)
}

impl Dns {
    /// A resolver asking `servers` (UDP, then TCP for truncated answers).
    pub fn new(servers: &[SocketAddr], timeout: Duration) -> Result<Dns, NetError> {
        let config = resolver_config(servers);
        let mut opts = ResolverOpts::default();
        opts.timeout = timeout;
        opts.attempts = 2;
        // Names are always absolute here: never append a search domain.
        opts.ndots = 0;
        let mut builder = TokioResolver::builder_with_config(config, TokioRuntimeProvider::default());
        *builder.options_mut() = opts;
        Ok(Dns { resolver: builder.build()?, dnssec: None })
    }

    fn fqdn(name: &str) -> String {
        if name.ends_with('.') {
            name.to_owned()
        } else {
            format!("{name}.")
        }
    }

    /// A and AAAA records of a host (IPv6 first); empty only when the DNS
    /// said so for both.
    ///
    /// Not `lookup_ip`: when both of its questions fail it returns the
    /// AAAA error alone, so "no AAAA record" would hide an A question that
    /// timed out or got SERVFAIL, and the mail would bounce as if the host
    /// had no address.
    pub async fn addresses(&self, host: &str) -> Result<Vec<IpAddr>, DnsFailure> {
        if let Ok(ip) = host.trim_start_matches('[').trim_end_matches(']').trim_start_matches("IPv6:").parse::<IpAddr>()
        {
            return Ok(vec![ip]);
        }
        let name = Self::fqdn(host);
        let (v6, v4) = tokio::join!(
            self.resolver.lookup(name.as_str(), RecordType::AAAA),
            self.resolver.lookup(name.as_str(), RecordType::A)
        );
        let mut addrs = Vec::new();
        let mut failed = None;
        for answer in [v6, v4] {
            match answer {
                Ok(l) => addrs.extend(l.answers().iter().filter_map(|r| match &r.data {
                    RData::A(a) => Some(IpAddr::V4(a.0)),
                    RData::AAAA(a) => Some(IpAddr::V6(a.0)),
                    _ => None,
                })),
                Err(e) if no_such_records(&e) => {}
                Err(e) => failed = Some(e),
            }
        }
        match failed {
            // What one question found is used, as lookup_ip does.
            Some(e) if addrs.is_empty() => {
                Err(DnsFailure { permanent: false, reason: format!("address lookup for {host} failed: {e}") })
            }
            _ => Ok(addrs),
        }
    }

    /// The TXT records at `name` (each one's strings joined); empty when
    /// the DNS says there are none (NXDOMAIN, NODATA).
    pub async fn txt(&self, name: &str) -> Result<Vec<String>, DnsFailure> {
        match self.resolver.lookup(Self::fqdn(name), RecordType::TXT).await {
            Ok(l) => Ok(l
                .answers()
                .iter()
                .filter_map(|r| match &r.data {
                    RData::TXT(t) => Some(String::from_utf8_lossy(&t.txt_data.concat()).into_owned()),
                    _ => None,
                })
                .collect()),
            Err(e) if no_such_records(&e) => Ok(Vec::new()),
            Err(e) => Err(DnsFailure { permanent: false, reason: format!("TXT lookup for {name} failed: {e}") }),
        }
    }

    /// The route for mail to `domain`.
    pub async fn route(&self, domain: &str) -> Result<Route, DnsFailure> {
        let mx = match self.resolver.mx_lookup(Self::fqdn(domain)).await {
            Ok(l) => l
                .answers()
                .iter()
                .filter_map(|r| match &r.data {
                    RData::MX(mx) => Some((mx.preference, mx.exchange.to_ascii())),
                    _ => None,
                })
                .collect::<Vec<_>>(),
            Err(e) if e.is_nx_domain() => {
                return Err(DnsFailure {
                    permanent: true,
                    reason: format!("domain {domain} does not exist (NXDOMAIN)"),
                });
            }
            Err(e) if no_such_records(&e) => Vec::new(),
            Err(e) => {
                return Err(DnsFailure { permanent: false, reason: format!("MX lookup for {domain} failed: {e}") })
            }
        };
        if mx.len() == 1 && mx[0].0 == 0 && (mx[0].1 == "." || mx[0].1.is_empty()) {
            return Ok(Route::NullMx);
        }
        let mut exchanges: Vec<(u16, String)> = mx.into_iter().filter(|(_, n)| n != "." && !n.is_empty()).collect();
        if exchanges.is_empty() {
            // No MX: the domain itself is the implicit MX (RFC 5321 §5.1).
            let addrs = self.addresses(domain).await?;
            if addrs.is_empty() {
                return Err(DnsFailure {
                    permanent: true,
                    reason: format!("domain {domain} has neither MX nor address records"),
                });
            }
            return Ok(Route::Hosts(vec![Host { name: domain.to_owned(), preference: 0, addrs }]));
        }
        // Equal preferences are shuffled to spread load (RFC 5321 §5.1).
        fastrand::shuffle(&mut exchanges);
        exchanges.sort_by_key(|(p, _)| *p);
        let mut hosts = Vec::new();
        let mut last_error = None;
        for (preference, name) in exchanges {
            let name = name.trim_end_matches('.').to_owned();
            match self.addresses(&name).await {
                Ok(addrs) if !addrs.is_empty() => hosts.push(Host { name, preference, addrs }),
                Ok(_) => {}
                Err(e) => last_error = Some(e),
            }
        }
        if hosts.is_empty() {
            return Err(last_error
                .unwrap_or(DnsFailure { permanent: false, reason: format!("no MX host of {domain} has an address") }));
        }
        Ok(Route::Hosts(hosts))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_resolv_conf() {
        let s =
            resolv_conf_servers("# x\nnameserver 127.0.0.53\nsearch a\nnameserver fe80::1%eth0\nnameserver bogus\n");
        assert_eq!(s, vec!["127.0.0.53:53".parse().unwrap(), "[fe80::1]:53".parse().unwrap()]);
    }
}
