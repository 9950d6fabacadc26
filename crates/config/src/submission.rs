//! The `[submission]` section: the account store, the password cache,
//! brute-force limits, sending limits and trusted device networks. Every
//! key has a default, so a file without the section runs submission with
//! sane limits.

use crate::error::ConfigError;
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::time::Duration;
use toml::Spanned;

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSubmission {
    accounts: Option<String>,
    password_cache_secs: Option<u64>,
    trusted_networks: Option<Vec<Spanned<String>>>,
    device_ca: Option<Spanned<String>>,
    messages_per_hour: Option<u32>,
    messages_per_day: Option<u32>,
    recipients_per_hour: Option<u32>,
    recipients_per_day: Option<u32>,
    recipients_per_message: Option<u32>,
    auth_failure_window_secs: Option<u64>,
    auth_slow_after: Option<u32>,
    auth_delay_step_ms: Option<u64>,
    auth_max_delay_ms: Option<u64>,
    auth_address_lock_after: Option<Spanned<u32>>,
    auth_login_lock_after: Option<Spanned<u32>>,
    auth_lockout_secs: Option<u64>,
    auth_known_device_days: Option<u64>,
    auth_concurrent_checks: Option<Spanned<u32>>,
    auth_check_wait_ms: Option<u64>,
    auth_in_flight_per_address: Option<Spanned<u32>>,
    max_sessions_per_login: Option<Spanned<u32>>,
    directory: Option<crate::directory::RawDirectory>,
    shared: Option<crate::shared::RawShared>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Submission {
    /// The SQLite account database.
    pub accounts: PathBuf,
    /// `None`: the verified-password cache is off.
    pub password_cache: Option<Duration>,
    pub trusted_networks: Vec<ipnet::IpNet>,
    /// PEM CA whose client certificates identify devices (off: `None`).
    pub device_ca: Option<PathBuf>,
    pub messages_per_hour: u32,
    pub messages_per_day: u32,
    pub recipients_per_hour: u32,
    pub recipients_per_day: u32,
    pub recipients_per_message: u32,
    pub auth_failure_window: Duration,
    pub auth_slow_after: u32,
    pub auth_delay_step: Duration,
    pub auth_max_delay: Duration,
    pub auth_address_lock_after: u32,
    pub auth_login_lock_after: u32,
    pub auth_lockout: Duration,
    pub auth_known_device: Duration,
    /// Password checks (argon2id, 19 MiB each) running at once, for SMTP
    /// AUTH and the dashboard together.
    pub auth_concurrent_checks: u32,
    /// How long a login waits for a free check before 454 4.7.0.
    pub auth_check_wait: Duration,
    /// Logins in progress at once per client address (IPv6: its /64).
    pub auth_in_flight_per_address: u32,
    /// Authenticated sessions one login may hold at once.
    pub max_sessions_per_login: u32,
    /// Logins checked by a directory the provider runs instead of the
    /// SQLite accounts (`[submission.directory]`).
    pub directory: Option<crate::directory::Directory>,
    /// State shared with other nodes (`[submission.shared]`); `None`: this
    /// node's own.
    pub shared: Option<crate::shared::Shared>,
}

pub(crate) fn resolve(
    raw: RawSubmission,
    text: &str,
    file: &Path,
    base: &Path,
    data_dir: &Path,
) -> Result<Submission, ConfigError> {
    let err = |offset: usize, msg: String, hint: &str| ConfigError::at(file, text, offset, msg, hint);
    let mut trusted_networks = Vec::new();
    for n in raw.trusted_networks.unwrap_or_default() {
        match crate::model::network(n.get_ref()) {
            Some(net) => trusted_networks.push(net),
            None => {
                return Err(err(
                    n.span().start,
                    format!("trusted network {:?} is not an address or a prefix", n.get_ref()),
                    "write e.g. \"192.0.2.0/28\" or \"2001:db8:5::/64\"",
                ))
            }
        }
    }
    let lock = |v: Option<Spanned<u32>>, default: u32, key: &str| -> Result<u32, ConfigError> {
        match v {
            Some(s) if *s.get_ref() == 0 => Err(err(
                s.span().start,
                format!("{key} must be at least 1"),
                "remove the key for the default, or give the number of failures that starts a lockout",
            )),
            Some(s) => Ok(s.into_inner()),
            None => Ok(default),
        }
    };
    let at_least_one = |v: Option<Spanned<u32>>, default: u32, key: &str| -> Result<u32, ConfigError> {
        match v {
            Some(s) if *s.get_ref() == 0 => {
                Err(err(s.span().start, format!("{key} must be at least 1"), "remove the key for the default"))
            }
            Some(s) => Ok(s.into_inner()),
            None => Ok(default),
        }
    };
    let directory = match raw.directory {
        Some(d) => Some(crate::directory::resolve(d, text, file, base)?),
        None => None,
    };
    Ok(Submission {
        accounts: match raw.accounts {
            Some(p) => crate::absolute(base, &p),
            None => data_dir.join("accounts.db"),
        },
        password_cache: match raw.password_cache_secs.unwrap_or(3600) {
            0 => None,
            s => Some(Duration::from_secs(s)),
        },
        trusted_networks,
        device_ca: match raw.device_ca {
            Some(p) => {
                let path = crate::absolute(base, p.get_ref());
                if !path.is_file() {
                    let hint = "give the PEM file of the CA that signs your devices' certificates, or remove device_ca";
                    return Err(err(
                        p.span().start,
                        format!("device_ca {} is not a readable file", path.display()),
                        hint,
                    ));
                }
                Some(path)
            }
            None => None,
        },
        messages_per_hour: raw.messages_per_hour.unwrap_or(200),
        messages_per_day: raw.messages_per_day.unwrap_or(1000),
        recipients_per_hour: raw.recipients_per_hour.unwrap_or(500),
        recipients_per_day: raw.recipients_per_day.unwrap_or(2000),
        recipients_per_message: raw.recipients_per_message.unwrap_or(100),
        auth_failure_window: Duration::from_secs(raw.auth_failure_window_secs.unwrap_or(900)),
        auth_slow_after: raw.auth_slow_after.unwrap_or(3),
        auth_delay_step: Duration::from_millis(raw.auth_delay_step_ms.unwrap_or(1000)),
        auth_max_delay: Duration::from_millis(raw.auth_max_delay_ms.unwrap_or(5000)),
        auth_address_lock_after: lock(raw.auth_address_lock_after, 20, "auth_address_lock_after")?,
        auth_login_lock_after: lock(raw.auth_login_lock_after, 10, "auth_login_lock_after")?,
        auth_lockout: Duration::from_secs(raw.auth_lockout_secs.unwrap_or(900)),
        auth_known_device: Duration::from_secs(raw.auth_known_device_days.unwrap_or(30) * 86400),
        auth_concurrent_checks: at_least_one(raw.auth_concurrent_checks, 4, "auth_concurrent_checks")?,
        auth_check_wait: Duration::from_millis(raw.auth_check_wait_ms.unwrap_or(5000)),
        auth_in_flight_per_address: at_least_one(raw.auth_in_flight_per_address, 8, "auth_in_flight_per_address")?,
        max_sessions_per_login: at_least_one(raw.max_sessions_per_login, 10, "max_sessions_per_login")?,
        shared: match raw.shared {
            Some(s) => Some(crate::shared::resolve(s, directory.as_ref(), text, file, base)?),
            None => None,
        },
        directory,
    })
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    #[test]
    fn device_ca_must_exist() {
        let e = crate::parse(
            "[submission]\ndevice_ca = \"/nonexistent/ca.pem\"\n",
            Path::new("/etc/port25.toml"),
            Path::new("/etc"),
        )
        .unwrap_err();
        assert_eq!(e.line, 2);
        assert!(e.message.contains("not a readable file"), "{e}");
        let c =
            crate::parse("[submission]\npassword_cache_secs = 0\n", Path::new("/etc/port25.toml"), Path::new("/etc"))
                .unwrap();
        assert_eq!((c.submission.password_cache, &c.submission.device_ca), (None, &None));
        let c = &c.submission;
        assert_eq!((c.auth_concurrent_checks, c.auth_in_flight_per_address, c.max_sessions_per_login), (4, 8, 10));
        let e = crate::parse(
            "[submission]\n\nmax_sessions_per_login = 0\n",
            Path::new("/etc/port25.toml"),
            Path::new("/etc"),
        )
        .unwrap_err();
        assert_eq!(e.line, 3, "{e}");
    }
}
