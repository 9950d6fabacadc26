//! The `[http]` section: the two HTTP listeners `port25 serve` starts, a
//! public one (client autoconfiguration, which mail clients anywhere must
//! reach) and a private one (/metrics, the operator dashboard, /healthz,
//! /readyz, for the operator's network only), and what mail clients are told. The ports mail clients are given are the
//! public ones (587, 465), not the listener addresses: a provider often
//! maps them (NAT, a load balancer, the unprivileged defaults).

use crate::error::ConfigError;
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;
use toml::Spanned;

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawHttp {
    enabled: Option<bool>,
    address: Option<Spanned<String>>,
    private_address: Option<Spanned<String>>,
    display_name: Option<String>,
    submission_host: Option<Spanned<String>>,
    submission_port: Option<Spanned<u16>>,
    submissions_port: Option<Spanned<u16>>,
    offer_first: Option<Spanned<String>>,
    imap: Option<Spanned<String>>,
    imaps: Option<Spanned<String>>,
    spampot_capture: Option<String>,
    migration_days: Option<Spanned<u32>>,
    migration_threshold: Option<Spanned<f64>>,
    session_hours: Option<Spanned<u64>>,
    login_attempts_per_minute: Option<Spanned<u32>>,
    trusted_proxies: Option<Vec<Spanned<String>>>,
    cookie_secure: Option<bool>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Http {
    /// The public listener (autoconfig, autodiscover, mobileconfig);
    /// `None`: no HTTP listener at all (`enabled = false`).
    pub address: Option<SocketAddr>,
    /// The private listener (metrics, dashboard, health); `None` with
    /// `enabled = false`.
    pub private_address: Option<SocketAddr>,
    /// The provider's name in client profiles; default: the first domain.
    pub display_name: String,
    /// The host mail clients submit to; default: `hostname`.
    pub submission_host: String,
    pub submission_port: u16,
    pub submissions_port: u16,
    /// Which port client profiles list first: 587 (STARTTLS, the default,
    /// the seeds' "Configure 587!") or 465 (implicit TLS). Both are listed.
    pub implicit_tls_first: bool,
    /// (host, port) of IMAP with STARTTLS, when the provider has one.
    pub imap: Option<(String, u16)>,
    /// (host, port) of IMAP over implicit TLS.
    pub imaps: Option<(String, u16)>,
    /// A SpamPots capture directory shown on the dashboard.
    pub spampot_capture: Option<PathBuf>,
    pub migration_days: u32,
    pub migration_threshold: f64,
    pub session: Duration,
    pub login_attempts_per_minute: u32,
    /// Peers whose X-Forwarded-For / Forwarded headers name the client;
    /// from anyone else those headers are ignored.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// The dashboard cookie's Secure flag (set it when clients reach the
    /// dashboard over HTTPS, e.g. through a TLS proxy).
    pub cookie_secure: bool,
}

// Config derives Eq; the one float (migration_threshold) is checked to be
// in 0..=100, never NaN, so equality is total.
impl Eq for Http {}

/// How the section's checks report an error: at a byte offset of the file,
/// with a message and a hint (see [`ConfigError::at`]).
type ErrAt<'a> = &'a dyn Fn(usize, String, &str) -> ConfigError;

/// Checks the keys in the same order as before the split, so that a file
/// with several mistakes is told the same first one; each check is a
/// function of its own below.
pub(crate) fn resolve(
    raw: RawHttp,
    text: &str,
    file: &Path,
    base: &Path,
    hostname: &str,
    domains: &[String],
) -> Result<Http, ConfigError> {
    let err = |offset: usize, msg: String, hint: &str| ConfigError::at(file, text, offset, msg, hint);
    let (address, private_address) = listeners(raw.enabled.unwrap_or(true), raw.address, raw.private_address, &err)?;
    let submission_host = match raw.submission_host {
        Some(h) if !crate::model::valid_domain(h.get_ref()) => {
            return Err(err(
                h.span().start,
                format!("[http] submission_host {:?} is not a host name", h.get_ref()),
                "write e.g. \"smtp.example.net\"",
            ))
        }
        Some(h) => h.into_inner().to_lowercase(),
        None => hostname.to_lowercase(),
    };
    let implicit_tls_first = implicit_tls_first(raw.offer_first, &err)?;
    let migration_threshold = match raw.migration_threshold {
        Some(t) if !(0.0..=100.0).contains(t.get_ref()) => {
            return Err(err(
                t.span().start,
                "[http] migration_threshold is a percentage".into(),
                "write a number from 0 to 100 (the seeds' mark is 90)",
            ))
        }
        Some(t) => t.into_inner(),
        None => 90.0,
    };
    let trusted_proxies = trusted_proxies(raw.trusted_proxies, &err)?;
    // Widened to u64 so that one check serves the u32 keys too.
    let widen = |v: Option<Spanned<u32>>| v.map(|s| Spanned::new(s.span(), u64::from(*s.get_ref())));
    Ok(Http {
        address,
        private_address,
        trusted_proxies,
        cookie_secure: raw.cookie_secure.unwrap_or(false),
        display_name: raw
            .display_name
            .unwrap_or_else(|| domains.first().cloned().unwrap_or_else(|| hostname.to_owned())),
        submission_host,
        submission_port: client_port(raw.submission_port, 587, "submission_port", &err)?,
        submissions_port: client_port(raw.submissions_port, 465, "submissions_port", &err)?,
        implicit_tls_first,
        imap: host_port(raw.imap, "imap", &err)?,
        imaps: host_port(raw.imaps, "imaps", &err)?,
        spampot_capture: raw.spampot_capture.map(|p| crate::absolute(base, &p)),
        migration_days: positive(widen(raw.migration_days), 30, "migration_days", &err)? as u32,
        migration_threshold,
        session: Duration::from_secs(positive(raw.session_hours, 8, "session_hours", &err)? * 3600),
        login_attempts_per_minute: positive(widen(raw.login_attempts_per_minute), 5, "login_attempts_per_minute", &err)?
            as u32,
    })
}

/// The public and the private listener (none when `enabled = false`); they
/// must differ, or the dashboard and /metrics would be public.
fn listeners(
    enabled: bool,
    address: Option<Spanned<String>>,
    private_address: Option<Spanned<String>>,
    err: ErrAt,
) -> Result<(Option<SocketAddr>, Option<SocketAddr>), ConfigError> {
    let listen = |v: Option<Spanned<String>>,
                  default: &str,
                  key: &str,
                  example: &str|
     -> Result<Option<SocketAddr>, ConfigError> {
        match (enabled, v) {
            (false, _) => Ok(None),
            (true, None) => Ok(Some(default.parse().expect("valid"))),
            (true, Some(a)) => a.get_ref().parse::<SocketAddr>().map(Some).map_err(|_| {
                err(a.span().start, format!("[http] {key} {:?} is not an address:port", a.get_ref()), example)
            }),
        }
    };
    let address = listen(address, "127.0.0.1:8025", "address", "write e.g. \"127.0.0.1:8025\" or \"[::]:443\"")?;
    let private_at = private_address.as_ref().map_or(0, |a| a.span().start);
    let private_address = listen(
        private_address,
        "127.0.0.1:8026",
        "private_address",
        "write e.g. \"127.0.0.1:8026\" or \"[2001:db8::1]:8026\"",
    )?;
    if let (Some(p), Some(q)) = (address, private_address) {
        if p == q && p.port() != 0 {
            return Err(err(
                private_at,
                format!("[http] address and private_address are both {p}"),
                "give the private listener (metrics, dashboard) its own address, reachable only by operators",
            ));
        }
    }
    Ok((address, private_address))
}

/// `offer_first`: which submission port the client setup lists first.
fn implicit_tls_first(offer_first: Option<Spanned<String>>, err: ErrAt) -> Result<bool, ConfigError> {
    match offer_first {
        None => Ok(false),
        Some(v) => match v.get_ref().as_str() {
            "587" | "submission" => Ok(false),
            "465" | "submissions" => Ok(true),
            other => Err(err(
                v.span().start,
                format!("[http] offer_first {other:?} is neither submission port"),
                "write \"587\" (STARTTLS first, the default) or \"465\" (implicit TLS first)",
            )),
        },
    }
}

/// `trusted_proxies`: addresses or prefixes whose X-Forwarded-For is believed.
fn trusted_proxies(raw: Option<Vec<Spanned<String>>>, err: ErrAt) -> Result<Vec<ipnet::IpNet>, ConfigError> {
    let mut trusted_proxies = Vec::new();
    for p in raw.unwrap_or_default() {
        match crate::model::network(p.get_ref()) {
            Some(net) => trusted_proxies.push(net),
            None => {
                return Err(err(
                    p.span().start,
                    format!("[http] trusted proxy {:?} is not an address or a prefix", p.get_ref()),
                    "write e.g. \"127.0.0.1\" or \"2001:db8:5::/64\": the addresses your TLS proxy connects from",
                ))
            }
        }
    }
    Ok(trusted_proxies)
}

/// `imap` and `imaps`: the host:port mail clients are told.
fn host_port(v: Option<Spanned<String>>, key: &str, err: ErrAt) -> Result<Option<(String, u16)>, ConfigError> {
    let Some(v) = v else { return Ok(None) };
    match v.get_ref().rsplit_once(':') {
        Some((h, p)) if crate::model::valid_domain(h) && p.parse::<u16>().is_ok_and(|p| p > 0) => {
            Ok(Some((h.to_lowercase(), p.parse().expect("checked"))))
        }
        _ => Err(err(
            v.span().start,
            format!("[http] {key} {:?} is not host:port", v.get_ref()),
            "write e.g. \"imap.example.net:993\"",
        )),
    }
}

/// A submission port mail clients are told: never 25, never 0.
fn client_port(v: Option<Spanned<u16>>, default: u16, key: &str, err: ErrAt) -> Result<u16, ConfigError> {
    match v {
        Some(p) if *p.get_ref() == 25 => Err(err(
            p.span().start,
            format!("[http] {key} = 25: mail clients must never be sent to port 25"),
            "use 587 (submission, STARTTLS) and 465 (submissions, implicit TLS)",
        )),
        Some(p) if *p.get_ref() == 0 => {
            Err(err(p.span().start, format!("[http] {key} must be a port number"), "remove the key for the default"))
        }
        Some(p) => Ok(p.into_inner()),
        None => Ok(default),
    }
}

/// A count or period that 0 would make meaningless.
fn positive(v: Option<Spanned<u64>>, default: u64, key: &str, err: ErrAt) -> Result<u64, ConfigError> {
    match v {
        Some(s) if *s.get_ref() == 0 => {
            Err(err(s.span().start, format!("[http] {key} must be at least 1"), "remove the key for the default"))
        }
        Some(s) => Ok(s.into_inner()),
        None => Ok(default),
    }
}

#[cfg(test)]
mod tests {
    use crate::parse;
    use std::path::Path;

    fn check(text: &str) -> Result<crate::Config, crate::ConfigError> {
        parse(text, Path::new("/etc/port25.toml"), Path::new("/etc"))
    }

    #[test]
    fn defaults_and_errors() {
        let c = check("hostname = \"mx.example.net\"\n[mx]\ndomains = [\"example.net\"]\n").unwrap();
        assert_eq!(c.http.address, Some("127.0.0.1:8025".parse().unwrap()));
        assert_eq!(c.http.private_address, Some("127.0.0.1:8026".parse().unwrap()));
        assert_eq!(
            (c.http.submission_host.as_str(), c.http.submission_port, c.http.submissions_port),
            ("mx.example.net", 587, 465)
        );
        assert_eq!(
            (c.http.display_name.as_str(), c.http.imap.clone(), c.http.migration_threshold),
            ("example.net", None, 90.0)
        );
        let c = check("[http]\nenabled = false\nimaps = \"imap.example.net:993\"\n").unwrap();
        assert_eq!(
            (c.http.address, c.http.private_address, c.http.imaps),
            (None, None, Some(("imap.example.net".into(), 993)))
        );
        let e = check("[http]\naddress = \"[::]:80\"\nprivate_address = \"[::]:80\"\n").unwrap_err();
        assert_eq!(e.line, 3, "{e}");
        let e = check("[http]\nprivate_address = \"8026\"\n").unwrap_err();
        assert_eq!(e.line, 2, "{e}");

        let e = check("[http]\nsubmission_port = 25\n").unwrap_err();
        assert_eq!(e.line, 2);
        assert!(e.message.contains("never"), "{e}");
        let e = check("[http]\n\nimap = \"imap.example.net\"\n").unwrap_err();
        assert_eq!(e.line, 3, "{e}");
        let e = check("[http]\naddress = \"localhost\"\n").unwrap_err();
        assert_eq!(e.line, 2, "{e}");
        let e = check("[http]\nmigration_threshold = 190.0\n").unwrap_err();
        assert_eq!(e.line, 2, "{e}");
        let c = check("[http]\ntrusted_proxies = [\"127.0.0.1\", \"::ffff:10.0.0.0/104\", \"2001:db8::/64\"]\ncookie_secure = true\n").unwrap();
        let proxies: Vec<String> = c.http.trusted_proxies.iter().map(|n| n.to_string()).collect();
        assert_eq!((proxies.join(" "), c.http.cookie_secure), ("127.0.0.1/32 10.0.0.0/8 2001:db8::/64".into(), true));
        let e = check("[http]\n\ntrusted_proxies = [\"proxy.example\"]\n").unwrap_err();
        assert_eq!(e.line, 3, "{e}");
        let e = check("[http]\nsesion_hours = 1\n").unwrap_err();
        assert!(e.message.contains("unknown field"), "{e}");
    }
}
