//! The Authentication-Results header field (RFC 8601): writing ours, and
//! removing the ones that claim to be ours.
//!
//! Anyone can put `Authentication-Results: mx.example.net; dmarc=pass` in
//! a message; a mail client that trusts our authserv-id would believe it.
//! RFC 8601 5: a border MTA removes every such field that claims its
//! authserv-id before adding its own. [`strip_ours`] is a pure function
//! over the header section (fuzzed: fuzz/fuzz_targets/ar_strip.rs).

use super::Check;
use std::ops::Range;

/// Comments nest (RFC 5322 3.2.2); deeper than this is not a header a
/// real MTA writes, and the authserv-id is then taken as unreadable.
const MAX_COMMENT_DEPTH: usize = 16;

/// A value as RFC 8601's `pvalue` or `value` (RFC 2045 token or
/// quoted-string): as is when it is a plain token, else quoted with `"`
/// and `\` escaped; control characters (CR, LF, NUL, ...) and anything not
/// ASCII (bidi overrides, text the message's encoding may not allow)
/// become `?`, so nothing from DNS or the client can end the field, start
/// another, or read differently than it is.
pub fn value(s: &str) -> String {
    const TSPECIALS: &str = "()<>@,;:\\\"/[]?= ";
    let token = !s.is_empty() && s.chars().all(|c| c.is_ascii_graphic() && !TSPECIALS.contains(c));
    // An address or domain (the pvalue forms) may stay unquoted.
    let pvalue = !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || "-._+@=!#$%&'*/^`{|}~".contains(c));
    if token || pvalue {
        return s.to_owned();
    }
    let mut out = String::with_capacity(s.len() + 2);
    push_quoted(&mut out, s.chars());
    out
}

/// A quoted-string of `chars`: `"` and `\` escaped, controls and
/// non-ASCII as `?`.
fn push_quoted(out: &mut String, chars: impl Iterator<Item = char>) {
    out.push('"');
    for c in chars {
        match c {
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            c if c.is_ascii_control() || !c.is_ascii() => out.push('?'),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Our header field, CRLF-terminated, one result per folded line.
pub fn format(authserv_id: &str, checks: &[Check]) -> String {
    let mut out = format!("Authentication-Results: {}", value(authserv_id));
    if checks.is_empty() {
        out.push_str("; none");
    }
    for c in checks {
        out.push_str(";\r\n\t");
        out.push_str(c.method);
        out.push('=');
        out.push_str(c.outcome.as_str());
        if !c.reason.is_empty() {
            out.push_str(" reason=");
            // Reasons are for people: bounded, so a huge TXT record does
            // not become a huge header line.
            push_quoted(&mut out, c.reason.chars().take(200));
        }
        for (k, v) in &c.props {
            out.push(' ');
            out.push_str(k);
            out.push('=');
            out.push_str(&value(v));
        }
    }
    out.push_str("\r\n");
    out
}

/// Where the header section ends: after the empty line, or the whole
/// message when there is none.
pub fn header_end(message: &[u8]) -> usize {
    let mut pos = 0;
    while pos < message.len() {
        let end = message[pos..].iter().position(|&b| b == b'\n').map_or(message.len(), |i| pos + i + 1);
        let line = &message[pos..end];
        if line == b"\r\n" || line == b"\n" {
            return end;
        }
        pos = end;
    }
    message.len()
}

/// The byte ranges (whole fields with their folded lines and line ends)
/// of every `Authentication-Results` field in the header section of
/// `message` whose authserv-id is `authserv_id` (compared without case:
/// it is a domain), or that cannot be read (a field we cannot parse could
/// still be read as ours by a lenient client: removed, fail closed).
pub fn strip_ours(message: &[u8], authserv_id: &str) -> Vec<Range<usize>> {
    let end = header_end(message);
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < end {
        // One field: its first line and every continuation line.
        let mut field_end = next_line(message, pos, end);
        while field_end < end && matches!(message[field_end], b' ' | b'\t') {
            field_end = next_line(message, field_end, end);
        }
        let field = &message[pos..field_end];
        if let Some(colon) = field.iter().position(|&b| b == b':') {
            let name = trim_wsp(&field[..colon]);
            if name.eq_ignore_ascii_case(b"Authentication-Results") {
                match authserv_id_of(&field[colon + 1..]) {
                    Some(id) if !id.eq_ignore_ascii_case(authserv_id.as_bytes()) => {}
                    _ => out.push(pos..field_end),
                }
            }
        }
        pos = field_end;
    }
    out
}

fn next_line(message: &[u8], from: usize, end: usize) -> usize {
    message[from..end].iter().position(|&b| b == b'\n').map_or(end, |i| from + i + 1)
}

fn trim_wsp(s: &[u8]) -> &[u8] {
    let start = s.iter().position(|b| !b.is_ascii_whitespace()).unwrap_or(s.len());
    let end = s.iter().rposition(|b| !b.is_ascii_whitespace()).map_or(start, |i| i + 1);
    &s[start..end]
}

/// The authserv-id of a field's value: after any comments and white
/// space, a token or a quoted-string (unquoted here). `None` when there is
/// none or a comment or quoted-string does not end.
pub fn authserv_id_of(value: &[u8]) -> Option<Vec<u8>> {
    let mut i = skip_cfws(value, 0)?;
    if value.get(i) == Some(&b'"') {
        let mut id = Vec::new();
        i += 1;
        loop {
            match value.get(i)? {
                b'"' => return if id.is_empty() { None } else { Some(id) },
                b'\\' => {
                    id.push(*value.get(i + 1)?);
                    i += 2;
                }
                b'\r' | b'\n' => i += 1,
                &b => {
                    id.push(b);
                    i += 1;
                }
            }
        }
    }
    let start = i;
    while i < value.len() && !matches!(value[i], b';' | b'(' | b'"' | b' ' | b'\t' | b'\r' | b'\n') {
        i += 1;
    }
    if i == start {
        return None;
    }
    Some(value[start..i].to_vec())
}

/// Skips white space (folding included) and comments; `None` when a
/// comment does not end or nests too deep.
fn skip_cfws(s: &[u8], mut i: usize) -> Option<usize> {
    loop {
        match s.get(i) {
            Some(b' ' | b'\t' | b'\r' | b'\n') => i += 1,
            Some(b'(') => {
                let mut depth = 0usize;
                loop {
                    match s.get(i)? {
                        b'(' => {
                            depth += 1;
                            if depth > MAX_COMMENT_DEPTH {
                                return None;
                            }
                        }
                        b')' => {
                            depth -= 1;
                            if depth == 0 {
                                i += 1;
                                break;
                            }
                        }
                        b'\\' => i += 1,
                        _ => {}
                    }
                    i += 1;
                }
            }
            _ => return Some(i),
        }
    }
}

/// Removes `ranges` (sorted, not overlapping) from `content` in place.
pub fn remove_ranges(content: &mut Vec<u8>, ranges: &[Range<usize>]) {
    if ranges.is_empty() {
        return;
    }
    let mut write = ranges[0].start;
    for (n, r) in ranges.iter().enumerate() {
        let next = ranges.get(n + 1).map_or(content.len(), |r| r.start);
        content.copy_within(r.end..next, write);
        write += next - r.end;
    }
    content.truncate(write);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stripped(msg: &str) -> String {
        let mut v = msg.as_bytes().to_vec();
        let r = strip_ours(&v, "mx.example.net");
        remove_ranges(&mut v, &r);
        String::from_utf8(v).unwrap()
    }

    #[test]
    fn fields_claiming_our_id_are_removed_others_kept() {
        let msg = "Authentication-Results: mx.example.net; dmarc=pass\r\n\
                   Authentication-Results: other.example; spf=pass\r\n\
                   authentication-results :  (forged)\r\n (nested (comment)) MX.Example.NET;\r\n\tdkim=pass\r\n\
                   Subject: hi\r\n\
                   Authentication-Results: \"mx.example.net\"; spf=pass\r\n\
                   Authentication-Results: mx.example.net.evil; spf=pass\r\n\
                   Authentication-Results: (unterminated comment mx.example.net; spf=pass\r\n\
                   \r\n\
                   Authentication-Results: mx.example.net; in the body\r\n";
        assert_eq!(
            stripped(msg),
            "Authentication-Results: other.example; spf=pass\r\n\
             Subject: hi\r\n\
             Authentication-Results: mx.example.net.evil; spf=pass\r\n\
             \r\n\
             Authentication-Results: mx.example.net; in the body\r\n"
        );
        assert_eq!(stripped("Subject: x\r\n\r\nbody"), "Subject: x\r\n\r\nbody");
        assert_eq!(stripped("Authentication-Results: mx.example.net;x"), "");
        assert_eq!(authserv_id_of(b" mx.example.net 1; none").unwrap(), b"mx.example.net");
        assert_eq!(authserv_id_of(b" \"a\\\"b\"; none").unwrap(), b"a\"b");
        assert!(authserv_id_of(b"  ; none").is_none());
        let deep = format!("{}x{}", "(".repeat(40), ")".repeat(40));
        assert!(authserv_id_of(deep.as_bytes()).is_none());
    }

    #[test]
    fn values_cannot_break_the_field() {
        assert_eq!(value("user@d.example"), "user@d.example");
        assert_eq!(value("a b\r\nX-Evil: 1"), "\"a b??X-Evil: 1\"");
        assert_eq!(value("q\"\\"), "\"q\\\"\\\\\"");
        assert_eq!(value(""), "\"\"");
    }
}
