//! Abuse reports, one message at a time: ARF (RFC 5965, a multipart/report
//! with a `message/feedback-report` part) or a plain report (SpamCop-style
//! text quoting the spam's headers). What the complaint trend needs from
//! each: the source address, the date, and the evidence used to classify it
//! (the reported message's Received headers and the report's own words).
//!
//! Pure: bytes in, [`Complaint`] out; a report without a source address or
//! a date is an error naming what is missing, and the caller counts it.

use std::net::IpAddr;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Complaint {
    pub arf: bool,
    pub feedback_type: Option<String>,
    pub source: IpAddr,
    /// Days since 1970-01-01 (arrival date, else the report's date).
    pub day: i64,
    /// Lower-cased text the classifier looks at: the human-readable part and
    /// the reported message's headers.
    pub evidence: String,
}

/// Header fields (name lower-cased, value unfolded) and the body.
pub fn split_message(raw: &str) -> (Vec<(String, String)>, &str) {
    let (head, body) = match raw
        .find("\r\n\r\n")
        .map(|i| (i, 4))
        .into_iter()
        .chain(raw.find("\n\n").map(|i| (i, 2)))
        .min_by_key(|x| x.0)
    {
        Some((i, n)) => (raw.get(..i).unwrap_or_default(), raw.get(i + n..).unwrap_or_default()),
        None => (raw, ""),
    };
    let mut fields: Vec<(String, String)> = Vec::new();
    for line in head.lines() {
        if line.starts_with([' ', '\t']) {
            if let Some(last) = fields.last_mut() {
                last.1.push(' ');
                last.1.push_str(line.trim());
            }
        } else if let Some((k, v)) = line.split_once(':') {
            fields.push((k.trim().to_ascii_lowercase(), v.trim().to_owned()));
        }
    }
    (fields, body)
}

fn field<'a>(fields: &'a [(String, String)], name: &str) -> Option<&'a str> {
    fields.iter().find(|f| f.0 == name).map(|f| f.1.as_str())
}

/// The `boundary` parameter of a Content-Type value.
fn boundary(ct: &str) -> Option<String> {
    let i = ct.to_ascii_lowercase().find("boundary=")?;
    let v = ct.get(i + 9..)?;
    let v = if let Some(q) = v.strip_prefix('"') { q.split('"').next()? } else { v.split([';', ' ']).next()? };
    Some(v.to_owned())
}

/// The parts of a multipart body.
fn parts<'a>(body: &'a str, boundary: &str) -> Vec<&'a str> {
    let delim = format!("--{boundary}");
    let mut out = Vec::new();
    let mut chunks = body.split(delim.as_str());
    chunks.next(); // preamble
    for c in chunks {
        if c.starts_with("--") {
            break;
        }
        out.push(c.trim_start_matches(['\r', '\n']));
    }
    out
}

const MONTHS: [&str; 12] = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"];

/// An RFC 5322 date (`Tue, 24 Nov 2026 00:07:28 +0000`) or an ISO one, to a day.
pub fn parse_date(s: &str) -> Option<i64> {
    let s = s.trim();
    if let Some(d) = crate::date::parse_day(s) {
        return Some(d);
    }
    let words: Vec<&str> = s.split([' ', ',']).filter(|w| !w.is_empty()).collect();
    for w in words.windows(3) {
        let (Ok(d), Some(m), Ok(y)) = (
            w[0].parse::<u32>(),
            MONTHS.iter().position(|m| w[1].to_ascii_lowercase().starts_with(m)),
            w[2].parse::<i64>(),
        ) else {
            continue;
        };
        if (1..=31).contains(&d) && (1970..=9999).contains(&y) {
            return Some(port25_time::days_from_civil(y, m as u32 + 1, d));
        }
    }
    None
}

/// The first IPv4 address in brackets in Received headers (`[1.2.3.4]`),
/// else one after "from " in the report text.
fn source_from_text(text: &str) -> Option<IpAddr> {
    for seg in text.split('[').skip(1) {
        if let Some(ip) = seg.split(']').next().and_then(|x| x.parse().ok()) {
            return Some(ip);
        }
    }
    let lower = text.to_ascii_lowercase();
    for (i, _) in lower.match_indices("from ") {
        let Some(rest) = text.get(i + 5..) else { continue };
        let rest = rest.strip_prefix("IP ").or_else(|| rest.strip_prefix("ip ")).unwrap_or(rest);
        let word = rest
            .split(|c: char| c.is_whitespace() || c == ',' || c == ';' || c == ')' || c == '(')
            .next()
            .unwrap_or("");
        if let Ok(ip) = word.trim_end_matches('.').parse() {
            return Some(ip);
        }
    }
    None
}

/// The header fields (names lower-cased, values unfolded) of the message
/// a report is about, for matching it to mail we sent: the
/// `message/rfc822` or `text/rfc822-headers` part of a multipart report
/// (ARF, X-ARF) or of a forward as an attachment; in a plain forward, the
/// quoted header block in the body, from its first `Received:` line.
/// Another use of this parser (one parser): [`parse`] classifies, this
/// attributes.
pub fn reported_headers(raw: &[u8]) -> Result<Vec<(String, String)>, String> {
    let raw = String::from_utf8_lossy(raw);
    let (fields, body) = split_message(&raw);
    let ct = field(&fields, "content-type").unwrap_or("text/plain");
    if ct.to_ascii_lowercase().starts_with("multipart/") {
        let b = boundary(ct).ok_or("multipart report without a boundary parameter")?;
        for p in parts(body, &b) {
            let (h, pb) = split_message(p);
            let pct = field(&h, "content-type").unwrap_or("text/plain").to_ascii_lowercase();
            if pct.starts_with("message/rfc822") || pct.starts_with("text/rfc822-headers") {
                let (reported, _) = split_message(pb);
                if reported.is_empty() {
                    return Err("the reported message part has no header fields".into());
                }
                return Ok(reported);
            }
        }
        return Err("no message/rfc822 or text/rfc822-headers part: the reported message is missing".into());
    }
    let lower = body.to_ascii_lowercase();
    let start = if lower.starts_with("received:") { Some(0) } else { lower.find("\nreceived:").map(|i| i + 1) };
    let quoted =
        start.and_then(|i| body.get(i..)).ok_or("no multipart report and no quoted Received: header in the text")?;
    Ok(split_message(quoted).0)
}

pub fn parse(raw: &[u8]) -> Result<Complaint, String> {
    let raw = String::from_utf8_lossy(raw);
    let (fields, body) = split_message(&raw);
    let ct = field(&fields, "content-type").unwrap_or("text/plain");
    let report_date = field(&fields, "date").and_then(parse_date);
    let lct = ct.to_ascii_lowercase();
    if lct.starts_with("multipart/report") && lct.contains("feedback-report") {
        let b = boundary(ct).ok_or("multipart/report without a boundary parameter")?;
        let ps = parts(body, &b);
        let mut human = String::new();
        let mut feedback: Option<Vec<(String, String)>> = None;
        let mut original = String::new();
        for p in &ps {
            let (h, pb) = split_message(p);
            let pct = field(&h, "content-type").unwrap_or("text/plain").to_ascii_lowercase();
            if pct.starts_with("message/feedback-report") {
                // The feedback fields are the part's body, in header syntax.
                feedback = Some(split_message(&format!("{pb}\n\n")).0);
            } else if pct.starts_with("message/rfc822") || pct.starts_with("text/rfc822-headers") {
                original = pb.to_owned();
            } else if pct.starts_with("text/") && human.is_empty() {
                human = pb.to_owned();
            }
        }
        let fb = feedback.ok_or("ARF report without a message/feedback-report part")?;
        let source = match field(&fb, "source-ip") {
            Some(s) => s.parse().map_err(|_| format!("Source-IP {s:?} is not an IP address"))?,
            None => source_from_text(&original)
                .ok_or("ARF report without Source-IP and no [address] in the reported message's Received headers")?,
        };
        let day = field(&fb, "arrival-date")
            .or(field(&fb, "received-date"))
            .and_then(parse_date)
            .or(report_date)
            .ok_or("ARF report without Arrival-Date and without a Date header")?;
        let (orig_fields, _) = split_message(&original);
        let received: Vec<&str> = orig_fields.iter().filter(|f| f.0 == "received").map(|f| f.1.as_str()).collect();
        let evidence = format!("{human}\n{}", received.join("\n")).to_ascii_lowercase();
        return Ok(Complaint {
            arf: true,
            feedback_type: field(&fb, "feedback-type").map(|s| s.to_ascii_lowercase()),
            source,
            day,
            evidence,
        });
    }
    let source = field(&fields, "x-source-ip").and_then(|s| s.parse().ok()).or_else(|| source_from_text(body)).ok_or(
        "no source address found (no Source-IP, no [address] in quoted Received headers, no \"from <address>\")",
    )?;
    let day = report_date.ok_or("report without a Date header")?;
    Ok(Complaint { arf: false, feedback_type: None, source, day, evidence: body.to_ascii_lowercase() })
}

#[cfg(test)]
mod tests {
    use super::*;

    pub const ARF: &str = "From: abuse@reporter.example\r\nDate: Thu, 8 Mar 2009 10:00:00 +0000\r\nSubject: FW: spam\r\n\
MIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=feedback-report;\r\n\tboundary=\"part1_13d.2e68ed54\"\r\n\r\n\
--part1_13d.2e68ed54\r\nContent-Type: text/plain; charset=\"US-ASCII\"\r\n\r\nThis is an email abuse report for an email message received from IP 192.0.2.1 (open proxy)\r\n\r\n\
--part1_13d.2e68ed54\r\nContent-Type: message/feedback-report\r\n\r\nFeedback-Type: abuse\r\nUser-Agent: SomeGenerator/1.0\r\nVersion: 1\r\n\
Original-Mail-From: <somespammer@example.net>\r\nArrival-Date: Thu, 8 Mar 2005 14:00:00 EDT\r\nSource-IP: 192.0.2.1\r\n\r\n\
--part1_13d.2e68ed54\r\nContent-Type: message/rfc822\r\nContent-Disposition: inline\r\n\r\nReceived: from mailserver.example.net\r\n\
 (mailserver.example.net [192.0.2.1])\r\n by example.com with ESMTP id M63d4137594e46;\r\n Thu, 08 Mar 2005 14:00:00 -0400\r\nFrom: <somespammer@example.net>\r\n\
Subject: Earn money\r\n\r\nSpam Spam Spam\r\n--part1_13d.2e68ed54--\r\n";

    #[test]
    fn rfc5965_example() {
        let c = parse(ARF.as_bytes()).unwrap();
        assert!(c.arf);
        assert_eq!(c.source, "192.0.2.1".parse::<IpAddr>().unwrap());
        assert_eq!(c.day, crate::date::parse_day("2005-03-08").unwrap(), "Arrival-Date wins over Date");
        assert_eq!(c.feedback_type.as_deref(), Some("abuse"));
        assert!(c.evidence.contains("open proxy") && c.evidence.contains("with esmtp id"));
    }

    #[test]
    fn the_reported_messages_headers_from_arf_or_a_plain_forward() {
        let h = reported_headers(ARF.as_bytes()).unwrap();
        assert_eq!(h.iter().find(|f| f.0 == "subject").map(|f| f.1.as_str()), Some("Earn money"));
        assert!(h.iter().any(|f| f.0 == "received" && f.1.contains("with ESMTP id M63d4137594e46")), "unfolded: {h:?}");
        let plain = "Subject: spam\n\nLook at this:\nReceived: from a by b with ESMTPSA id Q1;\n d\nMessage-ID: <m@x>\n\nbody\n";
        let h = reported_headers(plain.as_bytes()).unwrap();
        assert_eq!(h.iter().map(|f| f.0.as_str()).collect::<Vec<_>>(), ["received", "message-id"]);
        let no_part = ARF.replace("Content-Type: message/rfc822", "Content-Type: text/plain");
        assert!(reported_headers(no_part.as_bytes()).unwrap_err().contains("reported message is missing"));
        assert!(reported_headers(b"Subject: x\n\nnothing quoted\n").unwrap_err().contains("no quoted Received"));
    }

    #[test]
    fn plain_reports_and_errors() {
        let p = "Date: Mon, 2 Feb 2009 10:00:00 -0200\nSubject: [SpamCop] spam\n\nEmail from 203.0.113.7 / Mon, 2 Feb 2009\nReceived: from x (adsl-203-0-113-7.dyn.example [203.0.113.7])\n";
        let c = parse(p.as_bytes()).unwrap();
        assert!(!c.arf);
        assert_eq!(c.source, "203.0.113.7".parse::<IpAddr>().unwrap());
        assert_eq!(crate::date::format_month(c.day), "2009-02");
        assert!(parse(b"Subject: x\n\nno address here\n").unwrap_err().contains("no source address"));
        assert!(parse(b"Subject: x\n\nEmail from 203.0.113.7\n").unwrap_err().contains("Date"));
        let broken = ARF.replace("Content-Type: message/feedback-report", "Content-Type: text/plain");
        assert!(parse(broken.as_bytes()).unwrap_err().contains("feedback-report part"));
    }
}
