//! `egress notify`: one notice per subscriber still on port 25, rendered
//! from a template (pt-BR and English built in, each overridable), as an
//! RFC 5322 message for a Maildir, an mbox or the CRM's CSV.
//!
//! Pure: templates in, bytes out. Template text is `Subject: ...` on the
//! first line, then the body; `{{name}}` placeholders are replaced with
//! the subscriber's values ([`PLACEHOLDERS`]). An unknown placeholder, a
//! missing subject or an oversized template is an error naming the file and
//! line, so a typo never reaches thousands of customers. Values come from
//! flows and accounting files: control characters are removed before they
//! reach a header or the body, and non-ASCII header text is RFC 2047
//! encoded, so no value can add a header or break the message.

use crate::plan::{Kind, Provider, Subscriber};
use std::fmt::Write;

/// The languages with built-in templates.
pub const LANGUAGES: &[&str] = &["pt-BR", "en"];
pub const KINDS: &[Kind] = &[Kind::OpenProxy, Kind::MailClient, Kind::Bot, Kind::Unclassified];
/// A template larger than this is refused (they are a page of text).
pub const MAX_TEMPLATE: usize = 64 << 10;

pub const PLACEHOLDERS: &[&str] = &[
    "address",
    "subscriber",
    "network",
    "kind",
    "provider",
    "submission",
    "autoconfig",
    "enforce_from",
    "evidence",
    "first_seen",
    "last_seen",
];

fn builtin(language: &str, kind: Kind) -> &'static str {
    match (language, kind) {
        ("en", Kind::MailClient) => include_str!("../notices/en/mail-client.txt"),
        ("en", Kind::Bot) => include_str!("../notices/en/bot.txt"),
        ("en", Kind::Unclassified) => include_str!("../notices/en/unclassified.txt"),
        ("en", Kind::OpenProxy) => include_str!("../notices/en/open-proxy.txt"),
        (_, Kind::OpenProxy) => include_str!("../notices/pt-BR/open-proxy.txt"),
        (_, Kind::MailClient) => include_str!("../notices/pt-BR/mail-client.txt"),
        (_, Kind::Bot) => include_str!("../notices/pt-BR/bot.txt"),
        (_, Kind::Unclassified) => include_str!("../notices/pt-BR/unclassified.txt"),
    }
}

/// A checked template: its subject and body, each split at placeholders.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    subject: Vec<Piece>,
    body: Vec<Piece>,
    /// Where it came from (a file, or `built-in LANG/KIND`).
    pub origin: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Text(String),
    Value(&'static str),
}

fn pieces(line_text: &str, origin: &str, line: usize, out: &mut Vec<Piece>) -> Result<(), String> {
    let mut rest = line_text;
    while let Some((before, after)) = rest.split_once("{{") {
        out.push(Piece::Text(before.to_owned()));
        let Some((name, tail)) = after.split_once("}}") else {
            return Err(format!("{origin}:{line}: \"{{{{\" without \"}}}}\""));
        };
        let name = name.trim();
        let Some(known) = PLACEHOLDERS.iter().find(|p| **p == name) else {
            return Err(format!(
                "{origin}:{line}: unknown placeholder {{{{{name}}}}}; known: {}",
                PLACEHOLDERS.join(", ")
            ));
        };
        out.push(Piece::Value(known));
        rest = tail;
    }
    out.push(Piece::Text(rest.to_owned()));
    Ok(())
}

impl Template {
    /// Parses template text; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Template, String> {
        if text.len() > MAX_TEMPLATE {
            return Err(format!("{origin}: larger than {MAX_TEMPLATE} bytes"));
        }
        let mut lines = text.lines();
        let first = lines.next().unwrap_or("");
        let Some(subject) = first.strip_prefix("Subject:") else {
            return Err(format!("{origin}:1: the first line must be \"Subject: ...\""));
        };
        let mut s = Vec::new();
        pieces(subject.trim(), origin, 1, &mut s)?;
        let mut body = Vec::new();
        for (i, l) in lines.enumerate() {
            pieces(l, origin, i + 2, &mut body)?;
            body.push(Piece::Text("\n".into()));
        }
        Ok(Template { subject: s, body, origin: origin.to_owned() })
    }

    pub fn builtin(language: &str, kind: Kind) -> Template {
        Template::parse(builtin(language, kind), &format!("built-in {language}/{}", kind.as_str()))
            .expect("built-in templates are valid")
    }

    fn render(pieces: &[Piece], v: &Values) -> String {
        let mut s = String::new();
        for p in pieces {
            match p {
                Piece::Text(t) => s.push_str(t),
                Piece::Value(name) => s.push_str(&v.get(name)),
            }
        }
        s
    }
}

/// What a notice is about, its values already cleaned.
pub struct Values {
    pairs: Vec<(&'static str, String)>,
}

/// Control characters out (CR, LF, tabs, bidi overrides, ...), bounded length.
fn clean(v: &str) -> String {
    let s: String = v
        .chars()
        .filter(|c| {
            !c.is_control() && !matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{2028}' | '\u{2029}')
        })
        .collect();
    s.chars().take(2000).collect()
}

impl Values {
    pub fn new(s: &Subscriber, network: &str, provider: Option<&Provider>, enforce_from: &str) -> Values {
        let p = provider;
        let pairs = vec![
            ("address", s.address.to_string()),
            ("subscriber", s.subscriber.clone().unwrap_or_else(|| s.address.to_string())),
            ("network", network.to_owned()),
            ("kind", s.kind.as_str().to_owned()),
            ("provider", p.map_or_else(|| "-".to_owned(), |p| p.name.clone())),
            ("submission", p.map_or_else(|| "-".to_owned(), |p| p.submission.clone())),
            (
                "autoconfig",
                p.map_or_else(
                    || "-".to_owned(),
                    |p| if p.autoconfig.is_empty() { "-".to_owned() } else { p.autoconfig.clone() },
                ),
            ),
            ("enforce_from", enforce_from.to_owned()),
            ("evidence", s.evidence.clone()),
            ("first_seen", s.first_seen.clone()),
            ("last_seen", s.last_seen.clone()),
        ];
        Values { pairs: pairs.into_iter().map(|(k, v)| (k, clean(&v))).collect() }
    }

    fn get(&self, name: &str) -> String {
        self.pairs.iter().find(|p| p.0 == name).map_or_else(String::new, |p| p.1.clone())
    }
}

/// A rendered notice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    pub subject: String,
    pub body: String,
}

pub fn render(t: &Template, v: &Values) -> Notice {
    Notice { subject: clean(&Template::render(&t.subject, v)), body: Template::render(&t.body, v) }
}

/// An RFC 2047 encoded word (base64) when `v` is not plain ASCII.
fn header_text(v: &str) -> String {
    let v = clean(v);
    if v.is_ascii() {
        return v;
    }
    // Encoded words of at most 45 bytes of text each (75 characters
    // encoded), split on character boundaries.
    let mut words = Vec::new();
    let mut chunk = String::new();
    for c in v.chars() {
        if chunk.len() + c.len_utf8() > 45 {
            words.push(format!("=?UTF-8?B?{}?=", b64(chunk.as_bytes())));
            chunk.clear();
        }
        chunk.push(c);
    }
    if !chunk.is_empty() {
        words.push(format!("=?UTF-8?B?{}?=", b64(chunk.as_bytes())));
    }
    words.join("\r\n ")
}

/// Standard base64 (RFC 4648) for the encoded words.
fn b64(data: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut s = String::with_capacity(data.len().div_ceil(3) * 4);
    for c in data.chunks(3) {
        let n = (c[0] as u32) << 16 | (*c.get(1).unwrap_or(&0) as u32) << 8 | *c.get(2).unwrap_or(&0) as u32;
        for i in 0..4 {
            if i <= c.len() {
                s.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                s.push('=');
            }
        }
    }
    s
}

/// An address for From:/To:: refused unless it is a plain local@domain.
pub fn check_address(a: &str) -> Result<(), String> {
    let ok = a.len() <= 254
        && a.split_once('@').is_some_and(|(l, d)| {
            !l.is_empty()
                && !d.is_empty()
                && l.chars().all(|c| c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~.".contains(c))
                && d.chars().all(|c| c.is_ascii_alphanumeric() || "-.".contains(c))
        });
    if ok {
        Ok(())
    } else {
        Err(format!("{a:?} is not a plain address (local@domain)"))
    }
}

/// The RFC 5322 message (CRLF line ends): headers, then the body as UTF-8
/// text. `id` makes the Message-ID unique (e.g. the subscriber and time).
pub fn message(
    n: &Notice,
    from: &str,
    to: Option<&str>,
    date: &str,
    id: &str,
    s: &Subscriber,
    language: &str,
) -> Vec<u8> {
    let mut m = String::new();
    let _ = write!(m, "From: {from}\r\n");
    if let Some(to) = to {
        let _ = write!(m, "To: {to}\r\n");
    }
    let _ = write!(m, "Subject: {}\r\n", header_text(&n.subject));
    let _ = write!(m, "Date: {date}\r\n");
    let domain = from.rsplit_once('@').map_or("localhost", |d| d.1);
    let _ = write!(m, "Message-ID: <{id}@{domain}>\r\n");
    let _ = write!(m, "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=UTF-8\r\nContent-Transfer-Encoding: 8bit\r\nContent-Language: {language}\r\n");
    let _ = write!(m, "X-Port25-Address: {}\r\n", s.address);
    if let Some(who) = &s.subscriber {
        let _ = write!(m, "X-Port25-Subscriber: {}\r\n", header_text(who));
    }
    let _ = write!(m, "X-Port25-Kind: {}\r\n\r\n", s.kind.as_str());
    for line in n.body.lines() {
        m.push_str(line);
        m.push_str("\r\n");
    }
    m.into_bytes()
}

/// One message in an mbox (mboxrd: LF line ends, `From ` lines quoted).
pub fn mbox_entry(msg: &[u8], from: &str, asctime: &str) -> Vec<u8> {
    let mut out = format!("From {from} {asctime}\n").into_bytes();
    let text = String::from_utf8_lossy(msg);
    for line in text.split("\r\n") {
        let unquoted = line.trim_start_matches('>');
        if unquoted.starts_with("From ") {
            out.push(b'>');
        }
        out.extend_from_slice(line.as_bytes());
        out.push(b'\n');
    }
    out
}

/// A CSV field, quoted when it holds a separator, a quote or a line end.
pub fn csv_field(v: &str) -> String {
    if v.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", v.replace('"', "\"\""))
    } else {
        v.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sub() -> Subscriber {
        Subscriber {
            address: crate::sender::Sender::host("198.51.100.8".parse().unwrap()),
            subscriber: Some("joão\r\nBcc: victim@example.com".into()),
            kind: Kind::MailClient,
            provider: Some("example-mail".into()),
            evidence: "3 flows".into(),
            flows: 3,
            distinct_destinations: 1,
            peak_destinations_in_window: 1,
            peak_flows_per_minute: 1,
            first_seen: "2025-11-24T16:00:00Z".into(),
            last_seen: "2025-11-24T16:10:00Z".into(),
        }
    }

    #[test]
    fn every_builtin_template_parses_and_uses_known_values() {
        for l in LANGUAGES {
            for k in KINDS {
                let t = Template::builtin(l, *k);
                let n = render(&t, &Values::new(&sub(), "res", None, "2027-03-01T00:00:00Z"));
                assert!(!n.subject.is_empty() && n.body.contains("198.51.100.8"), "{l} {k:?}: {n:?}");
                assert!(!n.body.contains("{{"));
            }
        }
    }

    #[test]
    fn placeholders_are_checked_and_values_cannot_add_headers() {
        let e = Template::parse("Subject: hi\nline\nyour {{adress}}\n", "t.txt").unwrap_err();
        assert!(e.starts_with("t.txt:3: unknown placeholder {{adress}}"), "{e}");
        assert!(Template::parse("hello\n", "t.txt").unwrap_err().starts_with("t.txt:1: the first line must be"));
        let t = Template::parse("Subject: para {{subscriber}} ação\nOlá {{subscriber}}\n", "t.txt").unwrap();
        let s = sub();
        let n = render(&t, &Values::new(&s, "res", None, "-"));
        let m = String::from_utf8(message(
            &n,
            "noc@isp.test",
            Some("joao@example.test"),
            "Wed, 2 Dec 2026 13:00:00 +0000",
            "x1",
            &s,
            "pt-BR",
        ))
        .unwrap();
        let headers = m.split("\r\n\r\n").next().unwrap();
        assert!(!headers.lines().any(|l| l.starts_with("Bcc:")), "{m}");
        assert!(headers.contains("Subject: =?UTF-8?B?"), "{m}");
        assert!(m.contains("\r\n\r\nOlá joãoBcc: victim@example.com\r\n"), "{m}");
        assert_eq!(b64(b"Ol\xc3\xa1"), "T2zDoQ==");
        let mb = String::from_utf8(mbox_entry(
            b"Subject: x\r\n\r\nFrom here\r\n>From there\r\n",
            "noc@isp.test",
            "Wed Dec  2 13:00:00 2026",
        ))
        .unwrap();
        assert!(mb.contains("\n>From here\n>>From there\n"), "{mb}");
        assert!(check_address("noc@isp.test").is_ok() && check_address("a@b\r\nBcc: x").is_err());
    }
}
