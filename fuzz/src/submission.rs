//! Properties of the header scan submission uses for sender binding and
//! RFC 6409 fixes (port25_submission::headers, over port25_engine::rfc5322):
//! addresses found are addresses; an unreadable header section is refused
//! with 554 5.6.0; the additions complete a readable one.

use port25_submission::headers;

pub fn mail_headers(data: &[u8]) {
    let info = headers::scan(data);
    for a in info.from.iter().chain(&info.sender) {
        assert!(a.contains('@') && !a.contains(['<', '>', '\r', '\n']), "{a:?}");
        // The canonical form the binding checks reads back as itself.
        let again = port25_engine::rfc5322::mailbox_list(a).unwrap_or_else(|e| panic!("{a:?}: {e}"));
        assert_eq!(again.len(), 1, "{a:?}");
        assert_eq!(&again[0].addr_spec, a);
    }
    // A header section it cannot read is refused, never bound to a guess.
    if info.malformed.is_some() {
        let reply = headers::authors(&info).expect_err("malformed headers are refused");
        assert!(reply.to_string().starts_with("554 5.6.0"), "{reply}");
        return;
    }
    // After the additions, both headers are present, and nothing is added twice.
    let added = headers::additions(&info, "ID", "mx.example", "Mon, 23 Nov 2026 00:00:00 +0000");
    assert!(added.is_empty() || added.ends_with(b"\r\n"));
    let fixed = [added.as_slice(), data].concat();
    let after = headers::scan(&fixed);
    if !data.starts_with(b"\r\n") {
        assert!(after.has_date && after.has_message_id, "{:?}", String::from_utf8_lossy(&fixed));
        assert!(headers::additions(&after, "ID", "mx.example", "d").is_empty());
        assert_eq!(after.from, info.from, "the additions do not change From:");
    }
}
