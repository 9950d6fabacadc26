//! Which protocol a client speaks on a mixed proxy port, from its first
//! bytes (open proxies found in the wild answer SOCKS and HTTP on one port,
//! and abusers try all of them). Pure.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Socks4,
    Socks5,
    Http,
    /// Nothing we bait: close.
    Unknown,
}

/// `None` when no byte has arrived yet.
pub fn sniff(buf: &[u8]) -> Option<Protocol> {
    let first = *buf.first()?;
    Some(match first {
        4 => Protocol::Socks4,
        5 => Protocol::Socks5,
        // An HTTP method token is upper-case letters.
        b'A'..=b'Z' => Protocol::Http,
        _ => Protocol::Unknown,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_byte_decides() {
        assert_eq!(sniff(b""), None);
        assert_eq!(sniff(b"\x04\x01"), Some(Protocol::Socks4));
        assert_eq!(sniff(b"\x05\x01\x00"), Some(Protocol::Socks5));
        assert_eq!(sniff(b"CONNECT"), Some(Protocol::Http));
        assert_eq!(sniff(b"\x16\x03\x01"), Some(Protocol::Unknown));
        assert_eq!(sniff(b"ehlo"), Some(Protocol::Unknown));
    }
}
