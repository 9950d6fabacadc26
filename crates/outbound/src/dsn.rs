//! Delivery status notifications (RFC 3464 inside RFC 6522
//! multipart/report): bounces for permanent failures and expiry, warnings
//! for mail that is still being retried. Pure: the queue decides when and
//! to whom (never to a null sender, RFC 5321 §6.1); this only writes bytes.

use port25_queue::SpooledMessage;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Permanent failure (5xx, null MX, no such domain) or expiry.
    Failed,
    /// Still queued after the warning delay; retried until `until`.
    Delayed { until: u64 },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RcptReport {
    pub rcpt: String,
    /// RFC 3463 status, e.g. "5.1.1".
    pub status: String,
    /// The remote server, when one answered.
    pub remote_mta: Option<String>,
    /// What the remote said ("550 5.1.1 ...") or why we gave up.
    pub diagnostic: String,
}

/// The enhanced status for a report: the remote's, else one from its code.
pub fn status_of(enhanced: Option<&str>, code: u16) -> String {
    match enhanced {
        Some(e) => e.to_owned(),
        None if code >= 500 => "5.0.0".into(),
        None => "4.0.0".into(),
    }
}

/// "5 days", "4 hours", "90 seconds": the largest whole unit, for people.
pub fn span(d: std::time::Duration) -> String {
    let s = d.as_secs();
    let (n, unit) = [(86400, "day"), (3600, "hour"), (60, "minute")]
        .into_iter()
        .find(|(u, _)| s >= *u && s.is_multiple_of(*u))
        .map(|(u, name)| (s / u, name))
        .unwrap_or((s, "second"));
    format!("{n} {unit}{}", if n == 1 { "" } else { "s" })
}

fn date(unix: u64) -> String {
    port25_engine::received::rfc5322_date(std::time::UNIX_EPOCH + std::time::Duration::from_secs(unix))
}

/// The original message's header section (up to the empty line).
fn original_headers(content: &[u8]) -> &[u8] {
    match content.windows(4).position(|w| w == b"\r\n\r\n") {
        Some(i) => &content[..i + 2],
        None => content,
    }
}

/// Builds the report for `message` (sent by `message.from`, which must not
/// be empty). `now` is Unix seconds; `boundary_seed` makes the MIME
/// boundary unique without randomness in this pure function.
pub fn build(hostname: &str, message: &SpooledMessage, kind: Kind, rcpts: &[RcptReport], now: u64) -> Vec<u8> {
    let boundary = format!("{}.{now}/{hostname}", message.id);
    let (subject, action, intro) = match kind {
        Kind::Failed => (
            "Undelivered Mail Returned to Sender",
            "failed",
            "Your message could not be delivered to one or more recipients. This is a permanent error; it will not be retried.",
        ),
        Kind::Delayed { .. } => (
            "Delayed Mail (still being retried)",
            "delayed",
            "Your message has not been delivered yet to one or more recipients. It is still being retried; you do not need to send it again.",
        ),
    };
    let mut human = format!("This is the mail system at host {hostname}.\r\n\r\n{intro}\r\n\r\n");
    for r in rcpts {
        human.push_str(&format!("<{}>: {}\r\n", r.rcpt, r.diagnostic));
    }
    if let Kind::Delayed { until } = kind {
        human.push_str(&format!("\r\nDelivery will be attempted until {}.\r\n", date(until)));
    }
    let mut status = format!("Reporting-MTA: dns; {hostname}\r\nX-Port25-Queue-ID: {}\r\nArrival-Date: {}\r\n", message.id, date(message.received_at));
    for r in rcpts {
        status.push_str(&format!("\r\nFinal-Recipient: rfc822; {}\r\nAction: {action}\r\nStatus: {}\r\n", r.rcpt, r.status));
        if let Some(mta) = &r.remote_mta {
            status.push_str(&format!("Remote-MTA: dns; {mta}\r\n"));
        }
        // Diagnostic text comes from remote servers: one line, bounded.
        let diag: String = r.diagnostic.chars().map(|c| if c.is_control() { ' ' } else { c }).take(900).collect();
        status.push_str(&format!("Diagnostic-Code: smtp; {diag}\r\nLast-Attempt-Date: {}\r\n", date(now)));
        if let Kind::Delayed { until } = kind {
            status.push_str(&format!("Will-Retry-Until: {}\r\n", date(until)));
        }
    }
    let mut out = format!(
        "From: Mail Delivery System <MAILER-DAEMON@{hostname}>\r\nTo: <{to}>\r\nSubject: {subject}\r\nDate: {d}\r\nMessage-ID: <{id}.{now}.dsn@{hostname}>\r\n\
         Auto-Submitted: auto-replied\r\nMIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=delivery-status;\r\n\tboundary=\"{boundary}\"\r\n\r\n\
         This is a MIME-encapsulated message.\r\n\r\n--{boundary}\r\nContent-Description: Notification\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{human}\r\n\
         --{boundary}\r\nContent-Description: Delivery report\r\nContent-Type: message/delivery-status\r\n\r\n{status}\r\n\
         --{boundary}\r\nContent-Description: Undelivered Message Headers\r\nContent-Type: text/rfc822-headers\r\n\r\n",
        to = message.from,
        d = date(now),
        id = message.id,
    )
    .into_bytes();
    out.extend_from_slice(original_headers(&message.content));
    out.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_read_as_people_write_them() {
        let d = std::time::Duration::from_secs;
        assert_eq!([span(d(432_000)), span(d(14_400)), span(d(90)), span(d(60)), span(d(1))], ["5 days", "4 hours", "90 seconds", "1 minute", "1 second"]);
    }

    #[test]
    fn a_bounce_is_a_multipart_report_with_one_status_per_recipient() {
        let m = SpooledMessage {
            id: "Q1".into(),
            received_at: 1_700_000_000,
            peer: "p".into(),
            helo: "h".into(),
            from: "alice@example.net".into(),
            rcpts: vec!["bob@remote.example".into()],
            content: b"Received: x\r\nSubject: hello\r\n\r\nsecret body\r\n".to_vec(),
        };
        let r = RcptReport {
            rcpt: "bob@remote.example".into(),
            status: "5.1.1".into(),
            remote_mta: Some("mx.remote.example".into()),
            diagnostic: "550 5.1.1 no such user".into(),
        };
        let text = String::from_utf8(build("mx.example.net", &m, Kind::Failed, &[r], 1_700_000_100)).unwrap();
        assert!(text.contains("Content-Type: multipart/report; report-type=delivery-status;"));
        assert!(text.contains("\r\nFinal-Recipient: rfc822; bob@remote.example\r\nAction: failed\r\nStatus: 5.1.1\r\nRemote-MTA: dns; mx.remote.example\r\n"));
        assert!(text.contains("Subject: hello\r\n"));
        assert!(!text.contains("secret body"), "only the headers are returned");
        assert!(text.lines().all(|l| l.len() <= 998));
        assert!(!text.replace("\r\n", "").contains('\n'));
    }
}
