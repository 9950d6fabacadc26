//! `egress plan`: from "these addresses still send on 25" to "this network
//! is ready to enforce, or here is what stops it".
//!
//! Input: the report rows of the flows seen while networks were monitored
//! ([`crate::report`], attributed or not), the providers file (each mail
//! provider's submission hosts, domains and autoconfig), and optionally the
//! providers' signed readiness (their share of users already on 587/465).
//!
//! Each subscriber seen on port 25 is classified with its evidence:
//! - **bot**: many distinct destinations within the window (MXes), or a
//!   high rate of attempts;
//! - **mail client**: few destinations, all of them submission hosts of a
//!   known provider: a mail program still set to port 25, which the block
//!   would break until it is moved to 587/465 (the notice tells how);
//! - **open proxy**: inbound connections on the ports open proxies are
//!   abused on (1080, 3128, 8080, 8000, 6588, 80) from many outside
//!   addresses, followed by port-25 flows: listed apart from the bots with
//!   the inbound sources, ports and timing, so the subscriber can be told
//!   which program to close;
//! - **unclassified**: few destinations that are no known provider's (a
//!   server on a residential line, or a provider missing from the file):
//!   someone must look.
//!
//! Per network the verdict is "ready to enforce" when no mail client and
//! no unclassified sender remains and every provider its mail clients used
//! is past the readiness threshold; otherwise the list of what blocks it.
//! Bots never block: stopping them is the point.

use crate::policy::{Mode, Policy};
use crate::prefix::{ip_to_u128, Prefix};
use crate::report::{rfc3339, Row};
use port25_config::ConfigError;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::Path;
use toml::Spanned;

/// A mail provider whose users may still be on port 25.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Provider {
    pub name: String,
    /// Addresses of its submission hosts (what a misconfigured client
    /// connects to on 25).
    #[serde(skip)]
    pub hosts: Vec<Prefix>,
    /// The host name clients should use on 587/465.
    pub submission: String,
    /// Mail domains it serves (matched against a readiness report's domains).
    pub domains: Vec<String>,
    /// Its autoconfig/autodiscover URL or help page, for the notices.
    pub autoconfig: String,
    pub line: usize,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProviders {
    #[serde(default, rename = "provider")]
    providers: Vec<Spanned<RawProvider>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProvider {
    name: Spanned<String>,
    hosts: Vec<Spanned<String>>,
    submission: Spanned<String>,
    #[serde(default)]
    domains: Vec<String>,
    #[serde(default)]
    autoconfig: String,
}

/// At most this many providers (the file is the operator's, but a plan is
/// run over it per flow): a bound on the per-destination scan.
pub const MAX_PROVIDERS: usize = 10_000;

/// Parses the providers file (TOML, `[[provider]]` tables).
pub fn parse_providers(text: &str, file: &Path) -> Result<Vec<Provider>, ConfigError> {
    let raw: RawProviders = toml::from_str(text).map_err(|e| {
        let offset = e.span().map_or(0, |s| s.start);
        ConfigError::at(file, text, offset, e.message().trim_end().to_owned(), "see dist/providers.toml for the keys")
    })?;
    let err = |offset: usize, msg: String, hint: &str| ConfigError::at(file, text, offset, msg, hint);
    if raw.providers.len() > MAX_PROVIDERS {
        return Err(err(
            0,
            format!("{} providers; at most {MAX_PROVIDERS}", raw.providers.len()),
            "split the file or merge providers",
        ));
    }
    let mut out: Vec<Provider> = Vec::new();
    for p in &raw.providers {
        let at = p.span().start;
        let p = p.get_ref();
        let name = p.name.get_ref().clone();
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)) {
            return Err(err(
                p.name.span().start,
                format!("provider name {name:?} may hold only letters, digits, - _ ."),
                "names appear in reports and notices",
            ));
        }
        if let Some(prev) = out.iter().find(|o| o.name == name) {
            return Err(err(
                p.name.span().start,
                format!("provider {name:?} is already defined on line {}", prev.line),
                "give every provider its own name",
            ));
        }
        if p.hosts.is_empty() {
            return Err(err(
                p.name.span().start,
                format!("provider {name:?} lists no hosts"),
                "list the addresses of its submission hosts, e.g. hosts = [\"192.0.2.10\"]",
            ));
        }
        let hosts = p
            .hosts
            .iter()
            .map(|h| {
                h.get_ref().parse::<Prefix>().map_err(|e| {
                    err(h.span().start, e.0, "write an address or prefix such as \"192.0.2.10\" or \"2001:db8::/64\"")
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let submission = p.submission.get_ref().clone();
        if submission.is_empty() || !submission.chars().all(|c| c.is_ascii_alphanumeric() || "-.".contains(c)) {
            return Err(err(
                p.submission.span().start,
                format!("submission {submission:?} is not a host name"),
                "the host name clients use on 587/465, e.g. \"smtp.example.net\"",
            ));
        }
        out.push(Provider {
            name,
            hosts,
            submission,
            domains: p.domains.iter().map(|d| d.to_ascii_lowercase()).collect(),
            autoconfig: p.autoconfig.clone(),
            line: port25_config::line_col(text, at).0,
        });
    }
    Ok(out)
}

/// The provider whose submission hosts hold `ip`, if any.
pub fn provider_of(providers: &[Provider], ip: IpAddr) -> Option<&Provider> {
    let (family, v) = ip_to_u128(ip);
    providers.iter().find(|p| p.hosts.iter().any(|h| h.contains(family, v)))
}

#[derive(Debug, Clone, Copy)]
pub struct Thresholds {
    /// A bot: at least this many distinct destinations in one window (the report's threshold).
    pub bot_destinations: usize,
    /// A bot: at least this many attempts within one minute.
    pub bot_rate_per_minute: usize,
    /// A mail client talks to at most this many destinations.
    pub client_destinations: usize,
    /// The share (percent) of a provider's users that must be on 587/465.
    pub readiness_percent: f64,
    /// An open proxy: inbound proxy-port connections from at least this
    /// many outside addresses, followed by port-25 flows.
    pub proxy_sources: usize,
}

impl Default for Thresholds {
    fn default() -> Thresholds {
        Thresholds {
            bot_destinations: 10,
            bot_rate_per_minute: 30,
            client_destinations: 3,
            readiness_percent: 90.0,
            proxy_sources: 5,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// Receives connections on proxy ports from many outside addresses,
    /// then sends on 25: a program relaying for others.
    OpenProxy,
    Bot,
    MailClient,
    Unclassified,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::OpenProxy => "open-proxy",
            Kind::Bot => "bot",
            Kind::MailClient => "mail-client",
            Kind::Unclassified => "unclassified",
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Subscriber {
    /// The address, or the IPv6 prefix, of the row.
    pub address: crate::sender::Sender,
    /// The attributed subscriber name, when attribution was given and matched.
    pub subscriber: Option<String>,
    pub kind: Kind,
    /// The provider whose submission hosts a mail client used.
    pub provider: Option<String>,
    pub evidence: String,
    pub flows: u64,
    pub distinct_destinations: usize,
    pub peak_destinations_in_window: usize,
    pub peak_flows_per_minute: usize,
    pub first_seen: String,
    pub last_seen: String,
}

/// A provider's readiness, from its signed migration report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Readiness {
    pub provider: String,
    /// Lowest share over the provider's domains in the report.
    pub share: f64,
    pub met: bool,
    /// Who signed it and when (from the verified envelope).
    pub signed_by: String,
    pub signed_at: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct NetworkPlan {
    pub network: String,
    pub class: String,
    pub mode_now: String,
    pub enforce_from: Option<String>,
    pub subscribers: Vec<Subscriber>,
    pub bots: usize,
    pub open_proxies: usize,
    pub mail_clients: usize,
    pub unclassified: usize,
    /// "ready to enforce", "enforcing", or "not ready".
    pub verdict: String,
    /// What stops it (empty when ready).
    pub blockers: Vec<String>,
    /// Remarks that do not stop it.
    pub notes: Vec<String>,
}

/// Classifies one report row.
pub fn classify(row: &Row, providers: &[Provider], t: &Thresholds) -> Subscriber {
    let known: Vec<(IpAddr, u64, Option<&Provider>)> =
        row.destinations.iter().map(|&(ip, n)| (ip, n, provider_of(providers, ip))).collect();
    // Past the per-row cap only the first destinations are listed: the
    // rest are unknown, so not "all known" (someone must look).
    let all_listed = row.destinations.len() == row.distinct_destinations;
    let all_known = all_listed && !known.is_empty() && known.iter().all(|k| k.2.is_some());
    let top: Vec<String> = known
        .iter()
        .take(5)
        .map(|(ip, n, p)| match p {
            Some(p) => format!("{ip} x{n} ({} submission host)", p.name),
            None => format!("{ip} x{n}"),
        })
        .collect();
    let more = if row.distinct_destinations > 5 {
        format!(
            " and {}{} more",
            if row.estimated.contains(&"distinct_destinations") { "about " } else { "" },
            row.distinct_destinations - 5
        )
    } else {
        String::new()
    };
    let dests = format!("{}{more}", top.join(", "));
    let rate = row.peak_flows_per_minute;
    let proxy = row.inbound.as_ref().filter(|i| i.sources >= t.proxy_sources && i.smtp_after > 0);
    let (kind, provider, evidence) = if let Some(i) = proxy {
        let ports: Vec<String> = i.ports.iter().map(|(p, n)| format!("{p} x{n}")).collect();
        let first_after = i.smtp_first_after_ms.unwrap_or(i.first_ms);
        (
            Kind::OpenProxy,
            None,
            format!(
                "inbound connections on proxy ports ({}) from {}{} outside addresses, {} to {}; then {} port-25 flows, the first {} s after the first inbound, to {} destinations: {dests}: a program on this connection relays for others (an open proxy); close it",
                ports.join(", "),
                if i.sources_estimated { "~" } else { "" },
                i.sources,
                rfc3339(i.first_ms),
                rfc3339(i.last_ms),
                i.smtp_after,
                first_after.saturating_sub(i.first_ms) / 1000,
                row.distinct_destinations
            ),
        )
    } else if row.peak_destinations_in_window >= t.bot_destinations || rate >= t.bot_rate_per_minute {
        let why = if row.peak_destinations_in_window >= t.bot_destinations {
            format!(
                "{} distinct destinations within one window (threshold {})",
                row.peak_destinations_in_window, t.bot_destinations
            )
        } else {
            format!("{rate} attempts within one minute (threshold {})", t.bot_rate_per_minute)
        };
        (Kind::Bot, None, format!("{why}; {} flows to {} destinations: {dests}", row.flows, row.distinct_destinations))
    } else if all_known && row.distinct_destinations <= t.client_destinations {
        // The provider used most.
        let p = known.iter().max_by_key(|k| k.1).and_then(|k| k.2).expect("all known");
        (
            Kind::MailClient,
            Some(p.name.clone()),
            format!(
                "{} flows to {} destination(s), all submission hosts of known providers: {dests}; peak {rate}/min: a mail client still set to port 25",
                row.flows, row.distinct_destinations
            ),
        )
    } else {
        let why = if known.iter().all(|k| k.2.is_none()) {
            "none of them a known provider's submission host"
        } else {
            "not all of them known providers' submission hosts"
        };
        (
            Kind::Unclassified,
            None,
            format!(
                "{} flows to {} destination(s), {why}: {dests}; peak {rate}/min",
                row.flows, row.distinct_destinations
            ),
        )
    };
    Subscriber {
        address: row.subscriber,
        subscriber: row.attribution.session().map(|a| a.subscriber.clone()),
        kind,
        provider,
        evidence,
        flows: row.flows,
        distinct_destinations: row.distinct_destinations,
        peak_destinations_in_window: row.peak_destinations_in_window,
        peak_flows_per_minute: rate,
        first_seen: row.first_seen.clone(),
        last_seen: row.last_seen.clone(),
    }
}

/// The plan for every blocked network of the policy, in policy order.
/// `readiness`: the verified reports by provider name (absent: unknown).
pub fn plan(
    policy: &Policy,
    rows: &[Row],
    providers: &[Provider],
    readiness: &BTreeMap<String, Readiness>,
    t: &Thresholds,
    at_ms: u64,
) -> Vec<NetworkPlan> {
    let mut out = Vec::new();
    for n in policy.networks.iter().filter(|n| n.block) {
        let mut subs: Vec<Subscriber> =
            rows.iter().filter(|r| r.network == n.name).map(|r| classify(r, providers, t)).collect();
        subs.sort_by_key(|a| (a.kind as u8, std::cmp::Reverse(a.flows), a.address));
        let count = |k: Kind| subs.iter().filter(|s| s.kind == k).count();
        let (bots, clients, unclassified, proxies) =
            (count(Kind::Bot), count(Kind::MailClient), count(Kind::Unclassified), count(Kind::OpenProxy));
        let mode_now = n.mode_at(at_ms);
        let mut blockers = Vec::new();
        let mut notes = Vec::new();
        if clients > 0 {
            let mut per: BTreeMap<&str, usize> = BTreeMap::new();
            for s in subs.iter().filter(|s| s.kind == Kind::MailClient) {
                *per.entry(s.provider.as_deref().unwrap_or("?")).or_default() += 1;
            }
            let list: Vec<String> = per.iter().map(|(p, c)| format!("{p}: {c}")).collect();
            blockers.push(format!(
                "{clients} mail client(s) still on port 25 ({}): send them the notice (port25 egress notify)",
                list.join(", ")
            ));
        }
        if unclassified > 0 {
            blockers.push(format!("{unclassified} sender(s) on port 25 to hosts of no known provider: review them (a server on an end-user line, or a provider missing from the providers file)"));
        }
        // Readiness of the providers this network's mail clients use; with
        // readiness reports given, every provider seen must have one.
        let used: std::collections::BTreeSet<&str> = subs.iter().filter_map(|s| s.provider.as_deref()).collect();
        if !readiness.is_empty() || !used.is_empty() {
            for p in &used {
                match readiness.get(*p) {
                    Some(r) if r.met => notes.push(format!(
                        "provider {p}: {:.1}% of users on 587/465 (signed by {} at {})",
                        r.share, r.signed_by, r.signed_at
                    )),
                    Some(r) => blockers.push(format!(
                        "provider {p}: only {:.1}% of its users on 587/465, below {:.0}% (signed by {} at {})",
                        r.share, t.readiness_percent, r.signed_by, r.signed_at
                    )),
                    None if !readiness.is_empty() => {
                        blockers.push(format!("provider {p}: no signed readiness report given (--readiness)"))
                    }
                    None => {}
                }
            }
        }
        if bots > 0 {
            notes.push(format!("{bots} bot(s) on port 25: enforcing stops them"));
        }
        if proxies > 0 {
            notes
                .push(format!("{proxies} open prox(ies) relaying to port 25: enforcing stops the mail, the subscriber must close the program (egress notify)"));
        }
        if subs.is_empty() {
            notes.push("no port-25 attempts seen in the flows given".into());
        }
        let verdict = match mode_now {
            Mode::Enforce => "enforcing",
            Mode::Monitor if blockers.is_empty() => "ready to enforce",
            Mode::Monitor => "not ready",
        };
        out.push(NetworkPlan {
            network: n.name.clone(),
            class: n.class.as_str().to_owned(),
            mode_now: mode_now.as_str().to_owned(),
            enforce_from: n.enforce_from_ms.map(rfc3339),
            subscribers: subs,
            bots,
            open_proxies: proxies,
            mail_clients: clients,
            unclassified,
            verdict: verdict.to_owned(),
            blockers,
            notes,
        });
    }
    out
}

/// The plan as text: per network its verdict, blockers and subscribers.
pub fn text(plans: &[NetworkPlan]) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    for p in plans {
        let from = p.enforce_from.as_deref().map_or_else(String::new, |d| format!(", enforce from {d}"));
        let _ =
            writeln!(s, "network {} ({}): mode {}{from}: {}", p.network, p.class, p.mode_now, p.verdict.to_uppercase());
        let _ = writeln!(
            s,
            "  seen on 25: {} open prox(ies), {} bot(s), {} mail client(s), {} unclassified",
            p.open_proxies, p.bots, p.mail_clients, p.unclassified
        );
        for b in &p.blockers {
            let _ = writeln!(s, "  blocks: {b}");
        }
        for n in &p.notes {
            let _ = writeln!(s, "  note:   {n}");
        }
        for x in &p.subscribers {
            let who = x.subscriber.as_deref().map_or_else(String::new, |w| format!(" ({w})"));
            let prov = x.provider.as_deref().map_or_else(String::new, |w| format!(" of {w}"));
            let _ = writeln!(s, "  {:<12} {}{who}{prov}: {}", x.kind.as_str(), x.address, x.evidence);
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    const PROVIDERS: &str = "[[provider]]\nname = \"example-mail\"\nhosts = [\"100.64.200.1\", \"2001:db8:ffff:25::/64\"]\nsubmission = \"smtp.example-mail.test\"\ndomains = [\"example-mail.test\"]\nautoconfig = \"https://autoconfig.example-mail.test/mail/config-v1.1.xml\"\n";

    #[test]
    fn the_documented_providers_file_parses() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../dist/providers.toml");
        let p = parse_providers(&std::fs::read_to_string(&path).unwrap(), &path).unwrap();
        assert_eq!(p[0].submission, "smtp.example-mail.test");
    }

    #[test]
    fn providers_file_errors_name_the_line() {
        let p = parse_providers(PROVIDERS, Path::new("providers.toml")).unwrap();
        assert_eq!(p[0].name, "example-mail");
        assert_eq!(
            provider_of(&p, "2001:db8:ffff:25::9".parse().unwrap()).unwrap().submission,
            "smtp.example-mail.test"
        );
        assert!(provider_of(&p, "100.64.200.2".parse().unwrap()).is_none());
        let e = parse_providers(
            "[[provider]]\nname = \"x\"\nhosts = [\"100.64.1.1/8\"]\nsubmission = \"s\"\n",
            Path::new("p.toml"),
        )
        .unwrap_err()
        .to_string();
        assert!(e.starts_with("p.toml:3:10:"), "{e}");
        let e = parse_providers("[[provider]]\nname = \"x\"\nhosts = []\nsubmission = \"s\"\n", Path::new("p.toml"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("lists no hosts"), "{e}");
        let e = parse_providers(&format!("{PROVIDERS}{PROVIDERS}"), Path::new("p.toml")).unwrap_err().to_string();
        assert!(e.contains("already defined on line 1"), "{e}");
    }

    /// An IPv6 open proxy: the probes reach any address of its /64 and
    /// come from more sources than are counted exactly, so the evidence
    /// names the prefix and says "about".
    #[test]
    fn open_proxy_evidence_names_the_prefix_and_an_estimated_source_count() {
        use crate::flow::Flow;
        use crate::report::{Analyzer, Options};
        let policy = crate::policy::parse(
            "[[network]]\nname = \"res\"\nclass = \"residential\"\nprefixes = [\"2001:db8:100::/40\"]\n",
            Path::new("p.toml"),
        )
        .unwrap();
        let table = crate::table::Table::new(&policy);
        let mut a = Analyzer::new(&policy, &table, Options::default());
        let f = Flow::syn;
        let at = |n: u32, host: u16| IpAddr::from([0x2001, 0xdb8, 0x100, 0x1, 0, 0, n as u16, host]);
        let outside = |n: u32| IpAddr::from([0x3fff, 0, 0, 0, 0, 0, (n >> 16) as u16, n as u16]);
        for i in 0..300u32 {
            a.add(&f(outside(i), at(i, 1), 1080, 1_000 + u64::from(i)));
        }
        for i in 0..20u32 {
            a.add(&f(at(i, 2), outside(100_000 + i), 25, 10_000 + u64::from(i)));
        }
        let rows = a.rows();
        assert_eq!(rows.len(), 1);
        let s = classify(&rows[0], &[], &Thresholds::default());
        assert_eq!((s.kind, s.address.to_string().as_str()), (Kind::OpenProxy, "2001:db8:100:1::/64"));
        let sources = s.evidence.split(" from ~").nth(1).and_then(|r| r.split(' ').next()).map(|n| n.parse::<u32>());
        let n = sources.expect("an estimated count").unwrap();
        assert!((200..=400).contains(&n), "{}", s.evidence);
        assert!(s.evidence.contains("(1080 x300)") && s.evidence.contains("then 20 port-25 flows"), "{}", s.evidence);
    }
}
