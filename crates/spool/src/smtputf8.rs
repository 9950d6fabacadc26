//! Whether a spooled message needs SMTPUTF8 (RFC 6531) on its next hop,
//! for the outbound SMTP client and the LMTP client alike.
//!
//! Needed when the envelope holds a non-ASCII address (it cannot be sent
//! without), or when the message arrived with SMTPUTF8 and its header
//! section carries non-ASCII text (RFC 6532 UTF-8 headers), as Postfix
//! decides (`smtputf8_enable`): a message that arrived without SMTPUTF8
//! goes on as it came, 8-bit headers and all. Whether it arrived with
//! SMTPUTF8 is written in its topmost Received field, which port25's
//! engine prepended on arrival (`with UTF8SMTP...`, RFC 6531 §4.3); a
//! DKIM-Signature port25 added may stand above it. Pure.

/// The protocol name port25's Received header gives an SMTPUTF8 session.
const UTF8_PROTOCOL: &str = "UTF8SMTP";

/// Whether `from`, `rcpts` and `content` need SMTPUTF8.
pub fn needed<'a>(from: &str, rcpts: impl IntoIterator<Item = &'a str>, content: &[u8]) -> bool {
    if !from.is_ascii() || rcpts.into_iter().any(|r| !r.is_ascii()) {
        return true;
    }
    let head = header_section(content);
    !head.is_ascii() && arrived_with_smtputf8(head)
}

/// Everything up to the first empty line.
fn header_section(content: &[u8]) -> &[u8] {
    let mut start = 0;
    while start < content.len() {
        let end = content[start..].iter().position(|&b| b == b'\n').map_or(content.len(), |i| start + i + 1);
        if matches!(&content[start..end], b"\r\n" | b"\n") {
            return &content[..start];
        }
        start = end;
    }
    content
}

/// The first Received field (with its continuation lines) says `with
/// UTF8SMTP`, `UTF8SMTPS`, `UTF8SMTPA` or `UTF8SMTPSA`.
fn arrived_with_smtputf8(head: &[u8]) -> bool {
    let mut lines = head.split(|&b| b == b'\n').map(|l| l.strip_suffix(b"\r").unwrap_or(l));
    let Some(first) = lines.by_ref().find(|l| l.get(..9).is_some_and(|n| n.eq_ignore_ascii_case(b"received:"))) else {
        return false;
    };
    let mut field = String::from_utf8_lossy(first).into_owned();
    for l in lines.take_while(|l| l.first().is_some_and(|&b| b == b' ' || b == b'\t')) {
        field.push_str(&String::from_utf8_lossy(l));
    }
    let mut words = field.split([' ', '\t', ';']);
    while let Some(w) = words.next() {
        if w.eq_ignore_ascii_case("with") {
            return words.find(|w| !w.is_empty()).is_some_and(|p| {
                p.strip_prefix(UTF8_PROTOCOL).is_some_and(|marks| matches!(marks, "" | "S" | "A" | "SA"))
            });
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    const UTF8_RECEIVED: &str =
        "Received: from laptop ([192.0.2.1])\r\n\tby mx.example (port25) with UTF8SMTPSA id X\r\n\tfor <a@b>;\r\n\tMon, 1 Jan 2026 00:00:00 +0000\r\n";
    const PLAIN_RECEIVED: &str = "Received: from laptop ([192.0.2.1])\r\n\tby mx.example (port25) with ESMTPSA id X;\r\n\tMon, 1 Jan 2026 00:00:00 +0000\r\n";

    #[test]
    fn envelope_or_utf8_headers_of_an_smtputf8_arrival() {
        let ascii = format!("{UTF8_RECEIVED}Subject: hi\r\n\r\nbody \u{e9}\r\n");
        assert!(
            !needed("a@b.example", ["c@d.example"], ascii.as_bytes()),
            "ASCII headers; a non-ASCII body needs 8BITMIME only"
        );
        assert!(needed("\u{e9}@b.example", ["c@d.example"], b"Subject: x\r\n\r\n"));
        assert!(needed("a@b.example", ["c@d.example", "\u{e9}@d.example"], b"Subject: x\r\n\r\n"));
        let utf8 = format!("{UTF8_RECEIVED}Subject: caf\u{e9}\r\n\r\nbody\r\n");
        assert!(needed("a@b.example", ["c@d.example"], utf8.as_bytes()));
        let signed = format!("DKIM-Signature: v=1; d=b.example;\r\n\tb=xyz\r\n{utf8}");
        assert!(
            needed("a@b.example", ["c@d.example"], signed.as_bytes()),
            "our DKIM-Signature stands above our Received"
        );
        let came_plain = format!("{PLAIN_RECEIVED}Subject: caf\u{e9}\r\n\r\nbody\r\n");
        assert!(
            !needed("a@b.example", ["c@d.example"], came_plain.as_bytes()),
            "arrived without SMTPUTF8: goes on as it came"
        );
        // Only the topmost Received counts: an older hop's is not ours.
        let older = format!("{PLAIN_RECEIVED}{UTF8_RECEIVED}Subject: caf\u{e9}\r\n\r\n");
        assert!(!needed("a@b.example", ["c@d.example"], older.as_bytes()));
        assert!(!needed("a@b.example", ["c@d.example"], "Subject: with UTF8SMTP caf\u{e9}\r\n\r\n".as_bytes()));
    }
}
