//! Properties of the HTTP side's parsers (crates/http):
//!
//! `http_autodiscover` (port25_http::autodiscover::parse_request): never
//! panics; an accepted request has a non-empty address; any address, XML-
//! escaped into a minimal Outlook request, parses back unchanged (trimmed);
//! an accepted request behind a DOCTYPE is refused.
//!
//! `http_emailaddress` (port25_http::email): query_param never panics; a
//! value that parses as one of our addresses has no markup or control
//! characters, a lower-case domain from the list, and parses again to the
//! same address; percent-encoding any value and reading it back gives it.

use port25_http::autodiscover::{parse_request, ParseError};
use port25_http::email;

pub fn http_autodiscover(data: &[u8]) {
    match parse_request(data) {
        Ok(r) => {
            assert!(!r.email.is_empty());
            let doc = format!(
                "<Autodiscover><Request><EMailAddress>{}</EMailAddress></Request></Autodiscover>",
                port25_http::escape::xml(&r.email)
            );
            let again = parse_request(doc.as_bytes()).expect("a request built from an accepted address parses");
            // The escaping replaces what XML cannot carry; compare what can.
            if !r.email.chars().any(|c| (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}') {
                assert_eq!(again.email, r.email.trim());
            }
            // The same request behind a DOCTYPE is refused.
            assert!(
                parse_request(&[b"<!DOCTYPE a [<!ENTITY x \"y\">]>".as_slice(), data].concat()).is_err(),
                "accepted with a DOCTYPE"
            );
        }
        // quick-xml reads the keyword without case.
        Err(ParseError::Doctype) => assert!(String::from_utf8_lossy(data).to_ascii_uppercase().contains("<!DOCTYPE")),
        Err(_) => {}
    }
}

fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

pub fn http_emailaddress(data: &[u8]) {
    let domains = vec!["example.net".to_owned(), "xn--bcher-kva.example".to_owned()];
    let text = String::from_utf8_lossy(data);
    if let Ok(Some(v)) = email::query_param(&text, "emailaddress") {
        assert_eq!(
            email::query_param(&format!("emailaddress={}&x=1", percent_encode(&v)), "emailaddress"),
            Ok(Some(v.clone()))
        );
        if let Ok(a) = email::parse(&v, &domains) {
            let full = a.full();
            assert!(full.len() <= 254 && !full.chars().any(|c| c.is_control() || "<>\"\\ ".contains(c)), "{full:?}");
            assert!(domains.contains(&a.domain));
            assert_eq!(email::parse(&full, &domains), Ok(a));
        }
    }
    // The raw bytes as an address too (Autodiscover sends no encoding).
    if let Ok(a) = email::parse(&text, &domains) {
        assert_eq!(email::parse(&a.full(), &domains), Ok(a));
    }
}

/// `http_subject` (port25_http::captures::subject_of, the dashboard's
/// reading of a captured spam's headers): never panics, whatever bytes a
/// spammer sent (issue 13: `Date: \xff\xff` used to panic); a subject is
/// one line; a message that starts with an ASCII `Subject:` line has it.
pub fn http_subject(data: &[u8]) {
    let subject = port25_http::captures::subject_of(data);
    if let Some(s) = &subject {
        assert!(!s.contains('\n'), "{s:?}");
    }
    if let Some(rest) = data.strip_prefix(b"Subject:") {
        let line = rest.split(|&b| b == b'\n').next().unwrap_or_default();
        if line.is_ascii() && !line.contains(&b'\r') {
            let want = String::from_utf8_lossy(line).trim().to_owned();
            assert!(subject.as_deref().is_some_and(|s| s.starts_with(&want)), "{subject:?} lacks {want:?}");
        }
    }
}
