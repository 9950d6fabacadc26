//! Escaping for XML and HTML text and attribute values. Everything the
//! service writes into a document goes through here: addresses, host names,
//! HELO names and subjects come from outside and may contain markup.

/// Escapes `& < > " '` and replaces characters XML 1.0 cannot carry at all
/// (C0 controls other than tab and line ends, U+FFFE, U+FFFF) with U+FFFD,
/// so a hostile value can neither inject markup nor make the document
/// ill-formed. The same escaping is correct for HTML text and attributes.
pub fn xml(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

/// HTML text and attribute values (double-quoted): the XML escaping above.
pub fn html(s: &str) -> String {
    xml(s)
}

#[cfg(test)]
mod tests {
    #[test]
    fn markup_and_controls() {
        assert_eq!(
            super::xml("<script>alert('x')</script> & \"q\""),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;q&quot;"
        );
        assert_eq!(super::xml("a\u{0}b\u{1b}c\u{FFFF}"), "a\u{FFFD}b\u{FFFD}c\u{FFFD}");
        assert_eq!(super::xml("ação\tok"), "ação\tok");
    }
}
