//! `[submission.directory]`: the directory the provider already runs,
//! checking submission logins instead of the SQLite accounts (one per
//! submission service), and asked by the MX whether a recipient exists.
//! `type` chooses the backend; the keys of the other backends are refused,
//! so a typo cannot silently fall back to something else.

use crate::error::ConfigError;
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::time::Duration;
use toml::Spanned;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawDirectory {
    #[serde(rename = "type")]
    kind: Spanned<String>,
    timeout_ms: Option<Spanned<u64>>,
    cache_secs: Option<u64>,
    recipients: Option<bool>,
    // dovecot
    auth_socket: Option<Spanned<String>>,
    userdb_socket: Option<Spanned<String>>,
    service: Option<Spanned<String>>,
    addresses_field: Option<Spanned<String>>,
    // ldap
    url: Option<Spanned<String>>,
    starttls: Option<Spanned<bool>>,
    ca_file: Option<Spanned<String>>,
    bind_dn: Option<Spanned<String>>,
    search_base: Option<Spanned<String>>,
    search_filter: Option<Spanned<String>>,
    service_dn: Option<Spanned<String>>,
    service_password_file: Option<Spanned<String>>,
    address_attributes: Option<Spanned<Vec<String>>>,
    recipient_filter: Option<Spanned<String>>,
    // postgresql
    connection: Option<Spanned<String>>,
    password_file: Option<Spanned<String>>,
    login_query: Option<Spanned<String>>,
    recipient_query: Option<Spanned<String>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Directory {
    pub backend: Backend,
    /// The longest wait for one answer; later is 454 4.7.0.
    pub timeout: Duration,
    /// Verified logins remembered this long (`None`: off); keyed on what
    /// the directory stores for the login, so a password change misses.
    pub cache: Option<Duration>,
    /// The MX asks this directory whether a recipient exists.
    pub recipients: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Backend {
    Dovecot(Dovecot),
    Ldap(Ldap),
    Postgresql(Postgresql),
}

/// A socket: a path (UNIX) or host:port (TCP).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    Unix(PathBuf),
    Tcp(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dovecot {
    /// The auth-client socket (Postfix's smtpd_sasl_path).
    pub auth: Endpoint,
    /// The auth-userdb socket: recipients and addresses (optional).
    pub userdb: Option<Endpoint>,
    pub service: String,
    /// The reply field that lists the addresses a login may send as.
    pub addresses_field: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ldap {
    pub url: String,
    pub starttls: bool,
    pub ca_file: Option<PathBuf>,
    pub login: LdapLogin,
    pub service_dn: Option<String>,
    pub service_password_file: Option<PathBuf>,
    pub address_attributes: Vec<String>,
    /// Finds a recipient (`{address}`, RFC 4515-escaped); needs `search_base`.
    pub recipient_filter: Option<String>,
    pub search_base: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LdapLogin {
    /// Bind as this DN, `{user}` replaced by the login (RFC 4514-escaped).
    Template(String),
    /// Search `search_base` with this filter (`{user}` RFC 4515-escaped)
    /// as the service account, then bind as the one entry found.
    Search { filter: String },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Postgresql {
    /// libpq-style "host=... user=... dbname=..." or a postgresql:// URL.
    pub connection: String,
    pub password_file: Option<PathBuf>,
    /// `$1` is the login; returns the hash and, optionally, the addresses.
    pub login_query: String,
    /// `$1` is the address; any row means it exists.
    pub recipient_query: Option<String>,
}

pub(crate) fn resolve(raw: RawDirectory, text: &str, file: &Path, base: &Path) -> Result<Directory, ConfigError> {
    let err = |offset: usize, msg: String, hint: &str| ConfigError::at(file, text, offset, msg, hint);
    let type_at = raw.kind.span().start;
    let kind = raw.kind.get_ref().as_str();
    // Keys that belong to another backend: refused, naming the one they belong to.
    let dovecot = [
        ("auth_socket", raw.auth_socket.as_ref().map(|s| s.span().start)),
        ("userdb_socket", raw.userdb_socket.as_ref().map(|s| s.span().start)),
        ("service", raw.service.as_ref().map(|s| s.span().start)),
        ("addresses_field", raw.addresses_field.as_ref().map(|s| s.span().start)),
    ];
    let ldap = [
        ("url", raw.url.as_ref().map(|s| s.span().start)),
        ("starttls", raw.starttls.as_ref().map(|s| s.span().start)),
        ("ca_file", raw.ca_file.as_ref().map(|s| s.span().start)),
        ("bind_dn", raw.bind_dn.as_ref().map(|s| s.span().start)),
        ("search_base", raw.search_base.as_ref().map(|s| s.span().start)),
        ("search_filter", raw.search_filter.as_ref().map(|s| s.span().start)),
        ("service_dn", raw.service_dn.as_ref().map(|s| s.span().start)),
        ("service_password_file", raw.service_password_file.as_ref().map(|s| s.span().start)),
        ("address_attributes", raw.address_attributes.as_ref().map(|s| s.span().start)),
        ("recipient_filter", raw.recipient_filter.as_ref().map(|s| s.span().start)),
    ];
    let pg = [
        ("connection", raw.connection.as_ref().map(|s| s.span().start)),
        ("password_file", raw.password_file.as_ref().map(|s| s.span().start)),
        ("login_query", raw.login_query.as_ref().map(|s| s.span().start)),
        ("recipient_query", raw.recipient_query.as_ref().map(|s| s.span().start)),
    ];
    for (owner, keys) in [("dovecot", &dovecot[..]), ("ldap", &ldap[..]), ("postgresql", &pg[..])] {
        if owner == kind {
            continue;
        }
        if let Some((key, Some(at))) = keys.iter().find(|(_, at)| at.is_some()) {
            return Err(err(
                *at,
                format!("{key} belongs to type = \"{owner}\", not type = \"{kind}\""),
                "remove it, or change type",
            ));
        }
    }
    let required = |v: &Option<Spanned<String>>, key: &str, hint: &str| -> Result<String, ConfigError> {
        match v {
            Some(s) if !s.get_ref().trim().is_empty() => Ok(s.get_ref().clone()),
            Some(s) => Err(err(s.span().start, format!("{key} is empty"), hint)),
            None => Err(err(type_at, format!("type = \"{kind}\" needs {key}"), hint)),
        }
    };
    let readable = |v: &Option<Spanned<String>>, key: &str| -> Result<Option<PathBuf>, ConfigError> {
        match v {
            Some(s) => {
                let path = crate::absolute(base, s.get_ref());
                if !path.is_file() {
                    return Err(err(
                        s.span().start,
                        format!("{key} {} is not a readable file", path.display()),
                        "give an existing file, or remove the key",
                    ));
                }
                Ok(Some(path))
            }
            None => Ok(None),
        }
    };
    let endpoint = |s: &str| -> Endpoint {
        if s.starts_with('/') || s.starts_with('.') {
            Endpoint::Unix(crate::absolute(base, s))
        } else {
            Endpoint::Tcp(s.to_owned())
        }
    };
    let backend = match kind {
        "dovecot" => {
            let hint = "the path of Dovecot's auth-client socket (e.g. \"/var/spool/postfix/private/auth\") or host:port of an inet_listener";
            let auth = endpoint(&required(&raw.auth_socket, "auth_socket", hint)?);
            Backend::Dovecot(Dovecot {
                auth,
                userdb: raw.userdb_socket.as_ref().map(|s| endpoint(s.get_ref())),
                service: raw.service.map(|s| s.into_inner()).unwrap_or_else(|| "smtp".into()),
                addresses_field: raw
                    .addresses_field
                    .map(|s| s.into_inner())
                    .unwrap_or_else(|| "port25_addresses".into()),
            })
        }
        "ldap" => {
            let url = required(
                &raw.url,
                "url",
                "e.g. \"ldaps://ldap.example.net\" or \"ldap://127.0.0.1:389\" with starttls = true",
            )?;
            if !(url.starts_with("ldap://") || url.starts_with("ldaps://")) {
                let at = raw.url.as_ref().map(|s| s.span().start).unwrap_or(type_at);
                return Err(err(
                    at,
                    format!("url {url:?} is neither ldap:// nor ldaps://"),
                    "e.g. \"ldaps://ldap.example.net\"",
                ));
            }
            let login = match (&raw.bind_dn, &raw.search_filter) {
                (Some(t), None) => {
                    if !t.get_ref().contains("{user}") {
                        return Err(err(
                            t.span().start,
                            "bind_dn has no {user}".into(),
                            "e.g. \"uid={user},ou=people,dc=example,dc=net\"",
                        ));
                    }
                    LdapLogin::Template(t.get_ref().clone())
                }
                (None, Some(f)) => {
                    if !f.get_ref().contains("{user}") {
                        return Err(err(
                            f.span().start,
                            "search_filter has no {user}".into(),
                            "e.g. \"(&(objectClass=inetOrgPerson)(mail={user}))\"",
                        ));
                    }
                    required(&raw.search_base, "search_base", "the base DN the search_filter searches under")?;
                    LdapLogin::Search { filter: f.get_ref().clone() }
                }
                (Some(t), Some(_)) => {
                    return Err(err(
                        t.span().start,
                        "bind_dn and search_filter are two ways to log in; give one".into(),
                        "keep one of them",
                    ))
                }
                (None, None) => {
                    return Err(err(
                        type_at,
                        "type = \"ldap\" needs bind_dn (a DN template) or search_filter (search, then bind)".into(),
                        "e.g. bind_dn = \"uid={user},ou=people,dc=example,dc=net\"",
                    ))
                }
            };
            if raw.service_dn.is_some() != raw.service_password_file.is_some() {
                let at = raw
                    .service_dn
                    .as_ref()
                    .map(|s| s.span().start)
                    .or(raw.service_password_file.as_ref().map(|s| s.span().start))
                    .unwrap_or(type_at);
                return Err(err(
                    at,
                    "service_dn and service_password_file go together".into(),
                    "give both (the service account and the file with its password), or neither",
                ));
            }
            if let Some(f) = &raw.recipient_filter {
                if !f.get_ref().contains("{address}") {
                    return Err(err(
                        f.span().start,
                        "recipient_filter has no {address}".into(),
                        "e.g. \"(|(mail={address})(mailAlternateAddress={address}))\"",
                    ));
                }
                required(&raw.search_base, "search_base", "the base DN the recipient_filter searches under")?;
            }
            Backend::Ldap(Ldap {
                url,
                starttls: raw.starttls.map(|s| s.into_inner()).unwrap_or(false),
                ca_file: readable(&raw.ca_file, "ca_file")?,
                login,
                service_dn: raw.service_dn.map(|s| s.into_inner()),
                service_password_file: readable(&raw.service_password_file, "service_password_file")?,
                address_attributes: raw
                    .address_attributes
                    .map(|s| s.into_inner())
                    .unwrap_or_else(|| vec!["mail".into(), "mailAlternateAddress".into()]),
                recipient_filter: raw.recipient_filter.map(|s| s.into_inner()),
                search_base: raw.search_base.map(|s| s.into_inner()),
            })
        }
        "postgresql" => {
            let connection = required(&raw.connection, "connection", crate::postgres_connection::EXAMPLE)?;
            if let Some(c) = &raw.connection {
                crate::postgres_connection::check(c)
                    .map_err(|(at, msg)| err(at, msg, crate::postgres_connection::EXAMPLE))?;
            }
            let one_parameter = |v: &Option<Spanned<String>>, key: &str, what: &str| -> Result<(), ConfigError> {
                if let Some(q) = v {
                    let uses = |n: u32| q.get_ref().contains(&format!("${n}"));
                    if !uses(1) || uses(2) {
                        return Err(err(
                            q.span().start,
                            format!("{key} must use exactly one bound parameter, $1 ({what})"),
                            "values are never pasted into a query: write $1 where the value goes",
                        ));
                    }
                }
                Ok(())
            };
            let login_query = required(
                &raw.login_query,
                "login_query",
                "e.g. \"SELECT password, addresses FROM users WHERE login = $1\"",
            )?;
            one_parameter(&raw.login_query, "login_query", "the login")?;
            one_parameter(&raw.recipient_query, "recipient_query", "the address")?;
            Backend::Postgresql(Postgresql {
                connection,
                password_file: readable(&raw.password_file, "password_file")?,
                login_query,
                recipient_query: raw.recipient_query.map(|s| s.into_inner()),
            })
        }
        other => return Err(err(
            type_at,
            format!("directory type {other:?} is not known"),
            "type = \"dovecot\", \"ldap\" or \"postgresql\" (or remove [submission.directory] for the SQLite accounts)",
        )),
    };
    let timeout = match raw.timeout_ms {
        Some(t) if *t.get_ref() == 0 => {
            return Err(err(t.span().start, "timeout_ms must be at least 1".into(), "remove it for the default (3000)"))
        }
        Some(t) => Duration::from_millis(t.into_inner()),
        None => Duration::from_millis(3000),
    };
    Ok(Directory {
        backend,
        timeout,
        cache: match raw.cache_secs.unwrap_or(60) {
            0 => None,
            s => Some(Duration::from_secs(s)),
        },
        recipients: raw.recipients.unwrap_or(true),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<crate::Config, ConfigError> {
        crate::parse(text, Path::new("/etc/port25.toml"), Path::new("/etc"))
    }

    #[test]
    fn each_backend_and_its_mistakes() {
        let c = parse("[submission.directory]\ntype = \"dovecot\"\nauth_socket = \"/run/dovecot/auth-client\"\nuserdb_socket = \"127.0.0.1:12345\"\n").unwrap();
        let d = c.submission.directory.unwrap();
        assert_eq!(d.timeout, Duration::from_secs(3));
        assert_eq!(d.cache, Some(Duration::from_secs(60)));
        let Backend::Dovecot(dv) = d.backend else { panic!() };
        assert_eq!(dv.auth, Endpoint::Unix("/run/dovecot/auth-client".into()));
        assert_eq!(dv.userdb, Some(Endpoint::Tcp("127.0.0.1:12345".into())));
        assert_eq!((dv.service.as_str(), dv.addresses_field.as_str()), ("smtp", "port25_addresses"));

        let e = parse("[submission.directory]\ntype = \"dovecot\"\nauth_socket = \"/x\"\nurl = \"ldap://x\"\n")
            .unwrap_err();
        assert_eq!(e.line, 4);
        assert!(e.message.contains("url belongs to type = \"ldap\""), "{e}");
        let e = parse("[submission.directory]\ntype = \"dovecot\"\n").unwrap_err();
        assert!(e.message.contains("needs auth_socket"), "{e}");
        let e = parse("[submission.directory]\ntype = \"mysql\"\n").unwrap_err();
        assert_eq!(e.line, 2);

        let c = parse("[submission.directory]\ntype = \"ldap\"\nurl = \"ldap://127.0.0.1:389\"\nbind_dn = \"uid={user},ou=people,dc=x\"\n").unwrap();
        assert!(matches!(
            c.submission.directory.unwrap().backend,
            Backend::Ldap(Ldap { login: LdapLogin::Template(_), .. })
        ));
        let e =
            parse("[submission.directory]\ntype = \"ldap\"\nurl = \"ldap://x\"\nsearch_filter = \"(uid={user})\"\n")
                .unwrap_err();
        assert!(e.message.contains("search_base"), "{e}");
        let e = parse("[submission.directory]\ntype = \"ldap\"\nurl = \"ldap://x\"\nbind_dn = \"uid=alice,dc=x\"\n")
            .unwrap_err();
        assert!(e.message.contains("no {user}"), "{e}");

        let ok = "[submission.directory]\ntype = \"postgresql\"\nconnection = \"host=/tmp\"\nlogin_query = \"SELECT password FROM users WHERE login = $1\"\n";
        assert!(parse(ok).is_ok());
        let e = parse(
            "[submission.directory]\ntype = \"postgresql\"\nconnection = \"host=/tmp\"\nlogin_query = \"SELECT password FROM users WHERE login = '{user}'\"\n",
        )
        .unwrap_err();
        assert_eq!(e.line, 4);
        assert!(e.message.contains("exactly one bound parameter"), "{e}");
        let e = parse(&format!("{ok}timeout_ms = 0\n")).unwrap_err();
        assert_eq!(e.line, 5);
    }
}
