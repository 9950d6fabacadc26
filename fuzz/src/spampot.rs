//! Properties of the SpamPots sensor's pure parsers: SOCKS4/4a, SOCKS5
//! (greeting, RFC 1929 login, request), HTTP proxy request heads and the
//! protocol sniffer. Common to all: never panic; consume no more than was
//! given; a complete result depends only on the bytes it consumed (the same
//! answer for the exact prefix and for any longer buffer); shorter
//! prefixes of a complete message ask for more; values written back in
//! wire form parse to the same value.

use port25_spampot::{http, sniff, socks4, socks5};

/// Checks the prefix properties of an incremental parser.
fn incremental<T, E>(data: &[u8], parse: impl Fn(&[u8]) -> Result<Option<(T, usize)>, E>)
where
    T: PartialEq + std::fmt::Debug,
    E: PartialEq + std::fmt::Debug,
{
    let full = parse(data);
    if let Ok(Some((value, used))) = &full {
        assert!(*used > 0 && *used <= data.len(), "used {used} of {}", data.len());
        match parse(&data[..*used]) {
            Ok(Some((v, u))) => assert!(v == *value && u == *used, "exact prefix differs"),
            other => panic!("exact prefix gives {other:?}"),
        }
    }
    // Any prefix that already decides must decide the same as the whole.
    for cut in [1, 2, 3, 5, 8, 9, 16, 64, 300].into_iter().filter(|&c| c < data.len()) {
        match parse(&data[..cut]) {
            Ok(None) => {}
            other => assert_eq!(other, full, "prefix of {cut} decided differently"),
        }
    }
}

pub fn socks4(data: &[u8]) {
    incremental(data, socks4::parse);
    if let Ok(Some((r, _))) = socks4::parse(data) {
        let mut wire = vec![4, r.command];
        wire.extend_from_slice(&r.port.to_be_bytes());
        match &r.host {
            socks4::Host::Ip(ip) => wire.extend_from_slice(&ip.octets()),
            socks4::Host::Name(_) => wire.extend_from_slice(&[0, 0, 0, 1]),
        }
        // Lossy user ids do not round-trip byte for byte; skip those.
        if r.user_id.contains('\u{fffd}') || r.user_id.contains('\0') {
            return;
        }
        wire.extend_from_slice(r.user_id.as_bytes());
        wire.push(0);
        if let socks4::Host::Name(n) = &r.host {
            wire.extend_from_slice(n.as_bytes());
            wire.push(0);
        }
        let (again, used) = socks4::parse(&wire).unwrap().unwrap();
        assert_eq!(again, r);
        assert_eq!(used, wire.len());
    }
}

/// The first byte chooses the message: greeting, login or request.
pub fn socks5(data: &[u8]) {
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    match which % 3 {
        0 => incremental(rest, socks5::parse_greeting),
        1 => incremental(rest, socks5::parse_auth),
        _ => {
            incremental(rest, socks5::parse_request);
            if let Ok(Some((r, _))) = socks5::parse_request(rest) {
                let mut wire = vec![5, r.command, 0];
                match &r.host {
                    socks5::Host::V4(a) => {
                        wire.push(1);
                        wire.extend_from_slice(&a.octets());
                    }
                    socks5::Host::V6(a) => {
                        wire.push(4);
                        wire.extend_from_slice(&a.octets());
                    }
                    socks5::Host::Name(n) => {
                        wire.push(3);
                        wire.push(n.len() as u8);
                        wire.extend_from_slice(n.as_bytes());
                    }
                }
                wire.extend_from_slice(&r.port.to_be_bytes());
                assert_eq!(socks5::parse_request(&wire).unwrap(), Some((r, wire.len())));
            }
        }
    }
}

pub fn http_proxy(data: &[u8]) {
    incremental(data, http::parse);
    match http::parse(data) {
        Ok(Some((r, used))) => {
            assert!(used <= http::MAX_HEAD);
            if let http::Target::Connect { host, port } = &r.target {
                let authority = if host.contains(':') { format!("[{host}]:{port}") } else { format!("{host}:{port}") };
                let wire = format!("CONNECT {authority} HTTP/1.1\r\n\r\n");
                let (again, _) = http::parse(wire.as_bytes()).unwrap().unwrap();
                assert_eq!(again.target, r.target);
            }
        }
        Ok(None) => assert!(data.len() < http::MAX_HEAD),
        Err(_) => {}
    }
}

pub fn sniff(data: &[u8]) {
    let p = sniff::sniff(data);
    assert_eq!(p.is_none(), data.is_empty());
    if let Some(p) = p {
        assert_eq!(sniff::sniff(&data[..1]), Some(p), "only the first byte decides");
    }
}

/// `sensor_config` (port25_spampot::config::Config::parse): never panics
/// on any text (the line of a TOML error is counted in bytes, issue 13);
/// an error names the file and a line within the text.
pub fn sensor_config(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    if let Err(e) = port25_spampot::config::Config::parse(&text, std::path::Path::new("/f.toml")) {
        assert!(e.starts_with("/f.toml"), "{e}");
    }
}
