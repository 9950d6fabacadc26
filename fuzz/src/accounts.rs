//! Properties of the account import format and address entries
//! (port25_accounts::import, ::address).

use port25_accounts::{address, hash, import};

pub fn import_line(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(line) = import::parse_line(text) {
        assert!(port25_accounts::check_login(&line.login).is_ok(), "{line:?}");
        assert!(hash::scheme(&line.hash).is_ok(), "{line:?}");
        for a in &line.addresses {
            assert_eq!(address::normalize(a).as_deref(), Some(a.as_str()), "addresses are stored normalised: {a:?}");
        }
    }
    // The whole-file parser agrees with the line parser on one line.
    if !text.contains(['\n', '\r']) && !text.trim().is_empty() && !text.trim().starts_with('#') {
        assert_eq!(import::parse(text).is_ok(), import::parse_line(text.trim()).is_ok(), "{text:?}");
    }
    for entry in text.split(',') {
        if let Some(n) = address::normalize(entry) {
            assert_eq!(address::normalize(&n), Some(n.clone()), "normalize is idempotent");
            let (local, _) = n.rsplit_once('@').unwrap();
            if !local.is_empty() {
                assert!(address::allows(std::slice::from_ref(&n), &n), "an address allows itself: {n:?}");
            }
        }
    }
}
