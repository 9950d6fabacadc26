//! Properties of SMTP AUTH parsing (port25_engine::sasl). The first byte
//! of the input picks the parser, the rest is its input.

use port25_engine::sasl::{self, Mechanism};

pub fn sasl(data: &[u8]) {
    let Some((&which, input)) = data.split_first() else { return };
    match which % 4 {
        0 => auth_command(input),
        1 => response(input),
        2 => plain(input),
        _ => login_field(input),
    }
}

/// `AUTH` arguments: a mechanism we know, or a 501/504.
pub fn auth_command(input: &[u8]) {
    let Ok(text) = std::str::from_utf8(input) else { return };
    match sasl::parse_auth(text) {
        Ok(cmd) => {
            let word = text.split(' ').next().unwrap();
            assert!(word.eq_ignore_ascii_case(cmd.mechanism.name()), "{text:?} parsed as {:?}", cmd.mechanism);
            assert!(text.split(' ').count() <= 2);
        }
        Err(r) => assert!(r.code == 501 || r.code == 504, "{r:?} for {text:?}"),
    }
}

/// A response line: accepted base64 is canonical (re-encodes to itself).
pub fn response(input: &[u8]) {
    match sasl::decode_response(input) {
        Ok(bytes) => assert_eq!(port25_wire::base64::encode(&bytes).as_bytes(), input, "non-canonical base64 accepted"),
        Err(r) => assert_eq!(r.code, 501),
    }
    let encoded = port25_wire::base64::encode(input);
    assert_eq!(port25_wire::base64::decode(encoded.as_bytes()).as_deref(), Some(input), "round trip");
}

/// A PLAIN message: what is accepted rebuilds the input exactly.
pub fn plain(input: &[u8]) {
    match sasl::parse_plain(input) {
        Ok(c) => {
            assert_eq!(c.mechanism, Mechanism::Plain);
            assert!(!c.username.is_empty() && !c.password.is_empty());
            let rebuilt = [
                c.authzid.as_deref().unwrap_or("").as_bytes(),
                b"\0",
                c.username.as_bytes(),
                b"\0",
                c.password.as_bytes(),
            ]
            .concat();
            assert_eq!(rebuilt, input);
        }
        Err(r) => assert_eq!(r.code, 501),
    }
}

pub fn login_field(input: &[u8]) {
    if let Ok(f) = sasl::parse_login_field(input) {
        assert!(!f.is_empty() && !f.contains('\0') && f.len() <= sasl::MAX_FIELD);
        assert_eq!(f.as_bytes(), input);
    }
}
