//! The import file: one user per line, `login:hash[:addresses]`.
//!
//! - `hash` is a crypt-style hash (`$6$...`, `$5$...`, `$2b$/$2y$/$2a$...`,
//!   `$argon2id$...`); a Dovecot-style scheme prefix such as
//!   `{SHA512-CRYPT}` or `{BLF-CRYPT}` is accepted and dropped, so a Dovecot
//!   passwd-file's first two fields import as they are.
//! - `addresses` is a comma-separated list of addresses and `@domain`
//!   entries; without it a login that is an address may send as itself.
//! - Blank lines and lines starting with `#` are skipped.
//!
//! Pure: the whole file is checked before anything is written, and every
//! error names its line.

use crate::{address, hash};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportLine {
    pub login: String,
    pub hash: String,
    pub addresses: Vec<String>,
}

/// Parses the whole file; the first bad line is an error "line N: why".
pub fn parse(text: &str) -> Result<Vec<ImportLine>, String> {
    let mut out = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for (n, raw) in text.lines().enumerate() {
        let line = raw.trim_end_matches('\r').trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let parsed = parse_line(line).map_err(|e| format!("line {}: {e}", n + 1))?;
        if !seen.insert(parsed.login.clone()) {
            return Err(format!("line {}: login {:?} appears twice", n + 1, parsed.login));
        }
        out.push(parsed);
    }
    Ok(out)
}

pub fn parse_line(line: &str) -> Result<ImportLine, String> {
    let mut fields = line.splitn(3, ':');
    let login = fields.next().unwrap_or_default().trim();
    let Some(hash) = fields.next() else {
        return Err("expected login:hash[:addresses]".into());
    };
    crate::check_login(login)?;
    let hash = strip_scheme(hash.trim());
    hash::scheme(hash)?;
    let addresses = match fields.next() {
        Some(list) if !list.trim().is_empty() => list
            .split(',')
            .map(|a| address::normalize(a).ok_or_else(|| format!("{:?} is not an address or @domain", a.trim())))
            .collect::<Result<Vec<_>, _>>()?,
        _ => crate::default_addresses(login),
    };
    Ok(ImportLine { login: login.to_owned(), hash: hash.to_owned(), addresses })
}

/// Drops a Dovecot `{SCHEME}` prefix.
fn strip_scheme(hash: &str) -> &str {
    match hash.strip_prefix('{').and_then(|h| h.split_once('}')) {
        Some((_, rest)) => rest,
        None => hash,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHA512: &str =
        "$6$saltsaltsalt$PMWE8DTlam1JU37Piyk43bHcMxTJq6sgu5DKB0/tGPjanN35jcY68QkpDfPFUGPWX5uCxIQkSPzMmqEiVNgts.";

    #[test]
    fn lines_and_errors() {
        let text = format!(
            "# users\n\nalice@example.net:{SHA512}\nrole:{{SHA512-CRYPT}}{SHA512}:@example.net, info@example.org\n"
        );
        let lines = parse(&text).unwrap();
        assert_eq!(lines[0].addresses, vec!["alice@example.net"]);
        assert_eq!(lines[1].login, "role");
        assert_eq!(lines[1].hash, SHA512);
        assert_eq!(lines[1].addresses, vec!["@example.net", "info@example.org"]);

        assert_eq!(parse("a@b.example\n").unwrap_err(), "line 1: expected login:hash[:addresses]");
        assert!(parse(&format!("\nx:{SHA512}:not-an-address\n")).unwrap_err().starts_with("line 2: "));
        assert!(parse("x:$1$abc$def\n").unwrap_err().contains("MD5"));
        assert!(parse(&format!("x:{SHA512}\nx:{SHA512}\n")).unwrap_err().contains("twice"));
        assert!(parse(&format!("bad login:{SHA512}\n")).is_err());
    }
}
