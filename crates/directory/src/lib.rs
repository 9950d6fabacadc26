//! Directory backends: submission logins checked against what a provider
//! already runs, the addresses each login may send as, and whether a
//! recipient exists (asked by the MX), behind the accounts crate's
//! [`RemoteDirectory`] seam (`port25_accounts::remote`).
//!
//! Layout: [`dovecot`] (the client side of the Dovecot authentication
//! protocol, as Postfix's `smtpd_sasl_type = dovecot`; its pure parser in
//! [`dovecot::proto`], fuzzed), [`ldap`] (bind as the user, by a DN
//! template or search-then-bind; RFC 4515/4514 escaping in [`escape`]),
//! [`sql`] (PostgreSQL: a configured query with bound parameters returning
//! the hash and the addresses).
//!
//! Every backend fails closed: a server that is down, slow or answers
//! something unexpected is an `Err` (454 4.7.0 to the client), never a
//! login. The cache ([`port25_accounts::cache::VerifiedCache`]) keeps a
//! verified login only under what the directory stores for it (the SQL
//! hash, the LDAP entry's change stamp), so a password change misses it;
//! Dovecot has its own `auth_cache`, which `doveadm auth cache flush`
//! clears, so port25 keeps nothing of Dovecot's answers.

pub mod dovecot;
pub mod escape;
pub mod ldap;
pub mod sql;

use port25_accounts::remote::RemoteDirectory;
use port25_config::{Directory, DirectoryBackend};
use std::sync::Arc;

/// The addresses in a directory's value: separated by commas or white
/// space; entries that are neither `local@domain` nor `@domain` are
/// dropped (fewer rights, never more).
pub fn addresses<'a>(values: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for v in values {
        for entry in v.split(|c: char| c == ',' || c.is_whitespace()).filter(|e| !e.is_empty()) {
            if let Some(a) = port25_accounts::address::normalize(entry) {
                if !out.contains(&a) {
                    out.push(a);
                }
            }
        }
    }
    out
}

/// The backend a configuration names. Nothing is contacted yet: a
/// directory that is down at start-up answers 454 until it is back.
pub fn open(config: &Directory) -> Result<Arc<dyn RemoteDirectory>, String> {
    Ok(match &config.backend {
        DirectoryBackend::Dovecot(d) => Arc::new(dovecot::Dovecot::new(d.clone(), config.timeout)),
        DirectoryBackend::Ldap(l) => Arc::new(ldap::Ldap::new(l.clone(), config.timeout, config.cache)?),
        DirectoryBackend::Postgresql(p) => Arc::new(sql::Postgres::new(p.clone(), config.cache)?),
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn addresses_are_normalized_and_bad_entries_dropped() {
        let got = super::addresses([
            "Alice@X.example, @Role.example",
            "bob@x.example\tnot-an-address <c@x.example> alice@x.example",
        ]);
        assert_eq!(got, ["alice@x.example", "@role.example", "bob@x.example"]);
    }
}
