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

/// Splits `text` into records. Blank lines are skipped.
pub fn records(text: &str) -> Vec<Record> {
    let mut out = Vec::new();
    let mut line: u32 = 1;
    let mut chars = text.chars().peekable();
    while chars.peek().is_some() {
        let start = line;
        let mut fields = Vec::new();
        let mut field = String::new();
        let mut quoted = false;
        let mut terminated = false;
        let mut any = false;
        while let Some(c) = chars.next() {
            any = true;
            if quoted {
                match c {
                    '"' if chars.peek() == Some(&'"') => {
                        chars.next();
                        field.push('"');
                    }
                    '"' => quoted = false,
                    '\n' => {
                        line = line.saturating_add(1);
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
                    line = line.saturating_add(1);
                    terminated = true;
                    break;
                }
                _ => field.push(c),
            }
        }
        if !any {
            break;
        }
        fields.push(field);
        if fields.len() == 1 && fields[0].is_empty() {
            continue;
        }
        out.push(Record { line: start, fields, terminated });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_and_lines() {
        let r = records("a,\"b,\"\"c\"\"\",\n\n\"x\ny\",2\nlast");
        assert_eq!(r.len(), 3);
        assert_eq!(r[0].fields, ["a", "b,\"c\"", ""]);
        assert_eq!((r[0].line, r[0].terminated), (1, true));
        assert_eq!(r[1].fields, ["x\ny", "2"]);
        assert_eq!(r[1].line, 3);
        assert_eq!((r[2].line, r[2].terminated), (5, false));
    }
}
