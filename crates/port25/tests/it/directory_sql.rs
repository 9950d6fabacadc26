//! [submission.directory] type = "postgresql" against a real PostgreSQL 15
//! (postgresql) that each test makes with initdb and starts with pg_ctl in
//! a temp dir on a free port, as the unprivileged user `nobody` (postgres
//! refuses root): the configured query returns the hash and the addresses,
//! values are bound (a quote in a login or a recipient is a character,
//! not SQL), the cache misses after a password change, and PostgreSQL
//! stopped is 454.

use crate::directory::{free_port, port25_with, rcpt, submit};
use crate::harness::*;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// A PostgreSQL binary of the installed major version.
fn pg_bin(name: &str) -> PathBuf {
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|d| d.flatten().map(|e| e.path().join("bin").join(name)).filter(|p| p.exists()).collect())
        .unwrap_or_default();
    found.sort();
    found.pop().unwrap_or_else(|| {
        panic!("{name} is not installed (/usr/lib/postgresql/*/bin); run .ci/install-deps (package postgresql)")
    })
}

/// Runs a command as `nobody` (runuser), failing loudly.
fn as_nobody(program: &Path, args: &[&str]) -> String {
    let out = Command::new(require("runuser")).args(["-u", "nobody", "--"]).arg(program).args(args).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{} {args:?}: {text}", program.display());
    text
}

pub(crate) struct Postgres {
    pub(crate) dir: tempfile::TempDir,
    pub(crate) port: u16,
    running: bool,
}

impl Postgres {
    pub(crate) fn start() -> Postgres {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        // nobody must reach and own its directory.
        let status = Command::new("chmod").arg("0755").arg(d).status().unwrap();
        assert!(status.success());
        let status = Command::new("chown").arg("nobody").arg(d).status().unwrap();
        assert!(status.success());
        let data = d.join("data").display().to_string();
        as_nobody(&pg_bin("initdb"), &["-D", &data, "--auth-local=trust", "--auth-host=scram-sha-256", "-U", "nobody"]);
        let port = free_port();
        let opts = format!("-p {port} -k {} -c listen_addresses=127.0.0.1", d.display());
        let log = d.join("pg.log").display().to_string();
        as_nobody(&pg_bin("pg_ctl"), &["-D", &data, "-o", &opts, "-l", &log, "-w", "start"]);
        Postgres { dir, port, running: true }
    }

    pub(crate) fn sql(&self, sql: &str) -> String {
        let host = self.dir.path().display().to_string();
        as_nobody(
            &pg_bin("psql"),
            &["-h", &host, "-p", &self.port.to_string(), "-d", "postgres", "-v", "ON_ERROR_STOP=1", "-qAt", "-c", sql],
        )
    }

    pub(crate) fn stop(&mut self) {
        if std::mem::take(&mut self.running) {
            let data = self.dir.path().join("data").display().to_string();
            as_nobody(&pg_bin("pg_ctl"), &["-D", &data, "-m", "immediate", "-w", "stop"]);
        }
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        if self.running {
            let data = self.dir.path().join("data").display().to_string();
            let _ = Command::new("runuser")
                .args(["-u", "nobody", "--"])
                .arg(pg_bin("pg_ctl"))
                .args(["-D", &data, "-m", "immediate", "-w", "stop"])
                .output();
        }
    }
}

/// "secret" in SHA-512-crypt and bcrypt (as crates/accounts' tests), and
/// "new secret" in SHA-512-crypt (`openssl passwd -6`).
const SHA512_SECRET: &str =
    "$6$saltsaltsalt$PMWE8DTlam1JU37Piyk43bHcMxTJq6sgu5DKB0/tGPjanN35jcY68QkpDfPFUGPWX5uCxIQkSPzMmqEiVNgts.";
const BCRYPT_SECRET: &str = "$2y$04$YLSvQOJ29sg3eEwc.mfkc.UpuzbA8tPu0/YrqKNs2y1dULMTowlhG";
const SHA512_NEW: &str =
    "$6$pgsaltpgsalt$gcr1aGVgzUS/bUxc./Bsmi8kAnJKi8Ur5k1efc/cersricJwuAe2Tvw95afMgsmNvjV8rLXkneNcXPVKvpv9r1";

#[test]
fn postgresql_query_with_bound_parameters_addresses_cache_and_454_when_stopped() {
    let mut pg = Postgres::start();
    pg.sql(&format!(
        "CREATE TABLE users (login text PRIMARY KEY, password text NOT NULL, addresses text[]);\
         CREATE TABLE aliases (address text PRIMARY KEY, login text NOT NULL);\
         CREATE ROLE port25 LOGIN PASSWORD 'pg pw'; GRANT SELECT ON users, aliases TO port25;\
         INSERT INTO users VALUES ('alice@example.net', '{SHA512_SECRET}', ARRAY['alice@example.net', '@role.example.net']),\
                                  ('bob@example.net', '{BCRYPT_SECRET}', NULL);\
         INSERT INTO aliases VALUES ('postmaster@example.net', 'alice@example.net');"
    ));
    std::fs::write(pg.dir.path().join("pg.pass"), "pg pw\n").unwrap();
    let directory = format!(
        "type = \"postgresql\"\nconnection = \"host=127.0.0.1 port={} user=port25 dbname=postgres\"\npassword_file = \"{}\"\n\
         login_query = \"SELECT password, addresses FROM users WHERE login = $1\"\n\
         recipient_query = \"SELECT 1 FROM users WHERE login = $1 UNION SELECT 1 FROM aliases WHERE address = $1\"\ncache_secs = 600\n",
        pg.port,
        pg.dir.path().join("pg.pass").display()
    );
    let s = port25_with(&directory);
    let t = submit(&s, "PLAIN", "alice@example.net", "secret", "news@role.example.net", "bob@example.net");
    assert!(
        t.contains("<~  235 2.7.0") && t.contains("<~  250 2.0.0 Ok: queued"),
        "SHA-512-crypt, a text[] of addresses: {t}"
    );
    let t = submit(&s, "LOGIN", "bob@example.net", "secret", "bob@example.net", "alice@example.net");
    assert!(
        t.contains("<~  235 2.7.0") && t.contains("<~  250 2.0.0 Ok: queued"),
        "bcrypt, no addresses: the login: {t}"
    );
    let t = submit(&s, "PLAIN", "bob@example.net", "secret", "news@role.example.net", "alice@example.net");
    assert!(t.contains("<~* 553 5.7.1"), "{t}");
    let t = submit(&s, "PLAIN", "alice@example.net", "wrong", "alice@example.net", "bob@example.net");
    assert!(t.contains("<~* 535 5.7.8"), "{t}");
    // Pasted into the query, this login would select every row.
    let t = submit(&s, "PLAIN", "x'OR'1'='1", "secret", "alice@example.net", "bob@example.net");
    assert!(t.contains("<~* 535 5.7.8"), "a quote is a character: {t}");
    assert_eq!(rcpt(&s, "postmaster@example.net"), 250, "an alias");
    assert_eq!(rcpt(&s, "bob@example.net"), 250);
    assert_eq!(rcpt(&s, "carol@example.net"), 550);
    assert_eq!(rcpt(&s, "x'or''='@example.net"), 550, "a quote in a recipient is a character");

    // alice's login is cached under her hash: a new hash misses at once.
    pg.sql(&format!("UPDATE users SET password = '{SHA512_NEW}' WHERE login = 'alice@example.net'"));
    let t = submit(&s, "PLAIN", "alice@example.net", "secret", "alice@example.net", "bob@example.net");
    assert!(t.contains("<~* 535 5.7.8"), "the old password after the change: {t}");
    let t = submit(&s, "PLAIN", "alice@example.net", "new secret", "alice@example.net", "bob@example.net");
    assert!(t.contains("<~  235 2.7.0"), "{t}");
    assert_eq!(s.wait_for_mail("example.net", "bob", 2, Duration::from_secs(10)).len(), 2);

    pg.stop();
    let t = submit(&s, "PLAIN", "alice@example.net", "new secret", "alice@example.net", "bob@example.net");
    assert!(t.contains("<~* 454 4.7.0") && !t.contains("235"), "PostgreSQL down, even for a cached login: {t}");
    assert_eq!(rcpt(&s, "dave@example.net"), 450);
}
