//! Delivery status notifications (RFC 3464 inside RFC 6522
//! multipart/report): bounces for permanent failures and expiry, warnings
//! for mail that is still being retried. Pure: the queue decides when and
//! to whom (never to a null sender, RFC 5321 §6.1); this only writes bytes.

use port25_spool::SpooledMessage;

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

pub(crate) fn date(unix: u64) -> String {
    port25_engine::received::rfc5322_date(std::time::UNIX_EPOCH + std::time::Duration::from_secs(unix))
}

/// At most this much of the original header section is returned (RFC 3462
/// `text/rfc822-headers`): enough for any real header section, and a DSN
/// can never carry a message back to a sender who may be forged.
pub const MAX_RETURNED_HEADERS: usize = 32 * 1024;

/// At most this many characters of one recipient's diagnostic (a remote
/// server's reply text) go into a DSN.
pub const MAX_DIAGNOSTIC: usize = 900;

/// The original message's header section, headers only: the lines from the
/// start that are header fields (`Name: value`) or their folded
/// continuations, up to the empty line or the first line that is neither
/// (a message with no header section, or no empty line, is not returned
/// whole), cut at a line boundary within [`MAX_RETURNED_HEADERS`].
fn original_headers(content: &[u8]) -> &[u8] {
    // Only whole lines within the limit count: never look further.
    let content = &content[..content.len().min(MAX_RETURNED_HEADERS)];
    let mut end = 0;
    let mut first = true;
    while end < content.len() {
        let Some(nl) = content[end..].windows(2).position(|w| w == b"\r\n") else { break };
        let line = &content[end..end + nl];
        let field = line
            .iter()
            .position(|&b| b == b':')
            .is_some_and(|colon| colon > 0 && line[..colon].iter().all(|b| (33..=126).contains(b)));
        let folded = !first && line.first().is_some_and(|b| *b == b' ' || *b == b'\t');
        if !(field || folded) {
            break;
        }
        end += nl + 2;
        first = false;
    }
    &content[..end]
}

/// Text from a remote server (or our own reason) made safe for a DSN: one
/// line, control characters (bare CR, LF, NUL, escape...) as spaces, at
/// most [`MAX_DIAGNOSTIC`] characters.
fn one_line(text: &str) -> String {
    let mut out: String = text.chars().map(|c| if c.is_control() { ' ' } else { c }).take(MAX_DIAGNOSTIC).collect();
    if text.chars().nth(MAX_DIAGNOSTIC).is_some() {
        out.push_str(" [...]");
    }
    out
}

/// Breaks `text` (one line) into lines of at most `width` characters for
/// people, at spaces where there are any (a longer word is cut), each
/// further line indented.
fn wrap(text: &str, width: usize) -> String {
    const INDENT: &str = "    ";
    let mut lines = vec![String::new()];
    for word in text.split(' ').filter(|w| !w.is_empty()) {
        let chars: Vec<char> = word.chars().collect();
        for (k, piece) in chars.chunks(width.saturating_sub(INDENT.len()).max(1)).enumerate() {
            let fresh = |l: &String| l.is_empty() || l == INDENT;
            let last = lines.last().expect("one line at least");
            // The second and further pieces of a cut word start a line.
            if !fresh(last) && (k > 0 || last.chars().count() + 1 + piece.len() > width) {
                lines.push(INDENT.to_owned());
            }
            let last = lines.last_mut().expect("one line at least");
            if !fresh(last) {
                last.push(' ');
            }
            last.extend(piece);
        }
    }
    lines.join("\r\n") + "\r\n"
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
        // The diagnostic is the remote server's text: never raw into our mail.
        human.push_str(&wrap(&format!("<{}>: {}", one_line(&r.rcpt), one_line(&r.diagnostic)), 76));
    }
    if let Kind::Delayed { until } = kind {
        human.push_str(&format!("\r\nDelivery will be attempted until {}.\r\n", date(until)));
    }
    let mut status = format!(
        "Reporting-MTA: dns; {hostname}\r\nX-Port25-Queue-ID: {}\r\nArrival-Date: {}\r\n",
        message.id,
        date(message.received_at)
    );
    for r in rcpts {
        status.push_str(&format!(
            "\r\nFinal-Recipient: rfc822; {}\r\nAction: {action}\r\nStatus: {}\r\n",
            one_line(&r.rcpt),
            one_line(&r.status)
        ));
        if let Some(mta) = &r.remote_mta {
            status.push_str(&format!("Remote-MTA: dns; {}\r\n", one_line(mta)));
        }
        // Diagnostic text comes from remote servers: one line, bounded.
        status.push_str(&format!(
            "Diagnostic-Code: smtp; {}\r\nLast-Attempt-Date: {}\r\n",
            one_line(&r.diagnostic),
            date(now)
        ));
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
        assert_eq!(
            [span(d(432_000)), span(d(14_400)), span(d(90)), span(d(60)), span(d(1))],
            ["5 days", "4 hours", "90 seconds", "1 minute", "1 second"]
        );
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
            from_mx: false,
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

    fn message(content: Vec<u8>) -> SpooledMessage {
        SpooledMessage {
            id: "Q2".into(),
            received_at: 1_700_000_000,
            peer: "p".into(),
            helo: "h".into(),
            from: "victim@anywhere.example".into(),
            rcpts: vec!["+a@example.net".into()],
            content,
            from_mx: true,
        }
    }

    fn bounce(content: Vec<u8>, diagnostic: &str) -> String {
        let r = RcptReport {
            rcpt: "+a@example.net".into(),
            status: "5.0.0".into(),
            remote_mta: None,
            diagnostic: diagnostic.into(),
        };
        String::from_utf8(build("mx.example.net", &message(content), Kind::Failed, &[r], 1_700_000_100)).unwrap()
    }

    /// The part after the text/rfc822-headers part's own header.
    fn returned(dsn: &str) -> &str {
        let (_, part) =
            dsn.split_once("Content-Type: text/rfc822-headers\r\n\r\n").expect("a text/rfc822-headers part");
        part.rsplit_once("\r\n--").expect("the closing boundary").0
    }

    #[test]
    fn a_message_without_an_empty_line_is_not_returned_whole() {
        // Our trace header, then megabytes of body with no empty line.
        let mut content = b"Received: from x by mx.example.net; Thu, 1 Jan 2026 00:00:00 +0000\r\n".to_vec();
        while content.len() < 6 << 20 {
            content.extend_from_slice(b"the whole secret message, line after line, never a header\r\n");
        }
        let dsn = bounce(content, "no safe mailbox name for +a@example.net");
        assert!(dsn.len() < 8 * 1024, "{} bytes", dsn.len());
        assert_eq!(returned(&dsn), "Received: from x by mx.example.net; Thu, 1 Jan 2026 00:00:00 +0000\r\n");
        assert!(!dsn.contains("secret"));

        // Only header fields, megabytes of them, and no empty line: cut at a
        // line within 32 KiB.
        let mut content = Vec::new();
        while content.len() < 4 << 20 {
            content.extend_from_slice(
                b"X-Filler: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\tfolded\r\n",
            );
        }
        let dsn = bounce(content, "550 no");
        let headers = returned(&dsn);
        assert!(
            headers.len() <= MAX_RETURNED_HEADERS && headers.len() > MAX_RETURNED_HEADERS - 100,
            "{}",
            headers.len()
        );
        assert!(headers.ends_with("\r\n"));
        assert!(dsn.len() < MAX_RETURNED_HEADERS + 4096);

        // A message whose first line is body text: nothing of it comes back.
        let dsn = bounce(b"just a body line\r\nSubject: not a header here\r\n".to_vec(), "550 no");
        assert_eq!(returned(&dsn), "");
        assert!(!dsn.contains("just a body") && !dsn.contains("not a header here"));
    }

    #[test]
    fn a_hostile_reply_text_is_one_bounded_line_in_every_part() {
        let evil = format!("550 5.1.1 gone\rInjected: yes\nX: \u{0}\u{1b}[2J{}", "A".repeat(50_000));
        let dsn = bounce(b"Subject: hi\r\n\r\nbody\r\n".to_vec(), &evil);
        assert!(!dsn.replace("\r\n", "").contains(['\r', '\n']), "a bare CR or LF made it into the DSN");
        assert!(!dsn.contains(['\u{0}', '\u{1b}']));
        assert!(!dsn.contains("\r\nInjected: yes"));
        assert!(dsn.lines().all(|l| l.len() <= 998), "a line over 998 bytes");
        assert!(dsn.len() < 8 * 1024, "{} bytes", dsn.len());
        let human = dsn
            .split_once("\r\n<+a@example.net>: ")
            .and_then(|(_, rest)| rest.split_once("Content-Description: Delivery report"))
            .map(|(human, _)| human)
            .expect("the human-readable part");
        assert!(human.lines().all(|l| l.chars().count() <= 76), "{human}");
        assert!(human.contains("550 5.1.1 gone Injected: yes X:"), "{human}");
        assert!(dsn.contains("Diagnostic-Code: smtp; 550 5.1.1 gone Injected: yes X:"));
    }

    #[test]
    fn wrapping_keeps_every_word_and_bounds_every_line() {
        let text = format!("<a@example.net>: 550 {} tail", "x".repeat(200));
        let w = wrap(&text, 76);
        assert!(w.lines().all(|l| l.chars().count() <= 76), "{w}");
        assert_eq!(w.split_whitespace().collect::<String>(), text.split_whitespace().collect::<String>());
        assert_eq!(wrap("short line", 76), "short line\r\n");
        assert_eq!(wrap("abcd  éfgh", 8), "abcd\r\n    éfgh\r\n");
    }
}
