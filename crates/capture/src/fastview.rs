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
    ///
    /// This is also where the line's UTF-8 is checked: outside strings
    /// only ASCII is accepted (punctuation, digits, literals, and keys are
    /// strings too), so a line this parser accepts is valid UTF-8 exactly
    /// when each of its strings is, as serde requires of a borrowed str.
    #[inline]
    fn str(&mut self) -> Option<&'a str> {
        self.ws();
        if self.peek() != Some(b'"') {
            return None;
        }
        let start = self.i + 1;
        let rest = self.b.get(start..)?;
        // The first quote, escape, control character or non-ASCII byte: a
        // quote ends a plain ASCII string (the capture's are), escapes and
        // control characters are serde's to read (or refuse).
        let n = string_stop(rest)?;
        match rest[n] {
            b'"' => {
                self.i = start + n + 1;
                let ascii = &rest[..n];
                // SAFETY: `string_stop` stopped at the first byte above
                // 0x7f or below 0x20, quote or backslash: every byte before
                // it is printable ASCII, which is UTF-8. (`from_utf8` here
                // was 10 % of the scanner's instructions, once per line or
                // once per string alike.)
                Some(unsafe { std::str::from_utf8_unchecked(ascii) })
            }
            0x80.. => {
                // Non-ASCII (a city, a name): the end found byte by byte,
                // then the UTF-8 checked, as serde does.
                let m = n + rest[n..].iter().position(|&c| c == b'"' || c == b'\\' || c < 0x20)?;
                if rest[m] != b'"' {
                    return None;
                }
                self.i = start + m + 1;
                std::str::from_utf8(&rest[..m]).ok()
            }
            _ => None,
        }
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

/// Where a string's bytes stop being plain ASCII: the index of the first
/// `"`, `\`, control character (below 0x20) or byte above 0x7f in `b`. The
/// capture's strings are short (a recipient, a time, a digest: 10 to 64
/// bytes), where a call to a SIMD search costs more than it saves; this
/// tests 8 bytes at a time in a register (SWAR) and inlines. Each of the
/// four tests below flags its byte exactly, and the three that subtract can
/// only flag wrongly bytes above one they flagged rightly (a borrow moves
/// up), so the lowest flag of the four is the first stop, as a
/// byte-by-byte scan would find it.
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
            | (x.wrapping_sub(ONES * 0x20) & !x)
            // Above 0x7f: its own top bit.
            | x)
            & HIGH;
        if found != 0 {
            return Some(i + (found.trailing_zeros() / 8) as usize);
        }
        i += 8;
    }
    b.get(i..)?.iter().position(|&c| c == b'"' || c == b'\\' || !(0x20..0x80).contains(&c)).map(|n| i + n)
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

/// A member's key as the writer spells it, quotes included, read as one
/// little-endian word: the writer always puts a line's fields in the same
/// order, so the next key is found by comparing a 16-byte word with the
/// keys still to come (a few register comparisons) rather than scanning
/// it as a string and matching the name byte by byte (`str` and `memcmp`
/// were about a third of `report build`'s samples).
struct Key<F> {
    field: F,
    name: &'static str,
    word: u128,
    mask: u128,
}

impl<F> Key<F> {
    /// `name` in quotes, at most 14 bytes (16 with its quotes) and without
    /// a quote or escape of its own (checked at compile time: the tables
    /// below are constants).
    const fn new(field: F, name: &'static str) -> Key<F> {
        let b = name.as_bytes();
        assert!(b.len() <= 14, "a key longer than the word");
        let mut word = b'"' as u128;
        let mut i = 0;
        while i < b.len() {
            assert!(b[i] != b'"' && b[i] != b'\\' && b[i] >= 0x20, "a key that is not plain");
            word |= (b[i] as u128) << (8 * (i + 1));
            i += 1;
        }
        word |= (b'"' as u128) << (8 * (b.len() + 1));
        let bits = 8 * (b.len() + 2);
        let mask = if bits == 128 { u128::MAX } else { (1u128 << bits) - 1 };
        Key { field, name, word, mask }
    }

    /// The quoted key's length in the line.
    const fn len(&self) -> usize {
        self.name.len() + 2
    }
}

/// The event's fields, in the order the writer puts them ([`crate::Event`]'s
/// declaration order, which is also [`EventView`]'s); the discriminant is
/// the field's bit in the duplicate check.
#[derive(Clone, Copy)]
enum F {
    V,
    Event,
    Sensor,
    Time,
    Session,
    SrcIp,
    SrcPort,
    DstPort,
    Protocol,
    ProxyType,
    Requested,
    Username,
    Password,
    Method,
    Url,
    UserAgent,
    Helo,
    MailFrom,
    RcptTo,
    MessageId,
    Digest,
    Size,
    Duplicate,
    Probe,
    ProbeReasons,
    Reason,
    Messages,
    Bytes,
    BytesIn,
    BytesOut,
    Site,
}

const FIELDS: [Key<F>; 31] = [
    Key::new(F::V, "v"),
    Key::new(F::Event, "event"),
    Key::new(F::Sensor, "sensor"),
    Key::new(F::Time, "time"),
    Key::new(F::Session, "session"),
    Key::new(F::SrcIp, "src_ip"),
    Key::new(F::SrcPort, "src_port"),
    Key::new(F::DstPort, "dst_port"),
    Key::new(F::Protocol, "protocol"),
    Key::new(F::ProxyType, "proxy_type"),
    Key::new(F::Requested, "requested"),
    Key::new(F::Username, "username"),
    Key::new(F::Password, "password"),
    Key::new(F::Method, "method"),
    Key::new(F::Url, "url"),
    Key::new(F::UserAgent, "user_agent"),
    Key::new(F::Helo, "helo"),
    Key::new(F::MailFrom, "mail_from"),
    Key::new(F::RcptTo, "rcpt_to"),
    Key::new(F::MessageId, "message_id"),
    Key::new(F::Digest, "digest"),
    Key::new(F::Size, "size"),
    Key::new(F::Duplicate, "duplicate"),
    Key::new(F::Probe, "probe"),
    Key::new(F::ProbeReasons, "probe_reasons"),
    Key::new(F::Reason, "reason"),
    Key::new(F::Messages, "messages"),
    Key::new(F::Bytes, "bytes"),
    Key::new(F::BytesIn, "bytes_in"),
    Key::new(F::BytesOut, "bytes_out"),
    Key::new(F::Site, "site"),
];

#[derive(Clone, Copy)]
enum D {
    Host,
    Port,
}

const DESTINATION: [Key<D>; 2] = [Key::new(D::Host, "host"), Key::new(D::Port, "port")];

#[derive(Clone, Copy)]
enum S {
    Operator,
    Asn,
    City,
    Access,
}

const SITE: [Key<S>; 4] = [
    Key::new(S::Operator, "operator"),
    Key::new(S::Asn, "asn"),
    Key::new(S::City, "city"),
    Key::new(S::Access, "access"),
];

impl<'a> P<'a> {
    /// The next member's key among `keys`: first as the writer spells it,
    /// trying the keys from `next` on (where the writer's order puts it),
    /// then read as any string and looked up by name (another writer's
    /// order, spaces, escapes: `str` declines those). `Some(None)`: a key
    /// not in `keys`, whose value the caller skips.
    #[inline]
    fn key<K: Copy>(&mut self, keys: &[Key<K>], next: usize) -> Option<Option<usize>> {
        self.ws();
        if let Some(w) = self.b.get(self.i..self.i + 16) {
            let w = u128::from_le_bytes(w.try_into().ok()?);
            // The closing quote is part of the word: `"size"` cannot match
            // the start of `"size_x"`.
            if let Some(j) = keys.get(next..).unwrap_or_default().iter().position(|k| w & k.mask == k.word) {
                self.i += keys[next + j].len();
                return Some(Some(next + j));
            }
        }
        let k = self.str()?;
        Some(keys.iter().position(|key| key.name == k))
    }

    /// The members of an object whose keys are `keys` (others skipped, as
    /// values at `depth`), each handed to `f` with its key's field; `f`
    /// reads the value. A duplicate key is `f`'s to refuse.
    #[inline]
    fn fields<K: Copy>(
        &mut self,
        keys: &[Key<K>],
        depth: u32,
        mut f: impl FnMut(&mut P<'a>, K) -> Option<()>,
    ) -> Option<()> {
        self.eat(b'{')?;
        self.ws();
        if self.peek() == Some(b'}') {
            self.i += 1;
            return Some(());
        }
        let mut next = 0;
        loop {
            let k = self.key(keys, next)?;
            self.eat(b':')?;
            match k {
                Some(j) => {
                    next = j + 1;
                    f(self, keys[j].field)?;
                }
                None => self.skip(depth)?,
            }
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
}

/// The event on `line`, when the fast path is sure; `None`: ask serde.
pub fn parse(line: &[u8]) -> Option<EventView<'_>> {
    // Every byte above 0x7f of a JSON line that serde accepts is inside a
    // string, and serde refuses a borrowed string that is not UTF-8: `str`
    // checks the strings, and nothing else here accepts such a byte.
    let mut p = P { b: line, i: 0 };
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
    p.fields(&FIELDS, 0, |p, f| {
        once(&mut seen, f as u32)?;
        match f {
            F::V => e.v = p.uint(u64::from(u32::MAX))? as u32,
            F::Event => e.event = Cow::Borrowed(p.str()?),
            F::Sensor => e.sensor = Cow::Borrowed(p.str()?),
            F::Time => e.time = Cow::Borrowed(p.str()?),
            F::Session => e.session = Cow::Borrowed(p.str()?),
            F::SrcIp => e.src_ip = p.opt_str()?,
            F::SrcPort => e.src_port = p.opt_uint(u64::from(u16::MAX))?.map(|v| v as u16),
            F::DstPort => e.dst_port = p.opt_uint(u64::from(u16::MAX))?.map(|v| v as u16),
            F::Protocol => e.protocol = p.opt_str()?,
            F::ProxyType => e.proxy_type = p.opt_str()?,
            F::Requested => {
                if !p.null() {
                    let (mut host, mut port, mut s) = (None, None, 0u64);
                    p.fields(&DESTINATION, 1, |p, d| {
                        once(&mut s, d as u32)?;
                        match d {
                            D::Host => host = Some(Cow::Borrowed(p.str()?)),
                            D::Port => port = Some(p.uint(u64::from(u16::MAX))? as u16),
                        }
                        Some(())
                    })?;
                    e.requested = Some(DestinationView { host: host?, port: port? });
                }
            }
            F::Username => e.username = p.opt_str()?,
            F::Password => e.password = p.opt_str()?,
            F::Method => e.method = p.opt_str()?,
            F::Url => e.url = p.opt_str()?,
            F::UserAgent => e.user_agent = p.opt_str()?,
            F::Helo => e.helo = p.opt_str()?,
            F::MailFrom => e.mail_from = p.opt_str()?,
            F::RcptTo => e.rcpt_to = p.strings()?,
            F::MessageId => e.message_id = p.opt_str()?,
            F::Digest => e.digest = p.opt_str()?,
            F::Size => e.size = p.opt_uint(u64::MAX)?,
            F::Duplicate => e.duplicate = p.opt_bool()?,
            F::Probe => e.probe = p.opt_bool()?,
            F::ProbeReasons => e.probe_reasons = p.strings()?,
            F::Reason => e.reason = p.opt_str()?,
            F::Messages => e.messages = p.opt_uint(u64::MAX)?,
            F::Bytes => e.bytes = p.opt_uint(u64::MAX)?,
            F::BytesIn => e.bytes_in = p.opt_uint(u64::MAX)?,
            F::BytesOut => e.bytes_out = p.opt_uint(u64::MAX)?,
            F::Site => {
                if !p.null() {
                    let mut site = SiteView::default();
                    let mut s = 0u64;
                    p.fields(&SITE, 1, |p, k| {
                        once(&mut s, k as u32)?;
                        match k {
                            S::Operator => site.operator = p.opt_str()?,
                            S::Asn => site.asn = p.opt_uint(u64::from(u32::MAX))?.map(|v| v as u32),
                            S::City => site.city = p.opt_str()?,
                            S::Access => site.access = p.opt_str()?,
                        }
                        Some(())
                    })?;
                    e.site = Some(site);
                }
            }
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
    fn string_stop_is_the_first_quote_escape_control_or_non_ascii() {
        let model = |b: &[u8]| b.iter().position(|&c| c == b'"' || c == b'\\' || !(0x20..0x80).contains(&c));
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
        // Keys in another writer's order, keys that start like a known one,
        // a known key in the last 16 bytes of the line, spaces before keys:
        // read (by name rather than by the writer's order), as serde reads them.
        for other in [
            r#"{"time":"t","sensor":"s","event":"e","v":1,"site":{"city":"Recife","asn":1}}"#,
            r#"{"v":1,"event":"e","sensor":"s","time":"t","size_x":5,"sizes":[1],"size":3,"siz":"x"}"#,
            r#"{"v":1,"event":"e","sensor":"s","time":"t","requested":{"port":25,"hostx":1,"host":"h"}}"#,
            r#"{"event":"e","sensor":"s","time":"t",  "v":1}"#,
            r#"{"v":1,"event":"e","sensor":"s", "time":"t"}"#,
        ] {
            assert!(same(other), "{other}");
        }
        // Strings that are not plain ASCII: UTF-8 is read, anything else
        // declined, wherever in the string it starts.
        assert!(same("{\"v\":1,\"event\":\"e\",\"sensor\":\"\u{e9}tage-\u{1F600}\",\"time\":\"t\"}"));
        for bad in [
            &b"{\"v\":1,\"event\":\"e\",\"sensor\":\"abcdefghij\xc3(\",\"time\":\"t\"}"[..],
            b"{\"v\":1,\"event\":\"e\",\"sensor\":\"s\xc3\xa9\x01\",\"time\":\"t\"}",
            b"{\"v\":1,\"event\":\"e\",\"sensor\":\"s\",\"time\":\"t\",\"rcpt_to\":[\"a@b\xff\"]}",
        ] {
            assert!(parse(bad).is_none());
        }
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
