//! A fast path for [`EventView`]: a hand-written scanner for the lines the
//! capture writer produces (strings without escapes), faster than serde's
//! derived deserializer on them. It answers only when
//! it is sure: for anything it does not handle (an escape, invalid UTF-8,
//! non-ASCII in an ignored field, a float where an integer belongs, a duplicate field, deep
//! nesting...) it returns `None` and the caller asks serde_json, so the
//! result is always what serde would give, bad lines included (fuzzed:
//! `capture_fastview` checks `parse(line) == serde_json::from_slice(line)`
//! whenever this answers).

use crate::view::{DestinationView, EventView, SiteView};
use std::borrow::Cow;

/// Nesting allowed in ignored values (serde_json's limit is 128).
const MAX_DEPTH: u32 = 64;

struct P<'a> {
    b: &'a [u8],
    /// The same line as text: checked as UTF-8 once, so a string between
    /// two quotes (ASCII, hence character boundaries) is sliced out of it
    /// without a UTF-8 check per string.
    s: &'a str,
    i: usize,
}

impl<'a> P<'a> {
    #[inline]
    fn ws(&mut self) {
        while let Some(&c) = self.b.get(self.i) {
            if matches!(c, b' ' | b'\t' | b'\n' | b'\r') {
                self.i += 1;
            } else {
                break;
            }
        }
    }

    #[inline]
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    #[inline]
    fn eat(&mut self, c: u8) -> Option<()> {
        self.ws();
        if self.peek() == Some(c) {
            self.i += 1;
            Some(())
        } else {
            None
        }
    }

    /// A string without escapes or control characters, borrowed.
    #[inline]
    fn str(&mut self) -> Option<&'a str> {
        self.ws();
        if self.peek() != Some(b'"') {
            return None;
        }
        let start = self.i + 1;
        let rest = self.b.get(start..)?;
        // The first quote, escape or control character: a quote ends a
        // plain string, the others are serde's to read (or refuse).
        let n = string_stop(rest)?;
        if rest[n] != b'"' {
            return None;
        }
        self.i = start + n + 1;
        // The whole line is valid UTF-8 (checked in `parse`, as serde checks
        // a borrowed str), and both ends are quotes: `get` cannot fail here,
        // and would decline rather than panic if it did.
        self.s.get(start..start + n)
    }

    #[inline]
    fn null(&mut self) -> bool {
        self.ws();
        if self.b.get(self.i..self.i + 4) == Some(b"null") {
            self.i += 4;
            true
        } else {
            false
        }
    }

    /// A JSON integer without sign, fraction or exponent, at most `max`.
    #[inline]
    fn uint(&mut self, max: u64) -> Option<u64> {
        self.ws();
        let start = self.i;
        let mut v: u64 = 0;
        while let Some(&c) = self.b.get(self.i) {
            if !c.is_ascii_digit() {
                break;
            }
            v = v.checked_mul(10)?.checked_add(u64::from(c - b'0'))?;
            self.i += 1;
        }
        let n = self.i - start;
        // No digits, a leading zero, or a fraction/exponent: serde decides.
        if n == 0
            || (n > 1 && self.b[start] == b'0')
            || matches!(self.peek(), Some(b'.' | b'e' | b'E' | b'-' | b'+'))
            || v > max
        {
            return None;
        }
        Some(v)
    }

    fn opt_str(&mut self) -> Option<Option<Cow<'a, str>>> {
        if self.null() {
            return Some(None);
        }
        Some(Some(Cow::Borrowed(self.str()?)))
    }

    fn opt_uint(&mut self, max: u64) -> Option<Option<u64>> {
        if self.null() {
            return Some(None);
        }
        Some(Some(self.uint(max)?))
    }

    fn opt_bool(&mut self) -> Option<Option<bool>> {
        self.ws();
        for (lit, v) in [(&b"true"[..], Some(true)), (b"false", Some(false)), (b"null", None)] {
            if self.b.get(self.i..self.i + lit.len()) == Some(lit) {
                self.i += lit.len();
                return Some(v);
            }
        }
        None
    }

    fn strings(&mut self) -> Option<Vec<Cow<'a, str>>> {
        self.eat(b'[')?;
        self.ws();
        if self.peek() == Some(b']') {
            self.i += 1;
            return Some(Vec::new());
        }
        // Room for a typical spam's recipients at once (not 1, 2, 4, 8, 16).
        let mut v = Vec::with_capacity(16);
        loop {
            v.push(Cow::Borrowed(self.str()?));
            self.ws();
            match self.peek()? {
                b',' => self.i += 1,
                b']' => {
                    self.i += 1;
                    return Some(v);
                }
                _ => return None,
            }
        }
    }

    /// The members of an object, each handed to `f` with its key; `f`
    /// reads the value (or skips it). A duplicate key is `f`'s to refuse.
    fn object(&mut self, mut f: impl FnMut(&mut P<'a>, &'a str) -> Option<()>) -> Option<()> {
        self.eat(b'{')?;
        self.ws();
        if self.peek() == Some(b'}') {
            self.i += 1;
            return Some(());
        }
        loop {
            let k = self.str()?;
            self.eat(b':')?;
            f(self, k)?;
            self.ws();
            match self.peek()? {
                b',' => self.i += 1,
                b'}' => {
                    self.i += 1;
                    return Some(());
                }
                _ => return None,
            }
        }
    }

    /// Skips any JSON value, checking its syntax.
    fn skip(&mut self, depth: u32) -> Option<()> {
        if depth > MAX_DEPTH {
            return None;
        }
        self.ws();
        match self.peek()? {
            // An ignored string: only ASCII is sure to be read alike (serde
            // may or may not check the UTF-8 of what it ignores).
            b'"' => self.str().filter(|s| s.is_ascii()).map(|_| ()),
            b'{' => self.object(|p, _| p.skip(depth + 1)),
            b'[' => {
                self.i += 1;
                self.ws();
                if self.peek() == Some(b']') {
                    self.i += 1;
                    return Some(());
                }
                loop {
                    self.skip(depth + 1)?;
                    self.ws();
                    match self.peek()? {
                        b',' => self.i += 1,
                        b']' => {
                            self.i += 1;
                            return Some(());
                        }
                        _ => return None,
                    }
                }
            }
            b't' | b'f' | b'n' => self.opt_bool().map(|_| ()),
            b'-' | b'0'..=b'9' => self.number(),
            _ => None,
        }
    }

    /// A JSON number (any), skipped.
    fn number(&mut self) -> Option<()> {
        let digits = |p: &mut P<'a>| {
            let s = p.i;
            while p.peek().is_some_and(|c| c.is_ascii_digit()) {
                p.i += 1;
            }
            p.i - s
        };
        if self.peek() == Some(b'-') {
            self.i += 1;
        }
        let first = self.peek();
        let n = digits(self);
        if n == 0 || (n > 1 && first == Some(b'0')) {
            return None;
        }
        if self.peek() == Some(b'.') {
            self.i += 1;
            if digits(self) == 0 {
                return None;
            }
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.i += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.i += 1;
            }
            if digits(self) == 0 {
                return None;
            }
        }
        Some(())
    }
}

/// Where a string's bytes stop being plain: the index of the first `"`,
/// `\` or control character (below 0x20) in `b`. The capture's strings are
/// short (a recipient, a time, a digest: 10 to 64 bytes), where a call to a
/// SIMD search costs more than it saves; this tests 8 bytes at a time in a
/// register (SWAR) and inlines. Each of the three tests below flags its
/// byte exactly, and can only flag wrongly bytes above one it flagged
/// rightly (a borrow moves up), so the lowest flag of the three is the
/// first stop, as a byte-by-byte scan would find it.
#[inline]
fn string_stop(b: &[u8]) -> Option<usize> {
    const ONES: u64 = u64::from_le_bytes([1; 8]);
    const HIGH: u64 = ONES << 7;
    let mut i = 0;
    while let Some(w) = b.get(i..i + 8) {
        let x = u64::from_le_bytes(w.try_into().ok()?);
        let quote = x ^ (ONES * u64::from(b'"'));
        let escape = x ^ (ONES * u64::from(b'\\'));
        // A byte is zero (the quote or escape) or below 0x20: its
        // subtraction borrows into its top bit, which it did not have.
        let found = ((quote.wrapping_sub(ONES) & !quote)
            | (escape.wrapping_sub(ONES) & !escape)
            | (x.wrapping_sub(ONES * 0x20) & !x))
            & HIGH;
        if found != 0 {
            return Some(i + (found.trailing_zeros() / 8) as usize);
        }
        i += 8;
    }
    b.get(i..)?.iter().position(|&c| c == b'"' || c == b'\\' || c < 0x20).map(|n| i + n)
}

/// Marks field `bit` as seen; a second time is a duplicate (serde refuses it).
#[inline]
fn once(seen: &mut u64, bit: u32) -> Option<()> {
    if *seen & (1 << bit) != 0 {
        return None;
    }
    *seen |= 1 << bit;
    Some(())
}

/// The event on `line`, when the fast path is sure; `None`: ask serde.
pub fn parse(line: &[u8]) -> Option<EventView<'_>> {
    // Every byte above 0x7f of a JSON line that serde accepts is inside a
    // string, and serde refuses a borrowed string that is not UTF-8: a line
    // that is not UTF-8 as a whole was always declined string by string.
    // Checked once here (a few bytes a cycle on ASCII), not per string.
    let text = std::str::from_utf8(line).ok()?;
    let mut p = P { b: line, s: text, i: 0 };
    let mut e = EventView {
        v: 0,
        event: Cow::Borrowed(""),
        sensor: Cow::Borrowed(""),
        time: Cow::Borrowed(""),
        session: Cow::Borrowed(""),
        src_ip: None,
        src_port: None,
        dst_port: None,
        protocol: None,
        proxy_type: None,
        requested: None,
        username: None,
        password: None,
        method: None,
        url: None,
        user_agent: None,
        helo: None,
        mail_from: None,
        rcpt_to: Vec::new(),
        message_id: None,
        digest: None,
        size: None,
        duplicate: None,
        probe: None,
        probe_reasons: Vec::new(),
        reason: None,
        messages: None,
        bytes: None,
        bytes_in: None,
        bytes_out: None,
        site: None,
    };
    let mut seen = 0u64;
    p.object(|p, k| {
        match k {
            "v" => {
                once(&mut seen, 0)?;
                e.v = p.uint(u64::from(u32::MAX))? as u32;
            }
            "event" => {
                once(&mut seen, 1)?;
                e.event = Cow::Borrowed(p.str()?);
            }
            "sensor" => {
                once(&mut seen, 2)?;
                e.sensor = Cow::Borrowed(p.str()?);
            }
            "time" => {
                once(&mut seen, 3)?;
                e.time = Cow::Borrowed(p.str()?);
            }
            "session" => {
                once(&mut seen, 4)?;
                e.session = Cow::Borrowed(p.str()?);
            }
            "src_ip" => {
                once(&mut seen, 5)?;
                e.src_ip = p.opt_str()?;
            }
            "src_port" => {
                once(&mut seen, 6)?;
                e.src_port = p.opt_uint(u64::from(u16::MAX))?.map(|v| v as u16);
            }
            "dst_port" => {
                once(&mut seen, 7)?;
                e.dst_port = p.opt_uint(u64::from(u16::MAX))?.map(|v| v as u16);
            }
            "protocol" => {
                once(&mut seen, 8)?;
                e.protocol = p.opt_str()?;
            }
            "proxy_type" => {
                once(&mut seen, 9)?;
                e.proxy_type = p.opt_str()?;
            }
            "requested" => {
                once(&mut seen, 10)?;
                if !p.null() {
                    let (mut host, mut port, mut s) = (None, None, 0u64);
                    p.object(|p, k| {
                        match k {
                            "host" => {
                                once(&mut s, 0)?;
                                host = Some(Cow::Borrowed(p.str()?));
                            }
                            "port" => {
                                once(&mut s, 1)?;
                                port = Some(p.uint(u64::from(u16::MAX))? as u16);
                            }
                            _ => p.skip(1)?,
                        }
                        Some(())
                    })?;
                    e.requested = Some(DestinationView { host: host?, port: port? });
                }
            }
            "username" => {
                once(&mut seen, 11)?;
                e.username = p.opt_str()?;
            }
            "password" => {
                once(&mut seen, 12)?;
                e.password = p.opt_str()?;
            }
            "method" => {
                once(&mut seen, 13)?;
                e.method = p.opt_str()?;
            }
            "url" => {
                once(&mut seen, 14)?;
                e.url = p.opt_str()?;
            }
            "user_agent" => {
                once(&mut seen, 15)?;
                e.user_agent = p.opt_str()?;
            }
            "helo" => {
                once(&mut seen, 16)?;
                e.helo = p.opt_str()?;
            }
            "mail_from" => {
                once(&mut seen, 17)?;
                e.mail_from = p.opt_str()?;
            }
            "rcpt_to" => {
                once(&mut seen, 18)?;
                e.rcpt_to = p.strings()?;
            }
            "message_id" => {
                once(&mut seen, 19)?;
                e.message_id = p.opt_str()?;
            }
            "digest" => {
                once(&mut seen, 20)?;
                e.digest = p.opt_str()?;
            }
            "size" => {
                once(&mut seen, 21)?;
                e.size = p.opt_uint(u64::MAX)?;
            }
            "duplicate" => {
                once(&mut seen, 22)?;
                e.duplicate = p.opt_bool()?;
            }
            "probe" => {
                once(&mut seen, 23)?;
                e.probe = p.opt_bool()?;
            }
            "probe_reasons" => {
                once(&mut seen, 24)?;
                e.probe_reasons = p.strings()?;
            }
            "reason" => {
                once(&mut seen, 25)?;
                e.reason = p.opt_str()?;
            }
            "messages" => {
                once(&mut seen, 26)?;
                e.messages = p.opt_uint(u64::MAX)?;
            }
            "bytes" => {
                once(&mut seen, 27)?;
                e.bytes = p.opt_uint(u64::MAX)?;
            }
            "bytes_in" => {
                once(&mut seen, 28)?;
                e.bytes_in = p.opt_uint(u64::MAX)?;
            }
            "bytes_out" => {
                once(&mut seen, 29)?;
                e.bytes_out = p.opt_uint(u64::MAX)?;
            }
            "site" => {
                once(&mut seen, 30)?;
                if !p.null() {
                    let mut site = SiteView::default();
                    let mut s = 0u64;
                    p.object(|p, k| {
                        match k {
                            "operator" => {
                                once(&mut s, 0)?;
                                site.operator = p.opt_str()?;
                            }
                            "asn" => {
                                once(&mut s, 1)?;
                                site.asn = p.opt_uint(u64::from(u32::MAX))?.map(|v| v as u32);
                            }
                            "city" => {
                                once(&mut s, 2)?;
                                site.city = p.opt_str()?;
                            }
                            "access" => {
                                once(&mut s, 3)?;
                                site.access = p.opt_str()?;
                            }
                            _ => p.skip(1)?,
                        }
                        Some(())
                    })?;
                    e.site = Some(site);
                }
            }
            _ => p.skip(0)?,
        }
        Some(())
    })?;
    p.ws();
    // Trailing bytes, or a required field missing: serde decides (and refuses).
    if p.i != line.len() || seen & 0b1111 != 0b1111 {
        return None;
    }
    Some(e)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whenever the fast path answers, serde agrees.
    fn same(line: &str) -> bool {
        let fast = parse(line.as_bytes());
        let slow = serde_json::from_slice::<EventView>(line.as_bytes()).ok();
        if let Some(f) = &fast {
            assert_eq!(Some(f), slow.as_ref(), "{line}");
        }
        fast.is_some()
    }

    /// The 8-bytes-at-a-time search stops where a byte-by-byte one does,
    /// wherever the stop falls in a word and whatever surrounds it.
    #[test]
    fn string_stop_is_the_first_quote_escape_or_control() {
        let model = |b: &[u8]| b.iter().position(|&c| c == b'"' || c == b'\\' || c < 0x20);
        // Bytes next to the three stops and to the borrow edges (0x00, 0x1f,
        // 0x20, 0x21, 0x22, 0x5b-0x5d, 0x7f-0x81, 0xa0, 0xff).
        let alphabet = [b'a', 0x00, 0x1f, 0x20, 0x21, b'"', 0x23, 0x5b, b'\\', 0x5d, 0x7f, 0x80, 0x81, 0xa0, 0xff];
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..200_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let len = (x % 40) as usize;
            // Mostly plain letters, so the stop falls anywhere in the word.
            let b: Vec<u8> = (0..len)
                .map(|k| {
                    let r = x.rotate_left(k as u32 * 5);
                    if r.is_multiple_of(5) {
                        alphabet[(r >> 8) as usize % alphabet.len()]
                    } else {
                        b'a' + (r % 26) as u8
                    }
                })
                .collect();
            assert_eq!(string_stop(&b), model(&b), "{b:?}");
        }
    }

    #[test]
    fn agrees_with_serde() {
        let full = r#"{"v":2,"event":"port25.spampot.message","sensor":"s1","time":"2006-06-10T00:00:01.000Z","session":"x","src_ip":"1.2.3.4","src_port":4000,"dst_port":1080,"protocol":"socks5","proxy_type":"socks5","requested":{"host":"mx.example","port":25,"extra":[1,{"a":null}]},"mail_from":"a@b","rcpt_to":["a@x.example","b@y.example"],"digest":"ab","size":12,"duplicate":false,"probe":true,"probe_reasons":["r"],"bytes_in":5,"bytes_out":6,"site":{"operator":"op","asn":28573,"city":null,"zzz":-1.5e3},"unknown":{"deep":[[[]]]}}"#;
        assert!(same(full));
        assert!(same(r#" { "v" : 1 , "event":"e","sensor":"s","time":"t" } "#));
        // A sensor's site in São Paulo (the generator's, and real ones): read here, not by serde.
        assert!(same(r#"{"v":2,"event":"e","sensor":"s","time":"t","site":{"city":"São Paulo"}}"#));
        assert!(parse(b"{\"v\":1,\"event\":\"e\xff\",\"sensor\":\"s\",\"time\":\"t\"}").is_none());
        // Not UTF-8 in a key or an ignored value (the line is checked as a
        // whole, once): declined, serde decides.
        for bad in [
            &b"{\"v\":1,\"event\":\"e\",\"sensor\":\"s\",\"time\":\"t\",\"k\xc3\":1}"[..],
            b"{\"v\":1,\"event\":\"e\",\"sensor\":\"s\",\"time\":\"t\",\"x\":\"\xed\xa0\x80\"}",
        ] {
            assert!(parse(bad).is_none());
        }
        for declined in [
            r#"{"v":1,"event":"e","sensor":"s"}"#,                             // time missing
            r#"{"v":1,"event":"e","sensor":"s","time":"t","v":1}"#,            // duplicate
            r#"{"v":1.0,"event":"e","sensor":"s","time":"t"}"#,                // float
            r#"{"v":01,"event":"e","sensor":"s","time":"t"}"#,                 // leading zero
            r#"{"v":1,"event":"e\"q","sensor":"s","time":"t"}"#,               // escape
            r#"{"v":1,"event":"e","sensor":"s","time":"t","x":"é"}"#,          // non-ASCII, ignored
            r#"{"v":1,"event":"e","sensor":"s","time":"t","src_port":70000}"#, // out of range
            r#"{"v":1,"event":"e","sensor":"s","time":"t","rcpt_to":null}"#,   // null list
            r#"{"v":1,"event":"e","sensor":"s","time":"t"} x"#,                // trailing
            r#"{"v":1,"event":"e","sensor":"s","time":"t","x":[1,]}"#,         // bad JSON
            r#"{"v":1,"event":"e","sensor":"s","time":"t","requested":{"host":"h"}}"#,
        ] {
            assert!(!same(declined), "{declined}");
        }
    }
}
