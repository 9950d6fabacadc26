//! The Received trace header (RFC 5321 §4.4), with the protocol names of
//! RFC 3848 (ESMTPS when TLS was used, ESMTPSA with SMTP AUTH) and RFC 6531 (UTF8SMTP).

use crate::address::ForwardPath;
use crate::hooks::{Envelope, SessionInfo};
use std::time::SystemTime;

/// RFC 5322 date with a numeric zone, e.g. "Mon, 23 Nov 2026 19:37:57 +0000".
pub fn rfc5322_date(t: SystemTime) -> String {
    httpdate::fmt_http_date(t).replace(" GMT", " +0000")
}

/// Keeps a client-supplied HELO name from breaking the header's comment
/// syntax or folding: only printable characters without parentheses. Non-
/// ASCII stays only in a message that arrived with SMTPUTF8, and never what
/// the text log escapes (control, format and separator characters: bidi
/// overrides, U+2028, zero-width).
fn sanitize(s: &str, utf8: bool) -> String {
    let printable = |c: char| !port25_events::escaped(c) && (c.is_ascii() || utf8);
    s.chars().map(|c| if !printable(c) || c == '(' || c == ')' || c == '\\' { '?' } else { c }).collect()
}

pub fn header(info: &SessionInfo, hostname: &str, envelope: &Envelope, id: &str) -> Vec<u8> {
    let helo = sanitize(info.helo.as_deref().unwrap_or("unknown"), envelope.params.smtputf8);
    let ip = match info.peer.ip() {
        std::net::IpAddr::V4(v4) => format!("[{v4}]"),
        std::net::IpAddr::V6(v6) => format!("[IPv6:{v6}]"),
    };
    let base = match (envelope.params.smtputf8, info.esmtp) {
        (true, _) => "UTF8SMTP",
        (false, true) => "ESMTP",
        (false, false) => "SMTP",
    };
    // RFC 3848: S for TLS, A for SMTP AUTH ("ESMTPSA").
    let tls_mark = if info.tls.is_some() { "S" } else { "" };
    let auth_mark = if info.auth.is_some() { "A" } else { "" };
    let with = format!("{base}{tls_mark}{auth_mark}");
    let tls = match &info.tls {
        Some(t) => format!("\r\n\t(using {} with cipher {})", t.version, t.cipher),
        None => String::new(),
    };
    let proxied = match info.proxied_by {
        Some(p) => format!(" via proxy {}", p.ip()),
        None => String::new(),
    };
    let for_clause = match envelope.rcpts.as_slice() {
        [ForwardPath::Mailbox { mailbox, .. }] => format!("\r\n\tfor <{mailbox}>"),
        _ => String::new(),
    };
    format!(
        "Received: from {helo} ({ip}{proxied})\r\n\tby {hostname} (port25) with {with} id {id}{tls}{for_clause};\r\n\t{}\r\n",
        rfc5322_date(SystemTime::now())
    )
    .into_bytes()
}

#[cfg(test)]
mod tests {
    use super::sanitize;

    #[test]
    fn helo_names_stay_printable_and_ascii_unless_smtputf8() {
        assert_eq!(sanitize("mx.example.net", false), "mx.example.net");
        assert_eq!(sanitize("a(b)\\c\r\n", false), "a?b??c??");
        assert_eq!(sanitize("\u{e9}t\u{e9}.example", false), "?t?.example");
        assert_eq!(sanitize("\u{e9}t\u{e9}.example", true), "\u{e9}t\u{e9}.example");
        assert_eq!(sanitize("a\u{202e}b\u{2028}c\u{feff}\u{200b}", true), "a?b?c??");
    }
}
