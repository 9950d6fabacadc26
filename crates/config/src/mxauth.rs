//! `[mx.auth]` (sender authentication at the end of DATA) and
//! `[mx.greylist]` (greylisting at RCPT); see docs/mx-auth.md.

use crate::error::ConfigError;
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;
use toml::Spanned;

/// Where Debian's `publicsuffix` package keeps the Public Suffix List.
pub const DEBIAN_PUBLIC_SUFFIX_LIST: &str = "/usr/share/publicsuffix/public_suffix_list.dat";

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawMxAuth {
    enabled: Option<bool>,
    authserv_id: Option<Spanned<String>>,
    nameservers: Option<Vec<Spanned<String>>>,
    dns_timeout_secs: Option<Spanned<u64>>,
    timeout_secs: Option<Spanned<u64>>,
    dmarc_reject: Option<AuthAction>,
    dmarc_quarantine: Option<AuthAction>,
    spf_fail: Option<AuthAction>,
    max_signatures: Option<Spanned<usize>>,
    public_suffix_list: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawGreylist {
    enabled: Option<bool>,
    delay_secs: Option<u64>,
    max_wait_hours: Option<Spanned<u64>>,
    allowlist_days: Option<u64>,
    ipv4_prefix: Option<Spanned<u8>>,
    ipv6_prefix: Option<Spanned<u8>>,
    exempt_spf_pass: Option<bool>,
    dnswl: Option<Vec<Spanned<String>>>,
    max_entries: Option<Spanned<usize>>,
    database: Option<String>,
}

/// What is done with a message a check condemns.
#[derive(Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum AuthAction {
    /// Only the Authentication-Results field says so.
    Ignore,
    /// Accepted with an `X-Port25-Tag:` field.
    Tag,
    /// 550 5.7.1 at the end of DATA.
    Reject,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MxAuth {
    pub enabled: bool,
    pub authserv_id: String,
    /// Empty: the name servers of /etc/resolv.conf.
    pub nameservers: Vec<SocketAddr>,
    pub dns_timeout: Duration,
    pub timeout: Duration,
    pub dmarc_reject: AuthAction,
    pub dmarc_quarantine: AuthAction,
    pub spf_fail: AuthAction,
    pub max_signatures: usize,
    pub public_suffix_list: PathBuf,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Greylist {
    pub enabled: bool,
    pub delay: Duration,
    pub max_wait: Duration,
    pub allowlist_for: Duration,
    pub ipv4_prefix: u8,
    pub ipv6_prefix: u8,
    pub exempt_spf_pass: bool,
    pub dnswl: Vec<String>,
    pub max_entries: usize,
    pub database: PathBuf,
}

fn positive(
    v: Option<Spanned<u64>>,
    default: u64,
    key: &str,
    err: &dyn Fn(usize, String, &str) -> ConfigError,
) -> Result<u64, ConfigError> {
    match v {
        Some(s) if *s.get_ref() == 0 => {
            Err(err(s.span().start, format!("{key} must be greater than 0"), "remove the line for the default"))
        }
        Some(s) => Ok(*s.get_ref()),
        None => Ok(default),
    }
}

pub(crate) fn resolve_auth(
    raw: RawMxAuth,
    hostname: &str,
    text: &str,
    file: &Path,
    base: &Path,
) -> Result<MxAuth, ConfigError> {
    let err = |offset: usize, msg: String, hint: &str| ConfigError::at(file, text, offset, msg, hint);
    let nameservers = crate::outbound::nameservers(raw.nameservers, &err)?;
    let authserv_id = match raw.authserv_id {
        Some(id) if !crate::model::valid_domain(id.get_ref()) => {
            return Err(err(
                id.span().start,
                format!("authserv_id {:?} is not a host name", id.get_ref()),
                "use this MX's name, e.g. \"mx.example.net\"",
            ))
        }
        Some(id) => id.into_inner().to_lowercase(),
        None => hostname.to_lowercase(),
    };
    let max_signatures = match raw.max_signatures {
        Some(s) if *s.get_ref() == 0 || *s.get_ref() > 50 => {
            return Err(err(
                s.span().start,
                "max_signatures must be between 1 and 50".into(),
                "each signature costs a DNS question; 5 is plenty",
            ))
        }
        Some(s) => s.into_inner(),
        None => 5,
    };
    Ok(MxAuth {
        enabled: raw.enabled.unwrap_or(false),
        authserv_id,
        nameservers,
        dns_timeout: Duration::from_secs(positive(raw.dns_timeout_secs, 5, "dns_timeout_secs", &err)?),
        timeout: Duration::from_secs(positive(raw.timeout_secs, 20, "timeout_secs", &err)?),
        dmarc_reject: raw.dmarc_reject.unwrap_or(AuthAction::Reject),
        dmarc_quarantine: raw.dmarc_quarantine.unwrap_or(AuthAction::Tag),
        spf_fail: raw.spf_fail.unwrap_or(AuthAction::Ignore),
        max_signatures,
        public_suffix_list: raw
            .public_suffix_list
            .map_or_else(|| PathBuf::from(DEBIAN_PUBLIC_SUFFIX_LIST), |p| crate::absolute(base, &p)),
    })
}

pub(crate) fn resolve_greylist(
    raw: RawGreylist,
    data_dir: &Path,
    text: &str,
    file: &Path,
    base: &Path,
) -> Result<Greylist, ConfigError> {
    let err = |offset: usize, msg: String, hint: &str| ConfigError::at(file, text, offset, msg, hint);
    let prefix = |v: Option<Spanned<u8>>, default: u8, max: u8, key: &str| match v {
        Some(p) if *p.get_ref() > max || *p.get_ref() < max / 4 => Err(err(
            p.span().start,
            format!("{key} must be between {} and {max}", max / 4),
            "24 (IPv4) and 64 (IPv6) group a sender's address pool",
        )),
        Some(p) => Ok(p.into_inner()),
        None => Ok(default),
    };
    let mut dnswl = Vec::new();
    for z in raw.dnswl.unwrap_or_else(|| vec![Spanned::new(0..0, "list.dnswl.org".to_owned())]) {
        if !crate::model::valid_domain(z.get_ref()) {
            return Err(err(
                z.span().start,
                format!("dnswl zone {:?} is not a domain", z.get_ref()),
                "e.g. \"list.dnswl.org\", or [] for none",
            ));
        }
        dnswl.push(z.into_inner().to_lowercase());
    }
    let max_entries = match raw.max_entries {
        Some(m) if *m.get_ref() < 100 => {
            return Err(err(m.span().start, "max_entries must be at least 100".into(), "the default is 1000000"))
        }
        Some(m) => m.into_inner(),
        None => 1_000_000,
    };
    Ok(Greylist {
        enabled: raw.enabled.unwrap_or(false),
        delay: Duration::from_secs(raw.delay_secs.unwrap_or(300)),
        max_wait: Duration::from_secs(3600 * positive(raw.max_wait_hours, 24, "max_wait_hours", &err)?),
        allowlist_for: Duration::from_secs(86400 * raw.allowlist_days.unwrap_or(35)),
        ipv4_prefix: prefix(raw.ipv4_prefix, 24, 32, "ipv4_prefix")?,
        ipv6_prefix: prefix(raw.ipv6_prefix, 64, 128, "ipv6_prefix")?,
        exempt_spf_pass: raw.exempt_spf_pass.unwrap_or(true),
        dnswl,
        max_entries,
        database: raw.database.map_or_else(|| data_dir.join("greylist.sqlite"), |p| crate::absolute(base, &p)),
    })
}

#[cfg(test)]
mod tests {
    use crate::{parse, AuthAction};
    use std::path::Path;

    fn check(text: &str) -> Result<crate::Config, crate::ConfigError> {
        parse(text, Path::new("/etc/port25.toml"), Path::new("/etc"))
    }

    #[test]
    fn defaults_and_errors() {
        let c = check("hostname = \"mx.example.net\"\n").unwrap();
        assert!(!c.mx.auth.enabled && !c.mx.greylist.enabled);
        assert_eq!(c.mx.auth.authserv_id, "mx.example.net");
        assert_eq!(
            (c.mx.auth.dmarc_reject, c.mx.auth.dmarc_quarantine, c.mx.auth.spf_fail),
            (AuthAction::Reject, AuthAction::Tag, AuthAction::Ignore)
        );
        assert_eq!(c.mx.greylist.delay.as_secs(), 300);
        assert_eq!(c.mx.greylist.dnswl, vec!["list.dnswl.org"]);
        let c = check("[mx.auth]\nenabled = true\nnameservers = [\"127.0.0.1:5353\", \"::1\"]\ndmarc_reject = \"tag\"\npublic_suffix_list = \"psl.dat\"\n")
            .unwrap();
        assert_eq!(c.mx.auth.nameservers, vec!["127.0.0.1:5353".parse().unwrap(), "[::1]:53".parse().unwrap()]);
        assert_eq!(c.mx.auth.public_suffix_list, Path::new("/etc/psl.dat"));
        let e = check("[mx.auth]\nnameservers = [\"dns.example\"]\n").unwrap_err();
        assert_eq!(e.line, 2);
        assert!(check("[mx.auth]\ndmarc_reject = \"maybe\"\n").is_err());
        assert_eq!(check("[mx.auth]\nmax_signatures = 0\n").unwrap_err().line, 2);
        assert_eq!(check("[mx.greylist]\n\nipv4_prefix = 33\n").unwrap_err().line, 3);
        assert_eq!(check("[mx.greylist]\nmax_wait_hours = 0\n").unwrap_err().line, 2);
        assert_eq!(check("[mx.greylist]\ndnswl = [\"bad zone\"]\n").unwrap_err().line, 2);
        assert!(check("[mx.greylist]\nenabled = true\ndnswl = []\n").unwrap().mx.greylist.dnswl.is_empty());
    }
}
