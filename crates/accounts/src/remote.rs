//! A directory the provider already runs (Dovecot auth, LDAP, PostgreSQL:
//! the backends are in crates/directory) in place of the SQLite accounts
//! for submission logins. The [`gate`] asks it under the same guard and
//! bounds as the SQLite accounts, with a time limit of its own: a directory
//! that cannot answer, answers late or answers garbage gives 454 4.7.0,
//! never an accepted login. The MX asks the same directory whether a
//! recipient exists.
//!
//! The SQLite accounts stay what the dashboard's operators sign in with,
//! and where per-login sending limits and the migration usage are kept.
//!
//! [`gate`]: crate::gate

use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;

pub type Pending<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// One login to check, with what the directory may want to know about the
/// client (Dovecot's own brute-force penalty keys on the address).
#[derive(Debug, Clone, Copy)]
pub struct Credentials<'a> {
    /// Normalized ([`crate::normalize_login`]): lower case, no space,
    /// control character or ':'.
    pub login: &'a str,
    pub password: &'a str,
    pub client: IpAddr,
    /// The client talked TLS to us.
    pub secured: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Checked {
    /// The password is right. `login`: the name the directory gave back
    /// (normalized), `addresses`: what it may send as (addresses and
    /// `@domain`s, normalized); `cached` when the backend's cache answered.
    Valid {
        login: String,
        addresses: Vec<String>,
        cached: bool,
    },
    WrongPassword,
    UnknownUser,
}

/// Why a directory could not answer (for the log; the client sees 454).
pub type Unavailable = String;

pub trait RemoteDirectory: Send + Sync {
    /// "dovecot", "ldap", "postgresql": for the log.
    fn kind(&self) -> &'static str;

    /// Checks a password. Never `Valid` without a password the directory
    /// itself verified (or the cache, for the same password and the same
    /// stored credentials).
    fn verify<'a>(&'a self, credentials: Credentials<'a>) -> Pending<'a, Result<Checked, Unavailable>>;

    /// Whether this backend is configured to tell which recipients exist.
    fn tells_recipients(&self) -> bool;

    /// Whether `address` (resolved: lower case, no extension) receives
    /// mail here; `None` when this backend is not configured to tell.
    fn exists<'a>(&'a self, address: &'a str) -> Option<Pending<'a, Result<bool, Unavailable>>>;
}
