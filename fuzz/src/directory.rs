//! Properties of the Dovecot authentication protocol reader
//! (port25_directory::dovecot::proto): the lines a directory server sends
//! back to port25.

use port25_directory::dovecot::proto::{self, ProtoError, ServerLine, MAX_LINE};

/// The framing and the parser on hostile bytes.
pub fn dovecot_reply(data: &[u8]) {
    // Framing: fed in one piece or in small pieces, the same lines come out,
    // none with an LF or over the limit, and the buffer stays bounded.
    let whole = lines(data, data.len().max(1));
    let split = (data.first().copied().unwrap_or(1) as usize % 7) + 1;
    assert_eq!(whole, lines(data, split), "a split changes the lines");
    for line in whole.0.iter() {
        assert!(!line.contains(&b'\n') && line.len() < MAX_LINE, "{line:?}");
        check_line(line);
    }
    check_line(data);
}

/// Lines taken from `data` fed `chunk` bytes at a time, and the error that
/// ended them, if any.
fn lines(data: &[u8], chunk: usize) -> (Vec<Vec<u8>>, Option<ProtoError>) {
    let mut buf = Vec::new();
    let mut out = Vec::new();
    for piece in data.chunks(chunk) {
        buf.extend_from_slice(piece);
        loop {
            match proto::take_line(&mut buf) {
                Ok(Some(line)) => out.push(line),
                Ok(None) => break,
                Err(e) => return (out, Some(e)),
            }
            assert!(buf.len() <= MAX_LINE + chunk, "the buffer grew to {}", buf.len());
        }
        assert!(buf.len() < MAX_LINE, "an unfinished line past the limit was kept: {}", buf.len());
    }
    (out, None)
}

fn check_line(line: &[u8]) {
    let Ok(parsed) = proto::parse(line) else { return };
    // Accepted: no raw control character but TAB and the escape byte...
    assert!(!line.iter().any(|&b| (b < 0x20 && b != b'\t' && b != 1) || b == 0x7f), "{line:?}");
    // ...and none in any value, escaped or not.
    let values: Vec<&str> = match &parsed {
        ServerLine::Ok { params, .. } | ServerLine::Fail { params, .. } => {
            params.iter().flat_map(|(k, v)| [k.as_str(), v.as_str()]).collect()
        }
        ServerLine::User { user, params, .. } => {
            std::iter::once(user.as_str()).chain(params.iter().flat_map(|(k, v)| [k.as_str(), v.as_str()])).collect()
        }
        ServerLine::Mech(m) => vec![m.as_str()],
        ServerLine::Other(c) => vec![c.as_str()],
        _ => vec![],
    };
    for v in values {
        assert!(!v.chars().any(char::is_control), "{v:?} from {line:?}");
    }
    // A reply written back with escaping parses to the same thing.
    let again = match &parsed {
        ServerLine::Ok { id, params } => Some(format!("OK\t{id}{}", written(params))),
        ServerLine::Fail { id, params } => Some(format!("FAIL\t{id}{}", written(params))),
        ServerLine::User { id, user, params } => {
            Some(format!("USER\t{id}\t{}{}", proto::escape(user), written(params)))
        }
        _ => None,
    };
    if let Some(again) = again {
        assert_eq!(proto::parse(again.as_bytes()).as_ref(), Ok(&parsed), "{again:?}");
    }
}

fn written(params: &proto::Params) -> String {
    params
        .iter()
        .map(|(k, v)| match (k.contains('='), v.is_empty()) {
            // A flag, or a key with '=' in it cannot come back: split as read.
            (_, true) if !k.contains('=') => format!("\t{}", proto::escape(k)),
            _ => format!("\t{}={}", proto::escape(k), proto::escape(v)),
        })
        .collect()
}
