//! Properties of the outbound queue's parsers: the SMTP client's reply
//! parser (`port25_wire::reply`, shared with LMTP delivery) and the queue's state and history
//! records (`port25_outbound::state`).

use port25_outbound::state::{encode_history, encode_state, parse_history, parse_state};
use port25_wire::reply::parse;

/// `parse` never panics; a reply it returns used a non-empty prefix that
/// ends in LF, parses the same from exactly that prefix, and written back
/// in canonical form (CRLF, '-' continuations) parses to the same reply.
pub fn smtp_reply(data: &[u8]) {
    let Ok(Some((reply, used))) = parse(data) else { return };
    assert!(used > 0 && used <= data.len() && data[used - 1] == b'\n');
    assert!((200..600).contains(&reply.code), "{}", reply.code);
    assert_eq!(parse(&data[..used]).unwrap(), Some((reply.clone(), used)));
    let mut canonical = Vec::new();
    for (i, line) in reply.lines.iter().enumerate() {
        let sep = if i + 1 == reply.lines.len() { ' ' } else { '-' };
        canonical.extend_from_slice(format!("{}{sep}{line}\r\n", reply.code).as_bytes());
    }
    let (again, n) = parse(&canonical).unwrap().unwrap();
    assert_eq!(n, canonical.len());
    assert_eq!(again.code, reply.code);
    // Lines keep their text; a line that was empty after the code stays empty.
    assert_eq!(again.lines, reply.lines);
    let _ = reply.enhanced();
    let _ = reply.one_line();
}

/// State and history files: parsing never panics, and what parses, written
/// back, parses to the same records.
pub fn state_records(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let states = parse_state(&text);
    let written: String = states.iter().map(|((m, r), s)| encode_state(*m, *r, s)).collect();
    let again = parse_state(&written);
    assert_eq!(again.len(), states.len());
    for (k, s) in &states {
        let a = &again[k];
        assert_eq!((a.attempts, a.next_attempt, a.warned), (s.attempts, s.next_attempt, s.warned));
        assert_eq!(parse_state(&encode_state(k.0, k.1, a))[k], *a);
    }
    let history = parse_history(&text);
    let written: String = history.iter().map(encode_history).collect();
    let again = parse_history(&written);
    assert_eq!(again.len(), history.len());
    for (a, h) in again.iter().zip(&history) {
        assert_eq!((a.time, a.outcome), (h.time, h.outcome));
        assert_eq!(parse_history(&encode_history(a)), vec![a.clone()]);
    }
}

/// `outbound_dkim_from` (port25_outbound::dkim::from_domain, which picks
/// the DKIM key for a submitted message): never panics on any header bytes
/// (issue 13: `To: Élise` used to panic, so the message got 451 forever);
/// a domain it returns is non-empty, lower case, without `@`, `<`, `>`,
/// spaces or line ends, and is the domain of the first From: mailbox as
/// port25_engine::rfc5322 reads it (the reader sender binding uses).
pub fn dkim_from(data: &[u8]) {
    if let Some(d) = port25_outbound::dkim::from_domain(data) {
        assert!(!d.is_empty() && d == d.to_lowercase(), "{d:?}");
        assert!(!d.contains(['@', '<', '>', ' ', '\r', '\n', '\t']), "{d:?}");
        let fields = port25_engine::rfc5322::fields(data).expect("a domain came from readable fields");
        let from = fields.iter().find(|f| f.is("from")).expect("a From: field");
        let first = port25_engine::rfc5322::mailbox_list(&from.value).expect("a mailbox list").remove(0);
        assert!(first.addr_spec.to_lowercase().ends_with(&format!("@{d}")), "{d:?} vs {first:?}");
    }
}
