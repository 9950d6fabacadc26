//! RESP2, the Redis protocol, as port25's own Redis client speaks it
//! (crates/shared/src/redis_conn.rs): a command is written as an array of
//! bulk strings, a reply is parsed from the bytes read so far.
//!
//! Pure (no I/O) and bounded, since the bytes come from the network: a
//! bulk string longer than [`Limits::bulk`], arrays nested deeper than
//! [`Limits::depth`], more than [`Limits::elements`] values in one reply, a
//! line longer than [`Limits::line`] or a reply longer than
//! [`Limits::reply`] are refused before they are buffered or allocated.
//! The parser starts over from the buffer's first byte on every call and
//! keeps no state, so a reply split across reads anywhere parses the same
//! once it is whole (fuzzed: fuzz/fuzz_targets/redis_reply.rs).

use std::fmt;

/// One reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// `+OK`
    Simple(Vec<u8>),
    /// `-NOSCRIPT No matching script`: the server refused the command; the
    /// connection is still in step.
    Error(Vec<u8>),
    /// `:42`
    Integer(i64),
    /// `$3 abc`; `None` for the null bulk string (`$-1`).
    Bulk(Option<Vec<u8>>),
    /// `*2 ...`; `None` for the null array (`*-1`).
    Array(Option<Vec<Value>>),
}

/// What one reply may be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The longest bulk string, in bytes.
    pub bulk: usize,
    /// Arrays nested in one another at most (1: a flat array).
    pub depth: usize,
    /// Values in one reply, at every level, arrays included.
    pub elements: usize,
    /// The longest simple string, error or number line, CRLF excluded.
    pub line: usize,
    /// The longest reply, in bytes.
    pub reply: usize,
}

/// port25's replies: script answers (a pair of numbers), SHA1s, and
/// HSCAN pages of usage records (a cursor and about 2,000 short strings).
pub const LIMITS: Limits = Limits { bulk: 1 << 20, depth: 4, elements: 1 << 18, line: 64 << 10, reply: 16 << 20 };

/// Why bytes are not a reply. The connection they came on is out of step
/// and must not carry another command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProtoError {
    /// A first byte that is none of `+-:$*`.
    UnknownType(u8),
    /// A CR not followed by LF, or an LF alone, in a line.
    BadLine,
    /// A length or integer that is not a decimal number in range.
    BadNumber,
    LineTooLong,
    BulkTooLong(i64),
    /// A bulk string's bytes not followed by CRLF.
    BadBulkEnd,
    TooDeep,
    TooManyElements,
    ReplyTooLong,
}

impl fmt::Display for ProtoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProtoError::UnknownType(b) => write!(f, "a reply starting with byte 0x{b:02x}"),
            ProtoError::BadLine => f.write_str("a CR or LF alone in a reply line"),
            ProtoError::BadNumber => f.write_str("a length or integer that is not a number in range"),
            ProtoError::LineTooLong => f.write_str("a reply line over the limit"),
            ProtoError::BulkTooLong(n) => write!(f, "a bulk string of {n} bytes, over the limit"),
            ProtoError::BadBulkEnd => f.write_str("a bulk string not ended by CRLF"),
            ProtoError::TooDeep => f.write_str("arrays nested over the limit"),
            ProtoError::TooManyElements => f.write_str("a reply of more values than the limit"),
            ProtoError::ReplyTooLong => f.write_str("a reply longer than the limit"),
        }
    }
}

impl std::error::Error for ProtoError {}

/// The first reply in `buf` and the number of bytes it took; `Ok(None)`
/// when `buf` holds only its beginning (read more and call again with
/// the longer buffer).
pub fn parse(buf: &[u8], limits: &Limits) -> Result<Option<(Value, usize)>, ProtoError> {
    let mut p = Parser { buf, limits, budget: limits.elements };
    match p.value(0, 0)? {
        Some((_, end)) if end > limits.reply => Err(ProtoError::ReplyTooLong),
        Some(done) => Ok(Some(done)),
        // Everything buffered belongs to this one unfinished reply.
        None if buf.len() > limits.reply => Err(ProtoError::ReplyTooLong),
        None => Ok(None),
    }
}

struct Parser<'a> {
    buf: &'a [u8],
    limits: &'a Limits,
    /// Values still allowed in this reply.
    budget: usize,
}

type Step<T> = Result<Option<(T, usize)>, ProtoError>;

impl Parser<'_> {
    /// The value starting at `at`, inside `depth` arrays.
    fn value(&mut self, at: usize, depth: usize) -> Step<Value> {
        let Some(&kind) = self.buf.get(at) else { return Ok(None) };
        if !b"+-:$*".contains(&kind) {
            return Err(ProtoError::UnknownType(kind));
        }
        if self.budget == 0 {
            return Err(ProtoError::TooManyElements);
        }
        self.budget -= 1;
        let Some((line, next)) = self.line(at + 1)? else { return Ok(None) };
        match kind {
            b'+' => Ok(Some((Value::Simple(line.to_vec()), next))),
            b'-' => Ok(Some((Value::Error(line.to_vec()), next))),
            b':' => Ok(Some((Value::Integer(number(line)?), next))),
            b'$' => {
                let n = number(line)?;
                if n == -1 {
                    return Ok(Some((Value::Bulk(None), next)));
                }
                let len = usize::try_from(n).map_err(|_| ProtoError::BadNumber)?;
                if len > self.limits.bulk {
                    return Err(ProtoError::BulkTooLong(n));
                }
                // Saturating: `len` is bounded by the caller's limit, which
                // may be as large as it likes.
                let end = next.saturating_add(len);
                match self.buf.get(end..end.saturating_add(2)) {
                    Some(b"\r\n") => Ok(Some((Value::Bulk(Some(self.buf[next..end].to_vec())), end + 2))),
                    Some(_) => Err(ProtoError::BadBulkEnd),
                    // The data or its CRLF not all here yet: what is, must fit.
                    None if self.buf.get(end).is_some_and(|&b| b != b'\r') => Err(ProtoError::BadBulkEnd),
                    None => Ok(None),
                }
            }
            b'*' => {
                let n = number(line)?;
                if n == -1 {
                    return Ok(Some((Value::Array(None), next)));
                }
                let count = usize::try_from(n).map_err(|_| ProtoError::BadNumber)?;
                if depth >= self.limits.depth {
                    return Err(ProtoError::TooDeep);
                }
                if count > self.budget {
                    return Err(ProtoError::TooManyElements);
                }
                // The count is bounded by the budget, but its values may
                // not have arrived: allocate as they come.
                let mut items = Vec::with_capacity(count.min(64));
                let mut pos = next;
                for _ in 0..count {
                    let Some((v, after)) = self.value(pos, depth + 1)? else { return Ok(None) };
                    items.push(v);
                    pos = after;
                }
                Ok(Some((Value::Array(Some(items)), pos)))
            }
            _ => Err(ProtoError::UnknownType(kind)),
        }
    }

    /// The line starting at `at` up to its CRLF, and where the next one
    /// starts.
    fn line(&self, at: usize) -> Step<&[u8]> {
        let rest = self.buf.get(at..).unwrap_or_default();
        match rest.iter().position(|&b| b == b'\r' || b == b'\n') {
            Some(i) if i > self.limits.line => Err(ProtoError::LineTooLong),
            Some(i) if rest[i] == b'\n' => Err(ProtoError::BadLine),
            Some(i) => match rest.get(i + 1) {
                Some(b'\n') => Ok(Some((&rest[..i], at + i + 2))),
                Some(_) => Err(ProtoError::BadLine),
                None => Ok(None),
            },
            None if rest.len() > self.limits.line => Err(ProtoError::LineTooLong),
            None => Ok(None),
        }
    }
}

/// A decimal number as RESP writes it: an optional minus and 1 to 19
/// digits, in the range of i64.
fn number(line: &[u8]) -> Result<i64, ProtoError> {
    let (negative, digits) = match line.split_first() {
        Some((b'-', d)) => (true, d),
        _ => (false, line),
    };
    if digits.is_empty() || digits.len() > 19 || !digits.iter().all(u8::is_ascii_digit) {
        return Err(ProtoError::BadNumber);
    }
    let mut n: i64 = 0;
    for &d in digits {
        let d = i64::from(d - b'0');
        n = n
            .checked_mul(10)
            .and_then(|n| if negative { n.checked_sub(d) } else { n.checked_add(d) })
            .ok_or(ProtoError::BadNumber)?;
    }
    Ok(n)
}

/// Appends a command (an array of bulk strings) to `out`.
pub fn command(out: &mut Vec<u8>, args: &[&[u8]]) {
    header(out, b'*', args.len());
    for a in args {
        header(out, b'$', a.len());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
}

/// Appends `v` as a server would send it (for tests and the fuzzer's
/// round trip). A simple string or error with CR or LF in it cannot be
/// written; it is written up to the first of them.
pub fn encode(out: &mut Vec<u8>, v: &Value) {
    let line = |out: &mut Vec<u8>, kind: u8, text: &[u8]| {
        out.push(kind);
        out.extend(text.iter().take_while(|&&b| b != b'\r' && b != b'\n'));
        out.extend_from_slice(b"\r\n");
    };
    match v {
        Value::Simple(s) => line(out, b'+', s),
        Value::Error(s) => line(out, b'-', s),
        Value::Integer(n) => line(out, b':', n.to_string().as_bytes()),
        Value::Bulk(None) => out.extend_from_slice(b"$-1\r\n"),
        Value::Bulk(Some(b)) => {
            header(out, b'$', b.len());
            out.extend_from_slice(b);
            out.extend_from_slice(b"\r\n");
        }
        Value::Array(None) => out.extend_from_slice(b"*-1\r\n"),
        Value::Array(Some(items)) => {
            header(out, b'*', items.len());
            for i in items {
                encode(out, i);
            }
        }
    }
}

fn header(out: &mut Vec<u8>, kind: u8, n: usize) {
    out.push(kind);
    out.extend_from_slice(n.to_string().as_bytes());
    out.extend_from_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(s: &str) -> Value {
        Value::Bulk(Some(s.as_bytes().to_vec()))
    }

    /// Every reply, fed one more byte at a time, is unfinished until its
    /// last byte and then the same value; what follows it is left.
    #[test]
    fn replies_split_at_every_byte_parse_once_whole() {
        let cases: Vec<(&[u8], Value)> = vec![
            (b"+OK\r\n", Value::Simple(b"OK".to_vec())),
            (b"-NOSCRIPT No matching script.\r\n", Value::Error(b"NOSCRIPT No matching script.".to_vec())),
            (b":-9223372036854775808\r\n", Value::Integer(i64::MIN)),
            (b"$5\r\na\r\nb\r\r\n", bulk("a\r\nb\r")),
            (b"$0\r\n\r\n", bulk("")),
            (b"$-1\r\n", Value::Bulk(None)),
            (b"*-1\r\n", Value::Array(None)),
            (b"*2\r\n:0\r\n:1500\r\n", Value::Array(Some(vec![Value::Integer(0), Value::Integer(1500)]))),
            (
                b"*2\r\n$1\r\n0\r\n*2\r\n$7\r\n1:alice\r\n$0\r\n\r\n",
                Value::Array(Some(vec![bulk("0"), Value::Array(Some(vec![bulk("1:alice"), bulk("")]))])),
            ),
        ];
        for (wire, want) in cases {
            for cut in 0..wire.len() {
                assert_eq!(parse(&wire[..cut], &LIMITS), Ok(None), "{:?} cut at {cut}", String::from_utf8_lossy(wire));
            }
            let mut more = wire.to_vec();
            more.extend_from_slice(b"+next\r\n");
            assert_eq!(parse(&more, &LIMITS), Ok(Some((want.clone(), wire.len()))));
            let mut again = Vec::new();
            encode(&mut again, &want);
            assert_eq!(parse(&again, &LIMITS), Ok(Some((want, again.len()))), "written back");
        }
    }

    #[test]
    fn error_replies_are_values_and_bad_bytes_are_errors() {
        assert_eq!(
            parse(b"-ERR wrong number of arguments\r\n", &LIMITS),
            Ok(Some((Value::Error(b"ERR wrong number of arguments".to_vec()), 32)))
        );
        for (wire, e) in [
            (&b"!3\r\n"[..], ProtoError::UnknownType(b'!')),
            (b"+O\nK\r\n", ProtoError::BadLine),
            (b"+O\rK\r\n", ProtoError::BadLine),
            (b":12a\r\n", ProtoError::BadNumber),
            (b":\r\n", ProtoError::BadNumber),
            (b":99999999999999999999\r\n", ProtoError::BadNumber),
            (b":9223372036854775808\r\n", ProtoError::BadNumber),
            (b"$-2\r\n", ProtoError::BadNumber),
            (b"*-5\r\n", ProtoError::BadNumber),
            (b"$+3\r\nabc\r\n", ProtoError::BadNumber),
            (b"$3\r\nabcd\r\n", ProtoError::BadBulkEnd),
            (b"$3\r\nabcX", ProtoError::BadBulkEnd),
        ] {
            assert_eq!(parse(wire, &LIMITS), Err(e), "{:?}", String::from_utf8_lossy(wire));
        }
    }

    /// An announced length over the limit is refused at once, before any
    /// of its bytes arrive; so are endless lines and replies.
    #[test]
    fn oversized_replies_are_refused_before_they_are_buffered() {
        let small = Limits { bulk: 8, depth: 2, elements: 6, line: 10, reply: 64 };
        assert_eq!(parse(b"$9\r\n", &small), Err(ProtoError::BulkTooLong(9)));
        assert_eq!(parse(b"$8\r\n12345678\r\n", &small).unwrap().unwrap().1, 14);
        assert_eq!(parse(b"$536870912\r\n", &LIMITS), Err(ProtoError::BulkTooLong(536_870_912)));
        assert_eq!(parse(b"+01234567890", &small), Err(ProtoError::LineTooLong), "no CRLF yet, already too long");
        assert_eq!(parse(b"+0123456789\r\n", &small).unwrap().unwrap().1, 13);
        assert_eq!(parse(b"*7\r\n", &small), Err(ProtoError::TooManyElements), "counted before allocated");
        assert_eq!(parse(b"*1000000000000\r\n", &LIMITS), Err(ProtoError::TooManyElements));
        let mut long = b"*5\r\n".to_vec();
        for _ in 0..5 {
            long.extend_from_slice(b"$8\r\n12345678\r\n");
        }
        assert_eq!(parse(&long, &small), Err(ProtoError::ReplyTooLong));
        assert_eq!(parse(&long[..66], &small), Err(ProtoError::ReplyTooLong), "unfinished but already too long");
    }

    #[test]
    fn nested_arrays_up_to_the_depth() {
        let small = Limits { depth: 2, ..LIMITS };
        let two = b"*1\r\n*2\r\n:1\r\n$-1\r\n";
        assert_eq!(
            parse(two, &small),
            Ok(Some((Value::Array(Some(vec![Value::Array(Some(vec![Value::Integer(1), Value::Bulk(None)]))])), 17)))
        );
        assert_eq!(parse(b"*1\r\n*1\r\n*1\r\n:1\r\n", &small), Err(ProtoError::TooDeep));
        assert_eq!(parse(b"*1\r\n*1\r\n*-1\r\n", &small).unwrap().unwrap().1, 13, "a null array holds nothing");
        assert_eq!(parse(b"*1\r\n*1\r\n*0\r\n", &small), Err(ProtoError::TooDeep));
        // Deep nesting from a hostile server ends at the limit, not the stack.
        let deep = b"*1\r\n".repeat(100_000);
        assert_eq!(parse(&deep, &LIMITS), Err(ProtoError::TooDeep));
    }

    #[test]
    fn commands_are_arrays_of_bulk_strings() {
        let mut out = Vec::new();
        command(&mut out, &[b"EVALSHA", b"ab", b"1", b"k\r\n", b""]);
        assert_eq!(out, b"*5\r\n$7\r\nEVALSHA\r\n$2\r\nab\r\n$1\r\n1\r\n$3\r\nk\r\n\r\n$0\r\n\r\n");
        let (v, n) = parse(&out, &LIMITS).unwrap().unwrap();
        assert_eq!(n, out.len());
        assert_eq!(v, Value::Array(Some(vec![bulk("EVALSHA"), bulk("ab"), bulk("1"), bulk("k\r\n"), bulk("")])));
    }
}
