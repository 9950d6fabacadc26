//! The `[mx.screen]` section: screening before the banner on the port-25
//! listeners (crates/screen, docs/screen.md). Off by default: it needs a
//! resolver that the lists answer (public DNSBLs refuse queries relayed by
//! big public resolvers) and it makes every unknown client wait
//! `greet_wait` before the banner.

use crate::error::ConfigError;
use serde::Deserialize;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;
use toml::Spanned;

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawScreen {
    pub(crate) enabled: Option<Spanned<bool>>,
    greet_wait_ms: Option<Spanned<u64>>,
    dns_servers: Option<Vec<Spanned<String>>>,
    dns_timeout_ms: Option<Spanned<u64>>,
    dns_cache_min_ttl_secs: Option<u64>,
    dns_cache_max_ttl_secs: Option<u64>,
    dns_cache_entries: Option<u64>,
    threshold: Option<i32>,
    allowlist_threshold: Option<Spanned<i32>>,
    rdns_no_ptr: Option<i32>,
    rdns_unconfirmed: Option<i32>,
    rdns_address_in_name: Option<i32>,
    rdns_dynamic_token: Option<i32>,
    score_action: Option<ScreenAction>,
    pregreet_action: Option<ScreenAction>,
    end_user_policy: Option<String>,
    end_user_action: Option<ScreenAction>,
    rate_window_secs: Option<Spanned<u64>>,
    rate_per_address: Option<Spanned<u32>>,
    rate_per_64: Option<Spanned<u32>>,
    rate_action: Option<ScreenAction>,
    pass_ttl_secs: Option<u64>,
    allowlist_entries: Option<Spanned<usize>>,
    #[serde(default)]
    dnsbl: Vec<Spanned<RawList>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawList {
    zone: Spanned<String>,
    #[serde(default)]
    codes: Vec<Spanned<String>>,
    weight: Option<i32>,
}

/// What a check that fires does.
#[derive(Deserialize, Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum ScreenAction {
    /// Monitor: counted and logged, the client goes on (and is not
    /// allowlisted, so it keeps being measured).
    Ignore,
    /// The client goes on; its messages get an `X-Port25-Screen` header.
    Tag,
    /// 421 4.7.1 and close: a real MTA retries later.
    Tempfail,
    /// 554 5.7.1 with the reason, and close.
    Reject,
}

impl ScreenAction {
    pub fn as_str(self) -> &'static str {
        match self {
            ScreenAction::Ignore => "ignore",
            ScreenAction::Tag => "tag",
            ScreenAction::Tempfail => "tempfail",
            ScreenAction::Reject => "reject",
        }
    }
}

/// One `[[mx.screen.dnsbl]]` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScreenList {
    pub zone: String,
    /// Inclusive ranges of answer codes this entry counts; empty: every
    /// listing code (RFC 5782).
    pub codes: Vec<(Ipv4Addr, Ipv4Addr)>,
    /// Negative for an allowlist (DNSWL).
    pub weight: i32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Screen {
    pub enabled: bool,
    /// How long an unknown client waits for the banner after the `220-`
    /// teaser; a client that talks in that time is a pregreeter.
    pub greet_wait: Duration,
    /// Resolvers for the lists and reverse DNS; empty: /etc/resolv.conf.
    pub dns_servers: Vec<SocketAddr>,
    pub dns_timeout: Duration,
    pub dns_cache_min_ttl: Duration,
    pub dns_cache_max_ttl: Duration,
    pub dns_cache_entries: u64,
    pub lists: Vec<ScreenList>,
    /// A score at or above it triggers `score_action`.
    pub threshold: i32,
    /// A score at or below it (DNSWL) allowlists at once.
    pub allowlist_threshold: i32,
    pub rdns_no_ptr: i32,
    pub rdns_unconfirmed: i32,
    pub rdns_address_in_name: i32,
    pub rdns_dynamic_token: i32,
    pub score_action: ScreenAction,
    pub pregreet_action: ScreenAction,
    /// The operator's egress policy (port25 egress): its blocked end-user
    /// networks may not deliver on port 25.
    pub end_user_policy: Option<PathBuf>,
    pub end_user_action: ScreenAction,
    pub rate_window: Duration,
    /// New connections per window from one address (0: no limit).
    pub rate_per_address: u32,
    /// New connections per window from one IPv6 /64 (0: no limit).
    pub rate_per_64: u32,
    pub rate_action: ScreenAction,
    /// A client that passed is not screened again for this long.
    pub pass_ttl: Duration,
    pub allowlist_entries: usize,
}

/// Parses a DNSBL answer-code filter: "127.0.0.2", "127.0.0.10-11" (last
/// octet), "127.0.0.10-127.0.0.11", "127.0.5.0/24"; inside 127.0.0.0/8.
pub fn parse_code_filter(s: &str) -> Result<(Ipv4Addr, Ipv4Addr), String> {
    let s = s.trim();
    let (first, last) = if let Some((addr, len)) = s.split_once('/') {
        let addr: Ipv4Addr = addr.parse().map_err(|_| format!("{s:?}: {addr:?} is not an IPv4 address"))?;
        let len: u8 =
            len.parse().ok().filter(|l| *l <= 32).ok_or_else(|| format!("{s:?}: the prefix length must be 0-32"))?;
        let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
        let first = u32::from(addr) & mask;
        (Ipv4Addr::from(first), Ipv4Addr::from(first | !mask))
    } else if let Some((a, b)) = s.split_once('-') {
        let first: Ipv4Addr = a.parse().map_err(|_| format!("{s:?}: {a:?} is not an IPv4 address"))?;
        let last = match b.parse::<Ipv4Addr>() {
            Ok(l) => l,
            Err(_) => {
                let octet: u8 =
                    b.parse().map_err(|_| format!("{s:?}: {b:?} is neither an address nor a last octet"))?;
                let o = first.octets();
                Ipv4Addr::new(o[0], o[1], o[2], octet)
            }
        };
        (first, last)
    } else {
        let a: Ipv4Addr = s.parse().map_err(|_| format!("{s:?} is not an IPv4 address, a range or a prefix"))?;
        (a, a)
    };
    if first > last {
        return Err(format!("{s:?}: the range runs backwards"));
    }
    if first.octets()[0] != 127 || last.octets()[0] != 127 {
        return Err(format!("{s:?}: listing codes are in 127.0.0.0/8 (RFC 5782 section 2.3)"));
    }
    Ok((first, last))
}

fn valid_zone(zone: &str) -> bool {
    let zone = zone.strip_suffix('.').unwrap_or(zone);
    !zone.is_empty()
        && zone.len() <= 253
        && zone.split('.').all(|l| {
            !l.is_empty() && l.len() <= 63 && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

pub(crate) fn resolve(raw: RawScreen, text: &str, file: &Path, base: &Path) -> Result<Screen, ConfigError> {
    let err = |offset: usize, msg: String, hint: &str| ConfigError::at(file, text, offset, msg, hint);
    let greet_wait = match raw.greet_wait_ms {
        Some(w) if *w.get_ref() > 60_000 => {
            return Err(err(
                w.span().start,
                format!("greet_wait_ms {} is over a minute", w.get_ref()),
                "postscreen waits 6000 ms; clients give up after a few minutes",
            ))
        }
        Some(w) => Duration::from_millis(w.into_inner()),
        None => Duration::from_millis(6000),
    };
    let dns_timeout = match raw.dns_timeout_ms {
        Some(t) if *t.get_ref() == 0 => {
            return Err(err(
                t.span().start,
                "dns_timeout_ms is 0".into(),
                "give the time one DNS question may take, e.g. 2000",
            ))
        }
        Some(t) => Duration::from_millis(t.into_inner()),
        None => Duration::from_millis(2000),
    };
    let mut dns_servers = Vec::new();
    for s in raw.dns_servers.unwrap_or_default() {
        let parsed = s
            .get_ref()
            .parse::<SocketAddr>()
            .or_else(|_| s.get_ref().parse::<std::net::IpAddr>().map(|ip| SocketAddr::new(ip, 53)));
        match parsed {
            Ok(a) => dns_servers.push(a),
            Err(_) => {
                return Err(err(
                    s.span().start,
                    format!("dns server {:?} is not an address", s.get_ref()),
                    "write \"192.0.2.53\" or \"192.0.2.53:5353\"",
                ))
            }
        }
    }
    let mut lists = Vec::new();
    for l in raw.dnsbl {
        let l = l.into_inner();
        if !valid_zone(l.zone.get_ref()) {
            return Err(err(
                l.zone.span().start,
                format!("DNSBL zone {:?} is not a DNS name", l.zone.get_ref()),
                "write the list's zone, e.g. \"zen.spamhaus.org\"",
            ));
        }
        let mut codes = Vec::new();
        for c in l.codes {
            match parse_code_filter(c.get_ref()) {
                Ok(r) => codes.push(r),
                Err(e) => {
                    return Err(err(
                        c.span().start,
                        e,
                        "write a code (\"127.0.0.2\"), a range (\"127.0.0.10-11\") or a prefix (\"127.0.5.0/24\")",
                    ))
                }
            }
        }
        lists.push(ScreenList {
            zone: l.zone.into_inner().trim_end_matches('.').to_ascii_lowercase(),
            codes,
            weight: l.weight.unwrap_or(3),
        });
    }
    let threshold = raw.threshold.unwrap_or(3);
    let allowlist_at = raw.allowlist_threshold.as_ref().map_or(0, |a| a.span().start);
    let allowlist_threshold = raw.allowlist_threshold.map_or(-1, |a| a.into_inner());
    if allowlist_threshold >= threshold {
        return Err(err(
            allowlist_at,
            format!("allowlist_threshold {allowlist_threshold} is not below threshold {threshold}"),
            "a score cannot both allowlist and refuse: keep allowlist_threshold below threshold",
        ));
    }
    let rate_window = match raw.rate_window_secs {
        Some(w) if *w.get_ref() == 0 => {
            return Err(err(
                w.span().start,
                "rate_window_secs is 0".into(),
                "give the window connections are counted in, e.g. 60",
            ))
        }
        Some(w) => Duration::from_secs(w.into_inner()),
        None => Duration::from_secs(60),
    };
    let allowlist_entries = match raw.allowlist_entries {
        Some(n) if *n.get_ref() == 0 => {
            return Err(err(
                n.span().start,
                "allowlist_entries is 0".into(),
                "give how many passed clients are remembered, e.g. 100000",
            ))
        }
        Some(n) => n.into_inner(),
        None => 100_000,
    };
    Ok(Screen {
        enabled: raw.enabled.is_some_and(|e| e.into_inner()),
        greet_wait,
        dns_servers,
        dns_timeout,
        dns_cache_min_ttl: Duration::from_secs(raw.dns_cache_min_ttl_secs.unwrap_or(60)),
        dns_cache_max_ttl: Duration::from_secs(
            raw.dns_cache_max_ttl_secs.unwrap_or(3600).max(raw.dns_cache_min_ttl_secs.unwrap_or(60)),
        ),
        dns_cache_entries: raw.dns_cache_entries.unwrap_or(10_000),
        lists,
        threshold,
        allowlist_threshold,
        rdns_no_ptr: raw.rdns_no_ptr.unwrap_or(1),
        rdns_unconfirmed: raw.rdns_unconfirmed.unwrap_or(1),
        rdns_address_in_name: raw.rdns_address_in_name.unwrap_or(1),
        rdns_dynamic_token: raw.rdns_dynamic_token.unwrap_or(1),
        score_action: raw.score_action.unwrap_or(ScreenAction::Reject),
        pregreet_action: raw.pregreet_action.unwrap_or(ScreenAction::Reject),
        end_user_policy: raw.end_user_policy.map(|p| crate::absolute(base, &p)),
        end_user_action: raw.end_user_action.unwrap_or(ScreenAction::Reject),
        rate_window,
        rate_per_address: raw.rate_per_address.map_or(60, Spanned::into_inner),
        rate_per_64: raw.rate_per_64.map_or(240, Spanned::into_inner),
        rate_action: raw.rate_action.unwrap_or(ScreenAction::Tempfail),
        pass_ttl: Duration::from_secs(raw.pass_ttl_secs.unwrap_or(86_400)),
        allowlist_entries,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(t: &str) -> Result<crate::Config, ConfigError> {
        crate::parse(t, Path::new("t.toml"), Path::new("/etc/port25"))
    }

    #[test]
    fn defaults_and_lists() {
        let c = check("").unwrap();
        assert!(!c.mx.screen.enabled);
        assert_eq!((c.mx.screen.threshold, c.mx.screen.greet_wait), (3, Duration::from_secs(6)));
        let c = check(
            "[mx.screen]\nenabled = true\nend_user_policy = \"egress.toml\"\ndns_servers = [\"127.0.0.1:5353\", \"::1\"]\n\
             [[mx.screen.dnsbl]]\nzone = \"Zen.Example.\"\ncodes = [\"127.0.0.10-11\"]\nweight = 1\n\
             [[mx.screen.dnsbl]]\nzone = \"wl.example\"\nweight = -5\n",
        )
        .unwrap();
        let s = c.mx.screen;
        assert_eq!(s.end_user_policy.as_deref(), Some(Path::new("/etc/port25/egress.toml")));
        assert_eq!(s.dns_servers, vec!["127.0.0.1:5353".parse().unwrap(), "[::1]:53".parse().unwrap()]);
        assert_eq!(
            s.lists[0],
            ScreenList {
                zone: "zen.example".into(),
                codes: vec![("127.0.0.10".parse().unwrap(), "127.0.0.11".parse().unwrap())],
                weight: 1
            }
        );
        assert_eq!(s.lists[1].weight, -5);
    }

    #[test]
    fn errors_name_the_line() {
        let e =
            check("[mx.screen]\n\n[[mx.screen.dnsbl]]\nzone = \"z.example\"\ncodes = [\"10.0.0.2\"]\n").unwrap_err();
        assert_eq!(e.line, 5, "{e}");
        assert!(e.message.contains("127.0.0.0/8"), "{e}");
        assert_eq!(
            check("[mx.screen]\nenabled = true\n[[mx.screen.dnsbl]]\nzone = \"bad zone\"\n").unwrap_err().line,
            4
        );
        assert_eq!(check("[mx.screen]\nscore_action = \"drop\"\n").unwrap_err().line, 2);
        assert!(check("[mx.screen]\nthreshold = 1\nallowlist_threshold = 1\n")
            .unwrap_err()
            .message
            .contains("not below"));
        assert_eq!(check("[mx.screen]\n\ndns_servers = [\"ns1\"]\n").unwrap_err().line, 3);
        let implicit = "[mx.screen]\nenabled = true\n[[listener]]\nname = \"mx\"\naddress = \"127.0.0.1:25\"\ntls = \"implicit\"\n";
        assert!(check(implicit).unwrap_err().message.contains("cannot be screened"));
    }

    #[test]
    fn code_filters() {
        let ip = |s: &str| s.parse::<Ipv4Addr>().unwrap();
        assert_eq!(parse_code_filter("127.0.5.0/24").unwrap(), (ip("127.0.5.0"), ip("127.0.5.255")));
        assert_eq!(parse_code_filter(" 127.0.0.2 ").unwrap(), (ip("127.0.0.2"), ip("127.0.0.2")));
        assert_eq!(parse_code_filter("127.0.0.10-11").unwrap(), (ip("127.0.0.10"), ip("127.0.0.11")));
        for bad in ["", "127.0.0.11-10", "10.0.0.1", "127.0.0.2/33", "127.0.0.1-x", "0.0.0.0/0", "127.0.0.0/4", "1.2.3"]
        {
            assert!(parse_code_filter(bad).is_err(), "{bad:?}");
        }
    }
}

#[cfg(test)]
mod dist {
    /// dist/port25.toml documents the defaults: its [mx.screen] is the
    /// built-in one.
    #[test]
    fn the_documented_screen_section_is_the_default() {
        let dist = crate::parse(
            include_str!("../../../dist/port25.toml"),
            std::path::Path::new("dist/port25.toml"),
            std::path::Path::new("/tmp"),
        )
        .unwrap();
        assert_eq!(dist.mx.screen, crate::embedded_default().mx.screen);
    }
}
