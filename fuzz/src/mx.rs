//! The MX's Authentication-Results handling: port25_mx::auth::header
//! (removing fields that claim our authserv-id, quoting values for ours).

use port25_mx::auth::header::{authserv_id_of, header_end, remove_ranges, strip_ours, value};

const ID: &str = "mx.example.net";

pub fn ar_strip(data: &[u8]) {
    let ranges = strip_ours(data, ID);
    let end = header_end(data);
    let mut last = 0;
    for r in &ranges {
        // Sorted, apart, inside the header section, whole lines.
        assert!(r.start >= last && r.start < r.end && r.end <= end, "{ranges:?} (header ends at {end})");
        assert!(r.start == 0 || data[r.start - 1] == b'\n', "a range starts a line: {ranges:?}");
        assert!(r.end == end || data[r.end - 1] == b'\n', "a range ends a line: {ranges:?}");
        let field = &data[r.clone()];
        let colon = field.iter().position(|&b| b == b':').expect("a field has a colon");
        let name: Vec<u8> = field[..colon].iter().copied().filter(|b| !b.is_ascii_whitespace()).collect();
        assert!(
            name.eq_ignore_ascii_case(b"Authentication-Results"),
            "removed a {:?} field",
            String::from_utf8_lossy(&name)
        );
        // Ours (or unreadable), never another server's.
        if let Some(id) = authserv_id_of(&field[colon + 1..]) {
            assert!(id.eq_ignore_ascii_case(ID.as_bytes()), "removed another id {:?}", String::from_utf8_lossy(&id));
        }
        last = r.end;
    }
    // What stays is every other byte, in order; a second pass removes nothing.
    let mut kept = data.to_vec();
    remove_ranges(&mut kept, &ranges);
    let removed: usize = ranges.iter().map(|r| r.len()).sum();
    assert_eq!(kept.len() + removed, data.len());
    let mut expected = Vec::new();
    let mut pos = 0;
    for r in &ranges {
        expected.extend_from_slice(&data[pos..r.start]);
        pos = r.end;
    }
    expected.extend_from_slice(&data[pos..]);
    assert_eq!(kept, expected);
    assert!(strip_ours(&kept, ID).is_empty(), "a second pass found more in {:?}", String::from_utf8_lossy(&kept));

    // Quoting any text (DNS, HELO, MAIL FROM) for our field never ends it.
    let text = String::from_utf8_lossy(data);
    let v = value(&text);
    assert!(v.is_ascii() && !v.contains(|c: char| c.is_ascii_control()), "{v:?}");
    assert!(!v.is_empty());
    if let Some(inner) = v.strip_prefix('"') {
        // A quoted-string closes exactly at its end.
        let inner = inner.strip_suffix('"').expect("closing quote");
        let mut escaped = false;
        for c in inner.chars() {
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '"' => panic!("unescaped quote in {v:?}"),
                _ => {}
            }
        }
        assert!(!escaped, "{v:?}");
    } else {
        assert!(!v.contains([';', ' ', '"', '(']), "{v:?}");
    }
}
