//! SOCKS4 and SOCKS4a requests (the de-facto spec "SOCKS: A protocol for
//! TCP proxy across firewalls", and the 4a extension). Pure: bytes in,
//! request out; `Ok(None)` means more bytes are needed.
//!
//! ```text
//! VN=4 | CD (1 connect, 2 bind) | DSTPORT (2) | DSTIP (4) | USERID | 0
//! 4a: DSTIP = 0.0.0.x (x != 0), then after USERID's 0: HOSTNAME | 0
//! ```

use std::net::Ipv4Addr;

/// USERID and HOSTNAME are each refused past this length, so a client
/// cannot make us buffer without end waiting for a NUL.
pub const MAX_FIELD: usize = 255;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Host {
    Ip(Ipv4Addr),
    /// SOCKS4a: the client asks the proxy to resolve the name.
    Name(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub command: u8,
    pub port: u16,
    pub host: Host,
    pub user_id: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error("not SOCKS version 4")]
    Version,
    #[error("unknown SOCKS4 command {0}")]
    Command(u8),
    #[error("SOCKS4 field longer than 255 bytes")]
    TooLong,
    #[error("SOCKS4a host name is empty or not printable")]
    BadName,
}

pub const GRANTED: u8 = 0x5a;
pub const REJECTED: u8 = 0x5b;

/// The 8-byte reply (VN is 0 in replies).
pub fn reply(code: u8) -> [u8; 8] {
    [0, code, 0, 0, 0, 0, 0, 0]
}

/// Position of the NUL ending a field starting at `from`.
fn field_end(buf: &[u8], from: usize) -> Result<Option<usize>, Error> {
    let rest = buf.get(from..).unwrap_or(&[]);
    match rest.iter().take(MAX_FIELD + 1).position(|&b| b == 0) {
        Some(n) => Ok(Some(from + n)),
        None if rest.len() > MAX_FIELD => Err(Error::TooLong),
        None => Ok(None),
    }
}

pub fn parse(buf: &[u8]) -> Result<Option<(Request, usize)>, Error> {
    match buf.first() {
        None => return Ok(None),
        Some(4) => {}
        Some(_) => return Err(Error::Version),
    }
    if let Some(&cd) = buf.get(1) {
        if cd != 1 && cd != 2 {
            return Err(Error::Command(cd));
        }
    }
    if buf.len() < 8 {
        return Ok(None);
    }
    let port = u16::from_be_bytes([buf[2], buf[3]]);
    let ip = Ipv4Addr::new(buf[4], buf[5], buf[6], buf[7]);
    let Some(user_end) = field_end(buf, 8)? else {
        return Ok(None);
    };
    let user_id = String::from_utf8_lossy(&buf[8..user_end]).into_owned();
    let o = ip.octets();
    let (host, used) = if o[0] == 0 && o[1] == 0 && o[2] == 0 && o[3] != 0 {
        let Some(host_end) = field_end(buf, user_end + 1)? else {
            return Ok(None);
        };
        let name = &buf[user_end + 1..host_end];
        if name.is_empty() || !name.iter().all(|b| b.is_ascii_graphic()) {
            return Err(Error::BadName);
        }
        (Host::Name(String::from_utf8_lossy(name).into_owned()), host_end + 1)
    } else {
        (Host::Ip(ip), user_end + 1)
    };
    Ok(Some((Request { command: buf[1], port, host, user_id }, used)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socks4_and_4a_incrementally() {
        let v4 = b"\x04\x01\x00\x19\xc0\x00\x02\x01bob\x00EHLO";
        for n in 0..12 {
            assert_eq!(parse(&v4[..n]), Ok(None), "prefix {n}");
        }
        let (r, used) = parse(v4).unwrap().unwrap();
        assert_eq!(used, 12);
        assert_eq!(
            r,
            Request { command: 1, port: 25, host: Host::Ip(Ipv4Addr::new(192, 0, 2, 1)), user_id: "bob".into() }
        );

        let v4a = b"\x04\x01\x02\x4b\x00\x00\x00\x01\x00mx.example.com\x00";
        for n in 0..v4a.len() {
            assert_eq!(parse(&v4a[..n]), Ok(None), "prefix {n}");
        }
        let (r, used) = parse(v4a).unwrap().unwrap();
        assert_eq!(used, v4a.len());
        assert_eq!(
            r,
            Request { command: 1, port: 587, host: Host::Name("mx.example.com".into()), user_id: String::new() }
        );
    }

    #[test]
    fn refusals() {
        assert_eq!(parse(b"\x05\x01\x00"), Err(Error::Version));
        assert_eq!(parse(b"\x04\x03"), Err(Error::Command(3)));
        let mut long = b"\x04\x01\x00\x19\x01\x02\x03\x04".to_vec();
        long.extend(std::iter::repeat_n(b'a', 256));
        assert_eq!(parse(&long), Err(Error::TooLong));
        assert_eq!(parse(b"\x04\x01\x00\x19\x00\x00\x00\x01\x00\x00"), Err(Error::BadName));
        assert_eq!(parse(b"\x04\x01\x00\x19\x00\x00\x00\x01\x00a b\x00"), Err(Error::BadName));
        assert_eq!(reply(GRANTED), [0, 0x5a, 0, 0, 0, 0, 0, 0]);
    }
}
