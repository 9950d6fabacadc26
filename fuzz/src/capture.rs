//! Properties of the capture log reader (port25_capture::reader::parse):
//! never panics; offsets are line starts in increasing order; the torn tail
//! is exactly the bytes after the last newline; reading the complete part
//! again gives the same events and no torn tail; resuming at any event's
//! offset gives the remaining events; every event written back as a line
//! reads back equal.

use port25_capture::reader;

pub fn capture_log(data: &[u8]) {
    let p = reader::parse(data, 0);
    let last_nl = data.iter().rposition(|&b| b == b'\n').map(|i| i + 1).unwrap_or(0);
    assert_eq!(p.complete_len, last_nl as u64);
    assert_eq!(p.torn.is_some(), last_nl < data.len());
    let mut prev = None;
    for (off, _) in &p.events {
        let o = *off as usize;
        assert!(o == 0 || data[o - 1] == b'\n', "event offset {o} is not a line start");
        assert!(prev.is_none_or(|p| p < o));
        prev = Some(o);
    }
    let again = reader::parse(&data[..last_nl], 0);
    assert!(again.torn.is_none());
    assert_eq!(again.events, p.events);
    assert_eq!(again.bad, p.bad);
    if let Some((off, _)) = p.events.get(p.events.len() / 2) {
        let resumed = reader::parse(&data[*off as usize..], *off);
        let tail: Vec<_> = p.events.iter().filter(|(o, _)| o >= off).cloned().collect();
        assert_eq!(resumed.events, tail);
    }
    for (_, e) in &p.events {
        let line = e.to_line();
        let back = reader::parse(&line, 0);
        assert_eq!(back.events.len(), 1);
        assert_eq!(&back.events[0].1, e);
    }
}

/// `capture_body_path` (port25_capture::bodies::path_of): a digest read
/// from a capture log (which sensors ship over the network) never panics
/// or leaves the body store; only 64 lower-case hex digits give a path.
pub fn body_path(data: &[u8]) {
    let digest = String::from_utf8_lossy(data);
    let root = std::path::Path::new("/bodies");
    if let Some(p) = port25_capture::bodies::path_of(root, &digest) {
        assert!(
            digest.len() == 64 && digest.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
            "{digest:?}"
        );
        assert_eq!(
            p,
            root.join(digest.get(..2).unwrap()).join(digest.get(2..4).unwrap()).join(format!("{digest}.zst"))
        );
    }
}

/// `capture_fastview` (port25_capture::fastview::parse, the report's fast
/// path over event lines): never panics, and whenever it answers, serde's
/// derived deserializer gives the same event (so a line is good or bad
/// alike for both, and every field is the same).
pub fn fastview(data: &[u8]) {
    for line in data.split(|&b| b == b'\n') {
        if let Some(fast) = port25_capture::fastview::parse(line) {
            let slow = serde_json::from_slice::<port25_capture::view::EventView>(line);
            assert_eq!(Some(&fast), slow.as_ref().ok(), "{:?}", String::from_utf8_lossy(line));
        }
    }
}
