//! Source files read as a stream of lines, one line in memory at a time.
//!
//! A lease journal grows with every renewal and a detail file with every
//! accounting record, so neither is read whole: the parsers take one line
//! at a time and keep only what they make of it (the lease or session
//! set). A line is bounded by [`MAX_LINE`]: a longer one (a corrupt file,
//! binary data, a file without line ends) is skipped without being held,
//! and the parser counts a warning naming its file and line.

use std::borrow::Cow;
use std::io::{self, BufRead, Read};

/// The longest line read, in bytes without its line end. Real lines are
/// far shorter (a Kea row with relay information and a user context is
/// under 2 KiB; detail and dhcpd lines under 300 bytes).
pub const MAX_LINE: usize = 64 << 10;

/// The most text of one record over several lines (a detail record, a
/// dhcpd lease block) that is held; real ones are under 4 KiB. A record
/// that runs on past it (a block whose end never comes) is not read, and
/// is a warning naming its first line.
pub const MAX_RECORD: usize = 1 << 20;

/// One line of a source.
pub(crate) enum Line<'a> {
    /// The text (invalid UTF-8 replaced) without its `\n`; `terminated`
    /// says whether it had one (a last line without one may be cut short).
    Text { n: u32, text: Cow<'a, str>, terminated: bool },
    /// A line longer than [`MAX_LINE`]: skipped. `indented` says whether
    /// it starts with a space or a tab (a detail file's attribute line).
    TooLong { n: u32, indented: bool },
}

/// Lines of `r`, numbered from 1.
pub(crate) struct Lines<R> {
    r: R,
    buf: Vec<u8>,
    next: u32,
    max: usize,
}

impl<R: BufRead> Lines<R> {
    pub(crate) fn new(r: R) -> Lines<R> {
        Lines::with_max(r, MAX_LINE)
    }

    pub(crate) fn with_max(r: R, max: usize) -> Lines<R> {
        Lines { r, buf: Vec::new(), next: 1, max }
    }

    /// The next line, `None` at the end of the input.
    pub(crate) fn next_line(&mut self) -> io::Result<Option<Line<'_>>> {
        self.buf.clear();
        // At most one byte past the limit: a line of `max` bytes and its
        // `\n` fit, anything longer is known to be too long.
        let limit = self.max as u64 + 1;
        if (&mut self.r).take(limit).read_until(b'\n', &mut self.buf)? == 0 {
            return Ok(None);
        }
        let n = self.next;
        self.next = self.next.saturating_add(1);
        let terminated = self.buf.last() == Some(&b'\n');
        if !terminated && self.buf.len() > self.max {
            let indented = matches!(self.buf[0], b' ' | b'\t');
            // The rest of the line, a piece at a time, never held.
            loop {
                self.buf.clear();
                let got = (&mut self.r).take(limit).read_until(b'\n', &mut self.buf)?;
                if got == 0 || self.buf.last() == Some(&b'\n') {
                    break;
                }
            }
            self.buf.clear();
            return Ok(Some(Line::TooLong { n, indented }));
        }
        if terminated {
            self.buf.pop();
        }
        Ok(Some(Line::Text { n, text: String::from_utf8_lossy(&self.buf), terminated }))
    }
}

/// A line as `str::lines` gives it: a `\r` before the `\n` removed.
pub(crate) fn without_cr(text: &str, terminated: bool) -> &str {
    if terminated {
        text.strip_suffix('\r').unwrap_or(text)
    } else {
        text
    }
}

/// What a parser warns of a record longer than [`MAX_RECORD`].
pub(crate) fn record_too_long(what: &str) -> String {
    format!("{what} runs on for more than {} MiB: not read", MAX_RECORD >> 20)
}

/// What a parser warns of a line longer than [`MAX_LINE`].
pub(crate) fn too_long(what: &str) -> String {
    format!("a line longer than {} KiB: {what} not read", MAX_LINE >> 10)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(text: &[u8], max: usize) -> Vec<String> {
        // A reader handing out 3 bytes at a time: lines cross its buffer.
        let mut lines = Lines::with_max(io::BufReader::with_capacity(3, text), max);
        let mut out = Vec::new();
        while let Some(l) = lines.next_line().unwrap() {
            out.push(match l {
                Line::Text { n, text, terminated } => format!("{n}:{text}:{terminated}"),
                Line::TooLong { n, indented } => format!("{n}:long:{indented}"),
            });
        }
        out
    }

    #[test]
    fn lines_numbered_bounded_and_lossy() {
        assert_eq!(all(b"ab\r\n\ncd", 10), ["1:ab\r:true", "2::true", "3:cd:false"]);
        assert_eq!(all(b"", 10), Vec::<String>::new());
        assert_eq!(
            all(b"0123456789\n\t0123456789a\nx\xff\n012345678901", 10),
            ["1:0123456789:true", "2:long:true", "3:x\u{fffd}:true", "4:long:false"]
        );
        assert_eq!(without_cr("a\r", true), "a");
        assert_eq!(without_cr("a\r", false), "a\r");
    }
}
