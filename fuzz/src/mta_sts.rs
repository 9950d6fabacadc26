//! Properties of the MTA-STS readers (`port25_wire::mta_sts`): the policy
//! file and the HTTP answer carrying it come from whoever runs
//! mta-sts.DOMAIN, the TXT record from their DNS.

use port25_wire::mta_sts::{self, Mode};

/// Never panics. The first byte chooses the reader: policy file, HTTP
/// answer or TXT records (one per line). A policy that parses has a mode
/// with MX patterns (but `none`), at most the pattern cap, max_age at
/// most a year, lower-case patterns without a trailing dot that match
/// their own names (a wildcard one label more), and written back in the
/// RFC's form parses to itself. An HTTP body is a part of the answer and
/// within the size limit. A TXT id is 1 to 32 letters or digits.
pub fn check(data: &[u8]) {
    let Some((&which, rest)) = data.split_first() else { return };
    match which % 3 {
        0 => policy(rest),
        1 => {
            if let Ok(body) = mta_sts::response_body(rest) {
                assert!(body.len() <= mta_sts::MAX_POLICY_BYTES);
                let (start, end) = (rest.as_ptr() as usize, rest.as_ptr() as usize + rest.len());
                let b = body.as_ptr() as usize;
                assert!(b >= start && b + body.len() <= end, "the body is a part of the answer");
                policy(body);
            }
        }
        _ => {
            let text = String::from_utf8_lossy(rest);
            let records: Vec<&str> = text.split('\n').collect();
            if let Ok(id) = mta_sts::txt_id(&records) {
                assert!((1..=32).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric()), "{id:?}");
            }
        }
    }
}

fn policy(data: &[u8]) {
    let Ok(p) = mta_sts::parse_policy(data) else { return };
    assert!(p.mode == Mode::None || !p.mx.is_empty(), "{p:?}");
    assert!(p.mx.len() <= mta_sts::MAX_MX_PATTERNS);
    assert!(p.max_age <= mta_sts::MAX_AGE_CAP, "{p:?}");
    for m in &p.mx {
        assert!(*m == m.to_ascii_lowercase() && !m.ends_with('.'), "{m:?}");
        match m.strip_prefix("*.") {
            Some(rest) => {
                assert!(!rest.contains('*'), "{m:?}");
                assert!(
                    p.allows(&format!("x.{rest}")) && p.allows(&format!("X.{}.", rest.to_ascii_uppercase())),
                    "{m:?}"
                );
            }
            None => assert!(!m.contains('*') && p.allows(m) && p.allows(&format!("{m}.")), "{m:?}"),
        }
    }
    let written = p.lines().join("\r\n");
    assert_eq!(mta_sts::parse_policy(written.as_bytes()).as_ref(), Ok(&p), "{written:?}");
}
