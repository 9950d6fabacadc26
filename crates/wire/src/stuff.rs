//! Dot-stuffing of message content for DATA (RFC 5321 §4.5.2), as a client
//! sends it.

/// Appends `content` to `out` as the DATA phase sends it: a `.` that starts
/// a line is doubled (§4.5.2), and the end of data, `<CRLF>.<CRLF>`, follows
/// (§4.1.1.4).
///
/// The CRLF before the final dot is part of the end mark, so one is added
/// whenever the content does not already end in CRLF: a last line without
/// any line ending, or one ending in a bare LF or a bare CR. A bare LF
/// before the dot (`\n.\r\n`) is not the end of data for a server that
/// follows §4.1.1.4 ("MUST NOT" treat `<LF>.<LF>` as it), which would then
/// wait for the rest of the message until it times out. Empty content has
/// no last line to end and is sent as the end mark alone (the CRLF of the
/// DATA command is the one before the dot).
///
/// A line starts after any LF, bare or not, so a `.` after a bare LF is
/// doubled too: a server that takes bare LF as a line end (many do) removes
/// it again, and a strict one sees it inside a line, never as the end.
pub fn dot_stuff(content: &[u8], out: &mut Vec<u8>) {
    out.reserve(content.len() + 64);
    let mut line_start = true;
    for &b in content {
        if line_start && b == b'.' {
            out.push(b'.');
        }
        out.push(b);
        line_start = b == b'\n';
    }
    if !content.is_empty() && !content.ends_with(b"\r\n") {
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b".\r\n");
}

#[cfg(test)]
mod tests {
    use super::dot_stuff;

    fn stuffed(content: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        dot_stuff(content, &mut out);
        out
    }

    /// RFC 5321 §4.1.1.4: the end of data is `<CRLF>.<CRLF>` whatever the
    /// content's last line ends in. LMTP delivery (delivery/src/lmtp.rs)
    /// added the CRLF only when the last byte was not an LF, so content
    /// ending in a bare LF went out as `\n.\r\n`, which a strict server does
    /// not take for the end of data; outbound (outbound/src/client.rs)
    /// added one unless the content ended in CRLF, also to empty content.
    #[test]
    fn the_end_mark_is_always_crlf_dot_crlf() {
        let cases: [(&[u8], &[u8]); 9] = [
            // §4.5.2: a dot that starts a line is doubled, after a bare LF too.
            (b".a\r\nb\r\n..c\r\n.", b"..a\r\nb\r\n...c\r\n..\r\n.\r\n"),
            (b".a\r\nb\r\n..\r\n", b"..a\r\nb\r\n...\r\n.\r\n"),
            (b"a.b\r\n", b"a.b\r\n.\r\n"),
            (b"a\n.b\r\n", b"a\n..b\r\n.\r\n"),
            (b"no newline", b"no newline\r\n.\r\n"),
            (b"bare lf\n", b"bare lf\n\r\n.\r\n"),
            (b"bare cr\r", b"bare cr\r\r\n.\r\n"),
            (b"crlf\r\n", b"crlf\r\n.\r\n"),
            (b"", b".\r\n"),
        ];
        for (content, wire) in cases {
            assert_eq!(stuffed(content), wire, "{content:?}");
        }
        for content in [&b"x"[..], b"x\n", b"x\r", b"x\r\n", b".", b"\n", b"\r\n", b"a\r\n\r\n"] {
            let out = stuffed(content);
            assert!(out.ends_with(b"\r\n.\r\n"), "{content:?} -> {out:?}");
            // The end mark appears once, at the end: nothing in the content
            // can end the data early.
            assert_eq!(out.windows(5).filter(|w| w == b"\r\n.\r\n").count(), 1, "{content:?} -> {out:?}");
        }
    }

    #[test]
    fn appends_to_what_is_there() {
        let mut out = b"kept".to_vec();
        dot_stuff(b".", &mut out);
        assert_eq!(out, b"kept..\r\n.\r\n");
    }
}
