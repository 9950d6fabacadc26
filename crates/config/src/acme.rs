//! `[tls.acme]`: certificates from an ACME CA (RFC 8555; Let's Encrypt or
//! a private one), obtained at start when none is stored and renewed well
//! before expiry (docs/DEPLOY.md, "ACME").

use crate::error::ConfigError;
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::time::Duration;
use toml::Spanned;

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawAcme {
    directory: Option<Spanned<String>>,
    contact: Option<Vec<Spanned<String>>>,
    domains: Option<Spanned<Vec<Spanned<String>>>>,
    ca_file: Option<Spanned<String>>,
    challenge: Option<Spanned<String>>,
    renew_when_left: Option<Spanned<f64>>,
    retry_first_secs: Option<Spanned<u64>>,
    retry_max_secs: Option<Spanned<u64>>,
}

/// How the CA checks that we control a name (RFC 8555 section 8).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AcmeChallenge {
    /// HTTP-01: `/.well-known/acme-challenge/TOKEN` on the public `[http]`
    /// listener, which the CA reaches on port 80.
    Http01,
    /// TLS-ALPN-01 (RFC 8737): a certificate for ALPN `acme-tls/1` on the
    /// implicit-TLS listeners, which the CA reaches on port 443.
    TlsAlpn01,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Acme {
    /// The CA's directory URL (https).
    pub directory: String,
    /// `mailto:` addresses the CA may write to (expiry, policy).
    pub contact: Vec<String>,
    /// The names the certificate covers; the first is its subject.
    pub domains: Vec<String>,
    /// PEM roots the directory's HTTPS is verified with instead of the
    /// system's (a private CA, Pebble in tests).
    pub ca_file: Option<PathBuf>,
    pub challenge: AcmeChallenge,
    /// Renew when this fraction of the certificate's lifetime is left
    /// (default 1/3), less a random jitter of up to a tenth of it.
    pub renew_when_left: f64,
    /// First delay after a failed order; doubles up to `retry_max`.
    pub retry_first: Duration,
    pub retry_max: Duration,
}

// Config derives Eq; renew_when_left is checked finite, in (0, 1).
impl Eq for Acme {}

pub(crate) fn resolve(raw: RawAcme, text: &str, file: &Path, base: &Path, at: usize) -> Result<Acme, ConfigError> {
    let err = |offset: usize, msg: String, hint: &str| ConfigError::at(file, text, offset, msg, hint);
    let directory = match raw.directory {
        Some(d) if d.get_ref().starts_with("https://") && d.get_ref().len() > "https://".len() => d.into_inner(),
        Some(d) => {
            return Err(err(
                d.span().start,
                format!("[tls.acme] directory {:?} is not an https URL", d.get_ref()),
                "give the CA's directory, e.g. \"https://acme-v02.api.letsencrypt.org/directory\"",
            ))
        }
        None => {
            return Err(err(
                at,
                "[tls.acme] has no directory".into(),
                "give the CA's directory, e.g. \"https://acme-v02.api.letsencrypt.org/directory\"",
            ))
        }
    };
    let mut contact = Vec::new();
    for c in raw.contact.unwrap_or_default() {
        let ok = c.get_ref().strip_prefix("mailto:").is_some_and(|a| a.contains('@') && !a.contains([',', ' ']));
        if !ok {
            return Err(err(
                c.span().start,
                format!("[tls.acme] contact {:?} is not a mailto: address", c.get_ref()),
                "write \"mailto:postmaster@example.net\"",
            ));
        }
        contact.push(c.into_inner());
    }
    let domains = match raw.domains {
        Some(d) if !d.get_ref().is_empty() => {
            let mut out: Vec<String> = Vec::new();
            for name in d.into_inner() {
                let n = name.get_ref().trim_end_matches('.').to_ascii_lowercase();
                let valid = !n.is_empty()
                    && n.len() <= 253
                    && n.contains('.')
                    && n.split('.').all(|l| {
                        !l.is_empty()
                            && l.len() <= 63
                            && !l.starts_with('-')
                            && !l.ends_with('-')
                            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                    });
                if !valid {
                    return Err(err(
                        name.span().start,
                        format!("[tls.acme] domain {:?} is not a host name", name.get_ref()),
                        "list fully qualified names such as \"mail.example.net\" (no wildcards: HTTP-01 and TLS-ALPN-01 cannot validate them)",
                    ));
                }
                if !out.contains(&n) {
                    out.push(n);
                }
            }
            out
        }
        Some(d) => {
            return Err(err(
                d.span().start,
                "[tls.acme] domains is empty".into(),
                "list the names the certificate must cover, e.g. [\"mail.example.net\"]",
            ))
        }
        None => {
            return Err(err(
                at,
                "[tls.acme] has no domains".into(),
                "list the names the certificate must cover, e.g. [\"mail.example.net\"]",
            ))
        }
    };
    let challenge = match raw.challenge {
        None => AcmeChallenge::Http01,
        Some(c) => match c.get_ref().as_str() {
            "http-01" => AcmeChallenge::Http01,
            "tls-alpn-01" => AcmeChallenge::TlsAlpn01,
            other => {
                return Err(err(
                    c.span().start,
                    format!("[tls.acme] challenge {other:?} is not supported"),
                    "use \"http-01\" (the [http] public listener, port 80) or \"tls-alpn-01\" (an implicit-TLS listener, port 443)",
                ))
            }
        },
    };
    let renew_when_left = match raw.renew_when_left {
        None => 1.0 / 3.0,
        Some(r) if r.get_ref().is_finite() && *r.get_ref() > 0.0 && *r.get_ref() < 1.0 => r.into_inner(),
        Some(r) => {
            return Err(err(
                r.span().start,
                format!("[tls.acme] renew_when_left {} is not between 0 and 1", r.get_ref()),
                "give the fraction of the lifetime left when renewal starts, e.g. 0.333 (a third)",
            ))
        }
    };
    let secs = |v: Option<Spanned<u64>>, key: &str, default: u64| match v {
        None => Ok(Duration::from_secs(default)),
        Some(s) if *s.get_ref() >= 1 => Ok(Duration::from_secs(s.into_inner())),
        Some(s) => Err(err(s.span().start, format!("[tls.acme] {key} is 0"), "give at least 1 (seconds)")),
    };
    let retry_first = secs(raw.retry_first_secs, "retry_first_secs", 60)?;
    let retry_max = secs(raw.retry_max_secs, "retry_max_secs", 6 * 3600)?;
    if retry_max < retry_first {
        return Err(err(
            at,
            format!(
                "[tls.acme] retry_max_secs {} is less than retry_first_secs {}",
                retry_max.as_secs(),
                retry_first.as_secs()
            ),
            "make retry_max_secs at least retry_first_secs: it caps the doubling delays",
        ));
    }
    Ok(Acme {
        directory,
        contact,
        domains,
        ca_file: raw.ca_file.map(|c| crate::absolute(base, c.get_ref())),
        challenge,
        renew_when_left,
        retry_first,
        retry_max,
    })
}

/// The challenge needs a listener the CA can reach: HTTP-01 the public
/// `[http]` one, TLS-ALPN-01 an implicit-TLS `[[listener]]`.
pub(crate) fn check_reachable(
    acme: &Acme,
    http: &crate::http::Http,
    listeners: &[crate::Listener],
    text: &str,
    file: &Path,
    at: usize,
) -> Result<(), ConfigError> {
    let missing = match acme.challenge {
        AcmeChallenge::Http01 if http.address.is_none() => {
            Some(("challenge \"http-01\" needs the public [http] listener, which is disabled", "enable [http] (the CA reaches it on port 80, forwarded or bound there), or use challenge = \"tls-alpn-01\""))
        }
        AcmeChallenge::TlsAlpn01 if !listeners.iter().any(|l| l.tls == crate::TlsMode::Implicit) => Some((
            "challenge \"tls-alpn-01\" needs an implicit-TLS [[listener]], and none is configured",
            "add a listener with tls = \"implicit\" that the CA reaches on port 443, or use challenge = \"http-01\"",
        )),
        _ => None,
    };
    match missing {
        Some((msg, hint)) => Err(ConfigError::at(file, text, at, format!("[tls.acme] {msg}"), hint)),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    fn load(toml: &str) -> Result<crate::Config, String> {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("port25.toml");
        std::fs::write(&p, toml).unwrap();
        crate::load(&p).map_err(|e| e.to_string())
    }

    #[test]
    fn defaults_and_checks() {
        let base = "[tls.acme]\ndirectory = \"https://ca.example/dir\"\ndomains = [\"Mail.Example.net.\", \"mail.example.net\"]\n";
        let c = load(base).unwrap();
        let a = c.acme.unwrap();
        assert_eq!(a.domains, ["mail.example.net"]);
        assert_eq!(a.challenge, super::AcmeChallenge::Http01);
        assert!((a.renew_when_left - 1.0 / 3.0).abs() < 1e-9);
        assert_eq!((a.retry_first.as_secs(), a.retry_max.as_secs()), (60, 21600));
        for (extra, want) in [
            ("contact = [\"postmaster@example.net\"]\n", "not a mailto:"),
            ("renew_when_left = 1.0\n", "between 0 and 1"),
            ("challenge = \"dns-01\"\n", "not supported"),
            ("retry_first_secs = 100\nretry_max_secs = 10\n", "less than"),
        ] {
            let e = load(&format!("{base}{extra}")).unwrap_err();
            assert!(e.contains(want), "{extra}: {e}");
        }
        for (toml, want) in [
            ("[tls.acme]\ndirectory = \"http://ca.example/dir\"\ndomains = [\"a.example\"]\n", "not an https URL"),
            ("[tls.acme]\ndirectory = \"https://ca.example/dir\"\n", "no domains"),
            ("[tls.acme]\ndirectory = \"https://ca.example/dir\"\ndomains = [\"*.example.net\"]\n", "not a host name"),
            ("[tls]\ncertificate = \"a.pem\"\nprivate_key = \"k.pem\"\n[tls.acme]\ndirectory = \"https://c.example/d\"\ndomains = [\"a.example\"]\n", "not both"),
            ("[http]\nenabled = false\n[tls.acme]\ndirectory = \"https://c.example/d\"\ndomains = [\"a.example\"]\n", "needs the public [http]"),
        ] {
            let e = load(toml).unwrap_err();
            assert!(e.contains(want), "{toml}: {e}");
        }
    }
}
