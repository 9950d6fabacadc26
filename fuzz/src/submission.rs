//! Properties of the header scan submission uses for sender binding and
//! RFC 6409 fixes (port25_submission::headers).

use port25_submission::headers;

pub fn mail_headers(data: &[u8]) {
    let info = headers::scan(data);
    for a in &info.from {
        assert!(!a.is_empty());
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
