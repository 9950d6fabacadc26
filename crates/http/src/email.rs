//! The `emailaddress` parameter mail clients send (Thunderbird's autoconfig
//! query, the address in an Autodiscover request, the Apple profile link).
//! Pure: text in, a checked address or the reason out; fuzzed.
//!
//! Only the syntax a login can have is accepted (no quoted local parts, no
//! comments, no address literals): the answer echoes the address into XML,
//! and a provider only configures clients for its own domains.

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Address {
    pub local: String,
    /// Lower case.
    pub domain: String,
}

impl Address {
    pub fn full(&self) -> String {
        format!("{}@{}", self.local, self.domain)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EmailError {
    #[error("no emailaddress given")]
    Missing,
    #[error("the address is longer than 254 bytes")]
    TooLong,
    #[error("the address has no @domain")]
    NoAt,
    #[error("the part before @ is empty, longer than 64 bytes or has characters a login cannot have")]
    BadLocal,
    #[error("the domain is not a valid domain name")]
    BadDomain,
    #[error("this server does not provide mail for {0}")]
    NotOurs(String),
    #[error("the query string is not valid percent-encoding or UTF-8")]
    BadEncoding,
}

/// Parses an address and checks that its domain is one of `domains`
/// (compared without case).
pub fn parse(text: &str, domains: &[String]) -> Result<Address, EmailError> {
    let text = text.trim();
    if text.is_empty() {
        return Err(EmailError::Missing);
    }
    if text.len() > 254 {
        return Err(EmailError::TooLong);
    }
    let (local, domain) = text.rsplit_once('@').ok_or(EmailError::NoAt)?;
    let local_ok = !local.is_empty()
        && local.len() <= 64
        && !local.starts_with('.')
        && !local.ends_with('.')
        && !local.contains("..")
        && local.chars().all(|c| !c.is_control() && !c.is_whitespace() && !"<>()[]\\,;:\"@".contains(c));
    if !local_ok {
        return Err(EmailError::BadLocal);
    }
    let domain = domain.strip_suffix('.').unwrap_or(domain).to_ascii_lowercase();
    let domain_ok = !domain.is_empty()
        && domain.len() <= 253
        && domain.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        });
    if !domain_ok {
        return Err(EmailError::BadDomain);
    }
    if !domains.iter().any(|d| d.eq_ignore_ascii_case(&domain)) {
        return Err(EmailError::NotOurs(domain));
    }
    Ok(Address { local: local.to_owned(), domain })
}

/// The value of `name` in a URL query string (`a=1&emailaddress=x%40y`),
/// percent- and `+`-decoded; `Ok(None)` when absent. The first occurrence
/// wins, so a repeated parameter cannot change the answer half-way.
pub fn query_param(query: &str, name: &str) -> Result<Option<String>, EmailError> {
    for pair in query.split('&') {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        if decode(k)? == name {
            return decode(v).map(Some);
        }
    }
    Ok(None)
}

fn decode(s: &str) -> Result<String, EmailError> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = bytes.get(i + 1..i + 3).ok_or(EmailError::BadEncoding)?;
                let hex = std::str::from_utf8(hex).map_err(|_| EmailError::BadEncoding)?;
                out.push(u8::from_str_radix(hex, 16).map_err(|_| EmailError::BadEncoding)?);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).map_err(|_| EmailError::BadEncoding)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ours() -> Vec<String> {
        vec!["example.net".into(), "example.org".into()]
    }

    #[test]
    fn addresses() {
        assert_eq!(
            parse("Alice.B+tag@Example.NET", &ours()),
            Ok(Address { local: "Alice.B+tag".into(), domain: "example.net".into() })
        );
        assert_eq!(parse("a@example.org.", &ours()).unwrap().domain, "example.org");
        assert_eq!(parse("", &ours()), Err(EmailError::Missing));
        assert_eq!(parse("alice", &ours()), Err(EmailError::NoAt));
        assert_eq!(parse("<script>@example.net", &ours()), Err(EmailError::BadLocal));
        assert_eq!(parse("a..b@example.net", &ours()), Err(EmailError::BadLocal));
        assert_eq!(parse("a@exa_mple.net", &ours()), Err(EmailError::BadDomain));
        assert_eq!(parse("a@elsewhere.example", &ours()), Err(EmailError::NotOurs("elsewhere.example".into())));
        assert_eq!(parse(&format!("{}@example.net", "a".repeat(250)), &ours()), Err(EmailError::TooLong));
    }

    #[test]
    fn query_strings() {
        assert_eq!(
            query_param("emailaddress=alice%40example.net", "emailaddress"),
            Ok(Some("alice@example.net".into()))
        );
        assert_eq!(query_param("x=1&emailaddress=a+b&emailaddress=c", "emailaddress"), Ok(Some("a b".into())));
        assert_eq!(query_param("x=1", "emailaddress"), Ok(None));
        assert_eq!(query_param("emailaddress=%4", "emailaddress"), Err(EmailError::BadEncoding));
        assert_eq!(query_param("emailaddress=%ff", "emailaddress"), Err(EmailError::BadEncoding));
    }
}
