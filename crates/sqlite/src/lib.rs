//! What every SQLite connection of port25 is opened with.
//!
//! The bundled SQLite is built with `SQLITE_ENABLE_STAT4`, and then a
//! statement whose plan *might* depend on a bound value (`WHERE a = ?1
//! ORDER BY b` over an index on `(a, b)`, `LIMIT ?2`, a `LIKE ?1`) is
//! compiled again on its first step after every bind: rusqlite binds
//! anew on each call, so such a cached statement is parsed and planned
//! again every time it runs. The accounts store's sender-address lookup,
//! run at every MAIL FROM, was one (about 5 % of a submission server's
//! CPU). port25 keeps no statistics tables, so no plan can get better
//! from a value: the query planner stability guarantee (QPSG) turns the
//! re-preparing off for the whole connection, whatever the statement.

use rusqlite::config::DbConfig;
use rusqlite::Connection;

/// Plans fixed at prepare time: a cached statement is never compiled
/// again because a bound value changed.
pub fn fixed_plans(c: &Connection) -> rusqlite::Result<()> {
    c.set_db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true).map(|_| ())
}

/// [`Connection::open`] with [`fixed_plans`].
pub fn open(path: &std::path::Path) -> rusqlite::Result<Connection> {
    let c = Connection::open(path)?;
    fixed_plans(&c)?;
    Ok(c)
}

/// [`Connection::open_with_flags`] with [`fixed_plans`].
pub fn open_with_flags(path: &std::path::Path, flags: rusqlite::OpenFlags) -> rusqlite::Result<Connection> {
    let c = Connection::open_with_flags(path, flags)?;
    fixed_plans(&c)?;
    Ok(c)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rusqlite::StatementStatus;

    /// Times the statement was compiled again over `runs` runs, each
    /// with a new binding, as the callers do.
    fn reprepares(c: &Connection, sql: &str, runs: i64) -> i32 {
        for i in 0..runs {
            let mut st = c.prepare_cached(sql).unwrap();
            let mut rows = st.query(rusqlite::params![format!("login{i}"), i + 2]).unwrap();
            while rows.next().unwrap().is_some() {}
        }
        c.prepare_cached(sql).unwrap().get_status(StatementStatus::RePrepare)
    }

    const SCHEMA: &str = "CREATE TABLE a(login TEXT NOT NULL, address TEXT NOT NULL, PRIMARY KEY (login, address));
        CREATE INDEX a_address ON a(address);
        INSERT INTO a VALUES ('login1', 'x@example'), ('login1', 'y@example');";
    const ORDERED: &str = "SELECT address FROM a WHERE login = ?1 ORDER BY address LIMIT ?2";

    #[test]
    fn a_cached_statement_is_not_compiled_again_when_its_bindings_change() {
        let c = Connection::open_in_memory().unwrap();
        fixed_plans(&c).unwrap();
        c.execute_batch(SCHEMA).unwrap();
        assert_eq!(reprepares(&c, ORDERED, 50), 0);
    }

    /// What the setting is for: without it the same statement is
    /// compiled again on (almost) every run.
    #[test]
    fn without_it_the_same_statement_is_compiled_again_on_every_run() {
        let c = Connection::open_in_memory().unwrap();
        c.execute_batch(SCHEMA).unwrap();
        assert!(reprepares(&c, ORDERED, 50) >= 49);
    }

    #[test]
    fn files_opened_here_have_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let c = open(&path).unwrap();
        c.execute_batch(SCHEMA).unwrap();
        assert_eq!(reprepares(&c, ORDERED, 20), 0);
        drop(c);
        let r = open_with_flags(&path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
        assert_eq!(reprepares(&r, ORDERED, 20), 0);
    }
}
