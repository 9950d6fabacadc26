//! `[submission.shared]`: the state several nodes behind one name share
//! (brute-force locks, sending limits, session caps, migration usage), in
//! Redis or PostgreSQL. Without the section each node keeps its own (one
//! node).

use crate::error::ConfigError;
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::time::Duration;
use toml::Spanned;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawShared {
    backend: Option<Spanned<String>>,
    redis: Option<Spanned<String>>,
    connection: Option<Spanned<String>>,
    password_file: Option<Spanned<String>>,
    on_unreachable: Option<Spanned<String>>,
    pool: Option<Spanned<u32>>,
    timeout_ms: Option<Spanned<u64>>,
    prefix: Option<String>,
}

/// What a node does when the shared store does not answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnUnreachable {
    /// AUTH and MAIL get 454 4.7.0 (limits never exceeded).
    FailClosed,
    /// Each node decides with its own counters, with a loud event.
    Local,
}

/// Where the shared state is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Store {
    /// `redis://[user:password@]host:port/db`
    Redis(String),
    /// A libpq-style connection string (or a postgresql:// URL), and the
    /// file holding the password if any; absent in the section, the
    /// `[submission.directory]` PostgreSQL's.
    Postgresql { connection: String, password_file: Option<PathBuf> },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shared {
    pub store: Store,
    pub on_unreachable: OnUnreachable,
    /// Connections to the store per node (1 to 64).
    pub pool: u32,
    /// Per command; a slower answer counts as unreachable.
    pub timeout: Duration,
    /// Every key starts with it (in PostgreSQL: every key and usage row
    /// carries it).
    pub prefix: String,
}

pub(crate) fn resolve(
    raw: RawShared,
    directory: Option<&crate::directory::Directory>,
    text: &str,
    file: &Path,
    base: &Path,
) -> Result<Shared, ConfigError> {
    let err = |offset: usize, msg: String, hint: &str| ConfigError::at(file, text, offset, msg, hint);
    let kind = match &raw.backend {
        Some(b) => (b.get_ref().as_str(), b.span().start),
        None => ("redis", raw.redis.as_ref().map(|r| r.span().start).unwrap_or(0)),
    };
    let store =
        match kind {
            ("redis", at) => {
                if let Some(k) = raw.connection.as_ref().or(raw.password_file.as_ref()) {
                    return Err(err(
                        k.span().start,
                        "connection and password_file are for backend = \"postgresql\"".into(),
                        "remove them, or write backend = \"postgresql\"",
                    ));
                }
                let Some(redis) = &raw.redis else {
                    return Err(err(
                        at,
                        "[submission.shared] needs redis (or backend = \"postgresql\")".into(),
                        "write e.g. redis = \"redis://127.0.0.1:6379/0\"",
                    ));
                };
                let url = redis.get_ref();
                if !url.starts_with("redis://")
                    || url.len() <= "redis://".len()
                    || url.chars().any(|c| c.is_whitespace() || c.is_control())
                {
                    return Err(err(
                        redis.span().start,
                        format!("redis {url:?} is not a redis:// URL"),
                        "write e.g. \"redis://127.0.0.1:6379/0\"",
                    ));
                }
                Store::Redis(url.clone())
            }
            ("postgresql", at) => {
                if let Some(r) = &raw.redis {
                    return Err(err(
                        r.span().start,
                        "redis is for backend = \"redis\"".into(),
                        "remove it; backend = \"postgresql\" takes connection",
                    ));
                }
                let password_file = match &raw.password_file {
                    Some(p) => {
                        let path = crate::absolute(base, p.get_ref());
                        if !path.is_file() {
                            return Err(err(
                                p.span().start,
                                format!("password_file {} is not a readable file", path.display()),
                                "give an existing file, or remove the key",
                            ));
                        }
                        Some(path)
                    }
                    None => None,
                };
                match (&raw.connection, directory.map(|d| &d.backend)) {
                    (Some(c), _) => {
                        crate::postgres_connection::check(c)
                            .map_err(|(at, msg)| err(at, msg, crate::postgres_connection::EXAMPLE))?;
                        Store::Postgresql { connection: c.get_ref().clone(), password_file }
                    }
                    (None, Some(crate::directory::Backend::Postgresql(d))) => Store::Postgresql {
                        connection: d.connection.clone(),
                        password_file: password_file.or_else(|| d.password_file.clone()),
                    },
                    (None, _) => return Err(err(
                        at,
                        "backend = \"postgresql\" needs connection (or [submission.directory] type = \"postgresql\")"
                            .into(),
                        "write e.g. connection = \"host=/run/postgresql user=port25 dbname=mail\"",
                    )),
                }
            }
            (other, at) => {
                return Err(err(at, format!("backend {other:?} is not known"), "write \"redis\" or \"postgresql\""))
            }
        };
    let on_unreachable =
        match raw.on_unreachable {
            None => OnUnreachable::FailClosed,
            Some(s) => match s.get_ref().as_str() {
                "fail_closed" => OnUnreachable::FailClosed,
                "local" => OnUnreachable::Local,
                other => return Err(err(
                    s.span().start,
                    format!("on_unreachable {other:?} is not known"),
                    "write \"fail_closed\" (454 while the store is down) or \"local\" (each node alone, with an event)",
                )),
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
    Ok(Shared { store, on_unreachable, pool, timeout, prefix: raw.prefix.unwrap_or_else(|| "port25:".into()) })
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

    #[test]
    fn postgresql_takes_its_connection_or_the_directorys() {
        use super::Store;
        let c =
            parse("[submission.shared]\nbackend = \"postgresql\"\nconnection = \"host=/run/postgresql dbname=mail\"\n")
                .unwrap();
        assert_eq!(
            c.submission.shared.unwrap().store,
            Store::Postgresql { connection: "host=/run/postgresql dbname=mail".into(), password_file: None }
        );
        let c = parse(
            "[submission.directory]\ntype = \"postgresql\"\nconnection = \"host=db user=port25\"\n\
             login_query = \"SELECT password FROM users WHERE login = $1\"\n\
             [submission.shared]\nbackend = \"postgresql\"\non_unreachable = \"local\"\n",
        )
        .unwrap();
        let s = c.submission.shared.unwrap();
        assert_eq!(s.store, Store::Postgresql { connection: "host=db user=port25".into(), password_file: None });
        assert_eq!(s.on_unreachable, OnUnreachable::Local);
        for (bad, line) in [
            ("[submission.shared]\nbackend = \"postgresql\"\n", 2),
            ("[submission.shared]\nbackend = \"postgresql\"\nredis = \"redis://x\"\n", 3),
            ("[submission.shared]\nbackend = \"postgresql\"\nconnection = \"\"\n", 3),
            (
                "[submission.shared]\nbackend = \"postgresql\"\nconnection = \"h\"\npassword_file = \"/nonexistent\"\n",
                4,
            ),
            ("[submission.shared]\nredis = \"redis://x\"\nconnection = \"host=db\"\n", 3),
            ("[submission.shared]\nbackend = \"mysql\"\n", 2),
        ] {
            assert_eq!(parse(bad).unwrap_err().line, line, "{bad}");
        }
    }
}
