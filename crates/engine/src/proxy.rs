//! HAProxy PROXY protocol, versions 1 (text) and 2 (binary), as sent by a
//! load balancer in front of the listener so the engine sees the real client.
//! Pure: bytes in, header out; `Ok(None)` means more bytes are needed.

use port25_listen::accept::canonical;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

const V2_SIGNATURE: &[u8; 12] = b"\r\n\r\n\0\r\nQUIT\n";
const V1_MAX: usize = 107;
/// Larger v2 headers (TLV-heavy) are refused rather than buffered.
pub const V2_MAX: usize = 16 + 2048;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProxyHeader {
    /// The proxy speaks for itself (health checks): use the socket addresses.
    Local,
    /// A proxied connection from `source` to `destination`.
    Proxied { source: SocketAddr, destination: SocketAddr },
    /// Protocol the proxy could not describe (v1 UNKNOWN, v2 UNSPEC/UNIX).
    Unknown,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProxyError {
    #[error("connection did not start with a PROXY protocol header")]
    Missing,
    #[error("malformed PROXY v1 header: {0}")]
    BadV1(&'static str),
    #[error("malformed PROXY v2 header: {0}")]
    BadV2(&'static str),
}

/// Parses a header at the start of `buf`, returning it and its length.
/// IPv4-mapped IPv6 addresses in it (`TCP6 ::ffff:192.0.2.1 ...`) come
/// back as IPv4, as the accept loop folds socket addresses.
pub fn parse(buf: &[u8]) -> Result<Option<(ProxyHeader, usize)>, ProxyError> {
    let parsed = parse_any(buf)?;
    Ok(parsed.map(|(header, used)| match header {
        ProxyHeader::Proxied { source, destination } => {
            (ProxyHeader::Proxied { source: canonical(source), destination: canonical(destination) }, used)
        }
        other => (other, used),
    }))
}

fn parse_any(buf: &[u8]) -> Result<Option<(ProxyHeader, usize)>, ProxyError> {
    let n = buf.len().min(V2_SIGNATURE.len());
    if buf[..n] == V2_SIGNATURE[..n] {
        return if n < V2_SIGNATURE.len() { Ok(None) } else { parse_v2(buf) };
    }
    let n = buf.len().min(6);
    if buf[..n] == b"PROXY "[..n] {
        return if n < 6 { Ok(None) } else { parse_v1(buf) };
    }
    Err(ProxyError::Missing)
}

fn parse_v1(buf: &[u8]) -> Result<Option<(ProxyHeader, usize)>, ProxyError> {
    let Some(end) = buf.iter().take(V1_MAX).position(|&b| b == b'\n') else {
        return if buf.len() >= V1_MAX { Err(ProxyError::BadV1("longer than 107 bytes")) } else { Ok(None) };
    };
    if end == 0 || buf[end - 1] != b'\r' {
        return Err(ProxyError::BadV1("line must end with CRLF"));
    }
    let line = std::str::from_utf8(&buf[..end - 1]).map_err(|_| ProxyError::BadV1("not ASCII"))?;
    let fields: Vec<&str> = line.split(' ').collect();
    let header = match fields.as_slice() {
        ["PROXY", "UNKNOWN", ..] => ProxyHeader::Unknown,
        ["PROXY", proto @ ("TCP4" | "TCP6"), src, dst, sport, dport] => {
            let ip = |s: &str| -> Result<IpAddr, ProxyError> {
                let ip: IpAddr = s.parse().map_err(|_| ProxyError::BadV1("bad address"))?;
                match (ip, *proto) {
                    (IpAddr::V4(_), "TCP4") | (IpAddr::V6(_), "TCP6") => Ok(ip),
                    _ => Err(ProxyError::BadV1("address family does not match protocol")),
                }
            };
            let port = |s: &str| -> Result<u16, ProxyError> {
                if s.len() > 1 && s.starts_with('0') {
                    return Err(ProxyError::BadV1("port with leading zero"));
                }
                s.parse().map_err(|_| ProxyError::BadV1("bad port"))
            };
            ProxyHeader::Proxied {
                source: SocketAddr::new(ip(src)?, port(sport)?),
                destination: SocketAddr::new(ip(dst)?, port(dport)?),
            }
        }
        _ => return Err(ProxyError::BadV1("expected PROXY TCP4|TCP6 src dst sport dport")),
    };
    Ok(Some((header, end + 1)))
}

fn parse_v2(buf: &[u8]) -> Result<Option<(ProxyHeader, usize)>, ProxyError> {
    if buf.len() < 16 {
        return Ok(None);
    }
    let version_command = buf[12];
    if version_command >> 4 != 2 {
        return Err(ProxyError::BadV2("version is not 2"));
    }
    let family = buf[13];
    let len = u16::from_be_bytes([buf[14], buf[15]]) as usize;
    if 16 + len > V2_MAX {
        return Err(ProxyError::BadV2("header too long"));
    }
    if buf.len() < 16 + len {
        return Ok(None);
    }
    let body = &buf[16..16 + len];
    let header = match version_command & 0x0f {
        0 => ProxyHeader::Local,
        1 => match family {
            0x11 | 0x12 => {
                if body.len() < 12 {
                    return Err(ProxyError::BadV2("IPv4 address block too short"));
                }
                let ip = |o: usize| IpAddr::V4(Ipv4Addr::new(body[o], body[o + 1], body[o + 2], body[o + 3]));
                let port = |o: usize| u16::from_be_bytes([body[o], body[o + 1]]);
                ProxyHeader::Proxied {
                    source: SocketAddr::new(ip(0), port(8)),
                    destination: SocketAddr::new(ip(4), port(10)),
                }
            }
            0x21 | 0x22 => {
                if body.len() < 36 {
                    return Err(ProxyError::BadV2("IPv6 address block too short"));
                }
                let ip = |o: usize| {
                    let mut a = [0u8; 16];
                    a.copy_from_slice(&body[o..o + 16]);
                    IpAddr::V6(Ipv6Addr::from(a))
                };
                let port = |o: usize| u16::from_be_bytes([body[o], body[o + 1]]);
                ProxyHeader::Proxied {
                    source: SocketAddr::new(ip(0), port(32)),
                    destination: SocketAddr::new(ip(16), port(34)),
                }
            }
            _ => ProxyHeader::Unknown,
        },
        _ => return Err(ProxyError::BadV2("unknown command")),
    };
    Ok(Some((header, 16 + len)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v1_tcp4_and_incremental() {
        let h = b"PROXY TCP4 192.0.2.1 198.51.100.2 56324 25\r\nEHLO x\r\n";
        for n in 0..44 {
            assert_eq!(parse(&h[..n]), Ok(None), "prefix {n}");
        }
        let (header, used) = parse(h).unwrap().unwrap();
        assert_eq!(used, 44);
        assert_eq!(
            header,
            ProxyHeader::Proxied {
                source: "192.0.2.1:56324".parse().unwrap(),
                destination: "198.51.100.2:25".parse().unwrap()
            }
        );
        assert_eq!(parse(b"PROXY UNKNOWN\r\n").unwrap().unwrap().0, ProxyHeader::Unknown);
        assert!(parse(b"PROXY TCP4 ::1 ::1 1 2\r\n").is_err());
        assert!(parse(b"PROXY TCP4 1.2.3.4 1.2.3.4 1 2\n").is_err());
        assert_eq!(parse(b"EHLO x\r\n"), Err(ProxyError::Missing));
        let (mapped, _) = parse(b"PROXY TCP6 ::ffff:192.0.2.1 ::ffff:198.51.100.2 1 25\r\n").unwrap().unwrap();
        assert_eq!(
            mapped,
            ProxyHeader::Proxied {
                source: "192.0.2.1:1".parse().unwrap(),
                destination: "198.51.100.2:25".parse().unwrap()
            }
        );
    }

    #[test]
    fn v2_tcp6_and_local() {
        let mut h = V2_SIGNATURE.to_vec();
        h.extend_from_slice(&[0x21, 0x21, 0, 36]);
        h.extend_from_slice(&"2001:db8::1".parse::<Ipv6Addr>().unwrap().octets());
        h.extend_from_slice(&"2001:db8::2".parse::<Ipv6Addr>().unwrap().octets());
        h.extend_from_slice(&[0x30, 0x39, 0, 25]);
        let (header, used) = parse(&h).unwrap().unwrap();
        assert_eq!(used, 52);
        assert_eq!(
            header,
            ProxyHeader::Proxied {
                source: "[2001:db8::1]:12345".parse().unwrap(),
                destination: "[2001:db8::2]:25".parse().unwrap()
            }
        );
        assert_eq!(parse(&h[..30]), Ok(None));
        let mut local = V2_SIGNATURE.to_vec();
        local.extend_from_slice(&[0x20, 0, 0, 0]);
        assert_eq!(parse(&local).unwrap().unwrap(), (ProxyHeader::Local, 16));
    }
}
