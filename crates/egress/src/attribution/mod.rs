//! Attribution: from a flow's source address and time to the subscriber
//! who held that address then, and the session or lease that says so.
//!
//! Access networks hand out addresses dynamically, so an address in a flow
//! names a subscriber only together with a time. The sources that say who
//! held which address when, one module each, each reading a stream line by
//! line (any `BufRead`: the loader's files, text in the tests; see `load`)
//! into records and warnings, one line of at most [`MAX_LINE`] bytes in
//! memory at a time:
//!
//! - [`radius`]: FreeRADIUS accounting detail files (Start, Interim-Update,
//!   Stop; event time is `Timestamp` minus `Acct-Delay-Time`);
//! - [`radacct`]: the SQL `radacct` table exported as CSV with a header;
//! - [`kea`]: Kea's memfile lease CSV (lease4 and lease6), a journal in
//!   which the last row for an address wins;
//! - [`dhcpd`]: ISC dhcpd's `dhcpd.leases` journal;
//! - [`dnsmasq`]: dnsmasq's lease file (a snapshot of current leases);
//! - [`cgnat`]: CGNAT port-block logs (RFC 8158 IPFIX NAT events or CSV),
//!   which turn (public address, port, time) into the inside address the
//!   sources above name.
//!
//! Every source yields [`Session`]s: a subscriber, the prefixes it held
//! (an IPv4 address, an IPv6 address, or a delegated IPv6 prefix) and a time
//! span. [`Index`] answers (address, time) with the session that covered
//! it. Anything odd (a record cut short, a Stop without its Start, sessions
//! overlapping on one address) is a [`Warning`] naming file and line; no
//! input is fatal. Memory is that of the sessions, never of the flows nor
//! of the files' size (a lease journal grows with every renewal).

pub mod cgnat;
mod csv;
pub mod dhcpd;
pub mod dnsmasq;
mod index;
pub mod kea;
mod lines;
pub mod load;
pub mod radacct;
pub mod radius;
mod store;

pub use index::Index;
pub use lines::MAX_LINE;
pub use store::Store;

use crate::prefix::Prefix;
use std::fmt;

/// Which kind of source a session came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Source {
    Radius,
    Radacct,
    Kea,
    Dhcpd,
    Dnsmasq,
    /// CGNAT port-block logs: never a session of their own, they map a
    /// public address and port to an inside address.
    CgnatCsv,
    CgnatIpfix,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Radius => "radius",
            Source::Radacct => "radacct-csv",
            Source::Kea => "kea",
            Source::Dhcpd => "dhcpd",
            Source::Dnsmasq => "dnsmasq",
            Source::CgnatCsv => "cgnat-csv",
            Source::CgnatIpfix => "cgnat-ipfix",
        }
    }
}

/// What the subscriber name is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SubscriberKind {
    UserName,
    CallingStationId,
    /// DHCP option 82 sub-option 2 (or RADIUS ADSL-Agent-Remote-Id).
    RemoteId,
    /// DHCP option 82 sub-option 1 (or RADIUS ADSL-Agent-Circuit-Id).
    CircuitId,
    HardwareAddress,
    ClientId,
    Duid,
}

impl SubscriberKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SubscriberKind::UserName => "user-name",
            SubscriberKind::CallingStationId => "calling-station-id",
            SubscriberKind::RemoteId => "remote-id",
            SubscriberKind::CircuitId => "circuit-id",
            SubscriberKind::HardwareAddress => "hwaddr",
            SubscriberKind::ClientId => "client-id",
            SubscriberKind::Duid => "duid",
        }
    }
}

/// Where a record is: the file (an index into the caller's list of names)
/// and the line (1-based) it starts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Origin {
    pub file: u32,
    pub line: u32,
}

/// A span of time in which `subscriber` held `prefixes`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub source: Source,
    pub subscriber: String,
    pub kind: SubscriberKind,
    /// Acct-Session-Id (RADIUS, with the NAS), or the lease's address
    /// and client for DHCP sources.
    pub id: String,
    /// Option-82 remote-id / circuit-id (or the RADIUS ADSL-Agent-*
    /// attributes) when present, for the report.
    pub remote_id: Option<String>,
    pub circuit_id: Option<String>,
    pub prefixes: Vec<Prefix>,
    /// Unix milliseconds; 0 when the source does not say (dnsmasq).
    pub start_ms: u64,
    /// Exclusive; `None` while the session is open (no Stop yet, or a
    /// lease that never expires).
    pub end_ms: Option<u64>,
    /// Where the session starts (its Start record, or the lease row).
    pub origin: Origin,
}

impl Session {
    /// Open sessions end at the end of time.
    pub fn end_or_max(&self) -> u64 {
        self.end_ms.unwrap_or(u64::MAX)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum WarningKind {
    /// The file ends inside a record (a writer still writing, or a cut copy).
    Truncated,
    /// A record or row that could not be read.
    BadRecord,
    /// A record that names no address or no time, so it cannot attribute.
    Incomplete,
    StopWithoutStart,
    InterimWithoutStart,
    /// A Start for a session already open (the old one is closed there).
    StartWhileOpen,
    /// Two sessions of different ids covering one address at one time: the
    /// later-started one wins while both are open.
    Overlap,
}

impl WarningKind {
    pub const ALL: [WarningKind; 7] = [
        WarningKind::Truncated,
        WarningKind::BadRecord,
        WarningKind::Incomplete,
        WarningKind::StopWithoutStart,
        WarningKind::InterimWithoutStart,
        WarningKind::StartWhileOpen,
        WarningKind::Overlap,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            WarningKind::Truncated => "truncated",
            WarningKind::BadRecord => "bad_record",
            WarningKind::Incomplete => "incomplete",
            WarningKind::StopWithoutStart => "stop_without_start",
            WarningKind::InterimWithoutStart => "interim_without_start",
            WarningKind::StartWhileOpen => "start_while_open",
            WarningKind::Overlap => "overlap",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    pub kind: WarningKind,
    pub origin: Origin,
    pub message: String,
}

/// Warnings kept to name (per kind); all are counted.
pub const MAX_WARNINGS_NAMED: usize = 20;

/// Counted warnings, the first [`MAX_WARNINGS_NAMED`] of each kind kept.
#[derive(Debug, Clone, Default)]
pub struct Warnings {
    pub counts: std::collections::BTreeMap<WarningKind, u64>,
    pub named: Vec<Warning>,
}

impl Warnings {
    pub fn add(&mut self, kind: WarningKind, origin: Origin, message: impl Into<String>) {
        let n = self.counts.entry(kind).or_default();
        *n += 1;
        if *n as usize <= MAX_WARNINGS_NAMED {
            self.named.push(Warning { kind, origin, message: message.into() });
        }
    }

    /// Whether the next warning of `kind` would be kept to name (so its
    /// message is worth formatting).
    pub fn names(&self, kind: WarningKind) -> bool {
        self.count(kind) < MAX_WARNINGS_NAMED as u64
    }

    pub fn count(&self, kind: WarningKind) -> u64 {
        self.counts.get(&kind).copied().unwrap_or(0)
    }

    pub fn total(&self) -> u64 {
        self.counts.values().sum()
    }

    pub fn merge(&mut self, other: Warnings) {
        for (k, n) in other.counts {
            *self.counts.entry(k).or_default() += n;
        }
        for w in other.named {
            if self.named.iter().filter(|x| x.kind == w.kind).count() < MAX_WARNINGS_NAMED {
                self.named.push(w);
            }
        }
    }
}

/// A warning with its file name, for messages: `file:line: kind: message`.
pub struct Named<'a>(pub &'a Warning, pub &'a [String]);

impl fmt::Display for Named<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let file = self.1.get(self.0.origin.file as usize).map_or("?", String::as_str);
        write!(f, "{file}:{}: {}: {}", self.0.origin.line, self.0.kind.as_str(), self.0.message)
    }
}

/// Text as the report shows it: control characters replaced, at most 128
/// characters, so a hostile user name cannot forge lines (the CSV output
/// quotes what needs quoting, JSON escapes).
pub fn clean(s: &str) -> String {
    s.chars().take(128).map(|c| if c.is_control() { '?' } else { c }).collect()
}

/// Unix milliseconds from a civil UTC date and time; `None` for a date
/// before 1970 or a field out of range.
pub fn civil_ms(y: i64, m: i64, d: i64, hh: i64, mm: i64, ss: i64) -> Option<u64> {
    port25_time::unix_from_civil(y, m, d, hh, mm, ss).map(|s| s * 1000)
}

/// An address or `address/len` as a prefix, host bits cleared (sources
/// write `2001:db8::1/64` for the /64 the subscriber got). IPv4-mapped
/// IPv6 addresses become IPv4.
pub fn prefix_of(s: &str) -> Option<Prefix> {
    use crate::prefix::ip_to_u128;
    let (addr, len) = match s.trim().split_once('/') {
        Some((a, l)) => (a, Some(l.trim().parse::<u8>().ok()?)),
        None => (s.trim(), None),
    };
    let ip: std::net::IpAddr = addr.trim().parse().ok()?;
    let mapped = matches!(ip, std::net::IpAddr::V6(v) if v.to_ipv4_mapped().is_some());
    let (family, v) = ip_to_u128(ip);
    let len = match (len, mapped) {
        (None, _) => family.bits(),
        (Some(l), true) => l.checked_sub(96)?,
        (Some(l), false) => l,
    };
    if len > family.bits() {
        return None;
    }
    let host = family.bits() - len;
    let addr = if host == 128 { 0 } else { v & !((1u128 << host) - 1) };
    Some(Prefix { family, addr, len })
}

/// Seconds as milliseconds, `None` past what fits.
pub(crate) fn secs_ms(s: u64) -> Option<u64> {
    s.checked_mul(1000)
}

/// Option 82 (RFC 3046) sub-options 1 (circuit-id) and 2 (remote-id) from
/// the option's bytes, printed as text when printable, else as hex.
pub fn option82(b: &[u8]) -> (Option<String>, Option<String>) {
    let (mut circuit, mut remote) = (None, None);
    let mut i = 0;
    while i + 2 <= b.len() {
        let (code, len) = (b[i], b[i + 1] as usize);
        let Some(v) = b.get(i + 2..i + 2 + len) else { break };
        // An empty sub-option names nobody.
        match code {
            1 if !v.is_empty() => circuit = Some(printable(v)),
            2 if !v.is_empty() => remote = Some(printable(v)),
            _ => {}
        }
        i += 2 + len;
    }
    (circuit, remote)
}

/// `None` for an absent or empty value: an empty remote-id, circuit-id or
/// hardware address names nobody.
pub(crate) fn nonempty(v: Option<String>) -> Option<String> {
    v.filter(|s| !s.trim().is_empty())
}

/// Bytes as text if printable ASCII, else as colon-separated hex.
pub fn printable(v: &[u8]) -> String {
    if !v.is_empty() && v.iter().all(|b| b.is_ascii_graphic() || *b == b' ') {
        v.iter().map(|b| *b as char).collect()
    } else {
        v.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":")
    }
}

/// Hex as bytes: `0x0102`, `0102`, or colon-separated groups of one or two
/// digits (`0:1b:2`, as dhcpd writes them).
pub fn unhex(s: &str) -> Option<Vec<u8>> {
    if s.contains(':') {
        return s
            .split(':')
            .map(|g| {
                if (1..=2).contains(&g.len()) && g.bytes().all(|b| b.is_ascii_hexdigit()) {
                    u8::from_str_radix(g, 16).ok()
                } else {
                    None
                }
            })
            .collect();
    }
    let s = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")).unwrap_or(s);
    let digits = s.as_bytes();
    if !digits.len().is_multiple_of(2) {
        return None;
    }
    digits.chunks(2).map(|p| Some((hexval(p[0])? << 4) | hexval(p[1])?)).collect()
}

fn hexval(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_time() {
        assert_eq!(civil_ms(1970, 1, 1, 0, 0, 0), Some(0));
        assert_eq!(civil_ms(2025, 11, 24, 16, 0, 0), Some(1_764_000_000_000));
        assert_eq!(civil_ms(1969, 12, 31, 23, 59, 59), None);
        assert_eq!(civil_ms(2025, 13, 1, 0, 0, 0), None);
    }

    #[test]
    fn option82_suboptions() {
        assert_eq!(option82(&[1, 0, 2, 0]), (None, None));
        let (c, r) = option82(&[1, 4, b'e', b't', b'h', b'0', 2, 3, 0xaa, 0xbb, 0xcc, 9, 1]);
        assert_eq!(c.as_deref(), Some("eth0"));
        assert_eq!(r.as_deref(), Some("aa:bb:cc"));
        assert_eq!(unhex("0x0102"), Some(vec![1, 2]));
        assert_eq!(unhex("0:1:a"), Some(vec![0, 1, 10]));
        assert_eq!(unhex("0:+1"), None);
        assert_eq!(unhex("abc"), None);
        assert_eq!(unhex("00:01:0a"), Some(vec![0, 1, 10]));
    }

    #[test]
    fn lenient_prefixes() {
        assert_eq!(prefix_of("2001:db8::1/64").unwrap().to_string(), "2001:db8::/64");
        assert_eq!(prefix_of(" 100.64.0.1 ").unwrap().to_string(), "100.64.0.1/32");
        assert_eq!(prefix_of("::ffff:100.64.0.1").unwrap().to_string(), "100.64.0.1/32");
        assert_eq!(prefix_of("::ffff:100.64.0.0/120").unwrap().to_string(), "100.64.0.0/24");
        assert_eq!(prefix_of("10.0.0.0/33"), None);
        assert_eq!(prefix_of("x"), None);
    }

    #[test]
    fn cleaned_for_output() {
        assert_eq!(clean("a\nb,c\"d\u{85}"), "a?b,c\"d?");
        assert_eq!(clean(&"é".repeat(300)).chars().count(), 128);
    }
}
