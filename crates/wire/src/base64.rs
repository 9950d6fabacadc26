//! Base64 (RFC 4648 §4, the standard alphabet with padding), as SMTP uses
//! it: AUTH responses (RFC 4954) and what the client sends in AUTH PLAIN,
//! and DKIM's public keys and signatures.
//!
//! Decoding is strict: padded, canonical trailing bits, no white space or
//! URL alphabet, so every input has one decoding and one encoding.

fn b64_value(c: u8) -> Option<u32> {
    Some(match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        b'/' => 63,
        _ => return None,
    } as u32)
}

/// Strict RFC 4648 base64: padded, canonical, standard alphabet.
pub fn decode(s: &[u8]) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(4) {
        return None;
    }
    let mut out = Vec::with_capacity(s.len() / 4 * 3);
    let chunks = s.len() / 4;
    for (i, chunk) in s.chunks_exact(4).enumerate() {
        let last = i + 1 == chunks;
        let pad = chunk.iter().rev().take_while(|&&c| c == b'=').count();
        if pad > 2 || (pad > 0 && !last) {
            return None;
        }
        let mut n: u32 = 0;
        for &c in &chunk[..4 - pad] {
            n = (n << 6) | b64_value(c)?;
        }
        n <<= 6 * pad as u32;
        let bytes = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        // Bits beyond the data must be zero, so every input has one encoding.
        let keep = 3 - pad;
        if bytes[keep..].iter().any(|&b| b != 0) {
            return None;
        }
        out.extend_from_slice(&bytes[..keep]);
    }
    Some(out)
}

pub fn encode(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (b[0] as u32) << 16 | (b[1] as u32) << 8 | b[2] as u32;
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i)) as usize & 63] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_is_strict_and_round_trips() {
        assert_eq!(decode(b"AGFsaWNlAHNlY3JldA==").unwrap(), b"\0alice\0secret");
        assert_eq!(decode(b"").unwrap(), b"");
        for bad in [
            &b"AGFsaWNlAHNlY3JldA"[..],
            b"AGFs aWNl",
            b"AG=s",
            b"A===",
            b"QQ==QQ==",
            b"QR==",
            b"QUI=x",
            b"-_-_",
            b"QUJD\r\n",
        ] {
            assert!(decode(bad).is_none(), "{:?}", String::from_utf8_lossy(bad));
        }
        for n in 0..40u8 {
            let data: Vec<u8> = (0..n).map(|i| i.wrapping_mul(37) ^ 0xa5).collect();
            let enc = encode(&data);
            assert_eq!(decode(enc.as_bytes()).unwrap(), data);
        }
        assert_eq!(encode(b"\0u\0p"), "AHUAcA==");
        assert_eq!(encode(b"abc"), "YWJj");
        assert_eq!(encode(b"ab"), "YWI=");
    }
}
