//! port25's accounts: who may log in to submission, with which password,
//! and which addresses each login may send as.
//!
//! Layout: [`store`] (the embedded SQLite file), [`hash`] (argon2id for new
//! passwords; imported SHA-512-crypt, SHA-256-crypt and bcrypt verified,
//! then replaced by argon2id at the first successful login), [`cache`]
//! (the verified-password cache that keeps argon2's cost off the session
//! rate), [`address`] (exact addresses and whole domains), [`import`] (the
//! `login:hash[:addresses]` file format), [`guard`] (brute-force limits)
//! and [`gate`] (the one way a password is checked from the network: SMTP
//! AUTH and the dashboard share its guard and its bounds), [`remote`] (the
//! seam where a directory the provider runs, crates/directory, checks
//! submission logins instead).
//!
//! Logins are case-insensitive (stored in lower case, at most 255 bytes:
//! [`normalize_login`]). [`Accounts::verify`] is blocking (password
//! hashing): call it from a blocking thread, or use [`gate::Gate`].

pub mod address;
pub mod cache;
pub mod gate;
pub mod guard;
pub mod hash;
pub mod import;
pub mod migration;
pub mod remote;
mod store;

use cache::VerifiedCache;
use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;
use store::Store;

#[derive(Debug, thiserror::Error)]
pub enum AccountsError {
    #[error("account database {path}: {source}")]
    Open { path: String, source: rusqlite::Error },
    #[error("account database: {0}")]
    Db(#[from] rusqlite::Error),
    #[error("no such user: {0}")]
    UnknownUser(String),
    #[error("user {0} already exists (use `port25 users passwd` to change its password)")]
    Exists(String),
    #[error("{0}")]
    Invalid(String),
}

pub type Result<T> = std::result::Result<T, AccountsError>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The password is right; `cached` when the cache answered.
    Valid {
        cached: bool,
    },
    WrongPassword,
    UnknownUser,
}

/// Per-login sending limits; `None` keeps the configured default, 0 means
/// no limit (as in the configuration).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UserLimits {
    pub messages_per_hour: Option<u32>,
    pub messages_per_day: Option<u32>,
    pub recipients_per_hour: Option<u32>,
    pub recipients_per_day: Option<u32>,
    pub recipients_per_message: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub login: String,
    pub scheme: &'static str,
    pub addresses: Vec<String>,
}

/// The longest login, in bytes, as typed and as stored (lower case).
pub const MAX_LOGIN: usize = 255;

/// A login is what a mail client types: an address or a plain name.
pub fn check_login(login: &str) -> std::result::Result<(), String> {
    normalize_login(login).map(|_| ())
}

/// The one form of a login that is stored, looked up and counted by the
/// guard: lower case, 1 to [`MAX_LOGIN`] bytes before and after lowering,
/// no space, control character or ':'. Anything else is refused everywhere
/// (never truncated), so no account can have such a login.
pub fn normalize_login(login: &str) -> std::result::Result<String, String> {
    let lower = Login::of(login).into_string();
    if login.is_empty() || login.len() > MAX_LOGIN || lower.len() > MAX_LOGIN {
        return Err(format!("a login is 1 to {MAX_LOGIN} bytes long"));
    }
    if login.chars().any(|c| c.is_whitespace() || c.is_control() || c == ':') {
        return Err(format!("login {login:?} contains a space, a control character or ':'"));
    }
    Ok(lower)
}

/// A login in the one form that is stored, looked up, counted by the
/// guard and shown: lower case. Made once from what was typed (AUTH, the
/// CLI, the dashboard form), so no caller lowers a login by itself.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Login(String);

impl Login {
    /// A login as typed, checked ([`normalize_login`]: what may be stored).
    pub fn parse(typed: &str) -> std::result::Result<Login, String> {
        normalize_login(typed).map(Login)
    }

    /// A login as typed, for looking up, counting or showing: lowered and
    /// not checked (one that could not be stored finds nothing).
    pub fn of(typed: &str) -> Login {
        Login(typed.to_lowercase())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

impl std::fmt::Display for Login {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// What a signed-in dashboard session was granted on: a digest of the
/// stored hash it was checked against. A new password (or a deleted and
/// re-added login) gives a new stamp, which ends the session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp([u8; 32]);

impl Stamp {
    /// The stamp of a stored hash.
    pub fn of_hash(hash: &str) -> Stamp {
        let mut out = [0u8; 32];
        out.copy_from_slice(ring::digest::digest(&ring::digest::SHA256, hash.as_bytes()).as_ref());
        Stamp(out)
    }
}

/// A login that is an address may send as itself unless told otherwise.
pub fn default_addresses(login: &str) -> Vec<String> {
    address::normalize(login).filter(|a| !a.starts_with('@')).into_iter().collect()
}

fn normalize_addresses(list: &[String]) -> Result<Vec<String>> {
    list.iter()
        .map(|a| {
            address::normalize(a).ok_or_else(|| {
                AccountsError::Invalid(format!("{a:?} is not an address (local@domain) or a whole domain (@domain)"))
            })
        })
        .collect()
}

/// What [`Accounts::import_with`] reports as it goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImportProgress {
    /// The file parsed: this many logins to write.
    Parsed(u64),
    /// This many more logins written (inside the one transaction).
    Written(u64),
}

pub struct Accounts {
    store: Mutex<Store>,
    cache: Option<VerifiedCache>,
}

impl Accounts {
    /// Opens (creating when needed) the database; `cache_ttl` of `None`
    /// turns the verified-password cache off.
    pub fn open(path: &Path, cache_ttl: Option<Duration>) -> Result<Accounts> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| AccountsError::Invalid(format!("cannot create {}: {e}", dir.display())))?;
        }
        let store =
            Store::open(path).map_err(|source| AccountsError::Open { path: path.display().to_string(), source })?;
        Ok(Accounts { store: Mutex::new(store), cache: cache_ttl.map(|ttl| VerifiedCache::new(ttl, 100_000)) })
    }

    fn store(&self) -> std::sync::MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Checks a login's password. Blocking: argon2 takes tens of ms.
    pub fn verify(&self, login: &str, password: &str) -> Result<Verdict> {
        Ok(self.check(login, password, false)?.0)
    }

    /// Checks an operator's password for the dashboard. Any other login is
    /// checked against the dummy hash and answered `UnknownUser`, so the
    /// dashboard tells nothing about the passwords of mail users, not even
    /// by its time. `Some(stamp)` with `Valid`: see [`Accounts::operator_stamp`].
    pub fn verify_operator(&self, login: &str, password: &str) -> Result<(Verdict, Option<Stamp>)> {
        self.check(login, password, true)
    }

    /// The stamp of an operator's current password; `None` when the login
    /// is gone or no longer an operator. One indexed lookup: cheap enough
    /// for every dashboard request.
    pub fn operator_stamp(&self, login: &str) -> Result<Option<Stamp>> {
        Ok(self.store().operator_hash(Login::of(login).as_str())?.as_deref().map(Stamp::of_hash))
    }

    /// Every path does at least the dummy's argon2id work: an unknown login
    /// checks the dummy; a hash that is not [`hash::is_current`] (imported
    /// bcrypt, SHA-crypt, cheap argon2) is checked and, when wrong, the
    /// dummy is checked too; when right, it is replaced by a new argon2id
    /// hash of the same password (unless the password changed meanwhile).
    fn check(&self, login: &str, password: &str, operators_only: bool) -> Result<(Verdict, Option<Stamp>)> {
        let unknown = || {
            // Same work as a wrong password, so logins cannot be probed by time.
            hash::verify(password, hash::dummy_hash());
            Ok((Verdict::UnknownUser, None))
        };
        let Ok(login) = normalize_login(login) else { return unknown() };
        let stored = match operators_only {
            true => self.store().operator_hash(&login)?,
            false => self.store().hash(&login)?,
        };
        let Some(mut stored) = stored else { return unknown() };
        if let Some(cache) = &self.cache {
            if cache.hit(&stored, &login, password) {
                return Ok((Verdict::Valid { cached: true }, Some(Stamp::of_hash(&stored))));
            }
        }
        let current = hash::is_current(&stored);
        if !hash::verify(password, &stored) {
            if !current {
                hash::verify(password, hash::dummy_hash());
            }
            return Ok((Verdict::WrongPassword, None));
        }
        if !current {
            let upgraded = hash::new_hash(password);
            if self.store().replace_hash(&login, &stored, &upgraded)? {
                stored = upgraded;
            }
        }
        if let Some(cache) = &self.cache {
            cache.remember(&stored, &login, password);
        }
        Ok((Verdict::Valid { cached: false }, Some(Stamp::of_hash(&stored))))
    }

    /// Adds a user with a new argon2id hash of `password`.
    pub fn add(&self, login: &str, password: &str, addresses: &[String]) -> Result<()> {
        let login = normalize_login(login).map_err(AccountsError::Invalid)?;
        let addresses = if addresses.is_empty() { default_addresses(&login) } else { normalize_addresses(addresses)? };
        let hash = hash::new_hash(password);
        if !self.store().put(&login, &hash, &addresses, false)? {
            return Err(AccountsError::Exists(login));
        }
        Ok(())
    }

    pub fn set_password(&self, login: &str, password: &str) -> Result<()> {
        let login = Login::of(login).into_string();
        if !self.store().set_hash(&login, &hash::new_hash(password))? {
            return Err(AccountsError::UnknownUser(login));
        }
        if let Some(c) = &self.cache {
            c.forget(&login);
        }
        Ok(())
    }

    pub fn set_addresses(&self, login: &str, addresses: &[String]) -> Result<()> {
        let login = Login::of(login).into_string();
        let addresses = normalize_addresses(addresses)?;
        let mut store = self.store();
        if store.hash(&login)?.is_none() {
            return Err(AccountsError::UnknownUser(login));
        }
        Ok(store.set_addresses(&login, &addresses)?)
    }

    pub fn delete(&self, login: &str) -> Result<()> {
        let login = Login::of(login).into_string();
        if !self.store().delete(&login)? {
            return Err(AccountsError::UnknownUser(login));
        }
        if let Some(c) = &self.cache {
            c.forget(&login);
        }
        Ok(())
    }

    pub fn list(&self) -> Result<Vec<User>> {
        let store = self.store();
        let mut out = Vec::new();
        for (login, h) in store.users()? {
            let addresses = store.addresses(&login)?;
            out.push(User { scheme: hash::scheme(&h).map(hash::Scheme::name).unwrap_or("invalid"), login, addresses });
        }
        Ok(out)
    }

    /// Imports a whole file (see [`import`]); nothing is written when any
    /// line is bad. Returns (added, replaced).
    pub fn import(&self, text: &str, replace: bool) -> Result<(usize, usize)> {
        self.import_with(text, replace, &|_| {})
    }

    /// [`Accounts::import`], telling `progress` how many lines were read
    /// (once, when they are all parsed) and then each login written.
    pub fn import_with(&self, text: &str, replace: bool, progress: &dyn Fn(ImportProgress)) -> Result<(usize, usize)> {
        let lines = import::parse(text).map_err(AccountsError::Invalid)?;
        progress(ImportProgress::Parsed(lines.len() as u64));
        let logins = lines
            .iter()
            .map(|l| normalize_login(&l.login))
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(AccountsError::Invalid)?;
        // One transaction: a login that exists (without `replace`) or a
        // failed write leaves the store as it was, not half imported.
        let users = logins.iter().zip(&lines).map(|(login, l)| {
            progress(ImportProgress::Written(1));
            (login.as_str(), l.hash.as_str(), l.addresses.as_slice())
        });
        self.store().put_all(users, replace)?.map_err(AccountsError::Exists)
    }

    /// The addresses (and `@domain` entries) `login` may send as.
    pub fn addresses(&self, login: &str) -> Result<Vec<String>> {
        Ok(self.store().addresses(Login::of(login).as_str())?)
    }

    /// Whether `address` (resolved: no extension) receives mail here: a
    /// login or one of an account's addresses; a domain an account has
    /// whole (`@domain`) is what it may send as, not a catch-all. The MX
    /// asks it at RCPT; blocking (SQLite), so call it from a blocking thread.
    pub fn has_address(&self, address: &str) -> Result<bool> {
        Ok(self.store().has_address(&address.to_lowercase())?)
    }

    /// A login's own sending limits (all `None` when it has none).
    pub fn limits(&self, login: &str) -> Result<UserLimits> {
        Ok(self.store().limits(Login::of(login).as_str())?)
    }

    /// Replaces a login's own limits (`None` fields: the configured default).
    pub fn set_limits(&self, login: &str, limits: &UserLimits) -> Result<()> {
        let login = Login::of(login).into_string();
        let store = self.store();
        if store.hash(&login)?.is_none() {
            return Err(AccountsError::UnknownUser(login));
        }
        Ok(store.set_limits(&login, limits)?)
    }

    /// Records an authenticated submission (`legacy`: on port 25), for
    /// `port25 migration report`.
    pub fn record_use(&self, login: &str, legacy: bool, ip: std::net::IpAddr, port: u16) -> Result<()> {
        let now = port25_time::unix_secs() as i64;
        Ok(self.store().record_use(Login::of(login).as_str(), legacy, now, &ip.to_string(), port)?)
    }

    pub fn usage(&self) -> Result<Vec<migration::Use>> {
        Ok(self.store().usage()?)
    }

    /// Lets `login` sign in to the operator dashboard (or stops it).
    pub fn set_operator(&self, login: &str, operator: bool) -> Result<()> {
        let login = Login::of(login).into_string();
        if !self.store().set_operator(&login, operator)? {
            return Err(AccountsError::UnknownUser(login));
        }
        Ok(())
    }

    pub fn is_operator(&self, login: &str) -> Result<bool> {
        Ok(self.store().is_operator(Login::of(login).as_str())?)
    }

    pub fn may_send_as(&self, login: &str, sender: &str) -> Result<bool> {
        Ok(address::allows(&self.addresses(login)?, sender))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_login_has_one_form_whatever_was_typed() {
        assert_eq!(Login::parse("Alice@Example.NET").unwrap(), Login::of("alice@example.net"));
        assert_eq!(Login::of("ALICE").to_string(), "alice");
        for bad in ["", "a b", "a:b", "a\u{7}b", &"x".repeat(MAX_LOGIN + 1)] {
            assert!(Login::parse(bad).is_err(), "{bad:?}");
        }
        let dir = tempfile::tempdir().unwrap();
        let accounts = Accounts::open(&dir.path().join("a.db"), None).unwrap();
        accounts.add("Alice@Example.NET", "pw", &[]).unwrap();
        let typed = "ALICE@example.net";
        assert_eq!(accounts.addresses(typed).unwrap(), ["alice@example.net"]);
        accounts.set_operator(typed, true).unwrap();
        assert!(accounts.is_operator(typed).unwrap());
        accounts.set_limits(typed, &UserLimits::default()).unwrap();
        accounts.delete(typed).unwrap();
        assert!(
            matches!(accounts.delete("alice@example.net"), Err(AccountsError::UnknownUser(l)) if l == "alice@example.net")
        );
    }

    #[test]
    fn operator_flag() {
        let dir = tempfile::tempdir().unwrap();
        let a = Accounts::open(&dir.path().join("accounts.db"), None).unwrap();
        a.add("ops@example.net", "pw", &[]).unwrap();
        assert!(!a.is_operator("ops@example.net").unwrap());
        a.set_operator("OPS@example.net", true).unwrap();
        a.set_operator("ops@example.net", true).unwrap();
        assert!(a.is_operator("ops@example.net").unwrap());
        assert!(matches!(a.set_operator("nobody", true), Err(AccountsError::UnknownUser(_))));
        a.delete("ops@example.net").unwrap();
        a.add("ops@example.net", "pw", &[]).unwrap();
        assert!(!a.is_operator("ops@example.net").unwrap(), "a deleted login's flag goes with it");
        a.set_operator("ops@example.net", true).unwrap();
        a.set_operator("ops@example.net", false).unwrap();
        assert!(!a.is_operator("ops@example.net").unwrap());
    }

    #[test]
    fn add_verify_cache_passwd_delete() {
        let dir = tempfile::tempdir().unwrap();
        let a = Accounts::open(&dir.path().join("accounts.db"), Some(Duration::from_secs(60))).unwrap();
        a.add("Alice@Example.net", "pw one", &[]).unwrap();
        assert!(matches!(a.add("alice@example.net", "x", &[]), Err(AccountsError::Exists(_))));
        assert_eq!(a.verify("alice@example.net", "pw one").unwrap(), Verdict::Valid { cached: false });
        assert_eq!(a.verify("ALICE@example.net", "pw one").unwrap(), Verdict::Valid { cached: true });
        assert_eq!(a.verify("alice@example.net", "pw two").unwrap(), Verdict::WrongPassword);
        assert_eq!(a.verify("nobody", "pw one").unwrap(), Verdict::UnknownUser);
        assert!(a.may_send_as("alice@example.net", "alice@example.net").unwrap());
        assert!(!a.may_send_as("alice@example.net", "bob@example.net").unwrap());

        a.set_password("alice@example.net", "pw two").unwrap();
        assert_eq!(
            a.verify("alice@example.net", "pw one").unwrap(),
            Verdict::WrongPassword,
            "old password no longer valid, cached or not"
        );
        assert_eq!(a.verify("alice@example.net", "pw two").unwrap(), Verdict::Valid { cached: false });

        assert_eq!(a.limits("alice@example.net").unwrap(), UserLimits::default());
        let l = UserLimits { messages_per_hour: Some(5), recipients_per_message: Some(0), ..Default::default() };
        a.set_limits("Alice@example.net", &l).unwrap();
        assert_eq!(a.limits("alice@example.net").unwrap(), l);
        assert!(matches!(a.set_limits("nobody", &l), Err(AccountsError::UnknownUser(_))));
        assert!(a.has_address("Alice@example.net").unwrap());
        assert!(!a.has_address("bob@example.net").unwrap());
        a.set_addresses("alice@example.net", &["@example.net".into()]).unwrap();
        assert!(a.may_send_as("alice@example.net", "anyone@example.net").unwrap());
        assert!(!a.has_address("bob@example.net").unwrap(), "a domain an account may send as is no catch-all");
        assert!(a.has_address("alice@example.net").unwrap(), "the login itself receives");
        assert!(!a.has_address("bob@example.org").unwrap());
        assert!(a.set_addresses("alice@example.net", &["bad".into()]).is_err());

        let users = a.list().unwrap();
        assert_eq!(
            users,
            vec![User { login: "alice@example.net".into(), scheme: "argon2", addresses: vec!["@example.net".into()] }]
        );
        a.delete("alice@example.net").unwrap();
        assert_eq!(a.verify("alice@example.net", "pw two").unwrap(), Verdict::UnknownUser);
        assert!(matches!(a.delete("alice@example.net"), Err(AccountsError::UnknownUser(_))));
    }

    #[test]
    fn import_is_all_or_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let a = Accounts::open(&dir.path().join("a.db"), None).unwrap();
        let sha =
            "$6$saltsaltsalt$PMWE8DTlam1JU37Piyk43bHcMxTJq6sgu5DKB0/tGPjanN35jcY68QkpDfPFUGPWX5uCxIQkSPzMmqEiVNgts.";
        let bcrypt = "$2y$04$YLSvQOJ29sg3eEwc.mfkc.UpuzbA8tPu0/YrqKNs2y1dULMTowlhG";
        assert!(a.import(&format!("a@x.example:{sha}\nb@x.example:garbage\n"), false).is_err());
        assert!(a.list().unwrap().is_empty());
        assert_eq!(a.import(&format!("a@x.example:{sha}\nb@x.example:{bcrypt}:@x.example\n"), false).unwrap(), (2, 0));
        assert_eq!(a.verify("a@x.example", "secret").unwrap(), Verdict::Valid { cached: false });
        assert_eq!(a.verify("b@x.example", "secret").unwrap(), Verdict::Valid { cached: false });
        assert!(a.import(&format!("a@x.example:{sha}\n"), false).is_err());
        assert_eq!(a.import(&format!("a@x.example:{sha}\n"), true).unwrap(), (0, 1));
        // A login that exists halfway through the file: the lines before it
        // are not stored either (they were, one by one, before).
        let e = a.import(&format!("c@x.example:{sha}\nb@x.example:{sha}\nd@x.example:{sha}\n"), false).unwrap_err();
        assert!(matches!(e, AccountsError::Exists(ref l) if l == "b@x.example"), "{e}");
        let logins: Vec<String> = a.list().unwrap().into_iter().map(|u| u.login).collect();
        assert!(!logins.iter().any(|l| l == "c@x.example" || l == "d@x.example"), "half imported: {logins:?}");
    }

    /// Issue 13 item 19: an imported cheap hash must cost what the argon2id
    /// dummy costs, or the time of a failure tells that the login exists.
    /// Timing in a test would be flaky; the work done is counted instead.
    #[test]
    fn imported_hashes_cost_the_dummy_then_become_argon2id() {
        use hash::ARGON2_RUNS;
        let dir = tempfile::tempdir().unwrap();
        let a = Accounts::open(&dir.path().join("a.db"), None).unwrap();
        let bcrypt = "$2y$04$YLSvQOJ29sg3eEwc.mfkc.UpuzbA8tPu0/YrqKNs2y1dULMTowlhG";
        let sha =
            "$6$saltsaltsalt$PMWE8DTlam1JU37Piyk43bHcMxTJq6sgu5DKB0/tGPjanN35jcY68QkpDfPFUGPWX5uCxIQkSPzMmqEiVNgts.";
        a.import(&format!("b@x.example:{bcrypt}\ns@x.example:{sha}\n"), false).unwrap();
        let runs = |f: &dyn Fn() -> Verdict| {
            hash::dummy_hash();
            ARGON2_RUNS.with(|c| c.set(0));
            let v = f();
            (v, ARGON2_RUNS.with(|c| c.get()))
        };
        assert_eq!(runs(&|| a.verify("nobody@x.example", "guess").unwrap()), (Verdict::UnknownUser, 1));
        assert_eq!(
            runs(&|| a.verify("b@x.example", "guess").unwrap()),
            (Verdict::WrongPassword, 1),
            "bcrypt $2y$04$ runs argon2id too"
        );
        assert_eq!(
            runs(&|| a.verify("s@x.example", "guess").unwrap()),
            (Verdict::WrongPassword, 1),
            "$6$ runs argon2id too"
        );
        let scheme = |login: &str| a.list().unwrap().into_iter().find(|u| u.login == login).unwrap().scheme;
        assert_eq!(scheme("b@x.example"), "bcrypt");
        assert_eq!(
            runs(&|| a.verify("b@x.example", "secret").unwrap()),
            (Verdict::Valid { cached: false }, 1),
            "the new argon2id hash"
        );
        assert_eq!(scheme("b@x.example"), "argon2");
        let stored = a.store().hash("b@x.example").unwrap().unwrap();
        assert!(hash::is_current(&stored), "{stored}");
        assert_eq!(runs(&|| a.verify("b@x.example", "secret").unwrap()), (Verdict::Valid { cached: false }, 1));
        assert_eq!(runs(&|| a.verify("b@x.example", "guess").unwrap()), (Verdict::WrongPassword, 1), "argon2id alone");
    }

    /// Issue 13 items 7 and 12: the dashboard checks operators only; a
    /// login over 255 bytes exists nowhere.
    #[test]
    fn operators_only_and_stamps() {
        let dir = tempfile::tempdir().unwrap();
        let a = Accounts::open(&dir.path().join("a.db"), Some(Duration::from_secs(60))).unwrap();
        a.add("ops@x.example", "ops pw", &[]).unwrap();
        a.add("user@x.example", "user pw", &[]).unwrap();
        a.set_operator("ops@x.example", true).unwrap();
        assert_eq!(
            a.verify_operator("user@x.example", "user pw").unwrap(),
            (Verdict::UnknownUser, None),
            "a mail user's right password tells nothing"
        );
        let (v, stamp) = a.verify_operator("OPS@x.example", "ops pw").unwrap();
        assert_eq!(v, Verdict::Valid { cached: false });
        assert_eq!(a.operator_stamp("ops@x.example").unwrap(), stamp);
        assert_eq!(a.verify_operator("ops@x.example", "ops pw").unwrap().1, stamp, "cached: same stamp");
        a.set_password("ops@x.example", "new pw").unwrap();
        assert!(
            a.operator_stamp("ops@x.example").unwrap().is_some_and(|s| Some(s) != stamp),
            "a new password, a new stamp"
        );
        a.set_operator("ops@x.example", false).unwrap();
        assert_eq!(a.operator_stamp("ops@x.example").unwrap(), None);

        let long = format!("{}@x.example", "a".repeat(250));
        assert!(a.add(&long, "pw", &[]).is_err());
        assert!(normalize_login(&"a".repeat(255)).is_ok() && normalize_login(&"a".repeat(256)).is_err());
        // 'İ' is 2 bytes and lowers to 3: the stored form must fit too.
        assert!(normalize_login(&"İ".repeat(100)).is_err());
    }
}
