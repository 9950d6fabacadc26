//! Properties of the TXT record readers of `port25 dns check`
//! (`port25_dnscheck::records`): what live DNS answers is anyone's text.

use port25_dnscheck::records;
use std::net::IpAddr;

/// Never panics; a tag list that parses has unique, lower-case tag names
/// and trimmed values without `;`, at most 64 of them, and written back
/// (`name=value; ...`) parses to the same list; an SPF suggestion built
/// on any record keeps it an SPF record and names the addresses added;
/// what is shown on a terminal has no control character and is bounded;
/// a suggested TXT record is printable ASCII in strings of at most 255
/// bytes.
pub fn txt(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    if let Some(tags) = records::tags(&text) {
        assert!(tags.len() <= 64, "{} tags", tags.len());
        for (i, (n, v)) in tags.iter().enumerate() {
            assert!(
                !n.is_empty()
                    && *n == n.to_ascii_lowercase()
                    && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
                "{n:?}"
            );
            assert!(!v.contains(';') && v.trim_matches([' ', '\t', '\r', '\n']) == v, "{v:?}");
            assert!(tags[..i].iter().all(|(m, _)| m != n), "{n:?} twice");
        }
        let written: Vec<String> = tags.iter().map(|(n, v)| format!("{n}={v}")).collect();
        assert_eq!(records::tags(&written.join("; ")).as_ref(), Some(&tags), "{written:?}");
    }
    let ips: [IpAddr; 2] = ["192.0.2.25".parse().unwrap(), "2001:db8::25".parse().unwrap()];
    let spf = records::spf_with(Some(&text), &ips);
    if records::is_spf(&text) {
        assert!(records::is_spf(&spf), "{spf:?}");
    }
    for ip in ips {
        assert!(spf.split_ascii_whitespace().any(|t| t.eq_ignore_ascii_case(&records::spf_mechanism(ip))), "{spf:?}");
    }
    let _ = records::spf_all(&text);
    let shown = records::shown(&text);
    assert!(!shown.chars().any(char::is_control), "{shown:?}");
    assert!(shown.chars().count() <= 600 * 10 + 3, "{} characters", shown.chars().count());
    let rdata = records::txt_rdata(&text);
    assert!(rdata.bytes().all(|b| (0x20..0x7f).contains(&b)), "{rdata:?}");
    // Each "..." string: at most 255 bytes once its escapes (\X, \DDD) are read.
    let b = rdata.as_bytes();
    let (mut i, mut in_string, mut len) = (0, false, 0usize);
    while i < b.len() {
        match (in_string, b[i]) {
            (false, b'"') => (in_string, len) = (true, 0),
            (false, b' ') => {}
            (false, other) => panic!("{:?} between strings in {rdata:?}", other as char),
            (true, b'"') => in_string = false,
            (true, b'\\') if b.get(i + 1).is_some_and(u8::is_ascii_digit) => {
                i += 3;
                len += 1;
            }
            (true, b'\\') => {
                i += 1;
                len += 1;
            }
            (true, _) => len += 1,
        }
        assert!(len <= 255, "a character-string over 255 bytes in {rdata:?}");
        i += 1;
    }
    assert!(!in_string, "unterminated string in {rdata:?}");
}
