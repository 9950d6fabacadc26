//! A small RFC 4180 reader (quoted fields, doubled quotes, line ends in
//! quotes) for the radacct export and Kea's memfile, which is CSV without
//! quotes (Kea escapes commas in values as `&#x2c`, undone by the caller).

/// One record: the line it starts on, its fields, and whether it ended
/// with a line end (a last record without one may be cut short).
pub struct Record {
    pub line: u32,
    pub fields: Vec<String>,
    pub terminated: bool,
}

/// The records of `text`, one at a time (a lease file of a million rows
/// is never held as fields all at once). Blank lines are skipped.
pub fn records(text: &str) -> Records<'_> {
    Records { chars: text.chars().peekable(), line: 1 }
}

pub struct Records<'a> {
    chars: std::iter::Peekable<std::str::Chars<'a>>,
    line: u32,
}

impl Iterator for Records<'_> {
    type Item = Record;

    fn next(&mut self) -> Option<Record> {
        let chars = &mut self.chars;
        while chars.peek().is_some() {
            let start = self.line;
            let mut fields = Vec::new();
            let mut field = String::new();
            let mut quoted = false;
            let mut terminated = false;
            while let Some(c) = chars.next() {
                if quoted {
                    match c {
                        '"' if chars.peek() == Some(&'"') => {
                            chars.next();
                            field.push('"');
                        }
                        '"' => quoted = false,
                        '\n' => {
                            self.line = self.line.saturating_add(1);
                            field.push('\n');
                        }
                        _ => field.push(c),
                    }
                    continue;
                }
                match c {
                    '"' if field.is_empty() => quoted = true,
                    ',' => fields.push(std::mem::take(&mut field)),
                    '\r' if chars.peek() == Some(&'\n') => {}
                    '\n' => {
                        self.line = self.line.saturating_add(1);
                        terminated = true;
                        break;
                    }
                    _ => field.push(c),
                }
            }
            fields.push(field);
            if fields.len() == 1 && fields[0].is_empty() {
                continue;
            }
            return Some(Record { line: start, fields, terminated });
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_and_lines() {
        let r: Vec<Record> = records("a,\"b,\"\"c\"\"\",\n\n\"x\ny\",2\nlast").collect();
        assert_eq!(r.len(), 3);
        assert_eq!(r[0].fields, ["a", "b,\"c\"", ""]);
        assert_eq!((r[0].line, r[0].terminated), (1, true));
        assert_eq!(r[1].fields, ["x\ny", "2"]);
        assert_eq!(r[1].line, 3);
        assert_eq!((r[2].line, r[2].terminated), (5, false));
    }
}
