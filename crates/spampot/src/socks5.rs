//! SOCKS5 (RFC 1928) with username/password authentication (RFC 1929).
//! Pure parsers for the three client messages; `Ok(None)` means more bytes.
//!
//! ```text
//! greeting: VER=5 | NMETHODS | METHODS...
//! auth:     VER=1 | ULEN | UNAME | PLEN | PASSWD
//! request:  VER=5 | CMD | RSV=0 | ATYP (1 IPv4, 3 name, 4 IPv6) | ADDR | PORT
//! ```

use std::net::{Ipv4Addr, Ipv6Addr};

pub const NO_AUTH: u8 = 0x00;
pub const USER_PASS: u8 = 0x02;
pub const NO_ACCEPTABLE: u8 = 0xff;

pub const SUCCEEDED: u8 = 0x00;
pub const NOT_ALLOWED: u8 = 0x02;
pub const HOST_UNREACHABLE: u8 = 0x04;
pub const CONNECTION_REFUSED: u8 = 0x05;
pub const COMMAND_NOT_SUPPORTED: u8 = 0x07;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Host {
    V4(Ipv4Addr),
    V6(Ipv6Addr),
    Name(String),
}

impl std::fmt::Display for Host {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Host::V4(a) => write!(f, "{a}"),
            Host::V6(a) => write!(f, "{a}"),
            Host::Name(n) => f.write_str(n),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub command: u8,
    pub host: Host,
    pub port: u16,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error("not SOCKS version 5")]
    Version,
    #[error("SOCKS5 greeting offers no method")]
    NoMethods,
    #[error("not RFC 1929 username/password version 1")]
    AuthVersion,
    #[error("reserved byte is not zero")]
    Reserved,
    #[error("unknown address type {0}")]
    AddressType(u8),
    #[error("domain name is empty or not printable")]
    BadName,
}

/// The methods a client offers.
pub fn parse_greeting(buf: &[u8]) -> Result<Option<(Vec<u8>, usize)>, Error> {
    match buf.first() {
        None => return Ok(None),
        Some(5) => {}
        Some(_) => return Err(Error::Version),
    }
    let Some(&n) = buf.get(1) else {
        return Ok(None);
    };
    if n == 0 {
        return Err(Error::NoMethods);
    }
    let end = 2 + n as usize;
    if buf.len() < end {
        return Ok(None);
    }
    Ok(Some((buf[2..end].to_vec(), end)))
}

/// (username, password), lossily decoded (they are recorded, not checked).
pub type Credentials = (String, String);

pub fn parse_auth(buf: &[u8]) -> Result<Option<(Credentials, usize)>, Error> {
    match buf.first() {
        None => return Ok(None),
        Some(1) => {}
        Some(_) => return Err(Error::AuthVersion),
    }
    let Some(&ulen) = buf.get(1) else {
        return Ok(None);
    };
    let p = 2 + ulen as usize;
    let Some(&plen) = buf.get(p) else {
        return Ok(None);
    };
    let end = p + 1 + plen as usize;
    if buf.len() < end {
        return Ok(None);
    }
    let user = String::from_utf8_lossy(&buf[2..p]).into_owned();
    let pass = String::from_utf8_lossy(&buf[p + 1..end]).into_owned();
    Ok(Some(((user, pass), end)))
}

pub fn parse_request(buf: &[u8]) -> Result<Option<(Request, usize)>, Error> {
    match buf.first() {
        None => return Ok(None),
        Some(5) => {}
        Some(_) => return Err(Error::Version),
    }
    if buf.len() < 4 {
        return Ok(None);
    }
    if buf[2] != 0 {
        return Err(Error::Reserved);
    }
    let (host, addr_end) = match buf[3] {
        1 => {
            if buf.len() < 8 {
                return Ok(None);
            }
            (Host::V4(Ipv4Addr::new(buf[4], buf[5], buf[6], buf[7])), 8)
        }
        4 => {
            if buf.len() < 20 {
                return Ok(None);
            }
            let mut a = [0u8; 16];
            a.copy_from_slice(&buf[4..20]);
            (Host::V6(Ipv6Addr::from(a)), 20)
        }
        3 => {
            let Some(&len) = buf.get(4) else {
                return Ok(None);
            };
            let end = 5 + len as usize;
            if buf.len() < end {
                return Ok(None);
            }
            let name = &buf[5..end];
            if name.is_empty() || !name.iter().all(|b| b.is_ascii_graphic()) {
                return Err(Error::BadName);
            }
            (Host::Name(String::from_utf8_lossy(name).into_owned()), end)
        }
        t => return Err(Error::AddressType(t)),
    };
    if buf.len() < addr_end + 2 {
        return Ok(None);
    }
    let port = u16::from_be_bytes([buf[addr_end], buf[addr_end + 1]]);
    Ok(Some((Request { command: buf[1], host, port }, addr_end + 2)))
}

/// A reply with a zero IPv4 bound address, as most proxies send.
pub fn reply(code: u8) -> [u8; 10] {
    [5, code, 0, 1, 0, 0, 0, 0, 0, 0]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn greeting_auth_and_requests() {
        assert_eq!(parse_greeting(b"\x05"), Ok(None));
        assert_eq!(parse_greeting(b"\x05\x02\x00"), Ok(None));
        assert_eq!(parse_greeting(b"\x05\x02\x00\x02rest"), Ok(Some((vec![0, 2], 4))));
        assert_eq!(parse_greeting(b"\x05\x00"), Err(Error::NoMethods));
        assert_eq!(parse_greeting(b"\x04"), Err(Error::Version));

        let auth = b"\x01\x05alice\x06s3cr3t";
        for n in 0..auth.len() {
            assert_eq!(parse_auth(&auth[..n]), Ok(None), "prefix {n}");
        }
        assert_eq!(parse_auth(auth), Ok(Some((("alice".into(), "s3cr3t".into()), auth.len()))));
        assert_eq!(parse_auth(b"\x05"), Err(Error::AuthVersion));

        let name = b"\x05\x01\x00\x03\x0emx.example.com\x00\x19";
        for n in 0..name.len() {
            assert_eq!(parse_request(&name[..n]), Ok(None), "prefix {n}");
        }
        assert_eq!(
            parse_request(name),
            Ok(Some((Request { command: 1, host: Host::Name("mx.example.com".into()), port: 25 }, name.len())))
        );
        let v4 = b"\x05\x01\x00\x01\xc0\x00\x02\x01\x02\x4bEHLO";
        assert_eq!(
            parse_request(v4),
            Ok(Some((Request { command: 1, host: Host::V4(Ipv4Addr::new(192, 0, 2, 1)), port: 587 }, 10)))
        );
        let mut v6 = b"\x05\x01\x00\x04".to_vec();
        v6.extend_from_slice(&"2001:db8::25".parse::<Ipv6Addr>().unwrap().octets());
        v6.extend_from_slice(&[0, 25]);
        assert_eq!(parse_request(&v6).unwrap().unwrap().0.host.to_string(), "2001:db8::25");
        assert_eq!(parse_request(b"\x05\x01\x01\x01"), Err(Error::Reserved));
        assert_eq!(parse_request(b"\x05\x01\x00\x02"), Err(Error::AddressType(2)));
        assert_eq!(parse_request(b"\x05\x01\x00\x03\x00\x00\x19"), Err(Error::BadName));
        assert_eq!(reply(SUCCEEDED), [5, 0, 0, 1, 0, 0, 0, 0, 0, 0]);
    }
}
