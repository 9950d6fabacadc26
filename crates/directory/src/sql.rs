//! PostgreSQL: `login_query` (one bound parameter, `$1` = the login)
//! returns the stored hash in its first column (argon2id, bcrypt,
//! SHA-512-crypt and SHA-256-crypt, as `port25 users import` reads) and,
//! optionally, the addresses in its second (text, comma or space
//! separated, or text[]; NULL or none: the login itself); `recipient_query` (`$1` = the address) returns a
//! row when the address receives mail. Values are only ever bound, never
//! pasted into the query text (the configuration refuses a query without
//! exactly `$1`).
//!
//! One connection, shared (tokio-postgres pipelines the queries), made
//! again when it broke. The password check runs on a blocking thread; the
//! cache is keyed on the stored hash, so a password change misses it.
//! TLS to the server is not supported yet: use a UNIX socket
//! (`host=/run/postgresql`) or a local address.

use port25_accounts::cache::VerifiedCache;
use port25_accounts::remote::{Checked, Credentials, Pending, RemoteDirectory, Unavailable};
use port25_config::Postgresql as Config;
use std::sync::Arc;
use std::time::Duration;
use tokio_postgres::types::Type;

pub struct Postgres {
    config: tokio_postgres::Config,
    login_query: String,
    recipient_query: Option<String>,
    client: tokio::sync::Mutex<Option<Arc<tokio_postgres::Client>>>,
    cache: Option<VerifiedCache>,
}

impl Postgres {
    pub fn new(c: Config, cache: Option<Duration>) -> Result<Postgres, String> {
        let mut config: tokio_postgres::Config =
            c.connection.parse().map_err(|e| format!("connection {:?}: {e}", c.connection))?;
        if let Some(p) = &c.password_file {
            let pw = std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()))?;
            config.password(pw.trim_end_matches(['\r', '\n']));
        }
        Ok(Postgres {
            config,
            login_query: c.login_query,
            recipient_query: c.recipient_query,
            client: tokio::sync::Mutex::new(None),
            cache: cache.map(|ttl| VerifiedCache::new(ttl, 100_000)),
        })
    }

    async fn client(&self) -> Result<Arc<tokio_postgres::Client>, Unavailable> {
        let mut slot = self.client.lock().await;
        if let Some(c) = slot.as_ref().filter(|c| !c.is_closed()) {
            return Ok(c.clone());
        }
        let (client, connection) =
            self.config.connect(tokio_postgres::NoTls).await.map_err(|e| format!("cannot connect: {e}"))?;
        tokio::spawn(async move {
            let _ = connection.await;
        });
        let client = Arc::new(client);
        *slot = Some(client.clone());
        Ok(client)
    }

    /// Rows of `query` with `value` bound as `$1`.
    async fn rows(&self, query: &str, value: &str) -> Result<Vec<tokio_postgres::Row>, Unavailable> {
        let client = self.client().await?;
        let statement =
            client.prepare_typed(query, &[Type::TEXT]).await.map_err(|e| format!("query {query:?}: {e}"))?;
        if statement.params().len() != 1 {
            return Err(format!("query {query:?} has {} parameters, not one", statement.params().len()));
        }
        client.query(&statement, &[&value]).await.map_err(|e| format!("query: {e}"))
    }

    async fn check(&self, c: Credentials<'_>) -> Result<Checked, Unavailable> {
        let rows = self.rows(&self.login_query, c.login).await?;
        let row = match rows.len() {
            0 => {
                let password = c.password.to_owned();
                // The same work as a wrong password: logins are not probed by time.
                let _ = tokio::task::spawn_blocking(move || {
                    port25_accounts::hash::verify(&password, port25_accounts::hash::dummy_hash())
                })
                .await;
                return Ok(Checked::UnknownUser);
            }
            1 => &rows[0],
            n => return Err(format!("login_query returned {n} rows for one login")),
        };
        let hash: String = row.try_get(0).map_err(|e| format!("login_query's first column (the hash): {e}"))?;
        if port25_accounts::hash::scheme(&hash).is_err() {
            return Err(
                "login_query returned a hash in no scheme port25 knows (argon2, bcrypt, SHA-512-crypt, SHA-256-crypt)"
                    .into(),
            );
        }
        let addresses = match row.columns().get(1) {
            None => port25_accounts::default_addresses(c.login),
            Some(col) if *col.type_() == Type::TEXT_ARRAY || *col.type_() == Type::VARCHAR_ARRAY => {
                let list: Option<Vec<String>> =
                    row.try_get(1).map_err(|e| format!("login_query's second column: {e}"))?;
                crate::addresses(list.iter().flatten().map(String::as_str))
            }
            Some(_) => {
                let text: Option<String> =
                    row.try_get(1).map_err(|e| format!("login_query's second column (the addresses, text): {e}"))?;
                crate::addresses(text.as_deref())
            }
        };
        // NULL or no address at all: the login itself, when it is one.
        let addresses = if addresses.is_empty() { port25_accounts::default_addresses(c.login) } else { addresses };
        if let Some(cache) = &self.cache {
            if cache.hit(&hash, c.login, c.password) {
                return Ok(Checked::Valid { login: c.login.to_owned(), addresses, cached: true });
            }
        }
        let (password, stored) = (c.password.to_owned(), hash.clone());
        let right = tokio::task::spawn_blocking(move || port25_accounts::hash::verify(&password, &stored))
            .await
            .map_err(|e| format!("the password check failed: {e}"))?;
        if !right {
            return Ok(Checked::WrongPassword);
        }
        if let Some(cache) = &self.cache {
            cache.remember(&hash, c.login, c.password);
        }
        Ok(Checked::Valid { login: c.login.to_owned(), addresses, cached: false })
    }
}

impl RemoteDirectory for Postgres {
    fn kind(&self) -> &'static str {
        "postgresql"
    }

    fn verify<'a>(&'a self, credentials: Credentials<'a>) -> Pending<'a, Result<Checked, Unavailable>> {
        Box::pin(self.check(credentials))
    }

    fn tells_recipients(&self) -> bool {
        self.recipient_query.is_some()
    }

    fn exists<'a>(&'a self, address: &'a str) -> Option<Pending<'a, Result<bool, Unavailable>>> {
        let query = self.recipient_query.as_deref()?;
        Some(Box::pin(async move { Ok(!self.rows(query, address).await?.is_empty()) }))
    }
}
