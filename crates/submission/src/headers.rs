//! The message header checks and fixes submission makes (RFC 6409 §8):
//! find the From: addresses (for sender binding) and whether Date: and
//! Message-ID: are present, so that the missing ones can be added.
//!
//! Pure and tolerant of what it reads: a header section that cannot be
//! understood yields no From: address, and the policy refuses the message
//! rather than guess (fail closed).

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct HeaderInfo {
    /// Every address found in every From: field.
    pub from: Vec<String>,
    /// From: fields seen (RFC 5322 allows exactly one).
    pub from_fields: usize,
    pub has_date: bool,
    pub has_message_id: bool,
}

/// Header fields, unfolded: (name, value) up to the first empty line.
fn fields(message: &[u8]) -> Vec<(String, String)> {
    let end = if message.starts_with(b"\r\n") { 0 } else { message.windows(4).position(|w| w == b"\r\n\r\n").map_or(message.len(), |p| p + 2) };
    let text = String::from_utf8_lossy(&message[..end]);
    let mut out: Vec<(String, String)> = Vec::new();
    for line in text.split("\r\n") {
        if line.starts_with([' ', '\t']) {
            if let Some(last) = out.last_mut() {
                last.1.push(' ');
                last.1.push_str(line.trim());
            }
            continue;
        }
        if let Some((name, value)) = line.split_once(':') {
            if !name.is_empty() && !name.contains([' ', '\t']) {
                out.push((name.to_ascii_lowercase(), value.trim().to_owned()));
            }
        }
    }
    out
}

/// Removes (comments), handling nesting and quoted strings.
fn strip_comments(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let (mut depth, mut quoted, mut escaped) = (0u32, false, false);
    for c in s.chars() {
        if escaped {
            escaped = false;
            if depth == 0 {
                out.push(c);
            }
            continue;
        }
        match c {
            '\\' => {
                escaped = true;
                if depth == 0 {
                    out.push(c);
                }
            }
            '"' if depth == 0 => {
                quoted = !quoted;
                out.push(c);
            }
            '(' if !quoted => depth += 1,
            ')' if !quoted && depth > 0 => depth -= 1,
            _ if depth == 0 => out.push(c),
            _ => {}
        }
    }
    out
}

/// Splits a mailbox list at commas outside quotes and angle brackets.
fn split_list(s: &str) -> Vec<String> {
    let mut parts = Vec::new();
    let mut cur = String::new();
    let (mut quoted, mut angle, mut escaped) = (false, false, false);
    for c in s.chars() {
        if escaped {
            escaped = false;
            cur.push(c);
            continue;
        }
        match c {
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            '<' if !quoted => angle = true,
            '>' if !quoted => angle = false,
            ',' if !quoted && !angle => {
                parts.push(std::mem::take(&mut cur));
                continue;
            }
            _ => {}
        }
        cur.push(c);
    }
    parts.push(cur);
    parts
}

/// The addr-spec of one mailbox: inside <...> when present, else the text.
fn mailbox_address(mailbox: &str) -> Option<String> {
    let m = mailbox.trim();
    let addr = match (m.rfind('<'), m.rfind('>')) {
        (Some(open), Some(close)) if open < close => m.get(open + 1..close).unwrap_or_default(),
        (None, None) => m,
        _ => return None,
    };
    let addr = addr.trim();
    (!addr.is_empty() && addr.contains('@') && !addr.contains([' ', '<', '>', ','])).then(|| addr.to_owned())
}

pub fn scan(message: &[u8]) -> HeaderInfo {
    let mut info = HeaderInfo::default();
    for (name, value) in fields(message) {
        match name.as_str() {
            "from" => {
                info.from_fields += 1;
                for part in split_list(&strip_comments(&value)) {
                    if !part.trim().is_empty() {
                        // An unreadable mailbox is kept as it is, so it matches nothing.
                        info.from.push(mailbox_address(&part).unwrap_or_else(|| part.trim().to_owned()));
                    }
                }
            }
            "date" => info.has_date = true,
            "message-id" => info.has_message_id = true,
            _ => {}
        }
    }
    info
}

/// The header lines to add (RFC 6409 §8.2 Message-ID, §8.3 Date).
pub fn additions(info: &HeaderInfo, id: &str, hostname: &str, date: &str) -> Vec<u8> {
    let mut out = Vec::new();
    if !info.has_message_id {
        out.extend_from_slice(format!("Message-ID: <{id}@{hostname}>\r\n").as_bytes());
    }
    if !info.has_date {
        out.extend_from_slice(format!("Date: {date}\r\n").as_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_addresses_in_their_usual_forms() {
        let m = b"Subject: x\r\nFrom: \"Doe, Alice\" <alice@example.net> (work),\r\n bob@example.net\r\nDate: Mon, 1 Jan 2026 00:00:00 +0000\r\n\r\nFrom: body@evil.example\r\n";
        let h = scan(m);
        assert_eq!(h.from, vec!["alice@example.net", "bob@example.net"]);
        assert_eq!(h.from_fields, 1);
        assert!(h.has_date && !h.has_message_id);
        assert_eq!(scan(b"FROM:alice@example.net\r\n\r\n").from, vec!["alice@example.net"]);
        assert_eq!(scan(b"From: =?UTF-8?B?w6Fs?= <a@x.example>\r\n\r\n").from, vec!["a@x.example"]);
        assert_eq!(scan(b"From: (c) <a@x.example (inner)>\r\n\r\n").from, vec!["a@x.example"]);
        assert_eq!(scan(b"From: Name <a@x.example\r\n\r\n").from, vec!["Name <a@x.example"], "kept, so it matches nothing");
        assert!(scan(b"\r\nFrom: a@x.example\r\n").from.is_empty(), "that is the body");
        assert_eq!(scan(b"From: a@x.example\r\nFrom: b@x.example\r\n\r\n").from_fields, 2);
        assert!(scan(b"Message-Id: <1@x>\r\n\r\n").has_message_id);
    }

    #[test]
    fn additions_only_for_what_is_missing() {
        let h = scan(b"From: a@x.example\r\n\r\nbody");
        let add = additions(&h, "ID1", "mail.example", "Mon, 23 Nov 2026 23:50:00 +0000");
        assert_eq!(add, b"Message-ID: <ID1@mail.example>\r\nDate: Mon, 23 Nov 2026 23:50:00 +0000\r\n");
        let h = scan(b"Date: x\r\nMessage-ID: <y@z>\r\n\r\n");
        assert!(additions(&h, "ID1", "h", "d").is_empty());
    }
}
