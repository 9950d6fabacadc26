//! Capture statistics in one pass: an [`Accumulator`] takes events one at a
//! time and keeps counters keyed by what is distinct (days, sensors, source
//! addresses, recipient domains, bodies), never by event, so memory follows
//! the number of distinct sources and bodies and not the length of the log.
//! Accumulators of disjoint parts of the log [`merge`](Accumulator::merge),
//! so segments can be counted in parallel.
//!
//! Table 1 counts spam: `port25.spampot.message` events that are not probes.
//! Probes (the sensor's `probe: true`, proxy tests a spammer sends itself)
//! are counted apart, as are the other events by kind.

use port25_capture::view::EventView as Event;
use std::collections::{BTreeMap, HashMap};

/// The accumulator's hash maps: foldhash, seeded per process (so keys an
/// attacker chose, recipient domains say, cannot be made to collide in
/// advance), several times faster than SipHash on these short keys; the
/// report spends most of its counting time in these lookups.
pub type Map<K, V> = HashMap<K, V, foldhash::fast::RandomState>;
use std::net::IpAddr;

/// Which events count: a window of UTC days (inclusive) and a set of sensors.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub from: Option<i64>,
    pub to: Option<i64>,
    /// Empty: every sensor.
    pub sensors: Vec<String>,
}

impl Filter {
    pub fn day_ok(&self, day: i64) -> bool {
        self.from.is_none_or(|f| day >= f) && self.to.is_none_or(|t| day <= t)
    }
    pub fn sensor_ok(&self, s: &str) -> bool {
        self.sensors.is_empty() || self.sensors.iter().any(|x| x == s)
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Count {
    pub emails: u64,
    pub recipients: u64,
}

impl Count {
    fn add(&mut self, o: Count) {
        self.emails += o.emails;
        self.recipients += o.recipients;
    }
}

#[derive(Debug, Clone, Copy, Default)]
pub struct Source {
    pub count: Count,
    /// The day of its first spam in the window: dated enrichment looks the
    /// address up as of then.
    pub first_day: i64,
}

#[derive(Debug, Clone, Default)]
pub struct Campaign {
    pub count: Count,
    pub first: String,
    pub last: String,
    pub size: u64,
}

#[derive(Debug, Default)]
pub struct Accumulator {
    pub filter: Filter,
    pub spam: Count,
    pub probes: Count,
    pub first: Option<String>,
    pub last: Option<String>,
    pub per_day: BTreeMap<i64, (Count, u64)>,
    pub per_sensor: BTreeMap<String, (Count, u64)>,
    /// Spam per sensor per day (the series behind both tables above).
    pub sensor_days: Map<String, BTreeMap<i64, u64>>,
    pub sources: Map<IpAddr, Source>,
    pub probe_sources: Map<IpAddr, u64>,
    /// Recipients per domain (lower case).
    pub domains: Map<String, u64>,
    pub proxy_types: BTreeMap<String, u64>,
    pub requested_ports: BTreeMap<u16, u64>,
    /// Proxy handshakes (`proxy.request` and `proxy.refused`) by requested port.
    pub handshake_ports: BTreeMap<u16, u64>,
    pub campaigns: Map<String, Campaign>,
    /// Events in the window by kind.
    pub kinds: BTreeMap<String, u64>,
    /// Messages without a usable source address or time (counted, not lost).
    pub unusable: u64,
    /// Proxy and relay connections (`port25.spampot.connect`) per source
    /// address, with the day of its first connection in the window: the
    /// share from abroad is counted per connection, not per message.
    pub conn_sources: Map<IpAddr, Source>,
    /// Connections whose source is no address.
    pub conn_unusable: u64,
    pub conn_per_day: BTreeMap<i64, u64>,
    /// Bytes on the wire per (sensor, day of the session's close).
    pub wire: BTreeMap<(String, i64), Wire>,
    /// Each sensor's site as its latest event in the window gives it.
    pub sites: Map<String, (String, crate::group::Site)>,
    /// Scratch key for `wire` lookups (reused, so counting a session
    /// allocates nothing once its sensor and day are known).
    wire_key: (String, i64),
    /// The sensor whose site was last looked up and its time in `sites`:
    /// a session's events share a sensor and a time, so most events are
    /// seen to change nothing without hashing the name.
    site_seen: Option<(String, String)>,
}

/// `a < b` as strings (bytes in order), inlined: the strings compared per
/// event are times (24 bytes, differing in their second word), where a call
/// to memcmp costs more than the comparison (memcmp was 7 % of `report
/// build`'s samples).
#[inline]
fn before(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let word = |s: &[u8], i: usize| s.get(i..i + 8).and_then(|w| w.try_into().ok()).map(u64::from_be_bytes);
    let mut i = 0;
    while let (Some(x), Some(y)) = (word(a, i), word(b, i)) {
        if x != y {
            return x < y;
        }
        i += 8;
    }
    a.get(i..).unwrap_or_default().iter().lt(b.get(i..).unwrap_or_default())
}

/// Overwrites `to` with `s`, reusing its allocation.
fn set(to: &mut String, s: &str) {
    to.clear();
    to.push_str(s);
}

/// Sessions and their bytes on the wire (capture format v2 counters).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Wire {
    pub sessions: u64,
    /// Sessions whose close event carries the counters (v2 sensors on
    /// Linux); the others' bytes are unknown, not zero.
    pub counted: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
}

impl Wire {
    pub fn add(&mut self, o: Wire) {
        self.sessions += o.sessions;
        self.counted += o.counted;
        self.bytes_in += o.bytes_in;
        self.bytes_out += o.bytes_out;
    }
}

/// Where an event comes from, for Table 1: a parsed address or none.
fn source_of(e: &Event<'_>) -> Option<IpAddr> {
    e.src_ip.as_deref()?.parse().ok()
}

impl Accumulator {
    pub fn new(filter: Filter) -> Accumulator {
        Accumulator { filter, ..Accumulator::default() }
    }

    pub fn add(&mut self, e: &Event<'_>) {
        let Some(day) = crate::date::parse_day(&e.time) else {
            self.unusable += 1;
            return;
        };
        if !self.filter.day_ok(day) || !self.filter.sensor_ok(&e.sensor) {
            return;
        }
        match self.kinds.get_mut(&*e.event) {
            Some(n) => *n += 1,
            None => {
                self.kinds.insert(e.event.to_string(), 1);
            }
        }
        if let Some(site) = &e.site {
            let seen = self.site_seen.as_ref().is_some_and(|(s, t)| **s == *e.sensor && !before(t, &e.time));
            if !seen {
                let latest = match self.sites.get_mut(&*e.sensor) {
                    Some((t, _)) if !before(t, &e.time) => t.as_str(),
                    // Times rise along the log: this is most events. The
                    // strings are overwritten in place, not allocated anew.
                    Some((t, s)) => {
                        set(t, &e.time);
                        if !s.is(site) {
                            *s = crate::group::Site::of(site);
                        }
                        t.as_str()
                    }
                    None => {
                        self.sites.insert(e.sensor.to_string(), (e.time.to_string(), crate::group::Site::of(site)));
                        &*e.time
                    }
                };
                let (s, t) = self.site_seen.get_or_insert_default();
                set(s, &e.sensor);
                set(t, latest);
            }
        }
        match &*e.event {
            "port25.spampot.message" => {}
            "port25.spampot.connect" => {
                *self.conn_per_day.entry(day).or_default() += 1;
                match source_of(e) {
                    Some(ip) => {
                        let s =
                            self.conn_sources.entry(ip).or_insert(Source { count: Count::default(), first_day: day });
                        s.count.emails += 1;
                        s.first_day = s.first_day.min(day);
                    }
                    None => self.conn_unusable += 1,
                }
                return;
            }
            "port25.spampot.session.closed" => {
                let w = Wire {
                    sessions: 1,
                    counted: u64::from(e.bytes_in.is_some() && e.bytes_out.is_some()),
                    bytes_in: e.bytes_in.unwrap_or(0),
                    bytes_out: e.bytes_out.unwrap_or(0),
                };
                // Looked up with a reused key: no allocation per session.
                set(&mut self.wire_key.0, &e.sensor);
                self.wire_key.1 = day;
                match self.wire.get_mut(&self.wire_key) {
                    Some(x) => x.add(w),
                    None => {
                        self.wire.insert(self.wire_key.clone(), w);
                    }
                }
                return;
            }
            "port25.spampot.proxy.request" | "port25.spampot.proxy.refused" => {
                if let Some(r) = &e.requested {
                    *self.handshake_ports.entry(r.port).or_default() += 1;
                }
                return;
            }
            _ => return,
        }
        let c = Count { emails: 1, recipients: e.rcpt_to.len() as u64 };
        let src = source_of(e);
        if e.probe == Some(true) {
            self.probes.add(c);
            self.per_day.entry(day).or_default().1 += 1;
            self.per_sensor.entry(e.sensor.to_string()).or_default().1 += 1;
            if let Some(ip) = src {
                *self.probe_sources.entry(ip).or_default() += 1;
            }
            return;
        }
        let Some(ip) = src else {
            self.unusable += 1;
            return;
        };
        self.spam.add(c);
        if self.first.as_deref().is_none_or(|f| before(&e.time, f)) {
            set(self.first.get_or_insert_default(), &e.time);
        }
        if self.last.as_deref().is_none_or(|l| before(l, &e.time)) {
            set(self.last.get_or_insert_default(), &e.time);
        }
        self.per_day.entry(day).or_default().0.add(c);
        match self.per_sensor.get_mut(&*e.sensor) {
            Some(s) => s.0.add(c),
            None => {
                self.per_sensor.insert(e.sensor.to_string(), (c, 0));
            }
        }
        match self.sensor_days.get_mut(&*e.sensor) {
            Some(m) => *m.entry(day).or_default() += 1,
            None => {
                self.sensor_days.insert(e.sensor.to_string(), BTreeMap::from([(day, 1)]));
            }
        }
        let s = self.sources.entry(ip).or_insert(Source { count: Count::default(), first_day: day });
        s.count.add(c);
        s.first_day = s.first_day.min(day);
        for r in &e.rcpt_to {
            // The last '@', found by a plain loop that inlines: recipients
            // are short, and `rsplit_once` called core's memrchr once per
            // recipient (3 % of report build's perf samples at 46 M recipients).
            let domain = match r.bytes().rposition(|b| b == b'@') {
                Some(at) => r.get(at + 1..).unwrap_or(""),
                None => "",
            }
            .trim_end_matches('.');
            // Counted in lower case: look up in lower case too (a mixed-case
            // domain once reset the lower-case one's count to 1).
            let lower;
            let domain = if domain.bytes().any(|b| b.is_ascii_uppercase()) {
                lower = domain.to_ascii_lowercase();
                lower.as_str()
            } else {
                domain
            };
            match self.domains.get_mut(domain) {
                Some(n) => *n += 1,
                None => {
                    self.domains.insert(domain.to_owned(), 1);
                }
            }
        }
        if let Some(t) = &e.proxy_type {
            match self.proxy_types.get_mut(&**t) {
                Some(n) => *n += 1,
                None => {
                    self.proxy_types.insert(t.to_string(), 1);
                }
            }
        } else if let Some(p) = &e.protocol {
            *self.proxy_types.entry(format!("({p})")).or_default() += 1;
        }
        if let Some(r) = &e.requested {
            *self.requested_ports.entry(r.port).or_default() += 1;
        }
        if let Some(d) = &e.digest {
            match self.campaigns.get_mut(&**d) {
                Some(k) => {
                    k.count.add(c);
                    if before(&e.time, &k.first) {
                        set(&mut k.first, &e.time);
                    }
                    if before(&k.last, &e.time) {
                        set(&mut k.last, &e.time);
                    }
                }
                None => {
                    let k = Campaign {
                        count: c,
                        first: e.time.to_string(),
                        last: e.time.to_string(),
                        size: e.size.unwrap_or(0),
                    };
                    self.campaigns.insert(d.to_string(), k);
                }
            }
        }
    }

    /// Adds another accumulator's counts (of a disjoint part of the log).
    pub fn merge(&mut self, o: Accumulator) {
        self.spam.add(o.spam);
        self.probes.add(o.probes);
        for (mine, theirs, earlier) in [(&mut self.first, o.first, true), (&mut self.last, o.last, false)] {
            if let Some(t) = theirs {
                if mine.as_ref().is_none_or(|m| if earlier { t < *m } else { t > *m }) {
                    *mine = Some(t);
                }
            }
        }
        for (k, v) in o.per_day {
            let e = self.per_day.entry(k).or_default();
            e.0.add(v.0);
            e.1 += v.1;
        }
        for (k, v) in o.per_sensor {
            let e = self.per_sensor.entry(k).or_default();
            e.0.add(v.0);
            e.1 += v.1;
        }
        for (k, v) in o.sensor_days {
            let mine = self.sensor_days.entry(k).or_default();
            for (d, n) in v {
                *mine.entry(d).or_default() += n;
            }
        }
        for (k, v) in o.sources {
            let e = self.sources.entry(k).or_insert(Source { count: Count::default(), first_day: v.first_day });
            e.count.add(v.count);
            e.first_day = e.first_day.min(v.first_day);
        }
        for (k, v) in o.probe_sources {
            *self.probe_sources.entry(k).or_default() += v;
        }
        for (k, v) in o.domains {
            *self.domains.entry(k).or_default() += v;
        }
        for (k, v) in o.proxy_types {
            *self.proxy_types.entry(k).or_default() += v;
        }
        for (k, v) in o.requested_ports {
            *self.requested_ports.entry(k).or_default() += v;
        }
        for (k, v) in o.handshake_ports {
            *self.handshake_ports.entry(k).or_default() += v;
        }
        for (k, v) in o.kinds {
            *self.kinds.entry(k).or_default() += v;
        }
        for (d, v) in o.campaigns {
            match self.campaigns.get_mut(&d) {
                Some(k) => {
                    k.count.add(v.count);
                    if v.first < k.first {
                        k.first = v.first;
                    }
                    if v.last > k.last {
                        k.last = v.last;
                    }
                }
                None => {
                    self.campaigns.insert(d, v);
                }
            }
        }
        self.unusable += o.unusable;
        for (k, v) in o.conn_sources {
            let e = self.conn_sources.entry(k).or_insert(Source { count: Count::default(), first_day: v.first_day });
            e.count.add(v.count);
            e.first_day = e.first_day.min(v.first_day);
        }
        self.conn_unusable += o.conn_unusable;
        for (k, v) in o.conn_per_day {
            *self.conn_per_day.entry(k).or_default() += v;
        }
        for (k, v) in o.wire {
            self.wire.entry(k).or_default().add(v);
        }
        for (k, v) in o.sites {
            match self.sites.get_mut(&k) {
                Some(mine) if mine.0 >= v.0 => {}
                Some(mine) => *mine = v,
                None => {
                    self.sites.insert(k, v);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(rcpt: &str) -> String {
        format!(
            r#"{{"v":2,"event":"port25.spampot.message","sensor":"s1","time":"2007-01-01T00:00:00.000Z","src_ip":"192.0.2.1","rcpt_to":["{rcpt}"]}}"#
        )
    }

    /// The inlined comparison orders as `str` does, whatever the lengths
    /// and wherever the first difference falls.
    #[test]
    fn before_is_str_order() {
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        for _ in 0..100_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            // Two times (or time-like strings) that share a prefix.
            let a = format!("2006-06-10T00:{:02}:{:02}.{:03}Z", x % 3, (x >> 8) % 3, (x >> 16) % 2);
            let mut b = a.clone();
            b.truncate((x >> 24) as usize % (a.len() + 1));
            for k in 0..(x >> 40) % 3 {
                b.push(char::from(b"0123456789:.-TZ"[(x >> (44 + 4 * k)) as usize % 15]));
            }
            for (p, q) in [(&a, &b), (&b, &a), (&a, &a)] {
                assert_eq!(before(p, q), p < q, "{p:?} {q:?}");
            }
        }
    }

    /// A sensor's site is the one of its latest event, whichever sensors'
    /// events come between and in whatever order its own events come.
    #[test]
    fn a_sensors_site_is_its_latest_events() {
        let event = |sensor: &str, time: &str, city: &str| {
            format!(
                r#"{{"v":2,"event":"port25.spampot.connect","sensor":"{sensor}","time":"2007-01-01T{time}.000Z","src_ip":"192.0.2.1","site":{{"city":"{city}"}}}}"#
            )
        };
        let mut acc = Accumulator::default();
        for (sensor, time, city) in [
            ("a", "00:00:02", "Recife"),
            ("a", "00:00:02", "Recife"),
            ("b", "00:00:01", "Natal"),
            // Older than a's latest: not a's site.
            ("a", "00:00:01", "Belem"),
            ("b", "00:00:03", "Manaus"),
            ("a", "00:00:01", "Belem"),
            ("b", "00:00:02", "Natal"),
        ] {
            acc.add(&serde_json::from_str(&event(sensor, time, city)).unwrap());
        }
        let city = |acc: &Accumulator, s: &str| acc.sites[s].1.city.clone();
        assert_eq!(city(&acc, "a").as_deref(), Some("Recife"));
        assert_eq!(city(&acc, "b").as_deref(), Some("Manaus"));
        acc.add(&serde_json::from_str(&event("a", "00:00:09", "Belem")).unwrap());
        assert_eq!(city(&acc, "a").as_deref(), Some("Belem"));
        assert_eq!(acc.sites["a"].0, "2007-01-01T00:00:09.000Z");
        // Right after its own event: a newer time still counts.
        acc.add(&serde_json::from_str(&event("a", "00:00:10", "Olinda")).unwrap());
        assert_eq!(city(&acc, "a").as_deref(), Some("Olinda"));
    }

    #[test]
    fn recipient_domains_are_counted_in_lower_case_whatever_the_order() {
        let mut acc = Accumulator::default();
        for r in ["a@example.com", "b@example.com", "c@Example.COM", "d@EXAMPLE.com.", "e@other.example"] {
            let line = message(r);
            acc.add(&serde_json::from_str(&line).unwrap());
        }
        assert_eq!(acc.domains["example.com"], 4, "{:?}", acc.domains);
        assert_eq!(acc.domains.len(), 2);
    }
}
