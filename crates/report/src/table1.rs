//! From counts to the report: the white paper's Table 1 for the chosen
//! window and sensors, and every other table of the capture report (series
//! per day and per sensor, origin by country, AS and address, destination
//! by recipient domain and its country, proxy types and ports, campaigns).
//!
//! Enrichment happens here, once per distinct source address (as of the
//! day of its first spam in the window), not once per event.

use crate::enrich::{country_str, Enricher};
use crate::scan::Damage;
use crate::stats::Accumulator;
use crate::table::{pct, Table};
use serde::Serialize;
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};

#[derive(Debug, Clone)]
pub struct Options {
    /// Rows in top-N tables.
    pub top: usize,
    /// `--event` markers, sorted.
    pub markers: Vec<crate::markers::Marker>,
    /// The sensors' country: destination outside it is "abroad" (the
    /// white paper's 94 %).
    pub home: String,
    pub near_duplicates: bool,
    pub similarity: f64,
}

impl Default for Options {
    fn default() -> Options {
        Options { top: 20, markers: Vec::new(), home: "BR".into(), near_duplicates: true, similarity: 0.7 }
    }
}

/// Table 1, plus the probes counted apart.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Table1 {
    pub start: Option<String>,
    pub end: Option<String>,
    /// Calendar days from start to end, both counted (Table 1's 466).
    pub days: u64,
    /// Days with at least one spam.
    pub days_with_data: u64,
    pub emails: u64,
    pub recipients: u64,
    pub recipients_per_spam: f64,
    pub emails_per_day: u64,
    pub unique_ips: u64,
    /// None without AS enrichment.
    pub unique_asns: Option<u64>,
    /// None without country enrichment.
    pub countries: Option<u64>,
    pub probes: u64,
    pub probe_recipients: u64,
    pub probe_sources: u64,
    /// Proxy and relay connections (`port25.spampot.connect`), spam or not.
    pub connections: u64,
    /// Share of the connections placed in a country that came from outside
    /// `--home` (the white paper's 99.84 %); None without country
    /// enrichment or connections.
    pub connections_abroad_pct: Option<f64>,
    pub connections_abroad: Option<u64>,
    /// Connections no enrichment layer places in a country (left out of
    /// the share).
    pub connections_unknown_country: Option<u64>,
    /// Bytes on the wire (capture format v2 session counters).
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub sessions: u64,
    /// Sessions without wire counters (version 1 captures): their bytes
    /// are unknown and not in the two figures above.
    pub sessions_without_counters: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct CaptureReport {
    pub table1: Table1,
    /// Shares that the seeds quote.
    pub top5_country_share: Option<f64>,
    pub abroad_recipient_share: Option<f64>,
    pub enrichment: Vec<crate::enrich::LayerInfo>,
    pub notes: Vec<String>,
    pub damage: Damage,
    pub tables: Vec<Table>,
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// Country of a recipient domain by its top-level domain: a ccTLD names
/// one (`.uk` is GB); generic TLDs (`.com`, `.net`...) name none.
pub fn domain_country(domain: &str) -> Option<String> {
    let tld = domain.rsplit('.').next()?.to_ascii_uppercase();
    if tld.len() != 2 || !tld.bytes().all(|b| b.is_ascii_alphabetic()) {
        return None;
    }
    Some(if tld == "UK" { "GB".into() } else { tld })
}

fn top<K: Clone + Ord, S>(m: &HashMap<K, u64, S>, n: usize) -> Vec<(K, u64)> {
    let mut v: Vec<(K, u64)> = m.iter().map(|(k, c)| (k.clone(), *c)).collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    v.truncate(n);
    v
}

/// Spam counts by origin, from one enrichment lookup per source address.
/// Empty without enrichment: the origin tables are then left out, and the
/// address table shows no country or AS.
#[derive(Default)]
struct Origin {
    by_country: HashMap<String, u64>,
    ips_by_country: HashMap<String, u64>,
    by_asn: HashMap<u32, u64>,
    ips_by_asn: HashMap<u32, u64>,
    /// An AS's country, as of the first of its addresses placed in one.
    asn_country: HashMap<u32, String>,
    ip_info: HashMap<std::net::IpAddr, crate::enrich::Info>,
}

/// Connections by where they came from, relative to `--home`.
#[derive(Default)]
struct ConnectionOrigin {
    abroad: u64,
    home: u64,
    /// No layer places the address in a country (or it was unusable).
    unknown: u64,
}

pub fn build(
    acc: &Accumulator,
    damage: Damage,
    enricher: &Enricher,
    bodies: Option<&port25_capture::bodies::Bodies>,
    opt: &Options,
) -> CaptureReport {
    // The notes keep the order the sections are computed in: tests and
    // readers see them in the report as before the split.
    let mut notes = Vec::new();
    let enriched = !enricher.is_empty();
    if !enriched {
        notes.push("No enrichment given (--enrich): unique ASes, countries of origin and the AS and country tables are not computed.".into());
    }
    let (origin, conn) = if enriched {
        (origin_counts(acc, enricher, &mut notes), connection_origin(acc, enricher, &opt.home, &mut notes))
    } else {
        (Origin::default(), ConnectionOrigin::default())
    };
    let wire = wire_total(acc, &mut notes);
    let table1 = table1_figures(acc, enriched, &origin, &conn, &wire);

    let mut tables = vec![table1_table(&table1)];
    tables.extend(time_and_sensor_tables(acc));
    let (origin_tables, top5) = origin_tables(acc, enriched, &origin, opt);
    tables.extend(origin_tables);
    let (dest_tables, abroad) = destination_tables(acc, opt, &mut notes);
    tables.extend(dest_tables);
    tables.extend(proxy_tables(acc));
    tables.extend(campaign_tables(acc, bodies, opt, &mut notes));
    tables.extend(bandwidth_tables(acc));
    tables.push(sensor_sites_table(acc));
    if !opt.markers.is_empty() {
        tables.push(crate::markers::table("before_after", &opt.markers, &capture_series(acc)));
    }
    let mut t = Table::new("event_kinds", "Events in the window by kind", &["event", "count"]);
    for (k, n) in &acc.kinds {
        t.push(vec![json!(k), json!(n)]);
    }
    tables.push(t);
    damage_notes(acc, &damage, &mut notes);
    CaptureReport {
        table1,
        top5_country_share: top5,
        abroad_recipient_share: abroad,
        enrichment: enricher.describe(),
        notes,
        damage,
        tables,
    }
}

/// Origin of the spam: one lookup per source address, as of the day of its
/// first spam in the window (not one per event: that is what keeps a
/// 100 M-event report fast).
fn origin_counts(acc: &Accumulator, enricher: &Enricher, notes: &mut Vec<String>) -> Origin {
    let mut o = Origin::default();
    let (mut no_country, mut no_asn) = (0u64, 0u64);
    for (ip, s) in &acc.sources {
        let info = enricher.lookup(*ip, s.first_day);
        match info.country {
            Some(c) => {
                let c = country_str(c);
                *o.by_country.entry(c.clone()).or_default() += s.count.emails;
                *o.ips_by_country.entry(c.clone()).or_default() += 1;
                for a in &info.asns {
                    o.asn_country.entry(*a).or_insert(c.clone());
                }
            }
            None => no_country += s.count.emails,
        }
        if info.asns.is_empty() {
            no_asn += s.count.emails;
        }
        // A multi-origin prefix credits each of its ASes.
        for a in &info.asns {
            *o.by_asn.entry(*a).or_default() += s.count.emails;
            *o.ips_by_asn.entry(*a).or_default() += 1;
        }
        o.ip_info.insert(*ip, info);
    }
    if no_country > 0 {
        notes.push(format!("{no_country} emails came from addresses no enrichment source places in a country."));
    }
    if no_asn > 0 {
        notes.push(format!("{no_asn} emails came from addresses no enrichment source maps to an AS."));
    }
    o
}

/// Connections: one lookup per connecting address, as of its first
/// connection in the window.
fn connection_origin(acc: &Accumulator, enricher: &Enricher, home: &str, notes: &mut Vec<String>) -> ConnectionOrigin {
    let mut c = ConnectionOrigin::default();
    for (ip, s) in &acc.conn_sources {
        match enricher.lookup(*ip, s.first_day).country {
            Some(cc) if country_str(cc) == home => c.home += s.count.emails,
            Some(_) => c.abroad += s.count.emails,
            None => c.unknown += s.count.emails,
        }
    }
    c.unknown += acc.conn_unusable;
    if c.unknown > 0 {
        notes.push(format!(
            "{} connections came from addresses no enrichment source places in a country: not in the share from abroad.",
            c.unknown
        ));
    }
    c
}

/// Wire counters over all sensors and days; sessions without counters are
/// said in a note, as their bytes are unknown, not zero.
fn wire_total(acc: &Accumulator, notes: &mut Vec<String>) -> crate::stats::Wire {
    let mut wire = crate::stats::Wire::default();
    for w in acc.wire.values() {
        wire.add(*w);
    }
    if wire.sessions > wire.counted {
        notes.push(format!(
            "{} of {} sessions have no wire counters (capture format version 1, or a kernel that does not count): their bytes are unknown and not in the bandwidth figures.",
            wire.sessions - wire.counted,
            wire.sessions
        ));
    }
    wire
}

/// The figures of Table 1; those that need enrichment are None without it.
fn table1_figures(
    acc: &Accumulator,
    enriched: bool,
    origin: &Origin,
    conn: &ConnectionOrigin,
    wire: &crate::stats::Wire,
) -> Table1 {
    let day_of = |t: &Option<String>| t.as_deref().and_then(crate::date::parse_day);
    let (start, end) = (day_of(&acc.first), day_of(&acc.last));
    let days = match (start, end) {
        (Some(s), Some(e)) => (e - s + 1) as u64,
        _ => 0,
    };
    let spam = acc.spam;
    Table1 {
        start: start.map(crate::date::format_day),
        end: end.map(crate::date::format_day),
        days,
        days_with_data: acc.per_day.values().filter(|c| c.0.emails > 0).count() as u64,
        emails: spam.emails,
        recipients: spam.recipients,
        recipients_per_spam: if spam.emails == 0 { 0.0 } else { round2(spam.recipients as f64 / spam.emails as f64) },
        emails_per_day: spam.emails.checked_div(days).unwrap_or(0),
        unique_ips: acc.sources.len() as u64,
        unique_asns: enriched.then_some(origin.by_asn.len() as u64),
        countries: enriched.then_some(origin.by_country.len() as u64),
        probes: acc.probes.emails,
        probe_recipients: acc.probes.recipients,
        probe_sources: acc.probe_sources.len() as u64,
        connections: acc.conn_per_day.values().sum::<u64>(),
        connections_abroad_pct: (enriched && conn.abroad + conn.home > 0)
            .then(|| round2(conn.abroad as f64 * 100.0 / (conn.abroad + conn.home) as f64)),
        connections_abroad: enriched.then_some(conn.abroad),
        connections_unknown_country: enriched.then_some(conn.unknown),
        bytes_in: wire.bytes_in,
        bytes_out: wire.bytes_out,
        sessions: wire.sessions,
        sessions_without_counters: wire.sessions - wire.counted,
    }
}

/// Table 1 as a table, in the white paper's order and with its wording.
fn table1_table(table1: &Table1) -> Table {
    let mut t = Table::new("table1", "Table 1: captured spam (probes counted apart)", &["figure", "value"]);
    let rows: [(&str, Value); 19] = [
        ("Start of data collection", json!(table1.start)),
        ("End of data collection", json!(table1.end)),
        ("Days of data collected", json!(table1.days)),
        ("Days with spam", json!(table1.days_with_data)),
        ("Emails collected", json!(table1.emails)),
        ("Recipients", json!(table1.recipients)),
        ("Recipients per spam", json!(table1.recipients_per_spam)),
        ("Emails per day", json!(table1.emails_per_day)),
        ("Unique IPs that sent spam", json!(table1.unique_ips)),
        ("Unique ASes that sent spam", json!(table1.unique_asns)),
        ("Countries of origin", json!(table1.countries)),
        ("Probes (proxy tests, not counted above)", json!(table1.probes)),
        ("Probe recipients", json!(table1.probe_recipients)),
        ("IPs that sent probes", json!(table1.probe_sources)),
        ("Proxy and relay connections", json!(table1.connections)),
        ("Connections from abroad (%)", json!(table1.connections_abroad_pct)),
        ("Bytes received on the wire", json!(table1.bytes_in)),
        ("Bytes sent on the wire", json!(table1.bytes_out)),
        ("Sessions without wire counters", json!(table1.sessions_without_counters)),
    ];
    for (k, v) in rows {
        t.push(vec![json!(k), v]);
    }
    t
}

/// The series: spam and connections per day, spam per sensor and per
/// sensor per day.
fn time_and_sensor_tables(acc: &Accumulator) -> Vec<Table> {
    let spam = acc.spam;
    let mut tables = Vec::new();
    let mut t = Table::new("per_day", "Spam per day", &["day", "emails", "recipients", "probes"]);
    for (d, (c, p)) in &acc.per_day {
        t.push(vec![json!(crate::date::format_day(*d)), json!(c.emails), json!(c.recipients), json!(p)]);
    }
    tables.push(t);
    let mut t = Table::new("connections_per_day", "Proxy and relay connections per day", &["day", "connections"]);
    for (d, n) in &acc.conn_per_day {
        t.push(vec![json!(crate::date::format_day(*d)), json!(n)]);
    }
    tables.push(t);
    let mut t = Table::new("per_sensor", "Spam per sensor", &["sensor", "emails", "recipients", "probes", "share_pct"]);
    for (s, (c, p)) in &acc.per_sensor {
        t.push(vec![json!(s), json!(c.emails), json!(c.recipients), json!(p), pct(c.emails, spam.emails)]);
    }
    tables.push(t);
    let mut t = Table::new("per_sensor_day", "Spam per sensor per day", &["sensor", "day", "emails"]);
    let mut sensors: Vec<&String> = acc.sensor_days.keys().collect();
    sensors.sort();
    for s in sensors {
        for (d, n) in &acc.sensor_days[s] {
            t.push(vec![json!(s), json!(crate::date::format_day(*d)), json!(n)]);
        }
    }
    tables.push(t);
    tables
}

/// Origin tables: top countries and ASes (only with enrichment) and top
/// source addresses; with the top five countries' share of the spam.
fn origin_tables(acc: &Accumulator, enriched: bool, origin: &Origin, opt: &Options) -> (Vec<Table>, Option<f64>) {
    let spam = acc.spam;
    let mut tables = Vec::new();
    let mut top5 = None;
    if enriched {
        let mut t =
            Table::new("top_countries", "Origin: countries", &["rank", "country", "emails", "share_pct", "ips"]);
        let list = top(&origin.by_country, opt.top);
        top5 = Some(round2(list.iter().take(5).map(|x| x.1).sum::<u64>() as f64 * 100.0 / spam.emails.max(1) as f64));
        for (i, (c, n)) in list.iter().enumerate() {
            t.push(vec![json!(i + 1), json!(c), json!(n), pct(*n, spam.emails), json!(origin.ips_by_country[c])]);
        }
        tables.push(t);
        let mut t = Table::new(
            "top_asns",
            "Origin: autonomous systems",
            &["rank", "asn", "country", "emails", "share_pct", "ips"],
        );
        for (i, (a, n)) in top(&origin.by_asn, opt.top).iter().enumerate() {
            t.push(vec![
                json!(i + 1),
                json!(a),
                json!(origin.asn_country.get(a)),
                json!(n),
                pct(*n, spam.emails),
                json!(origin.ips_by_asn[a]),
            ]);
        }
        tables.push(t);
    }
    let per_ip: HashMap<std::net::IpAddr, u64> = acc.sources.iter().map(|(k, v)| (*k, v.count.emails)).collect();
    let mut t =
        Table::new("top_ips", "Origin: source addresses", &["rank", "ip", "country", "asn", "emails", "share_pct"]);
    for (i, (ip, n)) in top(&per_ip, opt.top).iter().enumerate() {
        let info = origin.ip_info.get(ip);
        let cc = info.and_then(|x| x.country).map(country_str);
        let asn =
            info.map(|x| x.asns.iter().map(|a| a.to_string()).collect::<Vec<_>>().join("_")).filter(|s| !s.is_empty());
        t.push(vec![json!(i + 1), json!(ip.to_string()), json!(cc), json!(asn), json!(n), pct(*n, spam.emails)]);
    }
    tables.push(t);
    (tables, top5)
}

/// Destination tables: recipient domains and their ccTLD countries; with
/// the share of recipients abroad from `--home`.
fn destination_tables(acc: &Accumulator, opt: &Options, notes: &mut Vec<String>) -> (Vec<Table>, Option<f64>) {
    let spam = acc.spam;
    let mut tables = Vec::new();
    let mut t =
        Table::new("dest_domains", "Destination: recipient domains", &["rank", "domain", "recipients", "share_pct"]);
    for (i, (d, n)) in top(&acc.domains, opt.top).iter().enumerate() {
        t.push(vec![json!(i + 1), json!(d), json!(n), pct(*n, spam.recipients)]);
    }
    tables.push(t);
    let mut dest: HashMap<String, u64> = HashMap::new();
    for (d, n) in &acc.domains {
        *dest.entry(domain_country(d).unwrap_or_else(|| "gTLD".into())).or_default() += n;
    }
    let home_n = dest.get(&opt.home).copied().unwrap_or(0);
    let abroad =
        (spam.recipients > 0).then(|| round2((spam.recipients - home_n) as f64 * 100.0 / spam.recipients as f64));
    let mut t = Table::new(
        "dest_countries",
        "Destination: country of the recipient domain (ccTLD)",
        &["rank", "country", "recipients", "share_pct"],
    );
    for (i, (c, n)) in top(&dest, usize::MAX).iter().enumerate() {
        t.push(vec![json!(i + 1), json!(c), json!(n), pct(*n, spam.recipients)]);
    }
    tables.push(t);
    notes.push(format!(
        "Destination country is the recipient domain's ccTLD; generic TLDs (.com, .net..., shown as gTLD) are counted as abroad from {} (DNS MX lookup is not done).",
        opt.home
    ));
    (tables, abroad)
}

/// What the spammers asked of the proxy: its type, and the destination
/// ports requested (by spam sent and by handshakes).
fn proxy_tables(acc: &Accumulator) -> Vec<Table> {
    let spam = acc.spam;
    let mut t = Table::new("proxy_types", "Proxy type used for spam", &["proxy_type", "emails", "share_pct"]);
    for (k, n) in &acc.proxy_types {
        t.push(vec![json!(k), json!(n), pct(*n, spam.emails)]);
    }
    let mut ports_table =
        Table::new("requested_ports", "Destination port requested", &["port", "emails", "handshakes"]);
    let ports: std::collections::BTreeSet<u16> =
        acc.requested_ports.keys().chain(acc.handshake_ports.keys()).copied().collect();
    for p in ports {
        ports_table.push(vec![
            json!(p),
            json!(acc.requested_ports.get(&p).copied().unwrap_or(0)),
            json!(acc.handshake_ports.get(&p).copied().unwrap_or(0)),
        ]);
    }
    vec![t, ports_table]
}

/// Bytes on the wire per sensor per day, and per sensor with the mean per
/// day over the days it had sessions.
fn bandwidth_tables(acc: &Accumulator) -> Vec<Table> {
    let mut t = Table::new(
        "bandwidth",
        "Bytes on the wire per sensor per day (sessions closed that day)",
        &["sensor", "day", "sessions", "sessions_counted", "bytes_in", "bytes_out"],
    );
    for ((sensor, day), w) in &acc.wire {
        t.push(vec![
            json!(sensor),
            json!(crate::date::format_day(*day)),
            json!(w.sessions),
            json!(w.counted),
            json!(w.bytes_in),
            json!(w.bytes_out),
        ]);
    }
    let mut per_sensor: BTreeMap<&str, (crate::stats::Wire, u64)> = BTreeMap::new();
    for ((sensor, _), w) in &acc.wire {
        let e = per_sensor.entry(sensor).or_default();
        e.0.add(*w);
        e.1 += 1;
    }
    let mut per_sensor_table = Table::new(
        "bandwidth_per_sensor",
        "Bytes on the wire per sensor (mean per day over the days with sessions)",
        &[
            "sensor",
            "days",
            "sessions",
            "sessions_counted",
            "bytes_in",
            "bytes_out",
            "bytes_in_per_day",
            "bytes_out_per_day",
        ],
    );
    for (sensor, (w, days)) in &per_sensor {
        per_sensor_table.push(vec![
            json!(sensor),
            json!(days),
            json!(w.sessions),
            json!(w.counted),
            json!(w.bytes_in),
            json!(w.bytes_out),
            json!(w.bytes_in / days),
            json!(w.bytes_out / days),
        ]);
    }
    vec![t, per_sensor_table]
}

/// Every sensor seen (by spam or by its [site] record) and where it sits.
fn sensor_sites_table(acc: &Accumulator) -> Table {
    let mut t = Table::new(
        "sensor_sites",
        "Sensors and where they sit ([site] in their configuration)",
        &["sensor", "operator", "asn", "city", "access", "emails"],
    );
    let mut sensors: Vec<&String> = acc.per_sensor.keys().chain(acc.sites.keys()).collect();
    sensors.sort();
    sensors.dedup();
    for s in sensors {
        let site = acc.sites.get(s).map(|x| &x.1);
        t.push(vec![
            json!(s),
            json!(site.and_then(|x| x.operator.clone())),
            json!(site.and_then(|x| x.asn)),
            json!(site.and_then(|x| x.city.clone())),
            json!(site.and_then(|x| x.access.clone())),
            json!(acc.per_sensor.get(s).map_or(0, |x| x.0.emails)),
        ]);
    }
    t
}

/// What was skipped: damaged log lines and events that could not be
/// counted, so that the figures are not taken as complete.
fn damage_notes(acc: &Accumulator, damage: &Damage, notes: &mut Vec<String>) {
    if damage.bad_lines + damage.torn_tails > 0 {
        notes.push(format!(
            "{} bad line(s) and {} torn tail(s) in the capture log were skipped (see damage).",
            damage.bad_lines, damage.torn_tails
        ));
    }
    if acc.unusable > 0 {
        notes.push(format!(
            "{} message event(s) had no usable source address or time and were not counted.",
            acc.unusable
        ));
    }
}

/// The capture's daily series the `--event` markers split.
pub fn capture_series(acc: &Accumulator) -> Vec<crate::markers::Series> {
    let series = |metric: &str, m: BTreeMap<i64, f64>| crate::markers::Series {
        section: "capture".into(),
        metric: metric.into(),
        per: "day",
        points: crate::markers::dense_days(&m),
    };
    let mut bytes_in = BTreeMap::new();
    let mut bytes_out = BTreeMap::new();
    for ((_, d), w) in &acc.wire {
        *bytes_in.entry(*d).or_insert(0.0) += w.bytes_in as f64;
        *bytes_out.entry(*d).or_insert(0.0) += w.bytes_out as f64;
    }
    vec![
        series("spam emails", acc.per_day.iter().map(|(d, c)| (*d, c.0.emails as f64)).collect()),
        series("recipients", acc.per_day.iter().map(|(d, c)| (*d, c.0.recipients as f64)).collect()),
        series("connections", acc.conn_per_day.iter().map(|(d, n)| (*d, *n as f64)).collect()),
        series("bytes in", bytes_in),
        series("bytes out", bytes_out),
    ]
}

/// `--group-by`: the groups side by side (the overall figures are in
/// Table 1; each group also gets every table in its own section).
pub fn groups_table(by: &str, groups: &[(String, CaptureReport)], total: &Table1) -> Table {
    let mut t = Table::new(
        "groups",
        &format!("Sensors grouped by {by}"),
        &[
            "group",
            "emails",
            "share_pct",
            "recipients",
            "emails_per_day",
            "unique_ips",
            "connections",
            "connections_abroad_pct",
            "bytes_in",
            "bytes_out",
            "sessions_without_counters",
        ],
    );
    for (name, r) in groups {
        let g = &r.table1;
        t.push(vec![
            json!(name),
            json!(g.emails),
            pct(g.emails, total.emails),
            json!(g.recipients),
            json!(g.emails_per_day),
            json!(g.unique_ips),
            json!(g.connections),
            json!(g.connections_abroad_pct),
            json!(g.bytes_in),
            json!(g.bytes_out),
            json!(g.sessions_without_counters),
        ]);
    }
    t
}

fn lifetime(first: &str, last: &str) -> Value {
    match (crate::date::parse_day(first), crate::date::parse_day(last)) {
        (Some(a), Some(b)) => json!(b - a + 1),
        _ => Value::Null,
    }
}

/// A near-duplicate cluster: bodies, emails, recipients, first and last time.
type Cluster = (u64, u64, u64, String, String);

/// Exact campaigns (one body digest) and near-duplicate clusters.
fn campaign_tables(
    acc: &Accumulator,
    bodies: Option<&port25_capture::bodies::Bodies>,
    opt: &Options,
    notes: &mut Vec<String>,
) -> Vec<Table> {
    let mut out = Vec::new();
    let mut list: Vec<(&String, &crate::stats::Campaign)> = acc.campaigns.iter().collect();
    list.sort_by(|a, b| b.1.count.emails.cmp(&a.1.count.emails).then_with(|| a.0.cmp(b.0)));
    let mut t = Table::new(
        "campaigns",
        "Campaigns: identical bodies (SHA-256)",
        &["rank", "digest", "emails", "recipients", "size", "first", "last", "lifetime_days"],
    );
    for (i, (d, c)) in list.iter().take(opt.top).enumerate() {
        t.push(vec![
            json!(i + 1),
            json!(d),
            json!(c.count.emails),
            json!(c.count.recipients),
            json!(c.size),
            json!(c.first),
            json!(c.last),
            lifetime(&c.first, &c.last),
        ]);
    }
    out.push(t);
    let Some(bodies) = bodies.filter(|_| opt.near_duplicates) else {
        notes.push("Near-duplicate campaigns not computed (no bodies directory, or --no-near-duplicates).".into());
        return out;
    };
    let mut sigs = Vec::new();
    let mut members = Vec::new();
    let mut missing = 0u64;
    for (d, c) in &list {
        match bodies.get(d) {
            Ok(body) => {
                sigs.push(crate::campaigns::signature(&body));
                members.push((*d, *c));
            }
            Err(_) => missing += 1,
        }
    }
    if missing > 0 {
        notes.push(format!(
            "{missing} bodies were missing or unreadable (quota rotation?): left out of near-duplicate clustering."
        ));
    }
    let ids = crate::campaigns::cluster(&sigs, opt.similarity);
    let mut clusters: BTreeMap<usize, Cluster> = BTreeMap::new();
    for (i, id) in ids.iter().enumerate() {
        let c = members[i].1;
        let e = clusters.entry(*id).or_insert((0, 0, 0, c.first.clone(), c.last.clone()));
        e.0 += 1;
        e.1 += c.count.emails;
        e.2 += c.count.recipients;
        if c.first < e.3 {
            e.3 = c.first.clone();
        }
        if c.last > e.4 {
            e.4 = c.last.clone();
        }
    }
    let mut cl: Vec<(usize, Cluster)> = clusters.into_iter().collect();
    cl.sort_by(|a, b| b.1 .1.cmp(&a.1 .1).then(a.0.cmp(&b.0)));
    let mut t = Table::new(
        "near_duplicates",
        &format!("Campaigns: near-duplicate bodies (MinHash, similarity >= {})", opt.similarity),
        &["rank", "example_digest", "bodies", "emails", "recipients", "first", "last", "lifetime_days"],
    );
    for (i, (id, (n, e, r, f, l))) in cl.iter().take(opt.top).enumerate() {
        t.push(vec![
            json!(i + 1),
            json!(members[*id].0),
            json!(n),
            json!(e),
            json!(r),
            json!(f),
            json!(l),
            lifetime(f, l),
        ]);
    }
    out.push(t);
    notes.push(format!("{} distinct bodies form {} near-duplicate clusters.", members.len(), cl.len()));
    out
}
