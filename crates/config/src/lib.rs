//! port25's configuration: one TOML file, a default for everything.
//!
//! [`parse`] is pure (text in, [`Config`] or [`ConfigError`] out) so it can be
//! fuzzed; [`load`] reads the file. Every error names the file, the line and
//! column, and what to change: serde reports unknown keys and wrong types
//! with their position, and the checks after parsing keep the position of
//! the value they judge (`toml::Spanned`). `dist/port25.toml` documents every
//! key with its default.

mod abuse;
mod acme;
mod directory;
mod error;
mod http;
mod model;
mod mxauth;
mod outbound;
mod postgres_connection;
mod screen;
mod shared;
mod submission;

pub use abuse::Abuse;
pub use acme::{Acme, AcmeChallenge};
pub use directory::{Backend as DirectoryBackend, Directory, Dovecot, Endpoint, Ldap, LdapLogin, Postgresql};
pub use error::{line_col, ConfigError};
pub use http::Http;
pub use model::*;
pub use mxauth::{AuthAction, Greylist, MxAuth, DEBIAN_PUBLIC_SUFFIX_LIST};
pub use outbound::{DkimKey, Outbound};
pub use screen::{parse_code_filter, Screen, ScreenAction, ScreenList};
pub use shared::{OnUnreachable, Shared, Store as SharedStore};
pub use submission::Submission;

use std::path::{Path, PathBuf};

/// Reads and checks a configuration file. Relative paths in it are relative
/// to the file's directory.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let text = read(
        path,
        "the configuration file",
        "check the path given with --config, or run without --config for the built-in defaults",
    )?;
    let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
    parse(&text, path, &base)
}

/// Reads a TOML file of port25's (`what` names it in the error, `hint`
/// says what to do): the read half of the one load-and-error path that
/// port25.toml, the egress policy, spampot.toml and collect.toml share.
pub fn read(path: &Path, what: &str, hint: &str) -> Result<String, ConfigError> {
    std::fs::read_to_string(path).map_err(|e| ConfigError {
        file: path.to_owned(),
        line: 0,
        column: 0,
        message: format!("cannot read {what}: {e}"),
        hint: hint.into(),
    })
}

/// Deserializes TOML text, an error naming file:line:column (from toml's
/// span), a message even where toml gives none, and a fix: `hint`, or, for
/// a key renamed to the `_secs` convention, the new name.
pub fn from_toml<T: serde::de::DeserializeOwned>(text: &str, file: &Path, hint: &str) -> Result<T, ConfigError> {
    toml::from_str(text).map_err(|e| {
        let offset = e.span().map_or(0, |s| s.start);
        let message = toml_message(&e, text, offset);
        let hint = renamed_key(&message).unwrap_or_else(|| hint.to_owned());
        ConfigError::at(file, text, offset, message, hint)
    })
}

/// Durations are whole seconds and their keys say so (`_secs`): an
/// unknown key `X` where `X_secs` is expected gets that as its fix.
fn renamed_key(message: &str) -> Option<String> {
    let key = message.strip_prefix("unknown field `")?.split('`').next()?;
    let renamed = format!("{key}_secs");
    message.contains(&format!("`{renamed}`")).then(|| format!("rename {key} to {renamed} (the same number of seconds)"))
}

/// The built-in configuration `port25 serve` uses without a file: relative
/// paths are relative to the current directory.
pub fn embedded_default() -> Config {
    parse("", Path::new("<built-in defaults>"), Path::new("")).expect("the empty configuration is valid")
}

/// Parses configuration text; `file` is only used in error messages.
pub fn parse(text: &str, file: &Path, base: &Path) -> Result<Config, ConfigError> {
    let raw: model::RawConfig = from_toml(text, file, "see dist/port25.toml for every key, its type and its default")?;
    model::resolve(raw, text, file, base)
}

/// toml's message, or one of our own where toml gives none: some syntax
/// errors (a control character in a comment, `a=` at the end of the file)
/// come back with an empty message, and "file:1:2: " alone helps nobody.
fn toml_message(e: &toml::de::Error, text: &str, offset: usize) -> String {
    let message = e.message().trim_end();
    if !message.is_empty() {
        return message.to_owned();
    }
    match text.get(offset..).and_then(|rest| rest.chars().next()) {
        None => "TOML syntax error: the file ends where a value or line end is expected".to_owned(),
        Some(c) if c.is_control() => {
            format!("TOML syntax error: control character {c:?} is not allowed here")
        }
        Some(c) => format!("TOML syntax error: unexpected {c:?}"),
    }
}

pub(crate) fn absolute(base: &Path, p: &str) -> PathBuf {
    let p = Path::new(p);
    if p.is_absolute() {
        p.to_owned()
    } else {
        base.join(p)
    }
}
