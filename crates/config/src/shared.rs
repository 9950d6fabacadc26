//! `[submission.shared]`: the state several nodes behind one name share
//! (brute-force locks, sending limits, session caps, migration usage), in
//! Redis. Without the section each node keeps its own (one node).

use crate::error::ConfigError;
use serde::Deserialize;
use std::path::Path;
use std::time::Duration;
use toml::Spanned;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawShared {
    redis: Spanned<String>,
    on_unreachable: Option<Spanned<String>>,
    pool: Option<Spanned<u32>>,
    timeout_ms: Option<Spanned<u64>>,
    prefix: Option<String>,
}

/// What a node does when Redis does not answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnUnreachable {
    /// AUTH and MAIL get 454 4.7.0 (limits never exceeded).
    FailClosed,
    /// Each node decides with its own counters, with a loud event.
    Local,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shared {
    /// `redis://[user:password@]host:port/db`
    pub redis: String,
    pub on_unreachable: OnUnreachable,
    /// Connections to Redis per node (1 to 64).
    pub pool: u32,
    /// Per command; a slower answer counts as unreachable.
    pub timeout: Duration,
    /// Every key starts with it.
    pub prefix: String,
}

pub(crate) fn resolve(raw: RawShared, text: &str, file: &Path) -> Result<Shared, ConfigError> {
    let err = |offset: usize, msg: String, hint: &str| ConfigError::at(file, text, offset, msg, hint);
    let url = raw.redis.get_ref();
    if !url.starts_with("redis://")
        || url.len() <= "redis://".len()
        || url.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(err(
            raw.redis.span().start,
            format!("redis {url:?} is not a redis:// URL"),
            "write e.g. \"redis://127.0.0.1:6379/0\"",
        ));
    }
    let on_unreachable = match raw.on_unreachable {
        None => OnUnreachable::FailClosed,
        Some(s) => match s.get_ref().as_str() {
            "fail_closed" => OnUnreachable::FailClosed,
            "local" => OnUnreachable::Local,
            other => {
                return Err(err(
                    s.span().start,
                    format!("on_unreachable {other:?} is not known"),
                    "write \"fail_closed\" (454 while Redis is down) or \"local\" (each node alone, with an event)",
                ))
            }
        },
    };
    let pool = match raw.pool {
        Some(p) if !(1..=64).contains(p.get_ref()) => {
            return Err(err(p.span().start, "pool must be 1 to 64".into(), "remove the key for the default (4)"))
        }
        Some(p) => p.into_inner(),
        None => 4,
    };
    let timeout = match raw.timeout_ms {
        Some(t) if !(1..=10_000).contains(t.get_ref()) => {
            return Err(err(
                t.span().start,
                "timeout_ms must be 1 to 10000".into(),
                "remove the key for the default (250)",
            ))
        }
        Some(t) => Duration::from_millis(t.into_inner()),
        None => Duration::from_millis(250),
    };
    Ok(Shared {
        redis: url.clone(),
        on_unreachable,
        pool,
        timeout,
        prefix: raw.prefix.unwrap_or_else(|| "port25:".into()),
    })
}

#[cfg(test)]
mod tests {
    use super::OnUnreachable;
    use std::path::Path;

    fn parse(s: &str) -> Result<crate::Config, crate::ConfigError> {
        crate::parse(s, Path::new("/etc/port25.toml"), Path::new("/etc"))
    }

    #[test]
    fn shared_state_is_checked() {
        let c = parse("[submission.shared]\nredis = \"redis://127.0.0.1:6379/0\"\n").unwrap();
        let s = c.submission.shared.unwrap();
        assert_eq!(
            (s.on_unreachable, s.pool, s.timeout.as_millis(), s.prefix.as_str()),
            (OnUnreachable::FailClosed, 4, 250, "port25:")
        );
        let c = parse("[submission.shared]\nredis = \"redis://r:6379/1\"\non_unreachable = \"local\"\n").unwrap();
        assert_eq!(c.submission.shared.unwrap().on_unreachable, OnUnreachable::Local);
        assert!(parse("[submission]\n").unwrap().submission.shared.is_none());
        for (bad, line) in [
            ("[submission.shared]\nredis = \"http://x\"\n", 2),
            ("[submission.shared]\nredis = \"redis://x\"\non_unreachable = \"open\"\n", 3),
            ("[submission.shared]\nredis = \"redis://x\"\npool = 0\n", 3),
            ("[submission.shared]\nredis = \"redis://x\"\ntimeout_ms = 0\n", 3),
        ] {
            assert_eq!(parse(bad).unwrap_err().line, line, "{bad}");
        }
        assert!(parse("[submission.shared]\non_unreachable = \"local\"\n").is_err(), "redis is required");
    }
}
