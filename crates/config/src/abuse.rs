//! The `[abuse]` section: the abuse desk (docs/abuse.md): the trace index
//! and its retention, the compromised-account signals' thresholds and
//! actions, the abuse mailbox and who is told of holds and locks.

use crate::error::ConfigError;
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::time::Duration;
use toml::Spanned;

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawAbuse {
    enabled: Option<bool>,
    retention_days: Option<Spanned<u64>>,
    mailbox: Option<String>,
    enrichment: Option<Vec<String>>,
    notify: Option<Spanned<String>>,
    lock_text: Option<Spanned<String>>,
    recipients_per_day: Option<u64>,
    messages_per_day: Option<u64>,
    jump_factor: Option<Spanned<f64>>,
    complaints_per_day: Option<Spanned<u64>>,
    bounces_per_day: Option<Spanned<u64>>,
    reports_per_reporter_per_hour: Option<Spanned<u32>>,
    on_complaints: Option<Spanned<String>>,
    on_volume: Option<Spanned<String>>,
    on_new_network: Option<Spanned<String>>,
    on_new_asn: Option<Spanned<String>>,
    on_new_country: Option<Spanned<String>>,
    on_bounces: Option<Spanned<String>>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Abuse {
    /// Keep the trace index and watch logins (default true).
    pub enabled: bool,
    pub retention: Duration,
    /// A Maildir or mbox of abuse reports, read continuously.
    pub mailbox: Option<PathBuf>,
    /// mmdb / pfx2as / IP-range files: country and ASN of a login's address.
    pub enrichment: Vec<PathBuf>,
    pub notify: Option<String>,
    pub lock_text: String,
    pub recipients_per_day: u64,
    pub messages_per_day: u64,
    pub jump_factor: f64,
    pub complaints_per_day: u64,
    pub bounces_per_day: u64,
    pub reports_per_reporter_per_hour: u32,
    /// Actions ("tag", "hold", "lock") per signal.
    pub on_complaints: String,
    pub on_volume: String,
    pub on_new_network: String,
    pub on_new_asn: String,
    pub on_new_country: String,
    pub on_bounces: String,
}

// Config derives Eq; jump_factor is checked finite and positive.
impl Eq for Abuse {}

pub const DEFAULT_LOCK_TEXT: &str =
    "This account is locked after signs that it was misused; contact your provider's support to unlock it";

pub(crate) fn resolve(raw: RawAbuse, text: &str, file: &Path, base: &Path) -> Result<Abuse, ConfigError> {
    let err = |offset: usize, msg: String, hint: &str| ConfigError::at(file, text, offset, msg, hint);
    let action = |v: Option<Spanned<String>>, key: &str, default: &str| -> Result<String, ConfigError> {
        match v {
            None => Ok(default.to_owned()),
            Some(v) if ["tag", "hold", "lock"].contains(&v.get_ref().as_str()) => Ok(v.into_inner()),
            Some(v) => Err(err(
                v.span().start,
                format!("[abuse] {key} = {:?} is not an action", v.get_ref()),
                "use \"tag\", \"hold\" or \"lock\"",
            )),
        }
    };
    let positive = |v: Option<Spanned<u64>>, key: &str, default: u64| -> Result<u64, ConfigError> {
        match v {
            Some(v) if *v.get_ref() == 0 => {
                Err(err(v.span().start, format!("[abuse] {key} must be at least 1"), "remove the key for the default"))
            }
            Some(v) => Ok(v.into_inner()),
            None => Ok(default),
        }
    };
    let jump_factor = match raw.jump_factor {
        Some(j) if !(j.get_ref().is_finite() && *j.get_ref() >= 1.0) => {
            return Err(err(
                j.span().start,
                format!("[abuse] jump_factor {} must be a number of at least 1", j.get_ref()),
                "e.g. 10.0: ten times the login's own daily average",
            ))
        }
        Some(j) => j.into_inner(),
        None => 10.0,
    };
    // "" is the documented default: nobody is told (as mailbox = "").
    let notify = raw.notify.filter(|n| !n.get_ref().is_empty());
    if let Some(n) = &notify {
        let ok = n.get_ref().split_once('@').is_some_and(|(l, d)| !l.is_empty() && crate::model::valid_domain(d));
        if !ok {
            return Err(err(
                n.span().start,
                format!("[abuse] notify {:?} is not an address", n.get_ref()),
                "write e.g. \"abuse-desk@example.net\"",
            ));
        }
    }
    let lock_text = match raw.lock_text {
        Some(t) if t.get_ref().is_empty() || t.get_ref().chars().any(|c| c.is_control()) || t.get_ref().len() > 400 => {
            return Err(err(
                t.span().start,
                "[abuse] lock_text must be one line of at most 400 characters".into(),
                "say how to get help, e.g. \"call support at +1 555 0100\"",
            ))
        }
        Some(t) => t.into_inner(),
        None => DEFAULT_LOCK_TEXT.into(),
    };
    let reports = match raw.reports_per_reporter_per_hour {
        Some(r) if *r.get_ref() == 0 => {
            return Err(err(
                r.span().start,
                "[abuse] reports_per_reporter_per_hour must be at least 1".into(),
                "remove the key for the default (60)",
            ))
        }
        Some(r) => r.into_inner(),
        None => 60,
    };
    Ok(Abuse {
        enabled: raw.enabled.unwrap_or(true),
        retention: Duration::from_secs(positive(raw.retention_days, "retention_days", 90)? * 86400),
        mailbox: raw.mailbox.filter(|m| !m.is_empty()).map(|m| crate::absolute(base, &m)),
        enrichment: raw.enrichment.unwrap_or_default().iter().map(|p| crate::absolute(base, p)).collect(),
        notify: notify.map(|n| n.into_inner().to_lowercase()),
        lock_text,
        recipients_per_day: raw.recipients_per_day.unwrap_or(300),
        messages_per_day: raw.messages_per_day.unwrap_or(300),
        jump_factor,
        complaints_per_day: positive(raw.complaints_per_day, "complaints_per_day", 3)?,
        bounces_per_day: positive(raw.bounces_per_day, "bounces_per_day", 50)?,
        reports_per_reporter_per_hour: reports,
        on_complaints: action(raw.on_complaints, "on_complaints", "lock")?,
        on_volume: action(raw.on_volume, "on_volume", "hold")?,
        on_new_network: action(raw.on_new_network, "on_new_network", "tag")?,
        on_new_asn: action(raw.on_new_asn, "on_new_asn", "tag")?,
        on_new_country: action(raw.on_new_country, "on_new_country", "tag")?,
        on_bounces: action(raw.on_bounces, "on_bounces", "hold")?,
    })
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    #[test]
    fn defaults_and_bad_values_named_with_their_line() {
        let c = crate::parse("", Path::new("t.toml"), Path::new("/etc")).unwrap();
        assert!(c.abuse.enabled);
        assert_eq!((c.abuse.on_complaints.as_str(), c.abuse.on_volume.as_str()), ("lock", "hold"));
        let c = crate::parse(
            "[abuse]\nmailbox = \"abuse/Maildir\"\non_new_country = \"lock\"\n",
            Path::new("t.toml"),
            Path::new("/etc"),
        )
        .unwrap();
        assert_eq!(c.abuse.mailbox.as_deref(), Some(Path::new("/etc/abuse/Maildir")));
        assert_eq!(c.abuse.on_new_country, "lock");
        for (bad, want) in [
            ("[abuse]\non_volume = \"ban\"\n", "t.toml:2:13: [abuse] on_volume = \"ban\" is not an action"),
            ("[abuse]\nnotify = \"nobody\"\n", "not an address"),
            ("[abuse]\njump_factor = 0.5\n", "at least 1"),
            ("[abuse]\nretention_days = 0\n", "at least 1"),
            ("[abuse]\nlock_text = \"a\\nb\"\n", "one line"),
        ] {
            let e = crate::parse(bad, Path::new("t.toml"), Path::new("/etc")).unwrap_err().to_string();
            assert!(e.contains(want), "{bad:?}: {e}");
        }
    }
}
