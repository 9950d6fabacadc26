//! dnsmasq's lease file (`/var/lib/misc/dnsmasq.leases`).
//!
//! A snapshot, rewritten whole: one line per current lease, `expiry mac
//! address hostname client-id` (DHCPv4) or, after the `duid SERVER-DUID`
//! line, `expiry iaid address hostname client-duid` (DHCPv6). Expiry is Unix
//! seconds, 0 for an infinite lease; `*` is an absent hostname or client
//! id. The file does not say when a lease began, so a lease covers
//! everything before its expiry: read it while the flows are recent. The
//! subscriber is the MAC address (DHCPv4) or the client DUID (DHCPv6).

use super::lines::{too_long, without_cr, Line, Lines};
use super::{prefix_of, secs_ms, Origin, Session, Source, SubscriberKind, WarningKind, Warnings};
use std::io::{self, BufRead};

/// Reads one lease file.
pub fn parse(text: &str, file: u32, out: &mut Vec<Session>, w: &mut Warnings) {
    read_each(text.as_bytes(), file, &mut |s| out.push(s), w).expect("reading from memory cannot fail");
}

/// [`parse`] from a stream, one line in memory at a time, each lease
/// handed to `each` as it is read.
pub fn read_each(r: impl BufRead, file: u32, each: &mut dyn FnMut(Session), w: &mut Warnings) -> io::Result<()> {
    let mut lines = Lines::new(r);
    while let Some(l) = lines.next_line()? {
        let (n, line) = match l {
            Line::Text { n, ref text, terminated } => {
                if !terminated {
                    let origin = Origin { file, line: n };
                    w.add(WarningKind::Truncated, origin, "the file ends inside this line (no line end): not read");
                    break;
                }
                (n, without_cr(text, terminated))
            }
            Line::TooLong { n, .. } => {
                w.add(WarningKind::BadRecord, Origin { file, line: n }, too_long("this line"));
                continue;
            }
        };
        let origin = Origin { file, line: n };
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.is_empty() || f[0] == "duid" {
            continue;
        }
        if f.len() < 4 {
            w.add(
                WarningKind::BadRecord,
                origin,
                format!("{} fields where a lease has 5 (expiry, MAC or IAID, address, hostname, client id)", f.len()),
            );
            continue;
        }
        let Some(expiry) = f[0].parse::<u64>().ok().and_then(secs_ms) else {
            w.add(WarningKind::BadRecord, origin, "the expiry is not Unix seconds");
            continue;
        };
        let Some(prefix) = prefix_of(f[2]) else {
            w.add(WarningKind::BadRecord, origin, format!("{:?} is not an address", super::clean(f[2])));
            continue;
        };
        let v6 = prefix.family == crate::prefix::Family::V6;
        let client = f.get(4).copied().filter(|c| *c != "*");
        let (subscriber, kind) = match (v6, client) {
            (true, Some(duid)) => (duid, SubscriberKind::Duid),
            (true, None) => (f[1], SubscriberKind::ClientId),
            (false, _) => (f[1], SubscriberKind::HardwareAddress),
        };
        let hostname = Some(f[3]).filter(|h| *h != "*");
        each(Session {
            source: Source::Dnsmasq,
            subscriber: subscriber.to_owned(),
            kind,
            id: match hostname {
                Some(h) => format!("{prefix} {h}"),
                None => prefix.to_string(),
            },
            remote_id: None,
            circuit_id: None,
            prefixes: vec![prefix],
            start_ms: 0,
            end_ms: if expiry == 0 { None } else { Some(expiry) },
            origin,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v4_and_v6_leases() {
        let text = "1764003600 02:00:00:00:00:30 10.0.0.30 pc30 01:02:00:00:00:00:30\n0 02:00:00:00:00:31 10.0.0.31 * *\nduid 00:01:00:01:aa\n1764003600 7 2001:db8::30 * 00:03:00:01:bb\nbad\n1764003600 02:00:00:00:00:32 10.0.0.32";
        let mut w = Warnings::default();
        let mut s = Vec::new();
        parse(text, 0, &mut s, &mut w);
        assert_eq!(s.len(), 3);
        assert_eq!(
            (s[0].subscriber.as_str(), s[0].end_ms, s[0].id.as_str()),
            ("02:00:00:00:00:30", Some(1_764_003_600_000), "10.0.0.30/32 pc30")
        );
        assert_eq!(s[1].end_ms, None);
        assert_eq!((s[2].subscriber.as_str(), s[2].kind), ("00:03:00:01:bb", SubscriberKind::Duid));
        assert_eq!((w.count(WarningKind::BadRecord), w.count(WarningKind::Truncated)), (1, 1));
    }
}
