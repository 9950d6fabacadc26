//! The message header section (RFC 5322 §2.2, §3.4, §3.6) as submission's
//! sender binding and the DKIM signer must both read it: one strict reader,
//! so that the address port25 checks is the address a receiving MUA (or
//! Python's `email`, or Stalwart's mail-parser) shows, and the one the
//! DKIM key is chosen by.
//!
//! Strict where leniency would let the two readings differ:
//! - field names are printable ASCII without ':' (ftext); a name with a
//!   space or tab inside or before the colon (`From :`, `Fr om:`, RFC
//!   5322's obs-optional), a line that is neither a field nor a
//!   continuation, or a continuation before any field is an error, not a
//!   line to skip (other readers end the header section there, or take it);
//! - a mailbox is `addr-spec` or `[display-name] <addr-spec>`, nothing
//!   before or after it but comments and white space: `<a@x> <b@y>` and
//!   `a@x <b@y>` are errors, where lenient parsers pick one of the two.
//!
//! What RFC 5322 allows is read as it means: comments (nested, with
//! quoted pairs) are dropped wherever white space may be, quoted strings
//! are display names or quoted local parts, encoded words (RFC 2047) are
//! atoms of a display name, UTF-8 is allowed (RFC 6532), groups
//! (`name: a@x, b@y;`) are read in address lists and refused in mailbox
//! lists. Pure; no allocation beyond the result.

use std::fmt;

/// Why a header section or an address field cannot be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderError(pub String);

impl fmt::Display for HeaderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn err<T>(msg: impl Into<String>) -> Result<T, HeaderError> {
    Err(HeaderError(msg.into()))
}

/// One header field: its name as written and its value unfolded (line
/// breaks of folding removed, everything else kept; invalid UTF-8
/// replaced by U+FFFD).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    pub name: String,
    pub value: String,
}

impl Field {
    pub fn is(&self, name: &str) -> bool {
        self.name.eq_ignore_ascii_case(name)
    }
}

/// The header section: every line up to the first empty one (or the
/// whole message when there is none). A message that starts with an empty
/// line has no header fields.
pub fn header_section(message: &[u8]) -> &[u8] {
    let mut start = 0;
    while start < message.len() {
        let end = message[start..].iter().position(|&b| b == b'\n').map_or(message.len(), |i| start + i + 1);
        let line = &message[start..end];
        if line == b"\r\n" || line == b"\n" {
            return &message[..start];
        }
        start = end;
    }
    message
}

/// The header fields of `message` in order, or the first line that is not
/// a well-formed field (see the module's notes).
pub fn fields(message: &[u8]) -> Result<Vec<Field>, HeaderError> {
    let head = header_section(message);
    let mut out: Vec<Field> = Vec::new();
    for (n, raw) in head.split(|&b| b == b'\n').enumerate() {
        let line = raw.strip_suffix(b"\r").unwrap_or(raw);
        if line.is_empty() {
            // Only the split's last, empty piece after the final LF.
            continue;
        }
        if line[0] == b' ' || line[0] == b'\t' {
            let Some(last) = out.last_mut() else {
                return err("the header section starts with a continuation line");
            };
            last.value.push_str(&String::from_utf8_lossy(line));
            continue;
        }
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            return err(format!("header line {} is not a field (no colon): {}", n + 1, shown(line)));
        };
        let name = &line[..colon];
        if name.is_empty() || !name.iter().all(|&b| (33..=126).contains(&b)) {
            return err(format!(
                "header line {} has a malformed field name (spaces or other characters before the colon): {}",
                n + 1,
                shown(line)
            ));
        }
        out.push(Field {
            name: String::from_utf8_lossy(name).into_owned(),
            value: String::from_utf8_lossy(&line[colon + 1..]).into_owned(),
        });
    }
    Ok(out)
}

/// A line for an error message: at most 60 characters, controls escaped.
fn shown(line: &[u8]) -> String {
    String::from_utf8_lossy(line).chars().take(60).flat_map(char::escape_default).collect()
}

/// One mailbox: its address (`local@domain`; a local part that needs it
/// quoted, as RFC 5322 writes it) and display name, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mailbox {
    pub display_name: Option<String>,
    pub addr_spec: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    /// A run of atext (and UTF-8): an atom.
    Atom(String),
    /// The content of a quoted string, quoted pairs resolved.
    Quoted(String),
    /// `[...]` with its brackets.
    Literal(String),
    /// One of `< > @ , ; : .`
    Special(char),
}

fn is_atext(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~".contains(c) || !c.is_ascii()
}

/// Splits a field value into tokens, dropping white space and comments.
fn tokens(value: &str) -> Result<Vec<Token>, HeaderError> {
    let mut out = Vec::new();
    let mut chars = value.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            ' ' | '\t' | '\r' | '\n' => {}
            '(' => {
                let mut depth = 1;
                while depth > 0 {
                    match chars.next() {
                        Some('\\') => {
                            chars.next().ok_or(HeaderError("a comment ends in a backslash".into()))?;
                        }
                        Some('(') => depth += 1,
                        Some(')') => depth -= 1,
                        Some(_) => {}
                        None => return err("unterminated comment"),
                    }
                }
            }
            '"' => {
                let mut s = String::new();
                loop {
                    match chars.next() {
                        Some('\\') => {
                            s.push(chars.next().ok_or(HeaderError("a quoted string ends in a backslash".into()))?)
                        }
                        Some('"') => break,
                        Some(c) => s.push(c),
                        None => return err("unterminated quoted string"),
                    }
                }
                out.push(Token::Quoted(s));
            }
            '[' => {
                let mut s = String::from("[");
                loop {
                    match chars.next() {
                        Some(']') => break,
                        Some('[' | '\\') | None => return err("malformed domain literal"),
                        Some(' ' | '\t' | '\r' | '\n') => {}
                        Some(c) => s.push(c),
                    }
                }
                s.push(']');
                out.push(Token::Literal(s));
            }
            '<' | '>' | '@' | ',' | ';' | ':' | '.' => out.push(Token::Special(c)),
            c if is_atext(c) => {
                let mut s = String::from(c);
                while let Some(&n) = chars.peek().filter(|&&n| is_atext(n)) {
                    s.push(n);
                    chars.next();
                }
                out.push(Token::Atom(s));
            }
            c => return err(format!("{:?} is not allowed in an address field", c)),
        }
    }
    Ok(out)
}

/// A cursor over tokens.
struct Parser {
    toks: Vec<Token>,
    at: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.toks.get(self.at)
    }
    fn special(&self, c: char) -> bool {
        self.peek() == Some(&Token::Special(c))
    }
    fn eat(&mut self, c: char) -> bool {
        let yes = self.special(c);
        if yes {
            self.at += 1;
        }
        yes
    }
    fn word(&mut self) -> Option<(String, bool)> {
        match self.peek()? {
            Token::Atom(a) => {
                let a = a.clone();
                self.at += 1;
                Some((a, false))
            }
            Token::Quoted(q) => {
                let q = q.clone();
                self.at += 1;
                Some((q, true))
            }
            _ => None,
        }
    }

    /// `word *("." word)`: a local part (dot-atom, quoted string, or the
    /// obsolete mix); the text and whether any word was quoted.
    fn local_part(&mut self) -> Result<(String, bool), HeaderError> {
        let (mut s, mut quoted) = self.word().ok_or(HeaderError("an address has no local part".into()))?;
        while self.eat('.') {
            let (w, q) = self.word().ok_or(HeaderError("a local part has an empty word".into()))?;
            s.push('.');
            s.push_str(&w);
            quoted |= q;
        }
        Ok((s, quoted))
    }

    /// `atom *("." atom)` or a domain literal.
    fn domain(&mut self) -> Result<String, HeaderError> {
        match self.peek() {
            Some(Token::Literal(l)) => {
                let l = l.clone();
                self.at += 1;
                Ok(l)
            }
            Some(Token::Atom(a)) => {
                let mut s = a.clone();
                self.at += 1;
                while self.eat('.') {
                    match self.peek() {
                        Some(Token::Atom(a)) => {
                            s.push('.');
                            s.push_str(a);
                            self.at += 1;
                        }
                        _ => return err("a domain has an empty label"),
                    }
                }
                Ok(s)
            }
            _ => err("an address has no domain"),
        }
    }

    fn addr_spec(&mut self) -> Result<String, HeaderError> {
        let (local, quoted) = self.local_part()?;
        if !self.eat('@') {
            return err(format!("{local:?} is not an address (no @domain)"));
        }
        let domain = self.domain()?;
        let needs_quotes =
            quoted && (local.is_empty() || local.split('.').any(|w| w.is_empty() || !w.chars().all(is_atext)));
        let local =
            if needs_quotes { format!("\"{}\"", local.replace('\\', "\\\\").replace('"', "\\\"")) } else { local };
        Ok(format!("{local}@{domain}"))
    }

    /// `phrase`: words and (obs-phrase) dots, as a display name.
    fn phrase(&mut self) -> Option<String> {
        let mut words: Vec<String> = Vec::new();
        loop {
            match self.peek() {
                Some(Token::Atom(_) | Token::Quoted(_)) => words.push(self.word()?.0),
                Some(Token::Special('.')) if !words.is_empty() => {
                    self.at += 1;
                    if let Some(last) = words.last_mut() {
                        last.push('.');
                    }
                }
                _ => break,
            }
        }
        (!words.is_empty()).then(|| words.join(" "))
    }

    /// One mailbox, ending at `,`, `;` or the end.
    fn mailbox(&mut self) -> Result<Mailbox, HeaderError> {
        let start = self.at;
        let display = self.phrase();
        if self.eat('<') {
            // obs-route: "@a,@b:" before the address.
            if self.special('@') {
                while self.eat('@') {
                    self.domain()?;
                    while self.eat(',') {
                        if !self.eat('@') {
                            break;
                        }
                        self.domain()?;
                    }
                }
                if !self.eat(':') {
                    return err("malformed source route in <>");
                }
            }
            let addr_spec = self.addr_spec()?;
            if !self.eat('>') {
                return err("<address> is not closed by >");
            }
            return Ok(Mailbox { display_name: display, addr_spec });
        }
        // No angle brackets: the words read as a phrase were the local part.
        self.at = start;
        let addr_spec = self.addr_spec()?;
        Ok(Mailbox { display_name: None, addr_spec })
    }

    fn at_end_of_item(&self) -> bool {
        matches!(self.peek(), None | Some(Token::Special(',' | ';')))
    }

    /// A group's name and colon, if the next item is a group.
    fn group_start(&mut self) -> bool {
        let start = self.at;
        if self.phrase().is_some() && self.eat(':') {
            return true;
        }
        self.at = start;
        false
    }
}

/// Where groups are allowed (address-list) or not (mailbox-list).
fn list(value: &str, groups: bool) -> Result<Vec<Mailbox>, HeaderError> {
    let mut p = Parser { toks: tokens(value)?, at: 0 };
    let mut out = Vec::new();
    if p.peek().is_none() {
        return err("the field has no address");
    }
    loop {
        if p.group_start() {
            if !groups {
                return err("a group (name: ...;) is not allowed here");
            }
            if !p.eat(';') {
                loop {
                    out.push(p.mailbox()?);
                    if !p.at_end_of_item() {
                        return err("text after an address (a second <address>, or words after it)");
                    }
                    if p.eat(';') {
                        break;
                    }
                    if !p.eat(',') {
                        return err("a group is not closed by ;");
                    }
                }
            }
        } else {
            out.push(p.mailbox()?);
            if !p.at_end_of_item() {
                return err("text after an address (a second <address>, or words after it)");
            }
        }
        if p.peek().is_none() {
            return Ok(out);
        }
        if !p.eat(',') {
            return err("addresses must be separated by commas");
        }
        if p.peek().is_none() {
            return err("a comma with no address after it");
        }
    }
}

/// `mailbox-list` (From:, Resent-From:): one or more mailboxes, no groups.
pub fn mailbox_list(value: &str) -> Result<Vec<Mailbox>, HeaderError> {
    list(value, false)
}

/// `mailbox` (Sender:): exactly one.
pub fn single_mailbox(value: &str) -> Result<Mailbox, HeaderError> {
    let mut l = list(value, false)?;
    match l.len() {
        1 => Ok(l.remove(0)),
        n => err(format!("{n} addresses where one is allowed")),
    }
}

/// `address-list` (To:, Cc:, Reply-To:): mailboxes and groups; a group's
/// members are listed in order.
pub fn address_list(value: &str) -> Result<Vec<Mailbox>, HeaderError> {
    list(value, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addrs(v: &str) -> Result<Vec<String>, HeaderError> {
        mailbox_list(v).map(|l| l.into_iter().map(|m| m.addr_spec).collect())
    }

    #[test]
    fn field_names_are_strict() {
        let f = fields(b"From: a@x.example\r\nSubject: hi\r\n  there\r\n\r\nFrom: body@y\r\n").unwrap();
        assert_eq!(f.len(), 2);
        assert!(f[0].is("from") && f[0].value == " a@x.example");
        assert_eq!(f[1].value, " hi  there");
        for bad in [
            &b"From : a@x\r\n\r\n"[..],
            b"Fr om: a@x\r\n\r\n",
            b"From\t: a@x\r\n\r\n",
            b" From: a@x\r\n\r\n",
            b"Subject: x\r\nnot a field\r\nFrom: a@x\r\n\r\n",
            b": x\r\n\r\n",
        ] {
            assert!(fields(bad).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
        assert!(fields(b"\r\nFrom: a@x\r\n").unwrap().is_empty(), "that is the body");
        assert!(fields(b"X-\xc3\xa9: \xff\r\n\r\n").unwrap_err().0.contains("malformed field name"));
        assert_eq!(
            fields(b"To: \xc3\x89lise <e@example.org>\r\n\r\n").unwrap()[0].value,
            " \u{c9}lise <e@example.org>"
        );
    }

    #[test]
    fn mailboxes_as_rfc_5322_reads_them() {
        for (v, want) in [
            ("alice@example.net", vec!["alice@example.net"]),
            (" Alice <alice@example.net>", vec!["alice@example.net"]),
            (
                "\"Doe, Alice\" <alice@example.net> (work), bob@example.net",
                vec!["alice@example.net", "bob@example.net"],
            ),
            ("\"alice@example.net\" <ceo@bank.example>", vec!["ceo@bank.example"]),
            ("ceo@bank.example (alice@example.net)", vec!["ceo@bank.example"]),
            ("(alice@example.net) ceo@bank.example", vec!["ceo@bank.example"]),
            ("=?UTF-8?B?w6Fs?= <a@x.example>", vec!["a@x.example"]),
            ("=?utf-8?q?ceo=40bank.example?= <alice@example.net>", vec!["alice@example.net"]),
            ("(c) <a@x.example (inner)>", vec!["a@x.example"]),
            ("John Q. Public <jqp@x.example>", vec!["jqp@x.example"]),
            ("alice @ example . net", vec!["alice@example.net"]),
            ("\"john doe\"@x.example", vec!["\"john doe\"@x.example"]),
            ("\"john\"@x.example", vec!["john@x.example"]),
            ("<@relay.example:a@x.example>", vec!["a@x.example"]),
            ("a@[192.0.2.1]", vec!["a@[192.0.2.1]"]),
            ("\u{c9}lise <\u{e9}lise@\u{e9}.example>", vec!["\u{e9}lise@\u{e9}.example"]),
        ] {
            assert_eq!(addrs(v).unwrap(), want, "{v}");
        }
        for bad in [
            "<ceo@bank.example> <alice@example.net>",
            "alice@example.net <ceo@bank.example>",
            "Name <a@x.example",
            "a@x.example,",
            ", a@x.example",
            "",
            " (only a comment) ",
            "undisclosed-recipients:;",
            "g: a@x.example;",
            "alice",
            "a@x.example b@y.example",
            "\"unterminated <a@x.example>",
            "(unterminated a@x.example",
            "a@x..example",
            "<a@x.example> trailing",
            "a@x.example; b@y.example",
        ] {
            assert!(addrs(bad).is_err(), "{bad:?} gave {:?}", addrs(bad));
        }
        let l = address_list("friends: a@x.example, B <b@y.example>;, c@z.example").unwrap();
        assert_eq!(
            l.iter().map(|m| m.addr_spec.as_str()).collect::<Vec<_>>(),
            ["a@x.example", "b@y.example", "c@z.example"]
        );
        assert!(address_list("undisclosed-recipients:;").unwrap().is_empty());
        assert_eq!(single_mailbox("Bob <b@y.example>").unwrap().display_name.as_deref(), Some("Bob"));
        assert!(single_mailbox("a@x.example, b@y.example").is_err());
    }
}
