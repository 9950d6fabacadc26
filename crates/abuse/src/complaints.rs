//! Complaints matched to mail we really sent, pure.
//!
//! A complaint is attacker-controlled text, so it is attributed to a
//! login only through what an outsider cannot make up: our DKIM signature
//! (its `b=` value, recorded for each message we signed), or a
//! `Received:` header that says `by <our hostname> (port25) with ESMTPSA
//! id <queue id>` naming a queue id the index knows as an authenticated
//! submission *and* the reported message's Message-ID equal to the one we
//! recorded for that queue id. A report naming a login, a From: address or a
//! Message-ID alone attributes nothing. The same message reported again
//! counts once; reports are limited per reporter (the address that handed
//! the report to our MX, from our own top `Received:` header).
//!
//! The report itself is read with the report crate's parser
//! (`port25_report::arf`): one parser for ARF.

use std::collections::HashMap;

/// What a report was found to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// About a message `login` sent through us (queue id).
    Ours { login: String, queue_id: String },
    /// About mail we did not send, or cannot prove we sent: why.
    NotOurs(String),
}

/// A report, read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// An ARF (RFC 5965) report; else X-ARF, a forward or plain text.
    pub arf: bool,
    pub feedback_type: Option<String>,
    /// The reported message's header fields.
    pub headers: Vec<(String, String)>,
}

/// Reads a report: the reported message's headers, and for an ARF report
/// (multipart/report; report-type=feedback-report) the ARF fields, which
/// must parse: malformed ARF is an error with the reason, never guessed.
pub fn read(raw: &[u8]) -> Result<Report, String> {
    let (fields, _) = port25_report::arf::split_message(&String::from_utf8_lossy(
        raw.get(..raw.len().min(64 * 1024)).unwrap_or_default(),
    ));
    let ct = fields.iter().find(|f| f.0 == "content-type").map(|f| f.1.to_ascii_lowercase()).unwrap_or_default();
    let arf = ct.starts_with("multipart/report") && ct.contains("feedback-report");
    let feedback_type = if arf { port25_report::arf::parse(raw)?.feedback_type } else { None };
    let headers = port25_report::arf::reported_headers(raw)?;
    Ok(Report { arf, feedback_type, headers })
}

/// Queue ids in `Received:` headers that we wrote for an authenticated
/// submission: `by <hostname> (port25) with ESMTPSA id <id>` (or ESMTPA,
/// UTF8SMTPSA...: the A of RFC 3848).
pub fn our_queue_ids(headers: &[(String, String)], hostname: &str) -> Vec<String> {
    let by = format!("by {} (port25) with ", hostname.to_ascii_lowercase());
    let mut out = Vec::new();
    for (name, value) in headers {
        if name != "received" {
            continue;
        }
        let lower = value.to_ascii_lowercase();
        let Some(i) = lower.find(&by) else { continue };
        let Some(rest) = value.get(i + by.len()..) else { continue };
        let mut words = rest.split_whitespace();
        let (Some(with), Some("id"), Some(id)) = (words.next(), words.next(), words.next()) else { continue };
        let id = id.trim_end_matches(';');
        if with.ends_with('A')
            && !id.is_empty()
            && id.len() <= 64
            && id.bytes().all(|b| b.is_ascii_alphanumeric())
            && !out.iter().any(|o| o == id)
        {
            out.push(id.to_owned());
        }
    }
    out
}

/// Attributes a report: `lookup(queue id)` gives the login and
/// Message-ID the index recorded, None for an id it does not know;
/// `signed(digest)` the queue id and login of the message we signed with
/// that DKIM signature.
pub fn attribute(
    report: &Report,
    hostname: &str,
    lookup: impl Fn(&str) -> Option<(Option<String>, Option<String>)>,
    signed: impl Fn(&str) -> Option<(String, Option<String>)>,
) -> Verdict {
    for (name, value) in &report.headers {
        if name != "dkim-signature" {
            continue;
        }
        if let Some((queue_id, Some(login))) = port25_outbound::dkim::signature_digest(value).and_then(|d| signed(&d)) {
            return Verdict::Ours { login, queue_id };
        }
    }
    let ids = our_queue_ids(&report.headers, hostname);
    if ids.is_empty() {
        return Verdict::NotOurs(format!(
            "no Received: header by {hostname} (port25) with an authenticated submission's queue id"
        ));
    }
    let reported_mid =
        report.headers.iter().find(|f| f.0 == "message-id").map(|f| crate::index::bare_message_id(&f.1).to_owned());
    let mut why = String::new();
    for id in ids {
        match lookup(&id) {
            None => why = format!("queue id {id} is not one we sent (or it is past the index's retention)"),
            Some((None, _)) => why = format!("queue id {id} was not sent by a login"),
            Some((Some(login), recorded)) => match (&reported_mid, recorded) {
                (Some(r), Some(ours)) if *r == ours => return Verdict::Ours { login, queue_id: id },
                (None, _) => {
                    why = format!("queue id {id} is ours but the reported message has no Message-ID to confirm it")
                }
                (Some(r), ours) => {
                    why = format!(
                        "queue id {id} is ours but its Message-ID is not <{r}> (we recorded {}): forged?",
                        ours.map(|m| format!("<{m}>")).unwrap_or("none".into())
                    )
                }
            },
        }
    }
    Verdict::NotOurs(why)
}

/// Who handed a report to us: the client address in the top `Received:`
/// header, when our MX wrote it (`by <hostname> (port25)`); else the
/// report's From: domain. The rate limit's key.
pub fn reporter(raw: &[u8], hostname: &str) -> String {
    let text = String::from_utf8_lossy(raw.get(..raw.len().min(64 * 1024)).unwrap_or_default());
    let (fields, _) = port25_report::arf::split_message(&text);
    let by = format!("by {} (port25)", hostname.to_ascii_lowercase());
    if let Some((_, top)) = fields.iter().find(|f| f.0 == "received") {
        if top.to_ascii_lowercase().contains(&by) {
            if let Some(ip) = top.split('[').nth(1).and_then(|s| s.split(']').next()) {
                let ip = ip.strip_prefix("IPv6:").unwrap_or(ip);
                if let Ok(ip) = ip.parse::<std::net::IpAddr>() {
                    return crate::signals::network_of(ip);
                }
            }
        }
    }
    let from = fields.iter().find(|f| f.0 == "from").map(|f| f.1.as_str()).unwrap_or("");
    let domain = from.rsplit('@').next().unwrap_or("").trim_end_matches(['>', ' ', ')']).to_ascii_lowercase();
    if domain.is_empty() || domain.len() > 255 {
        "unknown".into()
    } else {
        domain
    }
}

/// Reporters tracked at most; past it the oldest window is dropped.
const MAX_REPORTERS: usize = 10_000;

/// At most `per_hour` reports per reporter in a fixed hour window.
pub struct RateLimit {
    per_hour: u32,
    windows: HashMap<String, (u64, u32)>,
}

impl RateLimit {
    pub fn new(per_hour: u32) -> RateLimit {
        RateLimit { per_hour, windows: HashMap::new() }
    }

    /// Counts one report from `who` at `now` (seconds); false when over.
    pub fn allow(&mut self, who: &str, now: u64) -> bool {
        let hour = now / 3600;
        if !self.windows.contains_key(who) && self.windows.len() >= MAX_REPORTERS {
            self.windows.retain(|_, w| w.0 == hour);
            if self.windows.len() >= MAX_REPORTERS {
                // Every slot is this hour's: an unknown reporter is refused
                // rather than the table growing.
                return false;
            }
        }
        let w = self.windows.entry(who.to_owned()).or_insert((hour, 0));
        if w.0 != hour {
            *w = (hour, 0);
        }
        w.1 += 1;
        w.1 <= self.per_hour
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn received(by: &str) -> (String, String) {
        ("received".into(), format!("from laptop ([198.51.100.7]) by {by} (port25) with ESMTPSA id 18A2B3C4D5E6F0001 (using TLSv1_3 ...); Mon, 1 Dec 2026"))
    }

    type Lookup<'a> = dyn Fn(&str) -> Option<(Option<String>, Option<String>)> + 'a;

    fn report(headers: Vec<(String, String)>) -> Report {
        Report { arf: true, feedback_type: Some("abuse".into()), headers }
    }

    #[test]
    fn only_our_received_header_with_a_known_id_and_the_same_message_id_attributes() {
        let lookup = |id: &str| {
            (id == "18A2B3C4D5E6F0001")
                .then(|| (Some("alice@example.net".to_owned()), Some("m1@example.net".to_owned())))
        };
        let mid = ("message-id".to_owned(), "<m1@example.net>".to_owned());
        let ok = report(vec![received("mx.example.net"), mid.clone()]);
        let unsigned = |_: &str| None;
        let attribute = |r: &Report, h: &str, l: &Lookup<'_>| attribute(r, h, l, unsigned);
        assert_eq!(
            attribute(&ok, "MX.example.net", &lookup),
            Verdict::Ours { login: "alice@example.net".into(), queue_id: "18A2B3C4D5E6F0001".into() }
        );
        // Another host's header with our id format: not ours.
        assert!(matches!(
            attribute(&report(vec![received("mx.evil.example"), mid.clone()]), "mx.example.net", &lookup),
            Verdict::NotOurs(_)
        ));
        // Our id, another Message-ID: a forged report about alice.
        let forged = report(vec![received("mx.example.net"), ("message-id".into(), "<other@x>".into())]);
        assert!(matches!(attribute(&forged, "mx.example.net", &lookup), Verdict::NotOurs(w) if w.contains("forged")));
        assert!(
            matches!(attribute(&report(vec![received("mx.example.net")]), "mx.example.net", &lookup), Verdict::NotOurs(w) if w.contains("no Message-ID"))
        );
        // An unauthenticated (MX) Received header of ours names no login.
        let mx = (
            "received".to_owned(),
            "from x ([192.0.2.1]) by mx.example.net (port25) with ESMTPS id 18A2B3C4D5E6F0001;".to_owned(),
        );
        assert!(matches!(attribute(&report(vec![mx, mid.clone()]), "mx.example.net", &lookup), Verdict::NotOurs(_)));
        assert!(matches!(attribute(&report(vec![mid]), "mx.example.net", &lookup), Verdict::NotOurs(_)));
    }

    #[test]
    fn our_dkim_signature_attributes_without_our_received_header() {
        let sig = (
            "dkim-signature".to_owned(),
            "v=1; a=rsa-sha256; d=example.net; s=p25; h=From:Subject; bh=AAAA; b=SGVsbG8g d29ybGQ=".to_owned(),
        );
        let digest = port25_outbound::dkim::signature_digest(&sig.1).unwrap();
        let signed =
            |d: &str| (d == digest).then(|| ("18A2B3C4D5E6F0001".to_owned(), Some("alice@example.net".to_owned())));
        let nothing = |_: &str| None;
        assert_eq!(
            attribute(&report(vec![sig.clone()]), "mx.example.net", nothing, signed),
            Verdict::Ours { login: "alice@example.net".into(), queue_id: "18A2B3C4D5E6F0001".into() }
        );
        // Another signature (a forger's, or someone else's) attributes nothing.
        let other = ("dkim-signature".to_owned(), sig.1.replace("b=SGVs", "b=XGVs"));
        assert!(matches!(attribute(&report(vec![other]), "mx.example.net", nothing, signed), Verdict::NotOurs(_)));
    }

    #[test]
    fn the_reporter_is_the_address_our_mx_received_the_report_from() {
        let raw = b"Received: from fbl.mail.example ([203.0.113.5]) by mx.example.net (port25) with ESMTPS id X1;\r\n d\r\nFrom: Forged <fbl@anything.example>\r\n\r\n";
        assert_eq!(reporter(raw, "mx.example.net"), "203.0.113.0/24");
        assert_eq!(reporter(b"From: <fbl@Mail.Example>\r\n\r\n", "mx.example.net"), "mail.example");
        assert_eq!(reporter(b"\r\n", "mx.example.net"), "unknown");
    }

    #[test]
    fn reports_are_limited_per_reporter_per_hour() {
        let mut r = RateLimit::new(2);
        assert!(r.allow("a", 3600) && r.allow("a", 3601));
        assert!(!r.allow("a", 3602), "third in the hour");
        assert!(r.allow("b", 3602), "another reporter");
        assert!(r.allow("a", 7200), "next hour");
        for i in 0..MAX_REPORTERS + 5 {
            r.allow(&format!("r{i}"), 7200);
        }
        assert!(r.windows.len() <= MAX_REPORTERS, "bounded");
    }
}
