//! The embedded SQLite store: one file, WAL mode so that `port25 users`
//! can change accounts while `port25 serve` reads them.

use rusqlite::{params, Connection, OptionalExtension};
use std::path::Path;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS users (
    login   TEXT PRIMARY KEY NOT NULL,
    hash    TEXT NOT NULL,
    created INTEGER NOT NULL,
    updated INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS addresses (
    login   TEXT NOT NULL REFERENCES users(login) ON DELETE CASCADE,
    address TEXT NOT NULL,
    PRIMARY KEY (login, address)
);
CREATE TABLE IF NOT EXISTS limits (
    login                  TEXT PRIMARY KEY NOT NULL REFERENCES users(login) ON DELETE CASCADE,
    messages_per_hour      INTEGER,
    messages_per_day       INTEGER,
    recipients_per_hour    INTEGER,
    recipients_per_day     INTEGER,
    recipients_per_message INTEGER
);
CREATE TABLE IF NOT EXISTS usage (
    login     TEXT NOT NULL,
    legacy    INTEGER NOT NULL,
    last_seen INTEGER NOT NULL,
    last_ip   TEXT NOT NULL,
    last_port INTEGER NOT NULL,
    uses      INTEGER NOT NULL,
    PRIMARY KEY (login, legacy)
);
-- Logins that may sign in to the HTTP dashboard (`port25 users operator`).
-- A table of its own, so databases made before it need no migration.
CREATE TABLE IF NOT EXISTS operators (
    login   TEXT PRIMARY KEY NOT NULL REFERENCES users(login) ON DELETE CASCADE
);
-- The MX asks at every RCPT whether an address (or its @domain) is one of
-- an account's: looked up by address, not by login.
CREATE INDEX IF NOT EXISTS addresses_by_address ON addresses(address);
";

pub struct Store {
    db: Connection,
}

impl Store {
    pub fn open(path: &Path) -> rusqlite::Result<Store> {
        port25_groupcommit::private::private_file(path).map_err(|e| {
            rusqlite::Error::SqliteFailure(
                rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CANTOPEN),
                Some(format!("{}: {e}", path.display())),
            )
        })?;
        let db = port25_sqlite::open(path)?;
        db.busy_timeout(std::time::Duration::from_secs(5))?;
        db.pragma_update(None, "journal_mode", "WAL")?;
        db.pragma_update(None, "foreign_keys", "ON")?;
        db.execute_batch(SCHEMA)?;
        Ok(Store { db })
    }

    pub fn hash(&self, login: &str) -> rusqlite::Result<Option<String>> {
        self.db.prepare_cached("SELECT hash FROM users WHERE login = ?1")?.query_row([login], |r| r.get(0)).optional()
    }

    pub fn addresses(&self, login: &str) -> rusqlite::Result<Vec<String>> {
        let mut stmt = self.db.prepare_cached("SELECT address FROM addresses WHERE login = ?1 ORDER BY address")?;
        let rows = stmt.query_map([login], |r| r.get(0))?;
        rows.collect()
    }

    /// Whether `address` (lower case) is a login or one of a login's
    /// addresses. A whole domain (`@domain`) a login may send as does not
    /// count: it would make every name in it a mailbox, a catch-all the
    /// operator never wrote (`[mx] catch_all` is where one is written).
    pub fn has_address(&self, address: &str) -> rusqlite::Result<bool> {
        let mut stmt = self.db.prepare_cached(
            "SELECT 1 FROM addresses WHERE address = ?1 UNION ALL SELECT 1 FROM users WHERE login = ?1 LIMIT 1",
        )?;
        Ok(stmt.query_row([address], |_| Ok(())).optional()?.is_some())
    }

    /// Inserts or replaces a user and its addresses in one transaction.
    pub fn put(&mut self, login: &str, hash: &str, addresses: &[String], replace: bool) -> rusqlite::Result<bool> {
        let tx = self.db.transaction()?;
        let Some(_) = put_in(&tx, login, hash, addresses, replace)? else { return Ok(false) };
        tx.commit()?;
        Ok(true)
    }

    /// Puts every user in one transaction: all or none. `Err(login)` (and
    /// nothing written) when a login exists and `replace` is false; else
    /// the counts (added, replaced).
    pub fn put_all<'a>(
        &mut self,
        users: impl IntoIterator<Item = (&'a str, &'a str, &'a [String])>,
        replace: bool,
    ) -> rusqlite::Result<Result<(usize, usize), String>> {
        let tx = self.db.transaction()?;
        let (mut added, mut replaced) = (0, 0);
        for (login, hash, addresses) in users {
            match put_in(&tx, login, hash, addresses, replace)? {
                // Dropping the transaction rolls back what came before.
                None => return Ok(Err(login.to_owned())),
                Some(true) => replaced += 1,
                Some(false) => added += 1,
            }
        }
        tx.commit()?;
        Ok(Ok((added, replaced)))
    }

    /// The hash of a login that is an operator.
    pub fn operator_hash(&self, login: &str) -> rusqlite::Result<Option<String>> {
        self.db
            .prepare_cached("SELECT u.hash FROM users u JOIN operators o ON o.login = u.login WHERE u.login = ?1")?
            .query_row([login], |r| r.get(0))
            .optional()
    }

    /// Replaces `old` by `new` (a rehash of the same password) unless the
    /// hash changed meanwhile (`port25 users passwd`); true when replaced.
    pub fn replace_hash(&self, login: &str, old: &str, new: &str) -> rusqlite::Result<bool> {
        Ok(self.db.execute("UPDATE users SET hash = ?3 WHERE login = ?1 AND hash = ?2", params![login, old, new])? == 1)
    }

    pub fn set_hash(&self, login: &str, hash: &str) -> rusqlite::Result<bool> {
        Ok(self.db.execute(
            "UPDATE users SET hash = ?2, updated = ?3 WHERE login = ?1",
            params![login, hash, port25_time::unix_secs() as i64],
        )? == 1)
    }

    pub fn set_addresses(&mut self, login: &str, addresses: &[String]) -> rusqlite::Result<()> {
        let tx = self.db.transaction()?;
        tx.execute("DELETE FROM addresses WHERE login = ?1", [login])?;
        for a in addresses {
            tx.execute("INSERT OR IGNORE INTO addresses (login, address) VALUES (?1, ?2)", params![login, a])?;
        }
        tx.commit()
    }

    pub fn limits(&self, login: &str) -> rusqlite::Result<crate::UserLimits> {
        self.db
            .prepare_cached(
                "SELECT messages_per_hour, messages_per_day, recipients_per_hour, recipients_per_day, recipients_per_message FROM limits WHERE login = ?1",
            )?
            .query_row([login], |r| {
                Ok(crate::UserLimits {
                    messages_per_hour: r.get(0)?,
                    messages_per_day: r.get(1)?,
                    recipients_per_hour: r.get(2)?,
                    recipients_per_day: r.get(3)?,
                    recipients_per_message: r.get(4)?,
                })
            })
            .optional()
            .map(Option::unwrap_or_default)
    }

    pub fn set_limits(&self, login: &str, l: &crate::UserLimits) -> rusqlite::Result<()> {
        self.db.execute(
            "INSERT OR REPLACE INTO limits (login, messages_per_hour, messages_per_day, recipients_per_hour, recipients_per_day, recipients_per_message)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![login, l.messages_per_hour, l.messages_per_day, l.recipients_per_hour, l.recipients_per_day, l.recipients_per_message],
        )?;
        Ok(())
    }

    /// Counts one authenticated submission: on 587/465, or legacy on 25.
    pub fn record_use(&self, login: &str, legacy: bool, at: i64, ip: &str, port: u16) -> rusqlite::Result<()> {
        self.db
            .prepare_cached(
                "INSERT INTO usage (login, legacy, last_seen, last_ip, last_port, uses) VALUES (?1, ?2, ?3, ?4, ?5, 1)
                 ON CONFLICT(login, legacy) DO UPDATE SET last_seen = max(last_seen, excluded.last_seen),
                   last_ip = excluded.last_ip, last_port = excluded.last_port, uses = uses + 1",
            )?
            .execute(params![login, legacy, at, ip, port])?;
        Ok(())
    }

    pub fn usage(&self) -> rusqlite::Result<Vec<crate::migration::Use>> {
        let mut stmt = self
            .db
            .prepare("SELECT login, legacy, last_seen, last_ip, last_port, uses FROM usage ORDER BY login, legacy")?;
        let rows = stmt.query_map([], |r| {
            Ok(crate::migration::Use {
                login: r.get(0)?,
                legacy: r.get(1)?,
                last_seen: r.get(2)?,
                last_ip: r.get(3)?,
                last_port: r.get(4)?,
                uses: r.get(5)?,
            })
        })?;
        rows.collect()
    }

    pub fn delete(&self, login: &str) -> rusqlite::Result<bool> {
        Ok(self.db.execute("DELETE FROM users WHERE login = ?1", [login])? == 1)
    }

    /// Grants (or revokes) the dashboard; false when the login does not exist.
    pub fn set_operator(&self, login: &str, operator: bool) -> rusqlite::Result<bool> {
        if self.hash(login)?.is_none() {
            return Ok(false);
        }
        if operator {
            self.db.execute("INSERT OR IGNORE INTO operators (login) VALUES (?1)", [login])?;
        } else {
            self.db.execute("DELETE FROM operators WHERE login = ?1", [login])?;
        }
        Ok(true)
    }

    pub fn is_operator(&self, login: &str) -> rusqlite::Result<bool> {
        Ok(self
            .db
            .prepare_cached("SELECT 1 FROM operators WHERE login = ?1")?
            .query_row([login], |_| Ok(()))
            .optional()?
            .is_some())
    }

    /// (login, hash) of every user, sorted by login.
    pub fn users(&self) -> rusqlite::Result<Vec<(String, String)>> {
        let mut stmt = self.db.prepare("SELECT login, hash FROM users ORDER BY login")?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        rows.collect()
    }
}

/// One user into an open transaction: `None` when it exists and `replace`
/// is false (nothing written), else whether it existed.
fn put_in(
    tx: &rusqlite::Transaction<'_>,
    login: &str,
    hash: &str,
    addresses: &[String],
    replace: bool,
) -> rusqlite::Result<Option<bool>> {
    let exists = tx.query_row("SELECT 1 FROM users WHERE login = ?1", [login], |_| Ok(())).optional()?.is_some();
    if exists && !replace {
        return Ok(None);
    }
    let t = port25_time::unix_secs() as i64;
    tx.execute(
        "INSERT INTO users (login, hash, created, updated) VALUES (?1, ?2, ?3, ?3)
         ON CONFLICT(login) DO UPDATE SET hash = excluded.hash, updated = excluded.updated",
        params![login, hash, t],
    )?;
    tx.execute("DELETE FROM addresses WHERE login = ?1", [login])?;
    for a in addresses {
        tx.execute("INSERT OR IGNORE INTO addresses (login, address) VALUES (?1, ?2)", params![login, a])?;
    }
    Ok(Some(exists))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rusqlite::StatementStatus;

    /// The lookup made at every MAIL FROM is planned once, not at every
    /// call (see port25_sqlite: with `ORDER BY` over the key it was
    /// compiled again on each run).
    #[test]
    fn the_sender_address_lookup_is_not_compiled_again_at_every_call() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(&dir.path().join("accounts.db")).unwrap();
        let addrs = ["b@x.example".to_owned(), "a@x.example".to_owned()];
        assert!(s.put("alice@x.example", "$argon2id$dummy", &addrs, false).unwrap());
        for i in 0..30 {
            let login = if i % 2 == 0 { "alice@x.example" } else { "bob@x.example" };
            let got = s.addresses(login).unwrap();
            assert_eq!(got.len(), if i % 2 == 0 { 2 } else { 0 });
        }
        assert_eq!(s.addresses("alice@x.example").unwrap(), ["a@x.example", "b@x.example"], "still in order");
        let st = s.db.prepare_cached("SELECT address FROM addresses WHERE login = ?1 ORDER BY address").unwrap();
        assert_eq!(st.get_status(StatementStatus::RePrepare), 0);
    }
}
