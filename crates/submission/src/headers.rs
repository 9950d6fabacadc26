//! The message header checks and fixes submission makes (RFC 6409 §8):
//! the From:, Sender:, Resent-From: and Resent-Sender: addresses (for
//! sender binding) and whether Date:
//! and Message-ID: are present, so that the missing ones can be added.
//!
//! The header section is read by port25_engine::rfc5322, the reader the
//! DKIM signer uses too, strictly: a field name with white space in it or
//! before its colon, a line that is no field, or a From:/Sender: that is
//! not a well-formed mailbox list makes the message unreadable, and the
//! policy refuses it (554 5.6.0) rather than guess which address a
//! receiver would show (fail closed).

use port25_engine::reply::Reply;
use port25_engine::rfc5322;

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct HeaderInfo {
    /// Why the header section (or its From:/Sender:) cannot be read.
    pub malformed: Option<String>,
    /// Every address of every From: field.
    pub from: Vec<String>,
    /// From: fields seen (RFC 5322 allows exactly one).
    pub from_fields: usize,
    /// Every address of every Sender: field.
    pub sender: Vec<String>,
    pub sender_fields: usize,
    /// Every address of every Resent-From: and Resent-Sender: field (RFC
    /// 5322 §3.6.6: who resent it; bound to the login like From:/Sender:),
    /// with the field it came from.
    pub resent: Vec<(String, &'static str)>,
    pub has_date: bool,
    pub has_message_id: bool,
    /// The (first) Message-ID field's value, for the abuse desk's index.
    pub message_id: Option<String>,
}

pub fn scan(message: &[u8]) -> HeaderInfo {
    let mut info = HeaderInfo::default();
    let fields = match rfc5322::fields(message) {
        Ok(f) => f,
        Err(e) => {
            info.malformed = Some(e.0);
            return info;
        }
    };
    for f in &fields {
        let name = f.name.to_ascii_lowercase();
        let (list, count) = match name.as_str() {
            "from" => (&mut info.from, &mut info.from_fields),
            "sender" => (&mut info.sender, &mut info.sender_fields),
            "date" => {
                info.has_date = true;
                continue;
            }
            "message-id" => {
                info.has_message_id = true;
                info.message_id.get_or_insert_with(|| f.value.trim().to_owned());
                continue;
            }
            "resent-from" | "resent-sender" => {
                let field = if name == "resent-from" { "the Resent-From: header" } else { "the Resent-Sender: header" };
                match rfc5322::mailbox_list(&f.value) {
                    Ok(boxes) => info.resent.extend(boxes.into_iter().map(|m| (m.addr_spec, field))),
                    Err(e) => {
                        info.malformed.get_or_insert_with(|| format!("{}: {e}", f.name));
                    }
                }
                continue;
            }
            _ => continue,
        };
        *count += 1;
        match rfc5322::mailbox_list(&f.value) {
            Ok(boxes) => list.extend(boxes.into_iter().map(|m| m.addr_spec)),
            Err(e) => {
                info.malformed.get_or_insert_with(|| format!("{}: {e}", f.name));
            }
        }
    }
    info
}

/// The addresses sender binding must allow, or the reply refusing the
/// message: a readable header section, exactly one From: field and, for
/// more than one author, exactly one Sender: mailbox (RFC 5322 §3.6.2:
/// the Sender is who sent it, so it must be the login's; every author too).
pub fn authors(info: &HeaderInfo) -> Result<Vec<(&str, &'static str)>, Reply> {
    if let Some(why) = &info.malformed {
        return Err(Reply::owned(554, "5.6.0", format!("Malformed message header: {why} (RFC 5322)")));
    }
    if info.from_fields != 1 || info.from.is_empty() {
        return Err(Reply::new(
            550,
            "5.6.0",
            "The message needs exactly one From: header field with your address (RFC 5322 3.6)",
        ));
    }
    if info.sender_fields > 1 || info.sender.len() > 1 {
        return Err(Reply::new(554, "5.6.0", "Sender: must name exactly one mailbox (RFC 5322 3.6.2)"));
    }
    if info.from.len() > 1 && info.sender.is_empty() {
        return Err(Reply::new(
            550,
            "5.6.0",
            "A From: with several addresses needs a Sender: with your address (RFC 5322 3.6.2)",
        ));
    }
    let from = info.from.iter().map(|a| (a.as_str(), "the From: header"));
    let sender = info.sender.iter().map(|a| (a.as_str(), "the Sender: header"));
    let resent = info.resent.iter().map(|(a, field)| (a.as_str(), *field));
    Ok(from.chain(sender).chain(resent).collect())
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
    fn resent_from_and_resent_sender_are_authors_too() {
        let h = scan(b"From: alice@example.net\r\nResent-From: ceo@bank.example\r\nResent-Sender: \"x\" <cfo@bank.example>\r\n\r\nbody\r\n");
        let a = authors(&h).unwrap();
        assert!(a.contains(&("ceo@bank.example", "the Resent-From: header")), "{a:?}");
        assert!(a.contains(&("cfo@bank.example", "the Resent-Sender: header")), "{a:?}");
        assert!(
            authors(&scan(b"From: a@x.example\r\nResent-From: <a@x.example> <b@y.example>\r\n\r\n")).is_err(),
            "an unreadable Resent-From refuses"
        );
    }

    #[test]
    fn from_addresses_in_their_usual_forms() {
        let m = b"Subject: x\r\nFrom: \"Doe, Alice\" <alice@example.net> (work),\r\n bob@example.net\r\nDate: Mon, 1 Jan 2026 00:00:00 +0000\r\n\r\nFrom: body@evil.example\r\n";
        let h = scan(m);
        assert_eq!(h.from, vec!["alice@example.net", "bob@example.net"]);
        assert_eq!(h.from_fields, 1);
        assert!(h.has_date && !h.has_message_id && h.malformed.is_none());
        assert_eq!(scan(b"FROM:alice@example.net\r\n\r\n").from, vec!["alice@example.net"]);
        assert_eq!(scan(b"From: =?UTF-8?B?w6Fs?= <a@x.example>\r\n\r\n").from, vec!["a@x.example"]);
        assert_eq!(scan(b"From: (c) <a@x.example (inner)>\r\n\r\n").from, vec!["a@x.example"]);
        assert!(scan(b"From: Name <a@x.example\r\n\r\n").malformed.is_some());
        assert!(scan(b"\r\nFrom: a@x.example\r\n").from.is_empty(), "that is the body");
        assert_eq!(scan(b"From: a@x.example\r\nFrom: b@x.example\r\n\r\n").from_fields, 2);
        assert!(scan(b"Message-Id: <1@x>\r\n\r\n").has_message_id);
    }

    #[test]
    fn authors_who_must_be_the_login() {
        let ok = |m: &[u8]| {
            authors(&scan(m))
                .map(|a| a.into_iter().map(|(a, _)| a.to_owned()).collect::<Vec<_>>())
                .map_err(|r| r.to_string())
        };
        assert_eq!(ok(b"From: a@x.example\r\n\r\n").unwrap(), ["a@x.example"]);
        for (m, code) in [
            (&b"From : a@x.example\r\n\r\n"[..], "554 5.6.0"),
            (b"Fr om: a@x.example\r\nFrom: b@y.example\r\n\r\n", "554 5.6.0"),
            (b"From: <ceo@bank.example> <a@x.example>\r\n\r\n", "554 5.6.0"),
            (b"From: a@x.example, b@y.example\r\n\r\n", "550 5.6.0"),
            (b"From: a@x.example\r\nSender: a@x.example, b@y.example\r\n\r\n", "554 5.6.0"),
            (b"Subject: x\r\n\r\n", "550 5.6.0"),
        ] {
            let e = ok(m).unwrap_err();
            assert!(e.starts_with(code), "{:?}: {e}", String::from_utf8_lossy(m));
        }
        assert_eq!(
            ok(b"From: a@x.example, b@y.example\r\nSender: a@x.example\r\n\r\n").unwrap(),
            ["a@x.example", "b@y.example", "a@x.example"]
        );
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
