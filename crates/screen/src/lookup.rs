//! The DNS questions of a screening, with hickory-resolver (the outbound
//! queue's resolver): one A question per distinct list zone and the
//! PTR + forward confirmation, all at once. Answers are cached by their
//! TTL, held within the configured bounds (hickory's cache).
//!
//! Every answer is untrusted: at most [`MAX_PTR`] PTR names are looked at,
//! each checked by one A or AAAA question; a name hickory cannot parse is
//! an error, never a panic.

use crate::dnsbl::{self, Answer};
use crate::verdict::Rdns;
use hickory_resolver::config::{ConnectionConfig, NameServerConfig, ResolverConfig, ResolverOpts};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::net::{DnsError, NetError};
use hickory_resolver::proto::op::ResponseCode;
use hickory_resolver::proto::rr::{RData, RecordType};
use hickory_resolver::TokioResolver;
use port25_config::Screen;
use std::net::{IpAddr, SocketAddr};

/// PTR names looked at (a PTR set can be large; real MTAs have one).
pub const MAX_PTR: usize = 4;

#[derive(Clone)]
pub struct Lookups {
    resolver: TokioResolver,
    /// Distinct zones, in configuration order.
    zones: Vec<String>,
}

/// Name servers from resolv.conf text ("nameserver 192.0.2.53" lines).
fn resolv_conf_servers(text: &str) -> Vec<SocketAddr> {
    text.lines()
        .filter_map(|l| l.trim().strip_prefix("nameserver"))
        .filter_map(|a| a.trim().split('%').next()?.parse::<IpAddr>().ok())
        .map(|ip| SocketAddr::new(ip, 53))
        .collect()
}

/// NXDOMAIN, or NOERROR without records of the type: a definite "none".
/// hickory reports SERVFAIL and REFUSED as "no records" too: those, like
/// timeouts, are failures.
fn none(e: &NetError) -> bool {
    match e {
        NetError::Dns(DnsError::NoRecordsFound(n)) => {
            matches!(n.response_code, ResponseCode::NXDomain | ResponseCode::NoError)
        }
        _ => false,
    }
}

impl Lookups {
    pub fn new(cfg: &Screen) -> Result<Lookups, String> {
        let servers = match cfg.dns_servers.is_empty() {
            false => cfg.dns_servers.clone(),
            true => {
                let text = std::fs::read_to_string("/etc/resolv.conf")
                    .map_err(|e| format!("cannot read /etc/resolv.conf: {e}"))?;
                let s = resolv_conf_servers(&text);
                if s.is_empty() {
                    return Err("/etc/resolv.conf names no nameserver; set [mx.screen] dns_servers".into());
                }
                s
            }
        };
        let mut name_servers = Vec::new();
        for s in &servers {
            let mut udp = ConnectionConfig::udp();
            udp.port = s.port();
            let mut tcp = ConnectionConfig::tcp();
            tcp.port = s.port();
            name_servers.push(NameServerConfig::new(s.ip(), true, vec![udp, tcp]));
        }
        let config = ResolverConfig::from_parts(None, vec![], name_servers);
        let mut opts = ResolverOpts::default();
        opts.timeout = cfg.dns_timeout;
        opts.attempts = 1;
        opts.ndots = 0;
        opts.cache_size = cfg.dns_cache_entries;
        opts.positive_min_ttl = Some(cfg.dns_cache_min_ttl);
        opts.negative_min_ttl = Some(cfg.dns_cache_min_ttl);
        opts.positive_max_ttl = Some(cfg.dns_cache_max_ttl);
        opts.negative_max_ttl = Some(cfg.dns_cache_max_ttl);
        // A busy MX asks a few questions per new client at once; past this
        // many in flight hickory answers "busy", which counts for nothing.
        opts.max_active_requests = 1024;
        let mut builder = TokioResolver::builder_with_config(config, TokioRuntimeProvider::default());
        *builder.options_mut() = opts;
        let resolver = builder.build().map_err(|e| format!("DNS resolver: {e}"))?;
        let mut zones: Vec<String> = Vec::new();
        for l in &cfg.lists {
            if !zones.contains(&l.zone) {
                zones.push(l.zone.clone());
            }
        }
        Ok(Lookups { resolver, zones })
    }

    pub fn zones(&self) -> &[String] {
        &self.zones
    }

    /// One zone's answer for `ip`.
    pub async fn dnsbl(&self, ip: IpAddr, zone: &str) -> Answer {
        let name = dnsbl::query_name(ip, zone);
        match self.resolver.lookup(name.as_str(), RecordType::A).await {
            Ok(l) => {
                let codes: Vec<_> = l
                    .answers()
                    .iter()
                    .filter_map(|r| match &r.data {
                        RData::A(a) => Some(a.0),
                        _ => None,
                    })
                    .collect();
                dnsbl::judge(&codes)
            }
            Err(e) if none(&e) => Answer::NotListed,
            Err(e) => Answer::Failed(e.to_string()),
        }
    }

    /// Every zone's answer, asked at once.
    pub async fn all_lists(&self, ip: IpAddr) -> Vec<(String, Answer)> {
        let answers = futures_join_all(self.zones.iter().map(|z| self.dnsbl(ip, z))).await;
        self.zones.iter().cloned().zip(answers).collect()
    }

    /// PTR names of `ip` and the first that resolves back to it.
    pub async fn rdns(&self, ip: IpAddr) -> Rdns {
        let ptr = match self.resolver.lookup(reverse_name(ip).as_str(), RecordType::PTR).await {
            Ok(l) => l,
            Err(e) if none(&e) => return Rdns::NoPtr,
            Err(e) => return Rdns::TempError(e.to_string()),
        };
        let names: Vec<String> = ptr
            .answers()
            .iter()
            .filter_map(|r| match &r.data {
                RData::PTR(p) => Some(p.0.to_ascii().trim_end_matches('.').to_ascii_lowercase()),
                _ => None,
            })
            .take(MAX_PTR)
            .collect();
        if names.is_empty() {
            return Rdns::NoPtr;
        }
        let checks = futures_join_all(names.iter().map(|n| self.resolves_to(n, ip))).await;
        let confirmed = names.iter().zip(checks).find(|(_, ok)| matches!(ok, Ok(true))).map(|(n, _)| n.clone());
        Rdns::Names { names, confirmed }
    }
}

impl Lookups {
    /// Does `name` have an A (AAAA for IPv6) record that is `ip`? `Err`
    /// when the DNS could not tell.
    pub async fn resolves_to(&self, name: &str, ip: IpAddr) -> Result<bool, String> {
        let rtype = if ip.is_ipv4() { RecordType::A } else { RecordType::AAAA };
        let fqdn = format!("{}.", name.trim_end_matches('.'));
        match self.resolver.lookup(fqdn.as_str(), rtype).await {
            Ok(l) => Ok(l.answers().iter().any(|r| match &r.data {
                RData::A(a) => IpAddr::V4(a.0) == ip,
                RData::AAAA(a) => IpAddr::V6(a.0) == ip,
                _ => false,
            })),
            Err(e) if none(&e) => Ok(false),
            Err(e) => Err(e.to_string()),
        }
    }
}

/// `4.3.2.1.in-addr.arpa.` or the nibbles under `ip6.arpa.`.
pub fn reverse_name(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(_) => dnsbl::query_name(ip, "in-addr.arpa"),
        IpAddr::V6(_) => dnsbl::query_name(ip, "ip6.arpa"),
    }
}

/// Awaits every future, concurrently (a handful: no runtime tasks needed).
async fn futures_join_all<F: std::future::Future>(futures: impl Iterator<Item = F>) -> Vec<F::Output> {
    let mut pinned: Vec<std::pin::Pin<Box<F>>> = futures.map(Box::pin).collect();
    let mut out: Vec<Option<F::Output>> = (0..pinned.len()).map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (i, f) in pinned.iter_mut().enumerate() {
            if out[i].is_none() {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => out[i] = Some(v),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    out.into_iter().map(|o| o.expect("every future finished")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reverse_names() {
        assert_eq!(reverse_name("192.0.2.7".parse().unwrap()), "7.2.0.192.in-addr.arpa.");
        assert!(reverse_name("2001:db8::1".parse().unwrap()).ends_with(".8.b.d.0.1.0.0.2.ip6.arpa."));
        assert_eq!(
            resolv_conf_servers("nameserver 127.0.0.53\nnameserver x\n"),
            vec!["127.0.0.53:53".parse().unwrap()]
        );
    }
}
