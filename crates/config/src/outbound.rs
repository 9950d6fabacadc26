//! The `[outbound]` section: the queue and delivery to remote MXes (or a
//! smarthost), retries and expiry, TLS policy, DKIM keys. Every key has a
//! default; the section may be left out.

use crate::error::ConfigError;
use serde::Deserialize;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;
use toml::Spanned;

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawOutbound {
    hold: Option<bool>,
    port: Option<Spanned<u16>>,
    nameservers: Option<Vec<Spanned<String>>>,
    dns_timeout_secs: Option<u64>,
    helo_name: Option<String>,
    smarthost: Option<Spanned<String>>,
    smarthost_username: Option<Spanned<String>>,
    smarthost_password_file: Option<Spanned<String>>,
    smarthost_require_tls: Option<bool>,
    smarthost_ca: Option<Spanned<String>>,
    smarthost_pin_sha256: Option<Spanned<Vec<String>>>,
    require_tls: Option<Vec<String>>,
    mta_sts: Option<Spanned<String>>,
    mta_sts_ca: Option<Spanned<String>>,
    mta_sts_port: Option<Spanned<u16>>,
    mta_sts_timeout_secs: Option<u64>,
    tls_rpt: Option<Spanned<String>>,
    dane: Option<Spanned<String>>,
    dane_trust_anchor: Option<Spanned<String>>,
    allowed_private_networks: Option<Vec<Spanned<String>>>,
    first_retry_secs: Option<Spanned<u64>>,
    max_retry_secs: Option<Spanned<u64>>,
    retry_jitter: Option<Spanned<f64>>,
    max_lifetime_secs: Option<Spanned<u64>>,
    delay_warning_secs: Option<u64>,
    connections_per_destination: Option<Spanned<usize>>,
    max_connections: Option<Spanned<usize>>,
    messages_per_connection: Option<Spanned<usize>>,
    idle_connection_secs: Option<Spanned<u64>>,
    connect_timeout_secs: Option<u64>,
    command_timeout_secs: Option<u64>,
    data_timeout_secs: Option<u64>,
    stats_interval_secs: Option<Spanned<u64>>,
    #[serde(default)]
    dkim: Vec<Spanned<RawDkim>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDkim {
    domain: String,
    selector: String,
    private_key: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Outbound {
    pub hold: bool,
    pub port: u16,
    /// Empty: the name servers of /etc/resolv.conf.
    pub nameservers: Vec<SocketAddr>,
    pub dns_timeout: Duration,
    pub helo_name: Option<String>,
    /// (host, port)
    pub smarthost: Option<(String, u16)>,
    /// (username, password read from the file)
    pub smarthost_auth: Option<(String, String)>,
    pub smarthost_require_tls: bool,
    /// A PEM file of CA certificates that verify the smarthost instead of
    /// the system's roots.
    pub smarthost_ca: Option<PathBuf>,
    /// SHA-256 digests of the SubjectPublicKeyInfo (the key, not the
    /// certificate: it survives renewals with the same key) that the
    /// smarthost's certificate must have; any one matches.
    pub smarthost_pin_sha256: Vec<[u8; 32]>,
    pub require_tls: Vec<String>,
    /// MTA-STS (RFC 8461) for recipient domains: fetch, cache and apply
    /// their policies (`mta_sts = "on"`, the default).
    pub mta_sts: bool,
    /// A PEM file of CA certificates trusted for MTA-STS (policy hosts and
    /// MX certificates) besides the system's.
    pub mta_sts_ca: Option<PathBuf>,
    /// The HTTPS port policies are fetched from: 443, except in tests.
    pub mta_sts_port: u16,
    pub mta_sts_timeout: Duration,
    /// TLS-RPT (RFC 8460) reports written to data_dir/tls-rpt.
    pub tls_rpt: bool,
    /// DANE (RFC 7672) for remote MXes with DNSSEC-secure TLSA records
    /// (`dane = "auto"`, the default; `"off"`).
    pub dane: bool,
    /// DNSKEY records trusted instead of the IANA root key (a private
    /// root, tests).
    pub dane_trust_anchor: Option<PathBuf>,
    /// MX addresses in loopback, private, link-local and other special
    /// ranges are refused unless they fall in one of these networks.
    pub allowed_private_networks: Vec<ipnet::IpNet>,
    pub first_retry: Duration,
    pub max_retry: Duration,
    pub retry_jitter: f64,
    pub max_lifetime: Duration,
    pub delay_warning: Option<Duration>,
    pub connections_per_destination: usize,
    pub max_connections: usize,
    pub messages_per_connection: usize,
    /// Zero: QUIT as soon as nothing is waiting.
    pub idle_connection: Duration,
    pub connect_timeout: Duration,
    pub command_timeout: Duration,
    pub data_timeout: Duration,
    pub stats_interval: Duration,
    pub dkim: Vec<DkimKey>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DkimKey {
    pub domain: String,
    pub selector: String,
    pub private_key: PathBuf,
}

impl Eq for Outbound {}

fn host_port(s: &str, default_port: u16) -> Option<(String, u16)> {
    if let Ok(a) = s.parse::<SocketAddr>() {
        return Some((a.ip().to_string(), a.port()));
    }
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Some((ip.to_string(), default_port));
    }
    let (h, p) = match s.rsplit_once(':') {
        Some((h, p)) => (h, p.parse().ok()?),
        None => (s, default_port),
    };
    let h = h.trim_start_matches('[').trim_end_matches(']');
    (!h.is_empty() && !h.contains(['/', ' ', '@'])).then(|| (h.to_owned(), p))
}

/// A SHA-256 digest written as 64 hex digits (colons allowed between
/// pairs) or as base64 (what `openssl ... | base64` prints).
fn sha256_pin(s: &str) -> Option<[u8; 32]> {
    let hex: String = s.chars().filter(|&c| c != ':').collect();
    let mut out = [0u8; 32];
    if hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        for (i, o) in out.iter_mut().enumerate() {
            *o = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
        }
        return Some(out);
    }
    let b64 = s.trim_end_matches('=');
    if b64.len() != 43 {
        return None;
    }
    let mut acc = 0u32;
    let mut bits = 0;
    let mut n = 0;
    for c in b64.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            _ => return None,
        };
        acc = acc << 6 | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            *out.get_mut(n)? = (acc >> bits) as u8;
            n += 1;
        }
    }
    (n == 32).then_some(out)
}

/// `nameservers = [...]` (here and in `[mx.auth]`): addresses, port 53
/// unless given.
pub(crate) fn nameservers(
    raw: Option<Vec<Spanned<String>>>,
    err: &dyn Fn(usize, String, &str) -> ConfigError,
) -> Result<Vec<SocketAddr>, ConfigError> {
    let mut nameservers = Vec::new();
    for n in raw.unwrap_or_default() {
        let parsed = n
            .get_ref()
            .parse::<SocketAddr>()
            .or_else(|_| n.get_ref().parse::<IpAddr>().map(|ip| SocketAddr::new(ip, 53)));
        match parsed {
            Ok(a) => nameservers.push(a),
            Err(_) => {
                return Err(err(
                    n.span().start,
                    format!("name server {:?} is not an address", n.get_ref()),
                    "write \"192.0.2.53\" or \"127.0.0.1:5353\" (port 53 by default)",
                ))
            }
        }
    }
    Ok(nameservers)
}

/// How the section's checks report an error: at a byte offset of the file,
/// with a message and a hint (see [`ConfigError::at`]).
type ErrAt<'a> = &'a dyn Fn(usize, String, &str) -> ConfigError;

/// Checks the keys in the same order as before the split, so that a file
/// with several mistakes is told the same first one; each check is a
/// function of its own below.
pub(crate) fn resolve(raw: RawOutbound, text: &str, file: &Path, base: &Path) -> Result<Outbound, ConfigError> {
    let err = |offset: usize, msg: String, hint: &str| ConfigError::at(file, text, offset, msg, hint);
    let nameservers = nameservers(raw.nameservers, &err)?;
    let smarthost = smarthost(raw.smarthost, &err)?;
    let smarthost_auth = smarthost_auth(raw.smarthost_username, raw.smarthost_password_file, base, &err)?;
    let (smarthost_ca, smarthost_pin_sha256) =
        smarthost_verification(raw.smarthost_ca, raw.smarthost_pin_sha256, smarthost.is_some(), base, &err)?;
    let allowed_private_networks = private_networks(raw.allowed_private_networks, &err)?;
    let (retry_jitter, first_retry, max_retry) =
        retry_schedule(raw.retry_jitter, raw.first_retry_secs, raw.max_retry_secs, &err)?;
    let idle_connection = idle_connection(raw.idle_connection_secs, &err)?;
    let port = match raw.port {
        Some(p) if *p.get_ref() == 0 => {
            return Err(err(
                p.span().start,
                "port 0 cannot be connected to".into(),
                "remove the key: remote MXes listen on 25",
            ))
        }
        Some(p) => p.into_inner(),
        None => 25,
    };
    let dkim = dkim_keys(raw.dkim, base, &err)?;
    let mta_sts = on_off(raw.mta_sts, "mta_sts", &err)?;
    let tls_rpt = on_off(raw.tls_rpt, "tls_rpt", &err)?;
    let mta_sts_ca = existing_file(
        raw.mta_sts_ca,
        "mta_sts_ca",
        "give a PEM file of CA certificates, or remove the key for the system's CAs only",
        base,
        &err,
    )?;
    let mta_sts_port = match raw.mta_sts_port {
        Some(p) if *p.get_ref() == 0 => {
            return Err(err(p.span().start, "mta_sts_port 0 cannot be connected to".into(), "remove the key: 443"))
        }
        Some(p) => p.into_inner(),
        None => 443,
    };
    let dane = match raw.dane {
        None => true,
        Some(s) => match s.get_ref().as_str() {
            "auto" => true,
            "off" => false,
            other => {
                return Err(err(
                    s.span().start,
                    format!("dane = {other:?} is not \"auto\" or \"off\""),
                    "write \"auto\" or \"off\"",
                ))
            }
        },
    };
    let dane_trust_anchor = existing_file(
        raw.dane_trust_anchor,
        "dane_trust_anchor",
        "give a file of DNSKEY records, or remove the key for the IANA root key",
        base,
        &err,
    )?;
    Ok(Outbound {
        dane,
        dane_trust_anchor,
        mta_sts,
        mta_sts_ca,
        mta_sts_port,
        mta_sts_timeout: Duration::from_secs(raw.mta_sts_timeout_secs.unwrap_or(60).max(1)),
        tls_rpt,
        hold: raw.hold.unwrap_or(false),
        port,
        nameservers,
        dns_timeout: Duration::from_secs(raw.dns_timeout_secs.unwrap_or(5).max(1)),
        helo_name: raw.helo_name,
        smarthost,
        smarthost_auth,
        smarthost_require_tls: raw.smarthost_require_tls.unwrap_or(false),
        smarthost_ca,
        smarthost_pin_sha256,
        require_tls: raw.require_tls.unwrap_or_default().into_iter().map(|d| d.to_lowercase()).collect(),
        allowed_private_networks,
        first_retry,
        max_retry,
        retry_jitter,
        max_lifetime: positive_secs(raw.max_lifetime_secs, 5 * 86400, "max_lifetime_secs", &err)?,
        delay_warning: match raw.delay_warning_secs.unwrap_or(4 * 3600) {
            0 => None,
            s => Some(Duration::from_secs(s)),
        },
        connections_per_destination: positive_usize(
            raw.connections_per_destination,
            20,
            "connections_per_destination",
            &err,
        )?,
        max_connections: positive_usize(raw.max_connections, 200, "max_connections", &err)?,
        messages_per_connection: positive_usize(raw.messages_per_connection, 100, "messages_per_connection", &err)?,
        idle_connection,
        connect_timeout: Duration::from_secs(raw.connect_timeout_secs.unwrap_or(30).max(1)),
        command_timeout: Duration::from_secs(raw.command_timeout_secs.unwrap_or(300).max(1)),
        data_timeout: Duration::from_secs(raw.data_timeout_secs.unwrap_or(600).max(1)),
        stats_interval: positive_secs(raw.stats_interval_secs, 300, "stats_interval_secs", &err)?,
        dkim,
    })
}

/// `"on"` (the default) or `"off"`.
/// A file setting (relative to the configuration's directory) that must
/// exist.
fn existing_file(
    v: Option<Spanned<String>>,
    key: &str,
    hint: &str,
    base: &Path,
    err: ErrAt,
) -> Result<Option<PathBuf>, ConfigError> {
    let Some(v) = v else { return Ok(None) };
    let path = crate::absolute(base, v.get_ref());
    std::fs::metadata(&path)
        .map_err(|e| err(v.span().start, format!("cannot read {key} {}: {e}", path.display()), hint))?;
    Ok(Some(path))
}

fn on_off(v: Option<Spanned<String>>, key: &str, err: ErrAt) -> Result<bool, ConfigError> {
    match v {
        None => Ok(true),
        Some(s) => match s.get_ref().as_str() {
            "on" => Ok(true),
            "off" => Ok(false),
            other => Err(err(
                s.span().start,
                format!("{key} = {other:?} is not \"on\" or \"off\""),
                "write \"on\" or \"off\"",
            )),
        },
    }
}

/// A count that 0 would make meaningless (no connection at all).
fn positive_usize(v: Option<Spanned<usize>>, default: usize, key: &str, err: ErrAt) -> Result<usize, ConfigError> {
    match v {
        Some(s) if *s.get_ref() == 0 => {
            Err(err(s.span().start, format!("{key} must be at least 1"), "remove the key for the default"))
        }
        Some(s) => Ok(s.into_inner()),
        None => Ok(default),
    }
}

/// A period that 0 would make a busy loop or an immediate expiry.
fn positive_secs(v: Option<Spanned<u64>>, default: u64, key: &str, err: ErrAt) -> Result<Duration, ConfigError> {
    match v {
        Some(s) if *s.get_ref() == 0 => {
            Err(err(s.span().start, format!("{key} must be at least 1"), "remove the key for the default"))
        }
        Some(s) => Ok(Duration::from_secs(s.into_inner())),
        None => Ok(Duration::from_secs(default)),
    }
}

/// `smarthost`: host or host:port, port 25 unless given.
fn smarthost(raw: Option<Spanned<String>>, err: ErrAt) -> Result<Option<(String, u16)>, ConfigError> {
    match raw {
        Some(s) => match host_port(s.get_ref(), 25) {
            Some(hp) => Ok(Some(hp)),
            None => Err(err(
                s.span().start,
                format!("smarthost {:?} is not host or host:port", s.get_ref()),
                "write e.g. \"relay.example.net:587\" or \"192.0.2.25\"",
            )),
        },
        None => Ok(None),
    }
}

/// `smarthost_username` and `smarthost_password_file`, both or neither; the
/// password is read now so that a missing file stops the start, not the
/// first delivery.
fn smarthost_auth(
    username: Option<Spanned<String>>,
    password_file: Option<Spanned<String>>,
    base: &Path,
    err: ErrAt,
) -> Result<Option<(String, String)>, ConfigError> {
    match (username, password_file) {
        (Some(u), Some(f)) => {
            let path = crate::absolute(base, f.get_ref());
            let password = std::fs::read_to_string(&path).map_err(|e| {
                err(
                    f.span().start,
                    format!("cannot read smarthost_password_file {}: {e}", path.display()),
                    "give a file readable by port25 holding the password",
                )
            })?;
            Ok(Some((u.into_inner(), password.trim_end_matches(['\r', '\n']).to_owned())))
        }
        (None, None) => Ok(None),
        (Some(u), None) => Err(err(
            u.span().start,
            "smarthost_username and smarthost_password_file go together".into(),
            "set both, or neither for a smarthost without AUTH",
        )),
        (None, Some(f)) => Err(err(
            f.span().start,
            "smarthost_username and smarthost_password_file go together".into(),
            "set both, or neither for a smarthost without AUTH",
        )),
    }
}

/// `smarthost_ca` or `smarthost_pin_sha256` (one of them, and only with a
/// smarthost): the CA file is read and checked now, the pins parsed.
fn smarthost_verification(
    ca: Option<Spanned<String>>,
    pins: Option<Spanned<Vec<String>>>,
    has_smarthost: bool,
    base: &Path,
    err: ErrAt,
) -> Result<(Option<PathBuf>, Vec<[u8; 32]>), ConfigError> {
    // Where the smarthost's verification is written, for the errors below.
    let ca_at = ca.as_ref().map(|f| f.span().start);
    let pins_at = pins.as_ref().map(|p| p.span().start);
    let smarthost_ca = match ca {
        Some(f) => {
            let path = crate::absolute(base, f.get_ref());
            let pem = std::fs::read(&path).map_err(|e| {
                err(
                    f.span().start,
                    format!("cannot read smarthost_ca {}: {e}", path.display()),
                    "give a PEM file of the CA certificates that sign the smarthost's certificate",
                )
            })?;
            if !pem.windows(27).any(|w| w == b"-----BEGIN CERTIFICATE-----") {
                return Err(err(
                    f.span().start,
                    format!("smarthost_ca {} holds no PEM certificate", path.display()),
                    "give a file with -----BEGIN CERTIFICATE----- blocks",
                ));
            }
            Some(path)
        }
        None => None,
    };
    let mut smarthost_pin_sha256 = Vec::new();
    if let Some(pins) = pins {
        let offset = pins.span().start;
        for pin in pins.into_inner() {
            match sha256_pin(&pin) {
                Some(p) => smarthost_pin_sha256.push(p),
                None => {
                    return Err(err(
                        offset,
                        format!("smarthost_pin_sha256 {pin:?} is not a SHA-256 digest"),
                        "write 64 hex digits or base64 (44 characters) of the SHA-256 of the smarthost key's SubjectPublicKeyInfo; see docs/queue.md",
                    ))
                }
            }
        }
    }
    if smarthost_ca.is_some() && !smarthost_pin_sha256.is_empty() {
        return Err(err(
            pins_at.unwrap_or(0),
            "smarthost_ca and smarthost_pin_sha256 are two ways to verify the smarthost; set one".into(),
            "a pin trusts the key alone; smarthost_ca trusts a CA and checks the name",
        ));
    }
    if (smarthost_ca.is_some() || !smarthost_pin_sha256.is_empty()) && !has_smarthost {
        return Err(err(
            ca_at.or(pins_at).unwrap_or(0),
            "smarthost_ca and smarthost_pin_sha256 verify a smarthost, but no smarthost is set".into(),
            "set smarthost = \"host:port\", or remove them",
        ));
    }
    Ok((smarthost_ca, smarthost_pin_sha256))
}

/// `allowed_private_networks`: CIDRs or single addresses.
fn private_networks(raw: Option<Vec<Spanned<String>>>, err: ErrAt) -> Result<Vec<ipnet::IpNet>, ConfigError> {
    let mut allowed_private_networks = Vec::new();
    for n in raw.unwrap_or_default() {
        match crate::model::network(n.get_ref()) {
            Some(net) => allowed_private_networks.push(net),
            None => {
                return Err(err(
                    n.span().start,
                    format!("{:?} is not a network", n.get_ref()),
                    "write a CIDR such as \"10.1.0.0/16\" or one address",
                ))
            }
        }
    }
    Ok(allowed_private_networks)
}

/// The retry schedule: (jitter, first delay, cap of the doubling delays).
fn retry_schedule(
    jitter: Option<Spanned<f64>>,
    first_secs: Option<Spanned<u64>>,
    max_secs: Option<Spanned<u64>>,
    err: ErrAt,
) -> Result<(f64, Duration, Duration), ConfigError> {
    let retry_jitter = match jitter {
        Some(j) if !(0.0..=1.0).contains(j.get_ref()) => {
            return Err(err(
                j.span().start,
                format!("retry_jitter {} is not between 0 and 1", j.get_ref()),
                "use a fraction such as 0.2 (±20%)",
            ))
        }
        Some(j) => j.into_inner(),
        None => 0.2,
    };
    let first_retry = positive_secs(first_secs, 300, "first_retry_secs", err)?;
    let max_retry = match max_secs {
        // 0 would mean a retry every 100 ms, forever.
        Some(m) if Duration::from_secs(*m.get_ref()) < first_retry => {
            return Err(err(
                m.span().start,
                format!("max_retry_secs {} is less than first_retry_secs ({})", m.get_ref(), first_retry.as_secs()),
                "make max_retry_secs at least first_retry_secs: it caps the doubling delays",
            ))
        }
        Some(m) => Duration::from_secs(m.into_inner()),
        None => Duration::from_secs(4000).max(first_retry),
    };
    Ok((retry_jitter, first_retry, max_retry))
}

/// `idle_connection_secs`: how long a connection waits for more mail.
fn idle_connection(raw: Option<Spanned<u64>>, err: ErrAt) -> Result<Duration, ConfigError> {
    match raw {
        // Servers may close an idle client after 5 minutes (RFC 5321 4.5.3.2.7).
        Some(s) if *s.get_ref() > 300 => Err(err(
            s.span().start,
            format!("idle_connection_secs {} is more than remote servers wait", s.get_ref()),
            "use at most 300 (RFC 5321 4.5.3.2.7); a few seconds is plenty",
        )),
        Some(s) => Ok(Duration::from_secs(s.into_inner())),
        None => Ok(Duration::from_secs(2)),
    }
}

/// `[[outbound.dkim]]`: the selector must be a DNS name and the key file
/// must exist now, not at the first signature.
fn dkim_keys(raw: Vec<Spanned<RawDkim>>, base: &Path, err: ErrAt) -> Result<Vec<DkimKey>, ConfigError> {
    let mut dkim = Vec::new();
    for d in raw {
        let offset = d.span().start;
        let d = d.into_inner();
        if d.selector.is_empty()
            || d.selector.contains(['.', ' ', ';']) && !d.selector.split('.').all(|l| !l.is_empty())
        {
            return Err(err(
                offset,
                format!("DKIM selector {:?} is not a DNS label", d.selector),
                "use e.g. selector = \"port25\"",
            ));
        }
        let path = crate::absolute(base, &d.private_key);
        if !path.exists() {
            return Err(err(
                offset,
                format!("DKIM private key {} does not exist", path.display()),
                "create it with `port25 dkim keygen --domain D --selector S --out FILE`",
            ));
        }
        dkim.push(DkimKey { domain: d.domain.to_lowercase(), selector: d.selector, private_key: path });
    }
    Ok(dkim)
}

#[cfg(test)]
mod tests {
    use crate::parse;
    use std::path::Path;

    #[test]
    fn defaults_and_errors() {
        let c = parse("", Path::new("/etc/port25.toml"), Path::new("/etc")).unwrap();
        assert_eq!((c.outbound.port, c.outbound.max_lifetime.as_secs(), c.outbound.hold), (25, 432_000, false));
        let c = parse(
            "[outbound]\nnameservers = [\"127.0.0.1:5353\"]\nsmarthost = \"relay.example:587\"\n",
            Path::new("/f"),
            Path::new("/"),
        )
        .unwrap();
        assert_eq!(c.outbound.smarthost, Some(("relay.example".into(), 587)));
        assert_eq!(c.outbound.nameservers, vec!["127.0.0.1:5353".parse().unwrap()]);
        let e = parse("[outbound]\nretry_jitter = 3.0\n", Path::new("/f"), Path::new("/")).unwrap_err();
        assert_eq!(e.line, 2);
        let e = parse("[outbound]\nnameservers = [\"dns.example\"]\n", Path::new("/f"), Path::new("/")).unwrap_err();
        assert_eq!(e.line, 2);
        assert!(e.hint.contains("127.0.0.1:5353"));
        let e = parse("[outbound]\nsmarthost_username = \"u\"\n", Path::new("/f"), Path::new("/")).unwrap_err();
        assert_eq!(e.line, 2);
        assert_eq!(c.outbound.idle_connection.as_secs(), 2);
        let c = parse("[outbound]\nidle_connection_secs = 0\n", Path::new("/f"), Path::new("/")).unwrap();
        assert!(c.outbound.idle_connection.is_zero());
        let e = parse("[outbound]\n\nidle_connection_secs = 900\n", Path::new("/f"), Path::new("/")).unwrap_err();
        assert_eq!(e.line, 3);
        assert!(e.hint.contains("300"), "{}", e.hint);
        let e = parse("[outbound]\nfirst_retry_secs = 60\nmax_retry_secs = 0\n", Path::new("/f"), Path::new("/"))
            .unwrap_err();
        assert_eq!(e.line, 3);
        let c = parse("[outbound]\nfirst_retry_secs = 5000\n", Path::new("/f"), Path::new("/")).unwrap();
        assert_eq!(c.outbound.max_retry.as_secs(), 5000, "the default cap is never below the first delay");
    }

    #[test]
    fn dane_is_auto_by_default_and_its_anchor_must_exist() {
        let c = parse("", Path::new("/f"), Path::new("/")).unwrap();
        assert!(c.outbound.dane && c.outbound.dane_trust_anchor.is_none());
        let c = parse("[outbound]\ndane = \"off\"\n", Path::new("/f"), Path::new("/")).unwrap();
        assert!(!c.outbound.dane);
        let e = parse("[outbound]\ndane = \"on\"\n", Path::new("/f"), Path::new("/")).unwrap_err();
        assert_eq!(e.line, 2);
        assert!(e.hint.contains("auto"), "{}", e.hint);
        let e = parse("[outbound]\n\ndane_trust_anchor = \"/nonexistent/root.key\"\n", Path::new("/f"), Path::new("/"))
            .unwrap_err();
        assert_eq!(e.line, 3);
    }

    #[test]
    fn smarthost_verification_and_private_networks() {
        let hex = "ab".repeat(32);
        let t =
            format!("[outbound]\nsmarthost = \"relay.example:587\"\nsmarthost_pin_sha256 = [\"{hex}\", \"q6urq6urq6urq6urq6urq6urq6urq6urq6urq6urq6s=\"]\n");
        let c = parse(&t, Path::new("/f"), Path::new("/")).unwrap();
        assert_eq!(c.outbound.smarthost_pin_sha256, vec![[0xab; 32], [0xab; 32]]);
        let e = parse(
            "[outbound]\nsmarthost = \"r:25\"\nsmarthost_pin_sha256 = [\"abc\"]\n",
            Path::new("/f"),
            Path::new("/"),
        )
        .unwrap_err();
        assert_eq!(e.line, 3);
        let e = parse("[outbound]\nsmarthost_pin_sha256 = []\n", Path::new("/f"), Path::new("/"));
        assert!(e.is_ok(), "an empty list pins nothing");
        let e = parse(&format!("[outbound]\nsmarthost_pin_sha256 = [\"{hex}\"]\n"), Path::new("/f"), Path::new("/"))
            .unwrap_err();
        assert!(e.message.contains("no smarthost"), "{}", e.message);
        let e = parse(
            "[outbound]\nsmarthost = \"r:25\"\nsmarthost_ca = \"/nonexistent/ca.pem\"\n",
            Path::new("/f"),
            Path::new("/"),
        )
        .unwrap_err();
        assert_eq!(e.line, 3);
        let c = parse(
            "[outbound]\nallowed_private_networks = [\"127.0.0.0/8\", \"::1\", \"10.1.2.3/16\"]\n",
            Path::new("/f"),
            Path::new("/"),
        )
        .unwrap();
        let nets: Vec<String> = c.outbound.allowed_private_networks.iter().map(|n| n.to_string()).collect();
        assert_eq!(nets, ["127.0.0.0/8", "::1/128", "10.1.0.0/16"]);
        let e =
            parse("[outbound]\n\nallowed_private_networks = [\"ten\"]\n", Path::new("/f"), Path::new("/")).unwrap_err();
        assert_eq!(e.line, 3);
    }
}
