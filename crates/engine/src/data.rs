//! The DATA reader (RFC 5321 §4.1.1.4, §4.5.2): a pure state machine that
//! removes dot-stuffing, finds the terminating `<CRLF>.<CRLF>` and refuses
//! bare CR and bare LF anywhere in the message.
//!
//! Only the exact sequence CR LF "." CR LF ends a message. Any LF not preceded
//! by CR and any CR not followed by LF is an error: this is what makes SMTP
//! smuggling ("\n.\r\n", "\r.\r\n", ...) impossible through port25, because
//! no variant of the terminator is ever taken as one. Oversize messages and
//! overlong lines are noted and the reader keeps going to the real end, so
//! the session can answer after the terminator as RFC 5321 requires.

use crate::budget::Reservation;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// At the start of a line.
    LineStart,
    /// Inside a line.
    Text,
    /// After a CR inside a line.
    Cr,
    /// After a "." at the start of a line.
    Dot,
    /// After ".\r" at the start of a line.
    DotCr,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// All input consumed; more is needed.
    NeedMore,
    /// The terminator was found; `consumed` bytes of input belonged to DATA.
    End,
    BareLf,
    BareCr,
}

pub struct DataReader {
    state: State,
    line_len: usize,
    max_line: usize,
    max_size: usize,
    /// Bytes in `out` before the message (the Received header), not
    /// counted against `max_size`.
    base: usize,
    /// The memory budget the buffer grows within, if any.
    budget: Option<Reservation>,
    pub oversize: bool,
    /// The budget for data in flight ran out: the message was dropped.
    pub over_budget: bool,
    pub line_too_long: bool,
    /// Bytes of the message as received (after unstuffing), counted even when
    /// no longer stored because of the size limit.
    pub size: u64,
}

impl DataReader {
    /// `max_line` excludes the CRLF (998 by RFC 5322 §2.1.1);
    /// `max_size` is the largest message stored, in bytes.
    pub fn new(max_line: usize, max_size: usize) -> DataReader {
        DataReader {
            state: State::LineStart,
            line_len: 0,
            max_line,
            max_size,
            base: 0,
            budget: None,
            oversize: false,
            over_budget: false,
            line_too_long: false,
            size: 0,
        }
    }

    /// Grows `out` only as far as `reservation` can follow (the capacity
    /// is what is reserved); `base` bytes already in `out` (the trace
    /// header written before the message) are not part of the message.
    pub fn with_budget(mut self, base: usize, reservation: Reservation) -> DataReader {
        self.base = base;
        self.budget = Some(reservation);
        self
    }

    fn drop_message(&mut self, out: &mut Vec<u8>) {
        out.clear();
        out.shrink_to_fit();
        if let Some(r) = &mut self.budget {
            r.release();
        }
    }

    fn push(&mut self, out: &mut Vec<u8>, bytes: &[u8]) {
        self.size += bytes.len() as u64;
        if self.oversize || self.over_budget {
            return;
        }
        if out.len().saturating_sub(self.base) + bytes.len() > self.max_size {
            self.oversize = true;
            self.drop_message(out);
            return;
        }
        let need = out.len() + bytes.len();
        if need > out.capacity() {
            // Doubling as Vec does, but never past the largest message, and
            // reserved from the budget before the memory is taken.
            let capacity = (out.capacity() * 2).min(self.base + self.max_size).max(need);
            if let Some(r) = &mut self.budget {
                if !r.grow_to(capacity) {
                    self.over_budget = true;
                    self.drop_message(out);
                    return;
                }
            }
            out.reserve_exact(capacity - out.len());
        }
        out.extend_from_slice(bytes);
    }

    /// Consumes `input`, appending message bytes to `out`. Returns how many
    /// bytes were consumed and why it stopped.
    pub fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) -> (usize, Outcome) {
        let mut i = 0;
        while i < input.len() {
            match self.state {
                State::LineStart if input[i] == b'.' => {
                    self.state = State::Dot;
                    i += 1;
                }
                State::Text | State::LineStart => {
                    // Copy the run of ordinary bytes in one go.
                    let run = input[i..].iter().position(|&b| b == b'\r' || b == b'\n').unwrap_or(input.len() - i);
                    if run > 0 {
                        self.line_len += run;
                        if self.line_len > self.max_line {
                            self.line_too_long = true;
                        }
                        self.push(out, &input[i..i + run]);
                        i += run;
                        self.state = State::Text;
                        continue;
                    }
                    match input[i] {
                        b'\r' => self.state = State::Cr,
                        _ => return (i + 1, Outcome::BareLf),
                    }
                    i += 1;
                }
                State::Cr => {
                    if input[i] != b'\n' {
                        return (i, Outcome::BareCr);
                    }
                    self.push(out, b"\r\n");
                    self.line_len = 0;
                    self.state = State::LineStart;
                    i += 1;
                }
                State::Dot => match input[i] {
                    b'\r' => {
                        self.state = State::DotCr;
                        i += 1;
                    }
                    b'\n' => return (i + 1, Outcome::BareLf),
                    _ => {
                        // Dot-stuffing: the leading dot is removed and the
                        // rest of the line is ordinary text.
                        self.state = State::Text;
                    }
                },
                State::DotCr => {
                    if input[i] != b'\n' {
                        return (i, Outcome::BareCr);
                    }
                    return (i + 1, Outcome::End);
                }
            }
        }
        (i, Outcome::NeedMore)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(chunks: &[&[u8]]) -> (Vec<u8>, Outcome, usize) {
        let mut r = DataReader::new(998, 1 << 20);
        let mut out = Vec::new();
        for (n, chunk) in chunks.iter().enumerate() {
            let (used, outcome) = r.feed(chunk, &mut out);
            if outcome != Outcome::NeedMore {
                return (out, outcome, used + chunks[..n].iter().map(|c| c.len()).sum::<usize>());
            }
        }
        (out, Outcome::NeedMore, 0)
    }

    #[test]
    fn unstuffs_and_stops_at_terminator() {
        let (out, outcome, used) = read_all(&[b"Subject: x\r\n\r\n..leading dot\r\n.\r\nQUIT\r\n"]);
        assert_eq!(outcome, Outcome::End);
        assert_eq!(out, b"Subject: x\r\n\r\n.leading dot\r\n");
        assert_eq!(used, 32);
    }

    #[test]
    fn terminator_split_across_reads() {
        let msg: &[u8] = b"a\r\n.\r\n";
        for split in 0..msg.len() {
            let (out, outcome, _) = read_all(&[&msg[..split], &msg[split..]]);
            assert_eq!(outcome, Outcome::End, "split at {split}");
            assert_eq!(out, b"a\r\n");
        }
    }

    #[test]
    fn smuggling_variants_are_errors_not_terminators() {
        for (bytes, want) in [
            (&b"a\n.\r\nMAIL FROM:<x@y>\r\n"[..], Outcome::BareLf),
            (b"a\r\n.\nRCPT\r\n", Outcome::BareLf),
            (b"a\r.\r\n", Outcome::BareCr),
            (b"a\r\n.\r.\r\n", Outcome::BareCr),
            (b"a\rb\r\n.\r\n", Outcome::BareCr),
        ] {
            assert_eq!(read_all(&[bytes]).1, want, "{:?}", String::from_utf8_lossy(bytes));
        }
    }

    #[test]
    fn empty_message_and_limits() {
        assert_eq!(read_all(&[b".\r\n"]).0, b"");
        let mut r = DataReader::new(4, 10);
        let mut out = Vec::new();
        assert_eq!(r.feed(b"abcdef\r\n0123456789\r\n.\r\n", &mut out).1, Outcome::End);
        assert!(r.line_too_long && r.oversize);
        assert!(out.is_empty());
        assert_eq!(r.size, 20);
    }

    #[test]
    fn the_buffer_grows_within_its_budget_and_is_dropped_past_it() {
        let budget = crate::budget::DataBudget::new(64 * 1024);
        let mut out = b"Received: x\r\n".to_vec();
        let mut r = DataReader::new(998, 1 << 20).with_budget(out.len(), budget.start(0).unwrap());
        let line = [b'a'; 900];
        let mut fed = 0;
        while !r.over_budget {
            let mut chunk = line.to_vec();
            chunk.extend_from_slice(b"\r\n");
            assert_eq!(r.feed(&chunk, &mut out).1, Outcome::NeedMore);
            fed += 1;
            assert!(budget.used() <= budget.limit());
            assert!(out.capacity() <= budget.used() || r.over_budget, "{} > {}", out.capacity(), budget.used());
            assert!(fed < 100, "64 KiB of budget must run out before 90 KB are kept");
        }
        assert!(out.capacity() == 0 && budget.used() == 0, "the message is dropped and its budget given back");
        // The reader still finds the end, so the session can answer.
        assert_eq!(r.feed(b"more\r\n.\r\n", &mut out).1, Outcome::End);
        assert!(out.is_empty() && !r.oversize);

        // Within the budget the header stays in front and does not count
        // against the size limit.
        let mut out = b"Received: x\r\n".to_vec();
        let mut r = DataReader::new(998, 6).with_budget(out.len(), budget.start(0).unwrap());
        assert_eq!(r.feed(b"abcd\r\n.\r\n", &mut out).1, Outcome::End);
        assert!(!r.oversize && !r.over_budget);
        assert_eq!(out, b"Received: x\r\nabcd\r\n");
        drop(r);
        assert_eq!(budget.used(), 0);
    }
}
