//! Where a domain's mail may go, as the connection side needs it: every
//! address of every MX host in preference order (RFC 5321 §5.1), or the
//! smarthost's, each with the host name for SNI and reports. A lookup that
//! makes connecting pointless (null MX, no such domain, DNS failure) is a
//! verdict for every recipient at that domain instead.

use crate::client::Verdict;
use crate::dns::{Dns, DnsFailure, Host, Route};
use crate::settings::Settings;
use std::net::SocketAddr;

/// One address to try.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Candidate {
    pub host: String,
    pub addr: SocketAddr,
}

/// The candidates for mail to `domain` (ignored in smarthost mode).
pub(crate) async fn lookup(settings: &Settings, dns: &Dns, domain: &str) -> Result<Vec<Candidate>, Verdict> {
    let (route, port) = match &settings.smarthost {
        Some(h) => {
            let route = match dns.addresses(&h.host).await {
                Ok(addrs) if !addrs.is_empty() => Ok(Route::Hosts(vec![Host { name: h.host.clone(), preference: 0, addrs }])),
                Ok(_) => Err(DnsFailure { permanent: false, reason: format!("smarthost {} has no address", h.host) }),
                Err(e) => Err(e),
            };
            (route, h.port)
        }
        None => (dns.route(domain).await, settings.port),
    };
    match route {
        Ok(Route::Hosts(hosts)) => {
            Ok(hosts.iter().flat_map(|h| h.addrs.iter().map(|ip| Candidate { host: h.name.clone(), addr: SocketAddr::new(*ip, port) })).collect())
        }
        Ok(Route::NullMx) => Err(Verdict::Failed { reply: format!("556 5.1.10 {domain} does not accept mail (null MX, RFC 7505)"), status: "5.1.10".into() }),
        Err(f) if f.permanent => Err(Verdict::Failed { reply: format!("550 5.1.2 {}", f.reason), status: "5.1.2".into() }),
        Err(f) => Err(Verdict::Deferred { reply: format!("451 4.4.3 {}", f.reason), status: "4.4.3".into() }),
    }
}
