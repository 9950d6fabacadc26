//! Escaping a login before it goes into LDAP: into a search filter
//! (RFC 4515: `*`, `(`, `)`, `\` and NUL as `\XX`, so `*)(uid=*` is a
//! literal string, not a wildcard or a second condition) and into a DN
//! (RFC 4514: the special characters of an attribute value). Pure and
//! total: every string has one escaped form, and a template gets the value
//! only where it says `{user}` / `{address}`.

/// A value for an RFC 4515 filter: `*`, `(`, `)`, `\`, NUL and every other
/// byte outside printable ASCII as `\XX` (UTF-8 bytes each escaped: the
/// filter stays ASCII).
pub fn filter_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        match b {
            b'*' | b'(' | b')' | b'\\' | 0 => out.push_str(&format!("\\{b:02x}")),
            0x20..=0x7e => out.push(b as char),
            _ => out.push_str(&format!("\\{b:02x}")),
        }
    }
    out
}

/// A value for an RFC 4514 DN: `"`, `+`, `,`, `;`, `<`, `>`, `\`, `=`,
/// a leading `#` or space, a trailing space and control characters escaped.
pub fn dn_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let last = value.chars().count().saturating_sub(1);
    for (i, c) in value.chars().enumerate() {
        match c {
            '"' | '+' | ',' | ';' | '<' | '>' | '\\' | '=' => {
                out.push('\\');
                out.push(c);
            }
            '#' | ' ' if i == 0 => {
                out.push('\\');
                out.push(c);
            }
            ' ' if i == last => out.push_str("\\ "),
            c if c.is_control() => {
                let mut b = [0u8; 4];
                for byte in c.encode_utf8(&mut b).bytes() {
                    out.push_str(&format!("\\{byte:02x}"));
                }
            }
            c => out.push(c),
        }
    }
    out
}

/// `template` with every `{name}` replaced by `value`, escaped by `escape`.
pub fn fill(template: &str, name: &str, value: &str, escape: fn(&str) -> String) -> String {
    template.replace(&format!("{{{name}}}"), &escape(value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc4515_filter_injection_is_a_literal() {
        assert_eq!(filter_value("alice@x.example"), "alice@x.example");
        assert_eq!(filter_value("*"), "\\2a");
        assert_eq!(filter_value("*)(uid=*"), "\\2a\\29\\28uid=\\2a");
        assert_eq!(filter_value("a\\b\0c"), "a\\5cb\\00c");
        assert_eq!(filter_value("é"), "\\c3\\a9");
        let f = fill("(&(objectClass=inetOrgPerson)(mail={user}))", "user", "x)(|(mail=*", filter_value);
        assert_eq!(f, "(&(objectClass=inetOrgPerson)(mail=x\\29\\28|\\28mail=\\2a))");
        assert_eq!(f.matches('(').count(), 3, "no parenthesis added by the login");
    }

    #[test]
    fn rfc4514_dn_values() {
        assert_eq!(dn_value("alice"), "alice");
        assert_eq!(dn_value("a,ou=admins"), "a\\,ou\\=admins");
        assert_eq!(dn_value("#x "), "\\#x\\ ");
        assert_eq!(dn_value(" x"), "\\ x");
        assert_eq!(dn_value("a+b\"c<>;\\"), "a\\+b\\\"c\\<\\>\\;\\\\");
        assert_eq!(dn_value("a\nb"), "a\\0ab");
        assert_eq!(
            fill("uid={user},ou=people,dc=x", "user", "bob,dc=evil", dn_value),
            "uid=bob\\,dc\\=evil,ou=people,dc=x"
        );
    }
}
