//! Which addresses a login may send as: exact addresses (`alice@example.net`)
//! and whole domains (`@example.net`, for role accounts and devices).
//! Comparison ignores case in both parts: providers treat local parts as
//! case-insensitive, and a From: written "Alice@Example.NET" is the same
//! person.

/// Normalises an allowed-address entry; `None` when it is neither
/// `local@domain` nor `@domain`.
pub fn normalize(entry: &str) -> Option<String> {
    let entry = entry.trim();
    let (local, domain) = entry.rsplit_once('@')?;
    let domain_ok = !domain.is_empty()
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && domain.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b >= 0x80);
    let local_ok = !local.contains(['<', '>', ' ', ',', ':', '\t']);
    (domain_ok && local_ok).then(|| entry.to_lowercase())
}

/// True when `address` is one of `allowed` (already normalised).
pub fn allows(allowed: &[String], address: &str) -> bool {
    let address = address.to_lowercase();
    let Some((_, domain)) = address.rsplit_once('@') else {
        return false;
    };
    allowed.iter().any(|a| *a == address || a.strip_prefix('@') == Some(domain))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_and_domain_entries() {
        let allowed: Vec<String> =
            ["alice@example.net", "@role.example"].iter().map(|a| normalize(a).unwrap()).collect();
        assert!(allows(&allowed, "alice@example.net"));
        assert!(allows(&allowed, "Alice@EXAMPLE.net"));
        assert!(allows(&allowed, "anyone@role.example"));
        assert!(!allows(&allowed, "bob@example.net"));
        assert!(!allows(&allowed, "alice@example.net.evil"));
        assert!(!allows(&allowed, "x@sub.role.example"));
        assert!(!allows(&allowed, "alice"));
        assert!(normalize("no-at-sign").is_none());
        assert!(normalize("a@").is_none());
        assert!(normalize("<a@b.example>").is_none());
        assert_eq!(normalize(" @Example.NET ").as_deref(), Some("@example.net"));
    }
}
