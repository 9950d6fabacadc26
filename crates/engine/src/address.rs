//! Mailbox and path syntax (RFC 5321 §4.1.2, with RFC 6531 UTF-8).
//!
//! The parser accepts what the grammar allows and keeps what a policy needs to
//! judge (quoted local parts, source routes, address literals) instead of
//! normalising it away: the MX refuses these relay tricks by looking at the
//! parsed form, never at a rewritten one.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Domain {
    /// A host name, as sent (case kept; compare with [`Domain::eq_name`]).
    Name(String),
    /// The text between the brackets of an address literal, e.g. "127.0.0.1"
    /// or "IPv6:::1".
    Literal(String),
}

impl Domain {
    /// Case-insensitive comparison with a configured domain name.
    pub fn eq_name(&self, name: &str) -> bool {
        matches!(self, Domain::Name(n) if n.eq_ignore_ascii_case(name))
    }
}

impl fmt::Display for Domain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Domain::Name(n) => f.write_str(n),
            Domain::Literal(l) => write!(f, "[{l}]"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mailbox {
    /// The local part without surrounding quotes (escapes resolved).
    pub local: String,
    pub quoted: bool,
    pub domain: Domain,
}

impl Mailbox {
    pub fn is_ascii(&self) -> bool {
        self.local.is_ascii() && self.domain.to_string().is_ascii()
    }
}

impl fmt::Display for Mailbox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.quoted {
            write!(f, "\"")?;
            for c in self.local.chars() {
                if c == '"' || c == '\\' {
                    write!(f, "\\")?;
                }
                write!(f, "{c}")?;
            }
            write!(f, "\"@{}", self.domain)
        } else {
            write!(f, "{}@{}", self.local, self.domain)
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReversePath {
    Null,
    Mailbox(Mailbox),
}

impl fmt::Display for ReversePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReversePath::Null => Ok(()),
            ReversePath::Mailbox(m) => m.fmt(f),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ForwardPath {
    /// `<Postmaster>` without a domain (RFC 5321 §4.5.1): always accepted.
    Postmaster,
    Mailbox {
        mailbox: Mailbox,
        /// An obsolete source route ("@a,@b:") as sent; a policy refuses it.
        source_route: Option<String>,
    },
}

impl fmt::Display for ForwardPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ForwardPath::Postmaster => f.write_str("Postmaster"),
            ForwardPath::Mailbox { mailbox, source_route: Some(r) } => write!(f, "{r}:{mailbox}"),
            ForwardPath::Mailbox { mailbox, source_route: None } => mailbox.fmt(f),
        }
    }
}

/// Why a path did not parse; the session turns it into a 501 reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathError(pub &'static str);

fn is_atext(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~".contains(c) || !c.is_ascii()
}

/// Splits `<...>` off the front of `s`, returning the inside and the rest.
pub(crate) fn split_angle(s: &str) -> Result<(&str, &str), PathError> {
    let s = s.strip_prefix('<').ok_or(PathError("address must be enclosed in <>"))?;
    // A '>' inside a quoted local part does not close the path.
    let mut in_quote = false;
    let mut escaped = false;
    for (i, c) in s.char_indices() {
        if escaped {
            escaped = false;
            continue;
        }
        match c {
            '\\' if in_quote => escaped = true,
            '"' => in_quote = !in_quote,
            '>' if !in_quote => return Ok((s.get(..i).unwrap_or_default(), s.get(i + 1..).unwrap_or_default())),
            _ => {}
        }
    }
    Err(PathError("missing closing >"))
}

pub fn parse_reverse_path(inner: &str) -> Result<ReversePath, PathError> {
    if inner.is_empty() {
        return Ok(ReversePath::Null);
    }
    let (route, mbox) = split_route(inner)?;
    if route.is_some() {
        // Source routes in MAIL are obsolete; accept and ignore (RFC 5321 §3.3).
    }
    Ok(ReversePath::Mailbox(parse_mailbox(mbox)?))
}

pub fn parse_forward_path(inner: &str) -> Result<ForwardPath, PathError> {
    if inner.eq_ignore_ascii_case("postmaster") {
        return Ok(ForwardPath::Postmaster);
    }
    let (source_route, mbox) = split_route(inner)?;
    Ok(ForwardPath::Mailbox { mailbox: parse_mailbox(mbox)?, source_route: source_route.map(str::to_owned) })
}

fn split_route(inner: &str) -> Result<(Option<&str>, &str), PathError> {
    if !inner.starts_with('@') {
        return Ok((None, inner));
    }
    let (route, mailbox) = inner.split_once(':').ok_or(PathError("source route without ':'"))?;
    for hop in route.split(',') {
        let d = hop.strip_prefix('@').ok_or(PathError("bad source route"))?;
        parse_domain(d)?;
    }
    Ok((Some(route), mailbox))
}

pub fn parse_mailbox(s: &str) -> Result<Mailbox, PathError> {
    let (local, quoted, rest) = if let Some(q) = s.strip_prefix('"') {
        let mut local = String::new();
        let mut chars = q.char_indices();
        let mut end = None;
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some((_, e)) if (' '..='~').contains(&e) => local.push(e),
                    _ => return Err(PathError("bad escape in quoted local part")),
                },
                '"' => {
                    end = Some(i + 1);
                    break;
                }
                c if (c as u32) < 0x20 || c == '\x7f' => return Err(PathError("control character in local part")),
                c => local.push(c),
            }
        }
        let end = end.ok_or(PathError("unterminated quoted local part"))?;
        (local, true, q.get(end..).unwrap_or_default())
    } else {
        let (local, _) = s.rsplit_once('@').ok_or(PathError("address has no domain"))?;
        if local.is_empty() {
            return Err(PathError("empty local part"));
        }
        for atom in local.split('.') {
            if atom.is_empty() || !atom.chars().all(is_atext) {
                return Err(PathError("bad local part"));
            }
        }
        (local.to_owned(), false, s.get(local.len()..).unwrap_or_default())
    };
    if local.len() > 64 {
        return Err(PathError("local part longer than 64 octets"));
    }
    let domain = rest.strip_prefix('@').ok_or(PathError("address has no domain"))?;
    Ok(Mailbox { local, quoted, domain: parse_domain(domain)? })
}

pub fn parse_domain(d: &str) -> Result<Domain, PathError> {
    if let Some(lit) = d.strip_prefix('[') {
        let lit = lit.strip_suffix(']').ok_or(PathError("unterminated address literal"))?;
        let valid = if let Some(v6) = lit.strip_prefix("IPv6:").or_else(|| lit.strip_prefix("ipv6:")) {
            v6.parse::<std::net::Ipv6Addr>().is_ok()
        } else {
            lit.parse::<std::net::Ipv4Addr>().is_ok()
        };
        if !valid {
            return Err(PathError("bad address literal"));
        }
        return Ok(Domain::Literal(lit.to_owned()));
    }
    if d.is_empty() || d.len() > 255 {
        return Err(PathError("bad domain"));
    }
    for label in d.split('.') {
        let ok = !label.is_empty()
            && label.len() <= 63
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || !c.is_ascii());
        if !ok {
            return Err(PathError("bad domain"));
        }
    }
    Ok(Domain::Name(d.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fwd(s: &str) -> Result<ForwardPath, PathError> {
        parse_forward_path(s)
    }

    #[test]
    fn plain_and_special_forms() {
        let ForwardPath::Mailbox { mailbox, source_route } = fwd("User.Name+tag@Example.NET").unwrap() else {
            panic!()
        };
        assert_eq!(mailbox.local, "User.Name+tag");
        assert!(mailbox.domain.eq_name("example.net"));
        assert!(source_route.is_none());
        assert_eq!(fwd("POSTMASTER").unwrap(), ForwardPath::Postmaster);
        let ForwardPath::Mailbox { source_route, .. } = fwd("@relay.example,@b.example:u@c.example").unwrap() else {
            panic!()
        };
        assert_eq!(source_route.as_deref(), Some("@relay.example,@b.example"));
        let ForwardPath::Mailbox { mailbox, .. } = fwd("\"a@b\\\"c\"@example.net").unwrap() else { panic!() };
        assert!(mailbox.quoted);
        assert_eq!(mailbox.local, "a@b\"c");
        let ForwardPath::Mailbox { mailbox, .. } = fwd("u@[127.0.0.1]").unwrap() else { panic!() };
        assert_eq!(mailbox.domain, Domain::Literal("127.0.0.1".into()));
        assert!(fwd("u@[IPv6:::1]").is_ok());
        assert!(fwd("jo\u{e3}o@exemplo.com.br").is_ok());
    }

    #[test]
    fn refuses_bad_syntax() {
        for bad in [
            "",
            "user",
            "@example.net",
            "a..b@example.net",
            ".a@example.net",
            "a@",
            "a@-x.net",
            "a@x..net",
            "a@[300.1.1.1]",
            "a b@example.net",
            "\"unterminated@example.net",
            "a@example.net.",
        ] {
            assert!(fwd(bad).is_err(), "{bad:?} should not parse");
        }
        assert!(parse_reverse_path("").is_ok());
    }
}
