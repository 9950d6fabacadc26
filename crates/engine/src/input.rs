//! The connection's input buffer and the strict line splitter.
//!
//! SMTP framing is where smuggling attacks live (a bare LF or CR that one
//! server treats as a line end and another does not), so this is the one
//! place that decides what a line is: only CRLF ends a command line. A line
//! ending in a bare LF is reported as such; a CR not followed by LF inside a
//! line is reported as well. The buffer starts small and grows only up to the
//! line limit, so ten thousand idle sessions cost little memory.

use tokio::io::{AsyncRead, AsyncReadExt};

/// Bytes kept per idle connection; grows for long lines and DATA.
const INITIAL: usize = 1024;
/// Read size while receiving DATA.
const DATA_CHUNK: usize = 16 * 1024;

#[derive(Debug, PartialEq, Eq)]
pub enum Line {
    /// A command line, CRLF removed.
    Complete(Vec<u8>),
    /// A line ended by LF without CR; framing cannot be trusted.
    BareLf,
    /// A CR inside the line that is not followed by LF; the line is dropped.
    BareCr,
    /// Longer than the limit; it was discarded up to and including its LF.
    TooLong,
}

#[derive(Default)]
pub struct Input {
    buf: Vec<u8>,
    start: usize,
    end: usize,
    /// Discarding the rest of an overlong line until its LF.
    discarding: bool,
}

impl Input {
    /// Appends bytes as if read from the network (tests and fuzzing).
    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.truncate(self.end);
        self.buf.extend_from_slice(bytes);
        self.end = self.buf.len();
    }

    pub fn buffered(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }

    pub fn consume(&mut self, n: usize) {
        self.start += n;
        debug_assert!(self.start <= self.end);
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
    }

    /// Drops everything buffered: after STARTTLS, plaintext that arrived with
    /// the command must never be read as if it came over TLS (CVE-2011-0411).
    pub fn clear(&mut self) -> usize {
        let n = self.end - self.start;
        self.start = 0;
        self.end = 0;
        n
    }

    /// Returns the memory of a large DATA buffer once the message is done.
    pub fn shrink(&mut self) {
        if self.buf.len() > INITIAL && self.end - self.start <= INITIAL {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
            self.buf.truncate(INITIAL);
            self.buf.shrink_to(INITIAL);
        }
    }

    /// Reads more bytes; `Ok(0)` is end of stream. `want` is the buffer size
    /// wanted (line limit or DATA chunk); the buffer never grows past it.
    pub async fn fill<R: AsyncRead + Unpin>(&mut self, reader: &mut R, want: usize) -> std::io::Result<usize> {
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        let target = want.max(INITIAL);
        if self.buf.len() < target && self.end == self.buf.len() {
            let grow = if self.buf.is_empty() { INITIAL } else { (self.buf.len() * 2).min(target) };
            self.buf.resize(grow.max(INITIAL), 0);
        }
        if self.end == self.buf.len() {
            // Full and at the limit: the caller's line limit handles it.
            return Err(std::io::Error::other("input buffer full"));
        }
        let n = reader.read(&mut self.buf[self.end..]).await?;
        self.end += n;
        Ok(n)
    }

    pub async fn fill_data<R: AsyncRead + Unpin>(&mut self, reader: &mut R) -> std::io::Result<usize> {
        self.fill(reader, DATA_CHUNK).await
    }

    /// True when a whole line is already buffered (pipelined commands), so
    /// replies can be held back and written together (RFC 2920).
    pub fn has_line(&self) -> bool {
        self.buffered().contains(&b'\n')
    }

    /// Takes the next line if one is complete. `max` counts the CRLF.
    pub fn take_line(&mut self, max: usize) -> Option<Line> {
        let data = self.buffered();
        match data.iter().position(|&b| b == b'\n') {
            Some(lf) => {
                let line = &data[..lf];
                let result = if self.discarding {
                    self.discarding = false;
                    Line::TooLong
                } else if lf + 1 > max {
                    Line::TooLong
                } else if line.last() != Some(&b'\r') {
                    Line::BareLf
                } else if line[..lf - 1].contains(&b'\r') {
                    Line::BareCr
                } else {
                    Line::Complete(line[..lf - 1].to_vec())
                };
                self.consume(lf + 1);
                Some(result)
            }
            None if data.len() >= max => {
                // Keep a trailing CR: it may be the start of the CRLF.
                let keep = usize::from(data.last() == Some(&b'\r'));
                let drop = data.len() - keep;
                self.discarding = true;
                self.consume(drop);
                None
            }
            None => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(bytes: &[u8]) -> Input {
        Input { buf: bytes.to_vec(), start: 0, end: bytes.len(), discarding: false }
    }

    #[test]
    fn splits_only_on_crlf() {
        let mut i = input(b"NOOP\r\nQUIT\nRSET\rX\r\nPART");
        assert_eq!(i.take_line(512), Some(Line::Complete(b"NOOP".to_vec())));
        assert_eq!(i.take_line(512), Some(Line::BareLf));
        assert_eq!(i.take_line(512), Some(Line::BareCr));
        assert_eq!(i.take_line(512), None);
        assert_eq!(i.buffered(), b"PART");
    }

    #[test]
    fn overlong_line_is_discarded_through_its_end() {
        let mut i = input(&[b'a'; 20]);
        assert_eq!(i.take_line(10), None);
        assert!(i.buffered().is_empty());
        let mut rest = input(b"aaa\r\nNOOP\r\n");
        rest.discarding = true;
        assert_eq!(rest.take_line(10), Some(Line::TooLong));
        assert_eq!(rest.take_line(10), Some(Line::Complete(b"NOOP".to_vec())));
    }
}
