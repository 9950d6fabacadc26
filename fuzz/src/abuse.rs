//! The abuse desk's pure parts (crates/abuse): complaints are attacker
//! text, trace times come from the operator's command line.

use port25_abuse::complaints::{attribute, our_queue_ids, read, reporter, Report, Verdict};
use port25_abuse::index::{bare_message_id, parse_utc, utc};

/// `abuse_report` (port25_abuse::complaints): reading a report never
/// panics; queue ids found are short, alphanumeric and in one of the
/// reported Received headers; a report is attributed only when a queue id
/// of ours and the recorded Message-ID both match (here the lookup knows
/// every id, with a Message-ID no input can contain).
pub fn report(data: &[u8]) {
    let host = "mx.example.net";
    let _ = reporter(data, host);
    let Ok(r) = read(data) else { return };
    for id in our_queue_ids(&r.headers, host) {
        assert!(!id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric()), "{id:?}");
        assert!(r.headers.iter().any(|(n, v)| n == "received" && v.contains(&id)), "{id:?} from nowhere");
    }
    let unknowable = |_: &str| Some((Some("alice".to_owned()), Some("\u{0}never".to_owned())));
    let unsigned = |_: &str| None;
    assert!(
        matches!(attribute(&r, host, unknowable, unsigned), Verdict::NotOurs(_)),
        "attributed without the Message-ID"
    );
    // With the reported Message-ID recorded, only our own Received header attributes.
    let mid = r.headers.iter().find(|f| f.0 == "message-id").map(|f| bare_message_id(&f.1).to_owned());
    let known = |_: &str| Some((Some("alice".to_owned()), mid.clone()));
    if let Verdict::Ours { queue_id, .. } = attribute(&r, host, known, unsigned) {
        assert!(our_queue_ids(&r.headers, host).contains(&queue_id));
    }
    // A DKIM signature attributes only the message we recorded it for.
    let sigs: Vec<String> = r
        .headers
        .iter()
        .filter(|f| f.0 == "dkim-signature")
        .filter_map(|f| port25_outbound::dkim::signature_digest(&f.1))
        .collect();
    let recorded = |d: &str| (d == "\u{0}none").then(|| ("Q".to_owned(), Some("alice".to_owned())));
    assert!(
        matches!(attribute(&r, host, |_: &str| None, recorded), Verdict::NotOurs(_)),
        "a signature we never made: {sigs:?}"
    );
    for s in &sigs {
        assert_eq!(s.len(), 32, "{s:?}");
    }
    let no_headers = Report { headers: Vec::new(), ..r };
    assert!(matches!(attribute(&no_headers, host, known, unsigned), Verdict::NotOurs(_)));
}

/// `abuse_time` (port25_abuse::index::parse_utc): never panics; a time read
/// is printed in UTC and reads back to itself.
pub fn time(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    if let Some(ms) = parse_utc(&text) {
        if (0..253_402_300_800_000).contains(&ms) {
            assert_eq!(parse_utc(&utc(ms)), Some(ms), "{text:?} -> {}", utc(ms));
        }
    }
}
