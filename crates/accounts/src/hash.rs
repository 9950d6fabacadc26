//! Password hashes: argon2id for every new password, and verification of
//! the crypt-style hashes a provider brings from its old system
//! (SHA-512-crypt `$6$`, SHA-256-crypt `$5$`, bcrypt `$2a$/$2b$/$2y$`), so
//! users migrate without a password reset. The first successful login with
//! an imported hash replaces it with argon2id ([`is_current`] says which
//! hashes are kept); `port25 users passwd` does too.
//!
//! Cheaper hashes must not answer faster than the argon2id dummy that
//! unknown logins are checked against, or the time tells which logins
//! exist: a failed check of a hash that is not [`is_current`] runs the
//! dummy argon2id as well (crate::Accounts::verify).

use argon2::password_hash::phc::{Output, ParamsString, Salt};
use argon2::password_hash::PasswordVerifier;
use argon2::{Argon2, Block};
use sha_crypt::ShaCrypt;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    Argon2,
    Sha512Crypt,
    Sha256Crypt,
    Bcrypt,
}

impl Scheme {
    pub fn name(self) -> &'static str {
        match self {
            Scheme::Argon2 => "argon2",
            Scheme::Sha512Crypt => "sha512-crypt",
            Scheme::Sha256Crypt => "sha256-crypt",
            Scheme::Bcrypt => "bcrypt",
        }
    }
}

const CRYPT64: &[u8] = b"./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

fn crypt64(s: &str) -> bool {
    s.bytes().all(|b| CRYPT64.contains(&b))
}

/// `$5$`/`$6$[rounds=N$]salt$hash` with the lengths crypt(3) produces.
fn sha_crypt_syntax(rest: &str, hash_len: usize) -> bool {
    let mut fields: Vec<&str> = rest.split('$').collect();
    if let Some(rounds) = fields.first().and_then(|f| f.strip_prefix("rounds=")) {
        let ok = rounds.parse::<u32>().is_ok_and(|n| (1000..=999_999_999).contains(&n));
        if !ok {
            return false;
        }
        fields.remove(0);
    }
    matches!(fields.as_slice(), [salt, hash] if salt.len() <= 16 && crypt64(salt) && hash.len() == hash_len && crypt64(hash))
}

/// `$2b$NN$` + 22 characters of salt and 31 of hash.
fn bcrypt_syntax(rest: &str) -> bool {
    match rest.split_once('$') {
        Some((cost, tail)) => {
            cost.len() == 2
                && cost.parse::<u32>().is_ok_and(|c| (4..=31).contains(&c))
                && tail.len() == 53
                && crypt64(tail)
        }
        None => false,
    }
}

/// Recognises a stored hash and checks its syntax completely, so that a
/// broken line is refused at import rather than failing every login later.
pub fn scheme(hash: &str) -> Result<Scheme, String> {
    if hash.starts_with("$argon2") {
        return match argon2::PasswordHash::new(hash) {
            Ok(h) if [argon2::ARGON2ID_IDENT, argon2::ARGON2I_IDENT, argon2::ARGON2D_IDENT].contains(&h.algorithm) => {
                Ok(Scheme::Argon2)
            }
            Ok(_) => Err("unknown argon2 variant".into()),
            Err(e) => Err(format!("malformed argon2 hash: {e}")),
        };
    }
    if let Some(rest) = hash.strip_prefix("$6$") {
        return if sha_crypt_syntax(rest, 86) {
            Ok(Scheme::Sha512Crypt)
        } else {
            Err("malformed SHA-512-crypt ($6$) hash".into())
        };
    }
    if let Some(rest) = hash.strip_prefix("$5$") {
        return if sha_crypt_syntax(rest, 43) {
            Ok(Scheme::Sha256Crypt)
        } else {
            Err("malformed SHA-256-crypt ($5$) hash".into())
        };
    }
    for prefix in ["$2a$", "$2b$", "$2y$"] {
        if let Some(rest) = hash.strip_prefix(prefix) {
            return if bcrypt_syntax(rest) {
                Ok(Scheme::Bcrypt)
            } else {
                Err(format!("malformed bcrypt ({prefix}) hash"))
            };
        }
    }
    if hash.starts_with("$1$") {
        return Err("MD5-crypt ($1$) is too weak to keep; ask the user to set a new password".into());
    }
    Err("unknown hash type: expected $argon2id$, $6$ (SHA-512-crypt), $5$ (SHA-256-crypt) or $2b$/$2y$/$2a$ (bcrypt)"
        .into())
}

/// True for an argon2id hash at least as costly as [`new_hash`] makes
/// (memory and passes): kept as it is. Anything else is replaced by a new
/// argon2id hash at the next successful login, and padded with the dummy's
/// work when a check fails.
pub fn is_current(hash: &str) -> bool {
    let Ok(h) = argon2::PasswordHash::new(hash) else { return false };
    let Ok(params) = argon2::Params::try_from(&h) else { return false };
    h.algorithm == argon2::ARGON2ID_IDENT
        && params.m_cost() >= argon2::Params::DEFAULT_M_COST
        && params.t_cost() >= argon2::Params::DEFAULT_T_COST
}

#[cfg(test)]
thread_local! {
    /// argon2 computations on this thread, so tests can see the work done.
    pub(crate) static ARGON2_RUNS: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
}

fn argon2_ran() {
    #[cfg(test)]
    ARGON2_RUNS.with(|c| c.set(c.get() + 1));
}

/// Checks a password against a stored hash. Constant-time in the libraries.
pub fn verify(password: &str, hash: &str) -> bool {
    match scheme(hash) {
        Ok(Scheme::Argon2) => argon2_verify(password.as_bytes(), hash),
        Ok(Scheme::Sha512Crypt | Scheme::Sha256Crypt) => {
            ShaCrypt::default().verify_password(password.as_bytes(), hash).is_ok()
        }
        Ok(Scheme::Bcrypt) => bcrypt::verify(password, hash).unwrap_or(false),
        Err(_) => false,
    }
}

/// A new argon2id hash (RFC 9106, the argon2 crate's defaults: 19 MiB, t=2,
/// p=1, OWASP's recommendation) with a random salt.
pub fn new_hash(password: &str) -> String {
    argon2_ran();
    let params = argon2::Params::DEFAULT;
    let salt = Salt::new(&argon2::password_hash::generate_salt()).expect("a salt of the recommended length");
    let mut out = [0u8; argon2::Params::DEFAULT_OUTPUT_LEN];
    with_blocks(params.block_count(), |blocks| {
        Argon2::default().hash_password_into_with_memory(password.as_bytes(), &salt, &mut out, blocks)
    })
    .expect("argon2 with default parameters and a random salt");
    let phc = argon2::PasswordHash {
        algorithm: argon2::ARGON2ID_IDENT,
        version: Some(argon2::Version::V0x13.into()),
        params: ParamsString::try_from(&params).expect("the default parameters"),
        salt: Some(salt),
        hash: Some(Output::new(&out).expect("32 bytes")),
    };
    phc.to_string()
}

/// Checks `password` against an argon2 PHC string, in pooled memory.
fn argon2_verify(password: &[u8], hash: &str) -> bool {
    let Ok(h) = argon2::PasswordHash::new(hash) else { return false };
    let (Ok(algorithm), Ok(params)) = (argon2::Algorithm::try_from(h.algorithm.as_str()), argon2::Params::try_from(&h))
    else {
        return false;
    };
    let version = match h.version.map(argon2::Version::try_from).transpose() {
        Ok(v) => v.unwrap_or_default(),
        Err(_) => return false,
    };
    let (Some(salt), Some(expected)) = (&h.salt, &h.hash) else { return false };
    argon2_ran();
    let mut out = [0u8; Output::MAX_LENGTH];
    let Some(out) = out.get_mut(..expected.len()) else { return false };
    let blocks = params.block_count();
    let argon = Argon2::new(algorithm, version, params);
    if with_blocks(blocks, |b| argon.hash_password_into_with_memory(password, salt, out, b)).is_err() {
        return false;
    }
    // Output's equality is constant-time.
    Output::new(out).is_ok_and(|computed| &computed == expected)
}

/// Working memory for argon2 (19 MiB at the default cost), reused: a fresh
/// allocation per check ends up cached in the allocator's per-thread arenas
/// (glibc), so a flood of checks grew the process by hundreds of MB even
/// with four at a time. The pool holds at most as many buffers as checks
/// ever ran at once (bounded by `[submission] auth_concurrent_checks`);
/// buffers of another size (an imported hash's own cost) are not kept.
fn with_blocks<R>(count: usize, f: impl FnOnce(&mut [Block]) -> R) -> R {
    static POOL: std::sync::Mutex<Vec<Vec<Block>>> = std::sync::Mutex::new(Vec::new());
    const KEEP: usize = 64;
    let pooled = count == argon2::Params::DEFAULT.block_count();
    let taken = if pooled { POOL.lock().unwrap_or_else(|p| p.into_inner()).pop() } else { None };
    let mut blocks = taken.unwrap_or_else(|| vec![Block::default(); count]);
    let r = f(&mut blocks);
    if pooled {
        let mut pool = POOL.lock().unwrap_or_else(|p| p.into_inner());
        if pool.len() < KEEP {
            pool.push(blocks);
        }
    }
    r
}

/// Verified against when the login is unknown, so that a wrong login takes
/// as long as a wrong password and does not reveal which logins exist.
pub fn dummy_hash() -> &'static str {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY.get_or_init(|| new_hash("port25 dummy password for unknown logins"))
}

#[cfg(test)]
mod tests {
    use super::*;

    // Made by other programs, for the password "secret":
    // `openssl passwd -6 -salt saltsaltsalt secret`, glibc crypt(3) with
    // "$6$rounds=10000$saltsaltsalt", and `htpasswd -bnBC 4 u secret`.
    const SHA512: &str =
        "$6$saltsaltsalt$PMWE8DTlam1JU37Piyk43bHcMxTJq6sgu5DKB0/tGPjanN35jcY68QkpDfPFUGPWX5uCxIQkSPzMmqEiVNgts.";
    const SHA512_ROUNDS: &str = "$6$rounds=10000$saltsaltsalt$mxZLFC.27fmAOmrI3MHCgrNvevu4IGEUC1gDEROE3aOW7NYpdeD3Aqx8vf/dRCUEMDtPgGPhepq3R/j4C3Yvq/";
    const BCRYPT: &str = "$2y$04$YLSvQOJ29sg3eEwc.mfkc.UpuzbA8tPu0/YrqKNs2y1dULMTowlhG";

    #[test]
    fn imported_hashes_verify() {
        for h in [SHA512, SHA512_ROUNDS, BCRYPT] {
            assert!(scheme(h).is_ok(), "{h}: {:?}", scheme(h));
            assert!(verify("secret", h), "{h}");
            assert!(!verify("Secret", h), "{h}");
        }
        assert!(verify("secret", &BCRYPT.replace("$2y$", "$2b$")));
    }

    #[test]
    fn new_hashes_are_argon2id() {
        let h = new_hash("correct horse");
        assert!(h.starts_with("$argon2id$v=19$"), "{h}");
        assert_eq!(scheme(&h), Ok(Scheme::Argon2));
        assert!(verify("correct horse", &h));
        assert!(!verify("correct horse ", &h));
        assert_ne!(h, new_hash("correct horse"), "salted");
        assert!(is_current(&h) && is_current(dummy_hash()));
        let phc = argon2::PasswordHash::new(&h).unwrap();
        assert!(
            Argon2::default().verify_password(b"correct horse", &phc).is_ok(),
            "the argon2 crate's own verifier agrees"
        );
        let cheap = Argon2::new(
            argon2::Algorithm::Argon2id,
            argon2::Version::V0x13,
            argon2::Params::new(1024, 1, 1, None).unwrap(),
        );
        let cheap = argon2::PasswordHasher::hash_password(&cheap, b"correct horse").unwrap().to_string();
        assert!(verify("correct horse", &cheap) && !is_current(&cheap), "{cheap}");
        for h in [SHA512, SHA512_ROUNDS, BCRYPT] {
            assert!(!is_current(h));
        }
    }

    #[test]
    fn broken_hashes_are_named() {
        assert!(scheme("$1$abc$def").unwrap_err().contains("MD5"));
        assert!(scheme("plaintext").unwrap_err().contains("unknown hash type"));
        assert!(scheme("$6$salt$short").is_err());
        assert!(scheme("$2b$99$YLSvQOJ29sg3eEwc.mfkc.UpuzbA8tPu0/YrqKNs2y1dULMTowlhG").is_err());
        assert!(scheme("$argon2id$v=19$garbage").is_err());
        assert!(!verify("x", "$6$salt$short"));
    }
}
