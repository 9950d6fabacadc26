//! Where a domain's mail may go, as the connection side needs it: every
//! address of every MX host in preference order (RFC 5321 §5.1), or the
//! smarthost's, each with the host name for SNI and reports. A lookup that
//! makes connecting pointless (null MX, no such domain, DNS failure) is a
//! verdict for every recipient at that domain instead. MX addresses the
//! target policy refuses (crate::targets: private ranges, our own
//! listeners) are dropped; a domain left with none is deferred with the
//! reason, so it bounces at expiry unless its DNS is fixed.

use crate::client::Verdict;
use crate::dns::{Dns, DnsFailure, Host, Route};
use crate::settings::Settings;
use port25_events as ev;
use port25_events::emit;
use std::net::SocketAddr;

/// One address to try.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Candidate {
    pub host: String,
    pub addr: SocketAddr,
    /// DANE (RFC 7672): this MX host's usable TLSA records, from secure
    /// answers; `None`: no DANE for it.
    pub dane: Option<std::sync::Arc<crate::dane::DaneHost>>,
}

/// The candidates for mail to `domain` (ignored in smarthost mode).
pub(crate) async fn lookup(settings: &Settings, dns: &Dns, domain: &str) -> Result<Vec<Candidate>, Verdict> {
    let (route, port) = match &settings.smarthost {
        Some(h) => {
            let route = match dns.addresses(&h.host).await {
                Ok(addrs) if !addrs.is_empty() => {
                    Ok(Route::Hosts(vec![Host { name: h.host.clone(), preference: 0, addrs }]))
                }
                Ok(_) => Err(DnsFailure { permanent: false, reason: format!("smarthost {} has no address", h.host) }),
                Err(e) => Err(e),
            };
            (route, h.port)
        }
        None => (dns.route(domain).await, settings.port),
    };
    match route {
        Ok(Route::Hosts(hosts)) => {
            let all = hosts.iter().flat_map(|h| {
                h.addrs.iter().map(|ip| Candidate {
                    host: h.name.clone(),
                    addr: SocketAddr::new(*ip, port),
                    dane: None,
                })
            });
            if settings.smarthost.is_some() {
                return Ok(all.collect());
            }
            permitted(settings, domain, all.collect())
        }
        Ok(Route::NullMx) => Err(Verdict::Failed {
            reply: format!("556 5.1.10 {domain} does not accept mail (null MX, RFC 7505)"),
            status: "5.1.10".into(),
        }),
        Err(f) if f.permanent => {
            Err(Verdict::Failed { reply: format!("550 5.1.2 {}", f.reason), status: "5.1.2".into() })
        }
        Err(f) => Err(Verdict::Deferred { reply: format!("451 4.4.3 {}", f.reason), status: "4.4.3".into() }),
    }
}

/// The MX candidates the target policy allows; each refused one is logged.
fn permitted(settings: &Settings, domain: &str, all: Vec<Candidate>) -> Result<Vec<Candidate>, Verdict> {
    let interfaces = crate::targets::interface_addresses();
    let mut refused = None;
    let mut ok = Vec::new();
    for c in all {
        match settings.targets.check(c.addr, &interfaces) {
            Ok(()) => ok.push(c),
            Err(r) => {
                emit!(warn, ev::OUTBOUND_TARGET_REFUSED, destination = %domain, host = %c.host, address = %c.addr, reason = %r.reason);
                refused = Some((c, r));
            }
        }
    }
    match refused {
        Some((c, r)) if ok.is_empty() => {
            let status = if r.looping { "4.4.6" } else { "4.4.4" };
            Err(Verdict::Deferred {
                reply: format!("451 {status} MX {} of {domain}: {}", c.host, r.reason),
                status: status.into(),
            })
        }
        _ => Ok(ok),
    }
}
