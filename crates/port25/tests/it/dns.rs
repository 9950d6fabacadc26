//! A small authoritative DNS server for the tests: answers A, AAAA, MX,
//! PTR, TXT and SRV questions over UDP from a table the test fills, NXDOMAIN for
//! names it does not know, NODATA for known names without that type, and
//! SERVFAIL or no answer at all for the questions a test makes fail.

use std::collections::HashMap;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Clone, Debug)]
pub enum Rr {
    A(Ipv4Addr),
    Aaaa(Ipv6Addr),
    /// (preference, exchange); exchange "." is a null MX (RFC 7505).
    Mx(u16, String),
    /// A reverse-DNS name (the question is `4.3.2.1.in-addr.arpa`).
    Ptr(String),
    /// One TXT record made of these character-strings (each at most 255
    /// bytes; SPF, DKIM keys and DMARC policies longer than that are split
    /// by the test, as a zone file would).
    Txt(Vec<String>),
    /// (priority, weight, port, target), RFC 2782.
    Srv(u16, u16, u16, String),
}

impl Rr {
    fn rtype(&self) -> u16 {
        match self {
            Rr::A(_) => 1,
            Rr::Aaaa(_) => 28,
            Rr::Mx(..) => 15,
            Rr::Ptr(_) => 12,
            Rr::Txt(_) => 16,
            Rr::Srv(..) => 33,
        }
    }
}

/// How a question that a test makes fail is answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failure {
    /// RCODE 2: the server could not answer.
    ServFail,
    /// No answer: the client times out.
    Silent,
}

type Table = Arc<Mutex<HashMap<String, Vec<Rr>>>>;
type Failures = Arc<Mutex<HashMap<(String, u16), Failure>>>;

pub struct DnsServer {
    pub addr: SocketAddr,
    table: Table,
    failures: Failures,
}

fn encode_name(name: &str, out: &mut Vec<u8>) {
    for label in name.trim_end_matches('.').split('.').filter(|l| !l.is_empty()) {
        out.push(label.len() as u8);
        out.extend_from_slice(label.as_bytes());
    }
    out.push(0);
}

/// The question's name (lower case, no final dot), its type, and where the
/// question section ends.
fn question(q: &[u8]) -> Option<(String, u16, usize)> {
    let mut pos = 12;
    let mut labels = Vec::new();
    loop {
        let len = *q.get(pos)? as usize;
        pos += 1;
        if len == 0 {
            break;
        }
        labels.push(String::from_utf8_lossy(q.get(pos..pos + len)?).to_lowercase());
        pos += len;
    }
    let qtype = u16::from_be_bytes([*q.get(pos)?, *q.get(pos + 1)?]);
    Some((labels.join("."), qtype, pos + 4))
}

impl DnsServer {
    pub fn start() -> DnsServer {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = socket.local_addr().unwrap();
        let table: Table = Arc::default();
        let failures: Failures = Arc::default();
        let (t, f) = (table.clone(), failures.clone());
        std::thread::spawn(move || {
            let mut buf = [0u8; 1500];
            while let Ok((n, from)) = socket.recv_from(&mut buf) {
                let q = &buf[..n];
                let Some((name, qtype, end)) = question(q) else { continue };
                let failure = f.lock().unwrap().get(&(name.clone(), qtype)).copied();
                if failure == Some(Failure::Silent) {
                    continue;
                }
                let table = t.lock().unwrap();
                let records = table.get(&name);
                let answers: Vec<&Rr> = match failure {
                    Some(_) => Vec::new(),
                    None => records.map(|r| r.iter().filter(|rr| rr.rtype() == qtype).collect()).unwrap_or_default(),
                };
                let rcode = match (failure, records) {
                    (Some(_), _) => 2,
                    (None, None) => 3,
                    (None, Some(_)) => 0,
                };
                let mut out = Vec::new();
                out.extend_from_slice(&q[..2]);
                // QR, opcode 0, AA, RD copied; RA; rcode NXDOMAIN when unknown.
                out.push(0x84 | (q[2] & 1));
                out.push(0x80 | rcode);
                out.extend_from_slice(&1u16.to_be_bytes());
                out.extend_from_slice(&(answers.len() as u16).to_be_bytes());
                out.extend_from_slice(&[0, 0, 0, 0]);
                out.extend_from_slice(&q[12..end]);
                for rr in answers {
                    out.extend_from_slice(&[0xC0, 12]);
                    out.extend_from_slice(&rr.rtype().to_be_bytes());
                    out.extend_from_slice(&1u16.to_be_bytes());
                    out.extend_from_slice(&1u32.to_be_bytes());
                    let mut data = Vec::new();
                    match rr {
                        Rr::A(ip) => data.extend_from_slice(&ip.octets()),
                        Rr::Aaaa(ip) => data.extend_from_slice(&ip.octets()),
                        Rr::Mx(pref, exchange) => {
                            data.extend_from_slice(&pref.to_be_bytes());
                            encode_name(exchange, &mut data);
                        }
                        Rr::Ptr(target) => encode_name(target, &mut data),
                        Rr::Txt(strings) => {
                            for text in strings {
                                data.push(text.len() as u8);
                                data.extend_from_slice(text.as_bytes());
                            }
                        }
                        Rr::Srv(priority, weight, port, target) => {
                            for n in [priority, weight, port] {
                                data.extend_from_slice(&n.to_be_bytes());
                            }
                            encode_name(target, &mut data);
                        }
                    }
                    out.extend_from_slice(&(data.len() as u16).to_be_bytes());
                    out.extend_from_slice(&data);
                }
                let _ = socket.send_to(&out, from);
            }
        });
        DnsServer { addr, table, failures }
    }

    /// `name` exists (NODATA for the types it has no records of), but
    /// questions for its records of type `rtype` (1 A, 28 AAAA, 15 MX)
    /// fail as `how` says.
    pub fn fail(&self, name: &str, rtype: u16, how: Failure) -> &DnsServer {
        self.table.lock().unwrap().entry(name.to_lowercase()).or_default();
        self.failures.lock().unwrap().insert((name.to_lowercase(), rtype), how);
        self
    }

    pub fn add(&self, name: &str, rr: Rr) -> &DnsServer {
        self.table.lock().unwrap().entry(name.to_lowercase()).or_default().push(rr);
        self
    }

    /// Forgets every record of `name` (then NXDOMAIN, until added again).
    pub fn remove(&self, name: &str) -> &DnsServer {
        self.table.lock().unwrap().remove(&name.to_lowercase());
        self
    }

    /// The PTR record of `ip` (v4 or v6), under in-addr.arpa / ip6.arpa.
    pub fn ptr(&self, ip: std::net::IpAddr, name: &str) -> &DnsServer {
        self.add(&reverse_name(ip), Rr::Ptr(name.into()))
    }

    /// A TXT record of one string, split into 255-byte character-strings.
    pub fn txt(&self, name: &str, text: &str) -> &DnsServer {
        let chunks = text.as_bytes().chunks(255).map(|c| String::from_utf8_lossy(c).into_owned()).collect();
        self.add(name, Rr::Txt(chunks))
    }

    /// An MX record and the A record of its exchange.
    pub fn mx(&self, domain: &str, host: &str, ip: Ipv4Addr) -> &DnsServer {
        self.add(domain, Rr::Mx(10, host.into())).add(host, Rr::A(ip))
    }
}

/// `4.3.2.1.in-addr.arpa` for 1.2.3.4; nibbles under `ip6.arpa` for v6.
pub fn reverse_name(ip: std::net::IpAddr) -> String {
    match ip {
        std::net::IpAddr::V4(v4) => {
            let o = v4.octets();
            format!("{}.{}.{}.{}.in-addr.arpa", o[3], o[2], o[1], o[0])
        }
        std::net::IpAddr::V6(v6) => {
            let mut labels: Vec<String> = Vec::new();
            for byte in v6.octets().iter().rev() {
                labels.push(format!("{:x}", byte & 0xF));
                labels.push(format!("{:x}", byte >> 4));
            }
            format!("{}.ip6.arpa", labels.join("."))
        }
    }
}

#[test]
fn answers_like_a_dns_server() {
    // Checked with the system's own resolver library would need root's
    // resolv.conf; instead decode our answer by hand.
    let dns = DnsServer::start();
    dns.mx("d.example", "mx.d.example", Ipv4Addr::new(127, 0, 0, 9));
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut q = vec![0x12, 0x34, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0];
    encode_name("MX.d.example", &mut q);
    q.extend_from_slice(&[0, 1, 0, 1]);
    s.send_to(&q, dns.addr).unwrap();
    let mut buf = [0u8; 512];
    let n = s.recv(&mut buf).unwrap();
    assert_eq!(&buf[..2], &[0x12, 0x34]);
    assert_eq!(buf[3] & 0xF, 0);
    assert_eq!(u16::from_be_bytes([buf[6], buf[7]]), 1);
    assert_eq!(&buf[n - 4..n], &[127, 0, 0, 9]);
}

#[test]
fn answers_ptr_and_txt() {
    let dns = DnsServer::start();
    dns.ptr("192.0.2.7".parse().unwrap(), "mail.d.example");
    dns.txt("d.example", "v=spf1 -all");
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let ask = |name: &str, qtype: u8| {
        let mut q = vec![0x12, 0x34, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0];
        encode_name(name, &mut q);
        q.extend_from_slice(&[0, qtype, 0, 1]);
        s.send_to(&q, dns.addr).unwrap();
        let mut buf = [0u8; 512];
        let n = s.recv(&mut buf).unwrap();
        buf[..n].to_vec()
    };
    let txt = ask("d.example", 16);
    assert!(txt.ends_with(b"\x0bv=spf1 -all"), "{txt:?}");
    let ptr = ask("7.2.0.192.in-addr.arpa", 12);
    assert!(ptr.ends_with(b"\x04mail\x01d\x07example\x00"), "{ptr:?}");
    assert_eq!(reverse_name("2001:db8::1".parse().unwrap()).len(), 72);
}
