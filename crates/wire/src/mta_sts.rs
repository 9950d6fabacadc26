//! MTA-STS (RFC 8461) as text: the `_mta-sts` TXT record, the policy file
//! served at `https://mta-sts.DOMAIN/.well-known/mta-sts.txt`, the HTTP
//! response that carries it, and which MX host names a policy allows.
//! Pure functions: the outbound queue (which fetches and enforces
//! policies) and `port25 dns check` (which validates the provider's own)
//! read them with the same code, and the fuzz target `mta_sts` runs here.
//!
//! Everything here comes from the network: lengths are bounded, nothing
//! is sliced by byte index, and anything that is not exactly what the RFC
//! says is an error with the reason (the caller then falls back to a
//! cached policy, RFC 8461 §5.1).

/// A policy file larger than this is refused (RFC 8461 §3.3 suggests 64 KiB).
pub const MAX_POLICY_BYTES: usize = 64 * 1024;

/// `max_age` above this (one year, RFC 8461 §3.2) is capped to it.
pub const MAX_AGE_CAP: u64 = 31_557_600;

/// At most this many `mx:` lines are kept; a policy with more is refused
/// (no real domain has thousands of MX patterns; bounds the matching).
pub const MAX_MX_PATTERNS: usize = 256;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mode {
    /// Only MXes matching the policy, over TLS with a certificate valid
    /// for the MX name; otherwise the mail waits.
    Enforce,
    /// Delivered as without a policy; failures are reported (TLS-RPT).
    Testing,
    /// The domain withdrew its policy.
    None,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Enforce => "enforce",
            Mode::Testing => "testing",
            Mode::None => "none",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    pub mode: Mode,
    /// Lower-case, without a trailing dot; `*.` only as the whole first label.
    pub mx: Vec<String>,
    /// Seconds, capped at [`MAX_AGE_CAP`].
    pub max_age: u64,
}

impl Policy {
    /// Whether `host` (an MX name from DNS) matches one of the `mx:`
    /// patterns (RFC 8461 §4.1): equal ignoring case and a trailing dot, or
    /// `*.rest` where `host` is exactly one label more than `rest`.
    pub fn allows(&self, host: &str) -> bool {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        self.mx.iter().any(|p| pattern_matches(p, &host))
    }

    /// The policy written back in the RFC's form (what the TLS-RPT report
    /// quotes as `policy-string`, one line per element).
    pub fn lines(&self) -> Vec<String> {
        let mut out = vec!["version: STSv1".to_owned(), format!("mode: {}", self.mode.as_str())];
        out.extend(self.mx.iter().map(|m| format!("mx: {m}")));
        out.push(format!("max_age: {}", self.max_age));
        out
    }
}

/// `host` lower-case without a trailing dot.
fn pattern_matches(pattern: &str, host: &str) -> bool {
    match pattern.strip_prefix("*.") {
        Some(rest) => host.split_once('.').is_some_and(|(first, tail)| !first.is_empty() && tail == rest),
        None => pattern == host,
    }
}

/// A host name as RFC 1035 letters-digits-hyphen labels (what MX names
/// are), at most 253 characters, with or without `*.` in front.
fn valid_pattern(p: &str) -> bool {
    let name = p.strip_prefix("*.").unwrap_or(p);
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        })
}

/// Reads a policy file (RFC 8461 §3.2): `key: value` lines ending in LF
/// or CRLF, `version: STSv1`, `mode`, `max_age` once each, `mx` once or
/// more (none needed with `mode: none`); unknown keys are ignored.
pub fn parse_policy(text: &[u8]) -> Result<Policy, String> {
    if text.len() > MAX_POLICY_BYTES {
        return Err(format!("the policy is {} bytes, more than the {MAX_POLICY_BYTES} allowed", text.len()));
    }
    let text = std::str::from_utf8(text).map_err(|_| "the policy is not UTF-8 text".to_owned())?;
    let (mut version, mut mode, mut max_age) = (None, None, None);
    let mut mx = Vec::new();
    for (n, line) in text.split('\n').enumerate() {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.trim_matches([' ', '\t']).is_empty() {
            continue;
        }
        let Some((key, value)) = line.split_once(':') else {
            return Err(format!("line {} is not \"key: value\"", n + 1));
        };
        // RFC 8461 §3.2: field names are case-sensitive, values follow *WSP.
        let value = value.trim_matches([' ', '\t']);
        let once = |slot: &Option<String>| {
            if slot.is_some() {
                Err(format!("\"{key}\" appears twice"))
            } else {
                Ok(Some(value.to_owned()))
            }
        };
        match key {
            "version" => version = once(&version)?,
            "mode" => mode = once(&mode)?,
            "max_age" => max_age = once(&max_age)?,
            "mx" => {
                let p = value.trim_end_matches('.').to_ascii_lowercase();
                if !valid_pattern(&p) {
                    return Err(format!("mx pattern {:?} is not a host name or *.domain", shorten(value)));
                }
                if mx.len() == MAX_MX_PATTERNS {
                    return Err(format!("more than {MAX_MX_PATTERNS} mx patterns"));
                }
                mx.push(p);
            }
            // Unknown fields are ignored (RFC 8461 §3.2), but must be fields.
            k if !k.is_empty() && k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') => {}
            _ => return Err(format!("line {} has no field name", n + 1)),
        }
    }
    match version.as_deref() {
        Some("STSv1") => {}
        Some(v) => return Err(format!("version is {:?}, not STSv1", shorten(v))),
        None => return Err("no \"version: STSv1\" line".into()),
    }
    let mode = match mode.as_deref() {
        Some("enforce") => Mode::Enforce,
        Some("testing") => Mode::Testing,
        Some("none") => Mode::None,
        Some(m) => return Err(format!("mode is {:?}, not enforce, testing or none", shorten(m))),
        None => return Err("no \"mode\" line".into()),
    };
    let max_age = match max_age.as_deref() {
        // 1*10DIGIT
        Some(a) if (1..=10).contains(&a.len()) && a.bytes().all(|b| b.is_ascii_digit()) => {
            a.parse::<u64>().map_err(|e| e.to_string())?.min(MAX_AGE_CAP)
        }
        Some(a) => return Err(format!("max_age {:?} is not 1 to 10 digits", shorten(a))),
        None => return Err("no \"max_age\" line".into()),
    };
    if mx.is_empty() && mode != Mode::None {
        return Err(format!("mode {} without any \"mx\" line", mode.as_str()));
    }
    Ok(Policy { mode, mx, max_age })
}

/// At most 64 characters of hostile text for an error message.
fn shorten(s: &str) -> String {
    let mut out: String = s.chars().take(64).filter(|c| !c.is_control()).collect();
    if s.chars().count() > 64 {
        out.push('…');
    }
    out
}

/// The `id` of an `_mta-sts` TXT record (RFC 8461 §3.1):
/// `v=STSv1; id=<1 to 32 letters or digits>` with optional other fields;
/// `None` for anything else. `records` are all TXT records at the name:
/// exactly one must start with `v=STSv1`.
pub fn txt_id<S: AsRef<str>>(records: &[S]) -> Result<String, String> {
    let sts: Vec<&str> = records.iter().map(AsRef::as_ref).filter(|r| r.starts_with("v=STSv1")).collect();
    let record = match sts.as_slice() {
        [one] => *one,
        [] => return Err("no \"v=STSv1\" TXT record".into()),
        many => return Err(format!("{} \"v=STSv1\" TXT records (RFC 8461 §3.1: none is used)", many.len())),
    };
    let mut fields = record.split(';').map(|f| f.trim_matches([' ', '\t']));
    if fields.next() != Some("v=STSv1") {
        return Err(format!("{:?} does not start with \"v=STSv1;\"", shorten(record)));
    }
    let mut id = None;
    for f in fields {
        if let Some(v) = f.strip_prefix("id=") {
            if id.is_some() {
                return Err("id= appears twice".into());
            }
            if !(1..=32).contains(&v.len()) || !v.bytes().all(|b| b.is_ascii_alphanumeric()) {
                return Err(format!("id {:?} is not 1 to 32 letters or digits", shorten(v)));
            }
            id = Some(v.to_owned());
        }
    }
    id.ok_or_else(|| format!("{:?} has no id=", shorten(record)))
}

/// The URL path a policy is fetched from.
pub const POLICY_PATH: &str = "/.well-known/mta-sts.txt";

/// The request for a policy: HTTP/1.0, so that the answer is the body as
/// is (no chunked encoding), and closed after it.
pub fn request(host: &str) -> String {
    format!("GET {POLICY_PATH} HTTP/1.0\r\nHost: {host}\r\nUser-Agent: port25\r\nAccept: text/plain\r\nConnection: close\r\n\r\n")
}

/// The body of an HTTP response holding a policy (RFC 8461 §3.3): status
/// 200 (redirects are not followed), `Content-Type: text/plain`, not
/// chunked, at most [`MAX_POLICY_BYTES`] and, with `Content-Length`,
/// complete. `response` is everything read until the server closed (the
/// caller stops reading past the limit).
pub fn response_body(response: &[u8]) -> Result<&[u8], String> {
    let end = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|p| (p, p + 4))
        .or_else(|| response.windows(2).position(|w| w == b"\n\n").map(|p| (p, p + 2)))
        .ok_or("the response ended before its header did")?;
    let (head, body) = (&response[..end.0], &response[end.1..]);
    let head = std::str::from_utf8(head).map_err(|_| "the response header is not text")?;
    let mut lines = head.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));
    let status = lines.next().unwrap_or_default();
    let mut words = status.split(' ');
    match (words.next(), words.next()) {
        (Some(v), Some(code)) if v.starts_with("HTTP/1.") => {
            if code != "200" {
                return Err(format!(
                    "the server answered {:?} (only 200 counts, redirects are not followed)",
                    shorten(status)
                ));
            }
        }
        _ => return Err(format!("{:?} is not an HTTP status line", shorten(status))),
    }
    let mut content_type = None;
    let mut length = None;
    for l in lines {
        let Some((name, value)) = l.split_once(':') else { continue };
        let value = value.trim_matches([' ', '\t']);
        if name.eq_ignore_ascii_case("content-type") {
            content_type = Some(value.to_ascii_lowercase());
        } else if name.eq_ignore_ascii_case("content-length") {
            length = Some(value.parse::<usize>().map_err(|_| format!("Content-Length {:?}", shorten(value)))?);
        } else if name.eq_ignore_ascii_case("transfer-encoding") && !value.eq_ignore_ascii_case("identity") {
            return Err(format!("Transfer-Encoding {:?} in an HTTP/1.0 answer", shorten(value)));
        }
    }
    match content_type.as_deref().map(|t| t.split(';').next().unwrap_or_default().trim()) {
        Some("text/plain") => {}
        Some(t) => return Err(format!("Content-Type {:?}, not text/plain", shorten(t))),
        None => return Err("no Content-Type (text/plain is required)".into()),
    }
    if body.len() > MAX_POLICY_BYTES || length.is_some_and(|l| l > MAX_POLICY_BYTES) {
        return Err(format!("the policy is larger than {MAX_POLICY_BYTES} bytes"));
    }
    match length {
        Some(l) if l > body.len() => Err(format!("the body ended after {} of {l} bytes", body.len())),
        Some(l) => Ok(&body[..l]),
        None => Ok(body),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_rfc_example_and_matches_one_label_wildcards() {
        let p = parse_policy(b"version: STSv1\r\nmode: enforce\r\nmx: mail.example.com\r\nmx: *.example.net\r\nmx: backupmx.example.com\r\nmax_age: 604800\r\n").unwrap();
        assert_eq!(p.mode, Mode::Enforce);
        assert_eq!(p.max_age, 604800);
        assert!(p.allows("mail.example.com") && p.allows("MAIL.Example.com."));
        assert!(p.allows("mx1.example.net"));
        assert!(!p.allows("example.net"), "the wildcard needs a label");
        assert!(!p.allows("a.b.example.net"), "one label only");
        assert!(!p.allows("mail.example.org"));
        assert_eq!(parse_policy(p.lines().join("\n").as_bytes()).unwrap(), p);
    }

    #[test]
    fn refuses_what_the_rfc_does_not_allow() {
        let ok = "version: STSv1\nmode: testing\nmx: mx.example\nmax_age: 86400\n";
        assert!(parse_policy(ok.as_bytes()).is_ok());
        for (bad, why) in [
            (ok.replace("STSv1", "STSv2"), "STSv1"),
            (ok.replace("testing", "enforced"), "mode"),
            (ok.replace("mx: mx.example\n", ""), "mx"),
            (ok.replace("86400", "-1"), "max_age"),
            (ok.replace("86400", "12345678901"), "max_age"),
            (ok.replace("mx.example", "mx.*.example"), "mx pattern"),
            (ok.replace("mx.example", "**.example"), "mx pattern"),
            (format!("{ok}mode: enforce\n"), "twice"),
            (ok.replace("version: STSv1\n", ""), "version"),
            (format!("{ok}garbage\n"), "key: value"),
        ] {
            let e = parse_policy(bad.as_bytes()).unwrap_err();
            assert!(e.contains(why), "{bad:?}: {e}");
        }
        // Unknown fields are ignored; max_age is capped at a year.
        let p = parse_policy(format!("{ok}future_field: x\n").replace("86400", "9999999999").as_bytes()).unwrap();
        assert_eq!(p.max_age, MAX_AGE_CAP);
        assert!(parse_policy(b"version: STSv1\nmode: none\nmax_age: 1\n").is_ok(), "none needs no mx");
        assert!(parse_policy(&vec![b'\n'; MAX_POLICY_BYTES + 1]).is_err());
    }

    #[test]
    fn reads_the_txt_id() {
        assert_eq!(txt_id(&["v=STSv1; id=20160831085700Z;"]).unwrap(), "20160831085700Z");
        assert_eq!(txt_id(&["other", "v=STSv1;id=abc"]).unwrap(), "abc");
        assert!(txt_id(&["v=STSv1; id=1", "v=STSv1; id=2"]).is_err());
        assert!(txt_id(&["v=STSv1; id=a-b"]).is_err());
        assert!(txt_id(&["v=STSv1"]).is_err());
        assert!(txt_id::<&str>(&[]).is_err());
    }

    #[test]
    fn takes_only_a_plain_200() {
        let body = "version: STSv1\n";
        let ok = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        assert_eq!(response_body(ok.as_bytes()).unwrap(), body.as_bytes());
        assert!(response_body(ok.replace("200 OK", "301 Moved").as_bytes()).unwrap_err().contains("redirects"));
        assert!(response_body(ok.replace("text/plain", "text/html").as_bytes()).is_err());
        assert!(response_body(&ok.as_bytes()[..ok.len() - 2]).unwrap_err().contains("ended"));
        assert!(response_body(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n")
            .is_err());
        assert!(response_body(b"garbage").is_err());
    }
}
