//! Reading the event log back. Pure: bytes in, events out.
//!
//! The writer appends whole lines, so damage can only be at the end of a
//! segment: a last line without its newline (the process died during the
//! write). That line is reported as `torn` and never returned as an event;
//! any other line that does not parse is reported in `bad` with its offset
//! (a reader of the format must not stop at it).

use crate::event::Event;

#[derive(Debug, Default)]
pub struct Parsed {
    /// (byte offset of the line, event)
    pub events: Vec<(u64, Event)>,
    /// Offsets of complete lines that are not valid events.
    pub bad: Vec<u64>,
    /// Offset of a torn last line (no trailing newline), if any.
    pub torn: Option<u64>,
    /// Bytes up to and including the last complete line: where a reader
    /// resumes, and where a writer may truncate a torn tail.
    pub complete_len: u64,
}

/// Parses one segment's bytes (or a suffix of them starting at a line
/// boundary, with `base` its offset in the file).
pub fn parse(bytes: &[u8], base: u64) -> Parsed {
    let mut out = Parsed { complete_len: base, ..Parsed::default() };
    let mut pos = 0usize;
    while pos < bytes.len() {
        let Some(nl) = bytes[pos..].iter().position(|&b| b == b'\n') else {
            out.torn = Some(base + pos as u64);
            break;
        };
        let line = &bytes[pos..pos + nl];
        let offset = base + pos as u64;
        if !line.is_empty() {
            match serde_json::from_slice::<Event>(line) {
                Ok(e) => out.events.push((offset, e)),
                Err(_) => out.bad.push(offset),
            }
        }
        pos += nl + 1;
        out.complete_len = base + pos as u64;
    }
    out
}

/// Reads a segment file; see [`parse`].
pub fn read_file(path: &std::path::Path) -> std::io::Result<Parsed> {
    Ok(parse(&std::fs::read(path)?, 0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn torn_tail_and_bad_lines() {
        let a = Event::new("port25.spampot.connect", "s1").to_line();
        let b = Event::new("port25.spampot.message", "s1").to_line();
        let mut bytes = a.clone();
        bytes.extend_from_slice(b"not json\n");
        bytes.extend_from_slice(&b);
        bytes.extend_from_slice(&a[..a.len() / 2]);
        let p = parse(&bytes, 0);
        assert_eq!(p.events.len(), 2);
        assert_eq!(p.events[1].0, (a.len() + 9) as u64);
        assert_eq!(p.bad, vec![a.len() as u64]);
        assert_eq!(p.torn, Some((a.len() + 9 + b.len()) as u64));
        assert_eq!(p.complete_len, (a.len() + 9 + b.len()) as u64);
        // A reader resuming at an offset sees the same events.
        let q = parse(&bytes[a.len()..], a.len() as u64);
        assert_eq!(q.events, p.events[1..]);
        assert_eq!(q.complete_len, p.complete_len);
    }

    #[test]
    fn unknown_fields_are_ignored() {
        let line = br#"{"v":1,"event":"port25.spampot.message","sensor":"s","time":"t","future_field":[1,2]}
"#;
        let p = parse(line, 0);
        assert_eq!(p.events.len(), 1);
        assert!(p.bad.is_empty());
    }
}
