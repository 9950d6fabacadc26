//! A small RFC 4180 reader (quoted fields, doubled quotes, line ends in
//! quotes) for the radacct export and Kea's memfile, which is CSV without
//! quotes (Kea escapes commas in values as `&#x2c`, undone by the caller).

use super::lines::{too_long, Line, Lines, MAX_LINE};
use super::{Origin, WarningKind, Warnings};
use std::io::{self, BufRead};

/// One record: the line it starts on, its fields, and whether it ended
/// with a line end (a last record without one may be cut short).
pub struct Record {
    pub line: u32,
    pub fields: Vec<String>,
    pub terminated: bool,
}

/// What [`Records::next_record`] reads.
pub enum Item {
    Record(Record),
    /// A record longer than [`MAX_LINE`] (one line, or lines inside
    /// quotes) starting on this line: skipped, to the end of the line
    /// where it passed the limit.
    TooLong {
        line: u32,
    },
}

/// The records of a stream, one at a time (a lease file of a million rows
/// is never held, neither as text nor as fields). Blank lines are skipped.
pub fn records<R: BufRead>(r: R) -> Records<R> {
    Records { lines: Lines::new(r) }
}

pub struct Records<R> {
    lines: Lines<R>,
}

/// A record being read, across lines while a quote is open.
struct Partial {
    line: u32,
    fields: Vec<String>,
    field: String,
    quoted: bool,
    bytes: usize,
}

impl<R: BufRead> Records<R> {
    /// The next whole row of `file`: a row over the limit is skipped and
    /// a row the file ends inside (no line end) ends the reading, each a
    /// counted warning naming its line, as the radacct and Kea readers
    /// both want.
    pub fn next_row(&mut self, file: u32, w: &mut Warnings) -> io::Result<Option<Record>> {
        while let Some(item) = self.next_record()? {
            match item {
                Item::Record(r) if r.terminated => return Ok(Some(r)),
                Item::Record(r) => {
                    let origin = Origin { file, line: r.line };
                    w.add(WarningKind::Truncated, origin, "the file ends inside this row (no line end): not read");
                    return Ok(None);
                }
                Item::TooLong { line } => w.add(WarningKind::BadRecord, Origin { file, line }, too_long("this row")),
            }
        }
        Ok(None)
    }

    pub fn next_record(&mut self) -> io::Result<Option<Item>> {
        let mut rec: Option<Partial> = None;
        loop {
            let Some(line) = self.lines.next_line()? else {
                // The input ends inside a quoted field.
                return Ok(rec.map(|p| {
                    let mut fields = p.fields;
                    fields.push(p.field);
                    Item::Record(Record { line: p.line, fields, terminated: false })
                }));
            };
            let (n, text, terminated) = match line {
                Line::Text { n, text, terminated } => (n, text, terminated),
                Line::TooLong { n, .. } => return Ok(Some(Item::TooLong { line: rec.map_or(n, |p| p.line) })),
            };
            let p = rec.get_or_insert_with(|| Partial {
                line: n,
                fields: Vec::new(),
                field: String::new(),
                quoted: false,
                bytes: 0,
            });
            p.bytes += text.len() + 1;
            if p.bytes > MAX_LINE + 1 {
                return Ok(Some(Item::TooLong { line: p.line }));
            }
            let mut chars = text.chars().peekable();
            while let Some(c) = chars.next() {
                if p.quoted {
                    match c {
                        '"' if chars.peek() == Some(&'"') => {
                            chars.next();
                            p.field.push('"');
                        }
                        '"' => p.quoted = false,
                        _ => p.field.push(c),
                    }
                    continue;
                }
                match c {
                    '"' if p.field.is_empty() => p.quoted = true,
                    ',' => p.fields.push(std::mem::take(&mut p.field)),
                    // `\r\n` ends a line as `\n` does.
                    '\r' if terminated && chars.peek().is_none() => {}
                    _ => p.field.push(c),
                }
            }
            if p.quoted && terminated {
                // A line end inside quotes is part of the field.
                p.field.push('\n');
                continue;
            }
            let Some(mut p) = rec.take() else { continue };
            p.fields.push(p.field);
            if p.fields.len() == 1 && p.fields[0].is_empty() {
                continue;
            }
            return Ok(Some(Item::Record(Record { line: p.line, fields: p.fields, terminated })));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(text: &str) -> Vec<Item> {
        let mut r = records(text.as_bytes());
        std::iter::from_fn(|| r.next_record().unwrap()).collect()
    }

    fn record(i: &Item) -> &Record {
        match i {
            Item::Record(r) => r,
            Item::TooLong { line } => panic!("too long at {line}"),
        }
    }

    #[test]
    fn quoting_and_lines() {
        let r = all("a,\"b,\"\"c\"\"\",\r\n\n\"x\ny\",2\nlast");
        assert_eq!(r.len(), 3);
        let r: Vec<&Record> = r.iter().map(record).collect();
        assert_eq!(r[0].fields, ["a", "b,\"c\"", ""]);
        assert_eq!((r[0].line, r[0].terminated), (1, true));
        assert_eq!(r[1].fields, ["x\ny", "2"]);
        assert_eq!(r[1].line, 3);
        assert_eq!((r[2].line, r[2].terminated), (5, false));
        // Inside quotes a `\r` is kept; a file that ends inside quotes
        // ends the record there, not terminated.
        let r = all("\"a\r\nb\"\r\n\"open\nmore");
        assert_eq!(record(&r[0]).fields, ["a\r\nb"]);
        assert_eq!(
            (record(&r[1]).fields.as_slice(), record(&r[1]).terminated),
            (&["open\nmore".to_string()][..], false)
        );
    }

    #[test]
    fn an_overlong_record_is_skipped_and_named() {
        let long = "x".repeat(MAX_LINE + 1);
        // One line too long, then a quote left open over lines that pass
        // the limit together: each skipped where it passed it.
        let half = "y".repeat(MAX_LINE / 2);
        let text = format!("a,b\n{long}\nc,d\n\"{half}\n{half}\n{half}\ne,f\n");
        let r = all(&text);
        assert!(matches!(r[1], Item::TooLong { line: 2 }));
        assert!(matches!(r[3], Item::TooLong { line: 4 }));
        assert_eq!(record(&r[0]).fields, ["a", "b"]);
        assert_eq!(record(&r[2]).fields, ["c", "d"]);
        // The rest of the quoted record reads as rows of its own.
        assert_eq!(r.len(), 6);
        assert_eq!((record(&r[4]).line, record(&r[5]).fields.as_slice()), (6, &["e".to_string(), "f".to_string()][..]));
    }
}
