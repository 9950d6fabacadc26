//! Kea's memfile lease files (`kea-leases4.csv`, `kea-leases6.csv`).
//!
//! The file is a journal: Kea appends a row each time a lease is created,
//! renewed, released or reclaimed, so the last row for an address is its
//! state. Rows are read by the header's column names (lease4 and lease6
//! differ, and versions add columns). A lease runs from its client's last
//! transmission (`expire - valid_lifetime`) to `expire`; a later row for
//! the address ends it where that row starts (the same client renewing
//! extends it instead), a row with `valid_lifetime` 0 (released) ends it at
//! that row's `expire` when that is later than its start, a declined row
//! (state 1) ends it without a new holder.
//!
//! The lease file cleanup (LFC) rotates the journal: oldest first, it is
//! `FILE.completed` (when present, the merge of `.1` and `.2`), else
//! `FILE.1` then `FILE.2`, then `FILE` (the loader's order, see `load`).
//!
//! The subscriber is option 82's remote-id, else its circuit-id, when Kea
//! stored the relay agent information in the lease's user context
//! (`store-extended-info`); else the hardware address, the client id
//! (DHCPv4) or the DUID (DHCPv6). Kea writes commas inside values as `&#x2c`.

use super::csv::records;
use super::store::{Slots, Store, LEASE_ID};
use super::{
    nonempty, option82, prefix_of, secs_ms, unhex, Origin, Session, Source, SubscriberKind, WarningKind, Warnings,
};
use crate::prefix::{Family, Prefix};
use std::collections::HashMap;
use std::io::{self, BufRead};

/// One lease row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub prefix: Prefix,
    pub start_ms: u64,
    pub expire_ms: u64,
    /// The holder let it go (released, expired): it ended at `expire_ms`.
    pub released: bool,
    /// Declined (the address was in use): nobody holds it from `start_ms`.
    pub declined: bool,
    pub subscriber: Option<(String, SubscriberKind)>,
    pub remote_id: Option<String>,
    pub circuit_id: Option<String>,
    pub hostname: String,
    pub origin: Origin,
}

/// Reads one lease file (`file` is its index in the caller's names).
pub fn parse(text: &str, file: u32, out: &mut Vec<Row>, w: &mut Warnings) {
    parse_each(text, file, &mut |r| out.push(r), w);
}

/// [`parse`], each row handed to `each` as it is read.
pub fn parse_each(text: &str, file: u32, each: &mut dyn FnMut(Row), w: &mut Warnings) {
    read_each(text.as_bytes(), file, each, w).expect("reading from memory cannot fail");
}

/// [`parse_each`] from a stream, one line in memory at a time.
pub fn read_each(r: impl BufRead, file: u32, each: &mut dyn FnMut(Row), w: &mut Warnings) -> io::Result<()> {
    let mut header: Option<HashMap<String, usize>> = None;
    let mut rows = records(r);
    while let Some(r) = rows.next_row(file, w)? {
        let origin = Origin { file, line: r.line };
        if r.fields.first().is_some_and(|f| f == "address") {
            header = Some(r.fields.iter().enumerate().map(|(i, f)| (f.clone(), i)).collect());
            continue;
        }
        let Some(h) = &header else {
            w.add(WarningKind::BadRecord, origin, "a row before the header line (address,...)");
            continue;
        };
        match row(h, &r.fields, origin) {
            Ok(Some(row)) => each(row),
            Ok(None) => {}
            Err(why) => w.add(WarningKind::BadRecord, origin, why),
        }
    }
    Ok(())
}

fn row(h: &HashMap<String, usize>, f: &[String], origin: Origin) -> Result<Option<Row>, String> {
    if f.len() < h.len() {
        return Err(format!("{} columns where the header has {}", f.len(), h.len()));
    }
    let col = |name: &str| h.get(name).and_then(|&i| f.get(i)).map(|v| v.replace("&#x2c", ",")).unwrap_or_default();
    let num = |name: &str| col(name).trim().parse::<u64>().map_err(|_| format!("{name} is not a number"));
    let address = col("address");
    let mut prefix = prefix_of(&address).ok_or_else(|| format!("{address:?} is not an address"))?;
    // lease6: IA_PD rows (lease_type 2) hold a delegated prefix.
    if prefix.family == Family::V6 && col("lease_type").trim() == "2" {
        let len: u8 = col("prefix_len").trim().parse().map_err(|_| "prefix_len is not a number".to_string())?;
        prefix = prefix_of(&format!("{address}/{len}")).ok_or_else(|| format!("{address}/{len} is not a prefix"))?;
    }
    let valid = num("valid_lifetime")?;
    let expire = num("expire")?;
    let expire_ms = secs_ms(expire).ok_or("expire out of range")?;
    let start_ms = secs_ms(expire.saturating_sub(valid)).ok_or("expire out of range")?;
    let state = col("state").trim().parse::<u64>().unwrap_or(0);
    let (circuit_id, remote_id) = relay_info(&col("user_context"));
    let (circuit_id, remote_id) = (nonempty(circuit_id), nonempty(remote_id));
    let subscriber = remote_id
        .clone()
        .map(|r| (r, SubscriberKind::RemoteId))
        .or_else(|| circuit_id.clone().map(|c| (c, SubscriberKind::CircuitId)))
        .or_else(|| Some(col("hwaddr")).filter(|v| !v.is_empty()).map(|v| (v, SubscriberKind::HardwareAddress)))
        .or_else(|| Some(col("client_id")).filter(|v| !v.is_empty()).map(|v| (v, SubscriberKind::ClientId)))
        .or_else(|| Some(col("duid")).filter(|v| !v.is_empty() && v != "00").map(|v| (v, SubscriberKind::Duid)));
    Ok(Some(Row {
        prefix,
        start_ms,
        expire_ms,
        released: valid == 0,
        declined: state == 1,
        subscriber,
        remote_id,
        circuit_id,
        hostname: col("hostname"),
        origin,
    }))
}

/// Option 82 from Kea's user context: `{"ISC": {"relay-agent-info": ...}}`,
/// either the option's hex (older Kea) or an object with `sub-options`
/// (hex), `remote-id` and `circuit-id` (hex).
fn relay_info(ctx: &str) -> (Option<String>, Option<String>) {
    if ctx.trim().is_empty() {
        return (None, None);
    }
    let Ok(v) = serde_json::from_str::<serde_json::Value>(ctx) else { return (None, None) };
    let rai = &v["ISC"]["relay-agent-info"];
    let hex = |v: &serde_json::Value| v.as_str().and_then(unhex);
    if let Some(b) = hex(rai) {
        return option82(&b);
    }
    let (mut c, mut r) = rai.get("sub-options").and_then(hex).map(|b| option82(&b)).unwrap_or_default();
    if let Some(b) = rai.get("remote-id").and_then(hex) {
        r = Some(super::printable(&b));
    }
    if let Some(b) = rai.get("circuit-id").and_then(hex) {
        c = Some(super::printable(&b));
    }
    (c, r)
}

/// Rows of every file, oldest first, into leases per address.
pub fn sessions(rows: Vec<Row>) -> Vec<Session> {
    let mut t = Timeline::new(Source::Kea);
    for r in rows {
        t.row(r);
    }
    t.finish().iter().collect()
}

/// Per address, in journal order: each lease runs until the next row for
/// the address starts; renewals by the same subscriber extend one session.
/// Rows are taken as they are read and only the leases kept, compactly.
pub struct Timeline {
    source: Source,
    store: Store,
    /// The last session of each prefix, by number; it is open (the
    /// prefix's current lease) while `current` says so.
    last: Slots,
    current: Vec<bool>,
}

fn prefix_hash(p: &Prefix) -> u64 {
    crate::window::mix(p.addr ^ (u128::from(p.len) << 120) ^ (u128::from(p.family == Family::V6) << 127))
}

impl Timeline {
    pub fn new(source: Source) -> Timeline {
        Timeline { source, store: Store::default(), last: Slots::default(), current: Vec::new() }
    }

    fn prefix(&self, i: u32) -> Option<&Prefix> {
        self.store.prefixes_of(&self.store.recs[i as usize]).first()
    }

    /// Applies the next row of the journal.
    pub fn row(&mut self, r: Row) {
        let hash = prefix_hash(&r.prefix);
        let prev = self.last.find(hash, |i| self.prefix(i) == Some(&r.prefix)).filter(|&i| self.current[i as usize]);
        if r.declined {
            if let Some(i) = prev {
                let s = &mut self.store.recs[i as usize];
                if r.start_ms > s.start_ms && r.start_ms < s.end_ms {
                    s.end_ms = r.start_ms;
                }
                self.current[i as usize] = false;
            }
            return;
        }
        if r.released {
            // The holder is gone, at the row's expire if that is a time
            // after the lease began (Kea's release rows may carry the
            // lease's start there, which says nothing).
            match prev {
                Some(i) => {
                    let s = &mut self.store.recs[i as usize];
                    if r.expire_ms > s.start_ms && r.expire_ms < s.end_ms {
                        s.end_ms = r.expire_ms;
                    }
                    self.current[i as usize] = false;
                    return;
                }
                // The first word on this lease is that it ended (dhcpd's
                // free or released lease): it still says who held it when.
                None if r.expire_ms > r.start_ms => {}
                None => return,
            }
        }
        let Some((subscriber, kind)) = &r.subscriber else { return };
        if let Some(i) = prev {
            let same = self.store.strings.get(self.store.recs[i as usize].subscriber) == subscriber;
            let s = &mut self.store.recs[i as usize];
            if same && r.start_ms <= s.end_ms && r.start_ms >= s.start_ms {
                // The same client renewing (or Kea reclaiming it).
                s.end_ms = r.expire_ms.max(s.end_ms);
                return;
            }
            if r.start_ms < s.end_ms {
                s.end_ms = r.start_ms.max(s.start_ms);
            }
            self.current[i as usize] = false;
        }
        // The id is the prefix and the host name: only the name is stored.
        let Some(host) = self.store.strings.intern(&r.hostname) else { return };
        let Some(i) = self.store.push_ids(
            self.source,
            *kind,
            subscriber,
            LEASE_ID,
            host,
            r.remote_id.as_deref(),
            r.circuit_id.as_deref(),
            &[r.prefix],
            r.start_ms,
            // A journal row never yields a span that ends before it starts.
            r.expire_ms.max(r.start_ms),
            r.origin,
        ) else {
            return;
        };
        self.current.push(!r.released);
        if !r.released {
            let Timeline { store, last, .. } = self;
            let first = |j: u32| store.prefixes_of(&store.recs[j as usize]).first().copied();
            last.replace(hash, i, |j| first(j) == Some(r.prefix), |j| first(j).map_or(0, |p| prefix_hash(&p)));
        }
    }

    pub fn finish(self) -> Store {
        self.store
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const V4: &str = "address,hwaddr,client_id,valid_lifetime,expire,subnet_id,fqdn_fwd,fqdn_rev,hostname,state,user_context
10.0.0.10,02:00:00:00:00:01,01:02:00:00:00:00:01,3600,1764003600,1,0,0,pc1,0,
10.0.0.10,02:00:00:00:00:01,01:02:00:00:00:00:01,3600,1764005400,1,0,0,pc1,0,
10.0.0.10,02:00:00:00:00:02,,3600,1764009000,1,0,0,a&#x2cb,0,{ \"ISC\": { \"relay-agent-info\": { \"sub-options\": \"0x0104657468310206414243444546\" } } }
10.0.0.11,02:00:00:00:00:03,,3600,1764003600,1,0,0,,0,
10.0.0.11,02:00:00:00:00:03,,0,1764001800,1,0,0,,0,
10.0.0.12,02:00:00:00:00:04,,3600,1764003600,1,0,0,,0,
10.0.0.12,02:00:00:00:00:04,,3600,1764003600,1,0,0,,2,
10.0.0.13,02:00:00:00:00:05,,3600";

    #[test]
    fn the_last_row_for_an_address_wins() {
        let mut w = Warnings::default();
        let mut rows = Vec::new();
        parse(V4, 0, &mut rows, &mut w);
        assert_eq!(rows.len(), 7);
        assert_eq!(w.count(WarningKind::Truncated), 1);
        assert_eq!(w.named[0].origin.line, 9);
        let s = sessions(rows);
        assert_eq!(s.len(), 4);
        // pc1 from 1764000000, renewed to 1764005400, cut at the next
        // holder's start (1764005400).
        assert_eq!(
            (s[0].subscriber.as_str(), s[0].start_ms, s[0].end_ms),
            ("02:00:00:00:00:01", 1_764_000_000_000, Some(1_764_005_400_000))
        );
        assert_eq!(
            (s[1].subscriber.as_str(), s[1].kind, s[1].circuit_id.as_deref()),
            ("ABCDEF", SubscriberKind::RemoteId, Some("eth1"))
        );
        assert_eq!(s[1].id, "10.0.0.10/32 a,b");
        // Released at 1764001800.
        assert_eq!(s[2].end_ms, Some(1_764_001_800_000));
        // Reclaimed (state 2): the same lease.
        assert_eq!((s[3].start_ms, s[3].end_ms), (1_764_000_000_000, Some(1_764_003_600_000)));
    }

    #[test]
    fn an_empty_option82_suboption_names_nobody() {
        // Found by attribution_kea: an empty circuit-id became an empty
        // subscriber name.
        let text = "address,hwaddr,client_id,valid_lifetime,expire,subnet_id,fqdn_fwd,fqdn_rev,hostname,state,user_context\n10.0.0.10,02:00:00:00:00:02,,3600,1764009000,1,0,0,,0,{ \"ISC\": { \"relay-agent-info\": { \"sub-options\": \"0x01000200\" } } }\n";
        let mut rows = Vec::new();
        parse(text, 0, &mut rows, &mut Warnings::default());
        let s = sessions(rows);
        assert_eq!(
            (s[0].subscriber.as_str(), s[0].kind, &s[0].circuit_id),
            ("02:00:00:00:00:02", SubscriberKind::HardwareAddress, &None)
        );
    }

    #[test]
    fn lease6_prefixes() {
        let text = "address,duid,valid_lifetime,expire,subnet_id,pref_lifetime,lease_type,iaid,prefix_len,fqdn_fwd,fqdn_rev,hostname,hwaddr,state,user_context,hwtype,hwaddr_source
2001:db8:1:100::,00:01:00:01:aa,4000,1764004000,1,3000,2,1,56,0,0,,,0,,,
2001:db8::5,00:01:00:01:bb,4000,1764004000,1,3000,0,1,128,0,0,,,0,,,
";
        let mut w = Warnings::default();
        let mut rows = Vec::new();
        parse(text, 0, &mut rows, &mut w);
        assert_eq!(w.total(), 0, "{:?}", w.named);
        let s = sessions(rows);
        assert_eq!(s[0].prefixes[0].to_string(), "2001:db8:1:100::/56");
        assert_eq!((s[0].subscriber.as_str(), s[0].kind), ("00:01:00:01:aa", SubscriberKind::Duid));
        assert_eq!(s[1].prefixes[0].to_string(), "2001:db8::5/128");
    }
}
