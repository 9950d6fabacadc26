//! LDAP: a login is right when the directory accepts a simple bind as the
//! user, found either by a DN template (`bind_dn = "uid={user},ou=people,
//! dc=example,dc=net"`, the login RFC 4514-escaped) or by a search as a
//! service account (`search_filter`, the login RFC 4515-escaped, exactly
//! one entry) followed by a bind as the entry found. The addresses the
//! login may send as are the values of `address_attributes` (default
//! `mail`, `mailAlternateAddress`) of its entry. TLS: `ldaps://`, or
//! `starttls = true`; `ca_file` to trust a private CA.
//!
//! An empty password is refused before any bind (an empty simple bind is
//! an anonymous one, which servers accept: RFC 4513 §5.1.2). The cache
//! (search mode only) is keyed on the entry's DN and its `entryCSN` and
//! `modifyTimestamp`, which change with the password.

use crate::escape::{dn_value, fill, filter_value};
use ldap3::{LdapConnAsync, LdapConnSettings, LdapError, Scope, SearchEntry};
use port25_accounts::cache::VerifiedCache;
use port25_accounts::remote::{Checked, Credentials, Pending, RemoteDirectory, Unavailable};
use port25_config::{Ldap as Config, LdapLogin};
use std::sync::Arc;
use std::time::Duration;

/// The result code of a bind with a wrong password or an unknown DN.
const INVALID_CREDENTIALS: u32 = 49;
/// The attributes whose values change when the entry (its password) does.
const STAMP: [&str; 2] = ["entryCSN", "modifyTimestamp"];

pub struct Ldap {
    config: Config,
    timeout: Duration,
    service_password: Option<String>,
    tls: Option<Arc<rustls::ClientConfig>>,
    cache: Option<VerifiedCache>,
}

fn failed(what: &str, e: LdapError) -> Unavailable {
    format!("{what}: {e}")
}

impl Ldap {
    pub fn new(config: Config, timeout: Duration, cache: Option<Duration>) -> Result<Ldap, String> {
        let service_password = match &config.service_password_file {
            Some(p) => Some(
                std::fs::read_to_string(p)
                    .map_err(|e| format!("{}: {e}", p.display()))?
                    .trim_end_matches(['\r', '\n'])
                    .to_owned(),
            ),
            None => None,
        };
        let tls = match &config.ca_file {
            Some(p) => Some(client_tls(p)?),
            None => None,
        };
        let cache = match config.login {
            LdapLogin::Search { .. } => cache.map(|ttl| VerifiedCache::new(ttl, 100_000)),
            LdapLogin::Template(_) => None,
        };
        Ok(Ldap { config, timeout, service_password, tls, cache })
    }

    async fn connect(&self) -> Result<ldap3::Ldap, Unavailable> {
        let mut settings = LdapConnSettings::new().set_conn_timeout(self.timeout).set_starttls(self.config.starttls);
        if let Some(tls) = &self.tls {
            settings = settings.set_config(tls.clone());
        }
        let (conn, mut ldap) = LdapConnAsync::with_settings(settings, &self.config.url)
            .await
            .map_err(|e| failed(&format!("cannot connect to {}", self.config.url), e))?;
        ldap3::drive!(conn);
        ldap.with_timeout(self.timeout);
        Ok(ldap)
    }

    /// Binds as the service account, when one is configured.
    async fn service_bind(&self, ldap: &mut ldap3::Ldap) -> Result<(), Unavailable> {
        if let (Some(dn), Some(pw)) = (&self.config.service_dn, &self.service_password) {
            ldap.simple_bind(dn, pw)
                .await
                .map_err(|e| failed("service bind", e))?
                .success()
                .map_err(|e| failed("service bind", e))?;
        }
        Ok(())
    }

    fn attributes(&self) -> Vec<&str> {
        self.config.address_attributes.iter().map(String::as_str).chain(STAMP).collect()
    }

    fn addresses(&self, entry: &SearchEntry) -> Vec<String> {
        let wanted = |name: &str| self.config.address_attributes.iter().any(|a| a.eq_ignore_ascii_case(name));
        crate::addresses(entry.attrs.iter().filter(|(k, _)| wanted(k)).flat_map(|(_, v)| v.iter().map(String::as_str)))
    }

    /// A bind as `dn`: `Ok(false)` for a wrong password (or no such DN).
    async fn bind(ldap: &mut ldap3::Ldap, dn: &str, password: &str) -> Result<bool, Unavailable> {
        let result = ldap.simple_bind(dn, password).await.map_err(|e| failed("bind", e))?;
        match result.rc {
            0 => Ok(true),
            INVALID_CREDENTIALS => Ok(false),
            rc => Err(format!("bind: result code {rc} ({})", result.text)),
        }
    }

    async fn check(&self, c: Credentials<'_>) -> Result<Checked, Unavailable> {
        if c.password.is_empty() {
            return Ok(Checked::WrongPassword);
        }
        let mut ldap = self.connect().await?;
        let checked = match &self.config.login {
            LdapLogin::Template(template) => {
                let dn = fill(template, "user", c.login, dn_value);
                if !Self::bind(&mut ldap, &dn, c.password).await? {
                    Checked::WrongPassword
                } else {
                    // Its own entry, read as itself; unreadable: the login alone.
                    let entry = match ldap
                        .search(&dn, Scope::Base, "(objectClass=*)", self.attributes())
                        .await
                        .and_then(|r| r.success())
                    {
                        Ok((mut entries, _)) if entries.len() == 1 => Some(SearchEntry::construct(entries.remove(0))),
                        _ => None,
                    };
                    let addresses = entry
                        .map(|e| self.addresses(&e))
                        .filter(|a| !a.is_empty())
                        .unwrap_or_else(|| port25_accounts::default_addresses(c.login));
                    Checked::Valid { login: c.login.to_owned(), addresses, cached: false }
                }
            }
            LdapLogin::Search { filter } => {
                self.service_bind(&mut ldap).await?;
                let base = self.config.search_base.as_deref().unwrap_or_default();
                let filter = fill(filter, "user", c.login, filter_value);
                let (mut entries, _) = ldap
                    .search(base, Scope::Subtree, &filter, self.attributes())
                    .await
                    .and_then(|r| r.success())
                    .map_err(|e| failed("search", e))?;
                match entries.len() {
                    0 => Checked::UnknownUser,
                    1 => {
                        let entry = SearchEntry::construct(entries.remove(0));
                        let stamp = stamp(&entry);
                        let addresses = self.addresses(&entry);
                        let addresses =
                            if addresses.is_empty() { port25_accounts::default_addresses(c.login) } else { addresses };
                        match &self.cache {
                            Some(cache) if cache.hit(&stamp, c.login, c.password) => {
                                Checked::Valid { login: c.login.to_owned(), addresses, cached: true }
                            }
                            _ if Self::bind(&mut ldap, &entry.dn, c.password).await? => {
                                if let Some(cache) = &self.cache {
                                    cache.remember(&stamp, c.login, c.password);
                                }
                                Checked::Valid { login: c.login.to_owned(), addresses, cached: false }
                            }
                            _ => Checked::WrongPassword,
                        }
                    }
                    n => return Err(format!("{n} entries match the search_filter for one login")),
                }
            }
        };
        let _ = ldap.unbind().await;
        Ok(checked)
    }

    async fn lookup(&self, address: &str, filter: &str) -> Result<bool, Unavailable> {
        let mut ldap = self.connect().await?;
        self.service_bind(&mut ldap).await?;
        let base = self.config.search_base.as_deref().unwrap_or_default();
        let filter = fill(filter, "address", address, filter_value);
        let (entries, _) = ldap
            .search(base, Scope::Subtree, &filter, vec!["1.1"])
            .await
            .and_then(|r| r.success())
            .map_err(|e| failed("search", e))?;
        let _ = ldap.unbind().await;
        Ok(!entries.is_empty())
    }
}

/// What changes when an entry's password does: its DN and change stamps.
fn stamp(entry: &SearchEntry) -> String {
    let mut s = entry.dn.clone();
    for name in STAMP {
        if let Some((_, values)) = entry.attrs.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)) {
            for v in values {
                s.push('\0');
                s.push_str(v);
            }
        }
    }
    s
}

/// TLS to the directory, trusting the CA certificates in `ca_file` (PEM).
fn client_tls(ca_file: &std::path::Path) -> Result<Arc<rustls::ClientConfig>, String> {
    let pem = std::fs::read(ca_file).map_err(|e| format!("{}: {e}", ca_file.display()))?;
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pemfile::certs(&mut pem.as_slice()) {
        let cert = cert.map_err(|e| format!("{}: {e}", ca_file.display()))?;
        roots.add(cert).map_err(|e| format!("{}: {e}", ca_file.display()))?;
    }
    if roots.is_empty() {
        return Err(format!("{}: no certificate in it", ca_file.display()));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

impl RemoteDirectory for Ldap {
    fn kind(&self) -> &'static str {
        "ldap"
    }

    fn verify<'a>(&'a self, credentials: Credentials<'a>) -> Pending<'a, Result<Checked, Unavailable>> {
        Box::pin(self.check(credentials))
    }

    fn tells_recipients(&self) -> bool {
        self.config.recipient_filter.is_some()
    }

    fn exists<'a>(&'a self, address: &'a str) -> Option<Pending<'a, Result<bool, Unavailable>>> {
        let filter = self.config.recipient_filter.as_deref()?;
        Some(Box::pin(self.lookup(address, filter)))
    }
}
