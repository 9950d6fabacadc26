//! The synthetic capture: a seeded, deterministic SpamPots capture store
//! with known answers, for tests and benchmarks.
//!
//! It writes a real store through `port25_capture` (the event log writer and
//! the body store), plus the enrichment files that describe its address
//! plan (`geoip.csv` in tor-geoipdb's format, `routeviews.pfx2as` in
//! CAIDA's) and `truth.json`: what a correct report must say, tallied while
//! generating (not by reading the store back, so the report is checked
//! against an independent count).
//!
//! Shape of the traffic, after the seeds: a few countries send almost
//! everything (TW, CN, US, CA, JP first), sources are Zipf-distributed (a
//! few IPs send much), each source's first message is a proxy test (a
//! probe, flagged as the sensor flags it), campaigns reuse a handful of
//! body variants (exact duplicates by digest, near-duplicates across the
//! variants of one campaign), recipients mostly abroad (about 6 % `.br`).

use crate::rng::Rng;
use port25_capture::bodies::Bodies;
use port25_capture::log::Log;
use port25_capture::{Destination, Event};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Write;
use std::path::Path;

#[derive(Debug, Clone)]
pub struct Params {
    pub seed: u64,
    /// First day (days since 1970-01-01).
    pub start_day: i64,
    pub days: u32,
    pub sensors: u32,
    /// Source IPs (each sends at least its probe).
    pub sources: u32,
    /// Spam messages (not counting probes).
    pub messages: u64,
    pub campaigns: u32,
    /// Body variants per campaign (near-duplicates of each other).
    pub variants: u32,
    pub asns: u32,
}

impl Default for Params {
    fn default() -> Params {
        Params {
            seed: 1,
            start_day: crate::date::parse_day("2006-06-10").expect("valid"),
            days: 30,
            sensors: 10,
            sources: 2_000,
            messages: 100_000,
            campaigns: 40,
            variants: 3,
            asns: 300,
        }
    }
}

/// Countries of origin and their weight (per mille of sources' ASes), after
/// the white paper: 97 % from TW, CN, US, CA, JP.
const ORIGIN: &[(&str, u64)] = &[
    ("TW", 420),
    ("CN", 260),
    ("US", 180),
    ("CA", 70),
    ("JP", 40),
    ("KR", 6),
    ("DE", 5),
    ("BR", 5),
    ("RU", 4),
    ("FR", 3),
    ("GB", 2),
    ("IN", 2),
    ("PL", 1),
    ("AR", 1),
    ("MX", 1),
];

/// Recipient domains and weight: mostly generic TLDs and foreign ccTLDs.
const DOMAINS: &[(&str, u64)] = &[
    ("hotmail.com", 300),
    ("yahoo.com", 250),
    ("aol.com", 120),
    ("gmail.com", 80),
    ("yahoo.com.tw", 70),
    ("sina.com.cn", 50),
    ("hinet.net", 40),
    ("t-online.de", 20),
    ("yahoo.co.jp", 20),
    ("terra.com.br", 30),
    ("uol.com.br", 30),
    ("wanadoo.fr", 10),
    ("btinternet.co.uk", 10),
];

const PROXY_TYPES: &[(&str, u64)] = &[("socks4", 30), ("socks5", 35), ("http-connect", 30), ("socks4a", 5)];
/// Proxy bait ports the sensor listens on (standing for 1080, 3128, 8080, 6588).
const BAIT_PORTS: &[u16] = &[11080, 13128, 18080, 16588];

/// What a correct report must find. Maps are ordered so the file is stable.
#[derive(Debug, Default, Serialize, serde::Deserialize, PartialEq)]
pub struct Truth {
    pub first_day: String,
    pub last_day: String,
    pub emails: u64,
    pub recipients: u64,
    pub probes: u64,
    pub probe_recipients: u64,
    pub unique_ips: u64,
    pub unique_asns: u64,
    pub countries: u64,
    pub events: u64,
    pub per_day: BTreeMap<String, u64>,
    pub per_sensor: BTreeMap<String, u64>,
    pub per_country: BTreeMap<String, u64>,
    pub per_asn: BTreeMap<u32, u64>,
    pub per_ip: BTreeMap<String, u64>,
    pub per_domain: BTreeMap<String, u64>,
    pub per_proxy_type: BTreeMap<String, u64>,
    pub per_port: BTreeMap<u16, u64>,
    /// Emails per body digest (spam only).
    pub per_digest: BTreeMap<String, u64>,
    /// Distinct spam bodies per campaign: the near-duplicate clusters.
    pub campaign_digests: Vec<Vec<String>>,
    /// Proxy connections, and those from outside BR (the home country).
    #[serde(default)]
    pub connections: u64,
    #[serde(default)]
    pub connections_abroad: u64,
    /// Bytes on the wire: sensor -> day -> [in, out].
    #[serde(default)]
    pub bandwidth: BTreeMap<String, BTreeMap<String, [u64; 2]>>,
    /// Spam emails per sensor operator (the sensors' `site`).
    #[serde(default)]
    pub per_operator: BTreeMap<String, u64>,
}

/// The sites of the synthetic sensors, after the white paper: 5 operators,
/// cable and ADSL, 4 cities. Sensor n (from 1) gets entry n mod 5, city n
/// mod 4, cable when n is odd.
pub const OPERATORS: &[(&str, u32)] = &[
    ("Operadora A", 64_496),
    ("Operadora B", 64_497),
    ("Operadora C", 64_498),
    ("Operadora D", 64_499),
    ("Operadora E", 64_500),
];
pub const CITIES: &[&str] = &["São Paulo", "Rio de Janeiro", "Belo Horizonte", "Porto Alegre"];

pub fn site_of(sensor_no: u64) -> port25_capture::Site {
    let (op, asn) = OPERATORS[(sensor_no % OPERATORS.len() as u64) as usize];
    port25_capture::Site {
        operator: Some(op.into()),
        asn: Some(asn),
        city: Some(CITIES[(sensor_no % CITIES.len() as u64) as usize].into()),
        access: Some(if sensor_no % 2 == 1 { "cable" } else { "adsl" }.into()),
    }
}

struct Asn {
    number: u32,
    country: &'static str,
    /// First address of its /16.
    base: u32,
}

fn cumulative(w: impl Iterator<Item = u64>) -> Vec<u64> {
    let mut acc = 0;
    w.map(|x| {
        acc += x;
        acc
    })
    .collect()
}

fn ipv4(a: u32) -> String {
    std::net::Ipv4Addr::from(a).to_string()
}

/// The AS address plan: AS `64512 + k` owns `(20 + k / 200).(k % 200).0.0/16`;
/// its country is drawn from [`ORIGIN`], and every country gets one AS at least.
fn plan(p: &Params, rng: &mut Rng) -> Vec<Asn> {
    let cum = cumulative(ORIGIN.iter().map(|c| c.1));
    (0..p.asns.max(ORIGIN.len() as u32))
        .map(|k| {
            let c = if (k as usize) < ORIGIN.len() { k as usize } else { rng.weighted(&cum) };
            Asn { number: 64_512 + k, country: ORIGIN[c].0, base: ((20 + k / 200) << 24) | ((k % 200) << 16) }
        })
        .collect()
}

/// A campaign body: fixed text with a variant line, so variants of one
/// campaign share almost all their shingles and different campaigns share few.
fn campaign_body(campaign: u32, variant: u32, seed: u64) -> Vec<u8> {
    let mut r = Rng::new(seed ^ (u64::from(campaign) << 32) ^ 0xC0FFEE);
    const WORDS: &[&str] = &[
        "cheap", "pills", "offer", "watch", "replica", "stock", "alert", "loan", "rate", "free", "casino", "bonus",
        "discount", "pharmacy", "deal", "limited", "click", "here", "today", "now", "best", "price", "online",
        "secure", "order", "winner", "prize", "claim", "money", "fast", "credit", "approved", "investor", "shares",
        "growth", "viagra", "rolex", "degree", "diploma", "meet",
    ];
    let mut text = format!("Subject: campaign {campaign} {}\r\n\r\n", WORDS[r.below(WORDS.len() as u64) as usize]);
    for line in 0..12 {
        for _ in 0..10 {
            text.push_str(WORDS[r.below(WORDS.len() as u64) as usize]);
            text.push(' ');
        }
        if line == 6 {
            text.push_str(&format!("ref-{campaign}-{variant} http://site{campaign}v{variant}.example/"));
        }
        text.push_str("\r\n");
    }
    text.into_bytes()
}

/// Writes the store in `out/capture`, the enrichment files and `truth.json`.
pub fn generate(p: &Params, out: &Path) -> std::io::Result<Truth> {
    generate_with(p, out, &|_| {})
}

/// [`generate`], telling `progress` the spam messages written, day by day
/// (they add up to `p.messages`).
pub fn generate_with(p: &Params, out: &Path, progress: &dyn Fn(u64)) -> std::io::Result<Truth> {
    let mut rng = Rng::new(p.seed);
    let asns = plan(p, &mut rng);
    write_enrichment(&asns, out)?;
    let capture = out.join("capture");
    let bodies = Bodies::open(&capture.join("bodies"))?;
    let log = Log::open(&capture.join("events"), 64 << 20, None, Default::default())?;
    let rt = tokio::runtime::Builder::new_current_thread().build()?;
    let sources = pick_sources(p, &asns, &mut rng);
    let mut g = Generator {
        p,
        src_cum: cumulative((0..p.sources as u64).map(|r| 1_000_000 / (r + 1))),
        dom_cum: cumulative(DOMAINS.iter().map(|d| d.1)),
        proxy_cum: cumulative(PROXY_TYPES.iter().map(|d| d.1)),
        camp_cum: cumulative((0..p.campaigns as u64).map(|c| 100 / (c + 1) + 1)),
        asns,
        sources,
        rng,
        sink: Sink { log, bodies, stored: HashSet::new(), lines: 0, rt },
        truth: Truth {
            first_day: crate::date::format_day(p.start_day),
            campaign_digests: vec![Vec::new(); p.campaigns as usize],
            ..Truth::default()
        },
        digests: HashMap::new(),
        probed: vec![false; p.sources as usize],
        session_no: 0,
    };
    let mut last_day = p.start_day;
    for d in 0..u64::from(p.days) {
        let day = p.start_day + d as i64;
        let n_day = p.messages / u64::from(p.days) + u64::from(d < p.messages % u64::from(p.days));
        g.day(day, n_day)?;
        if n_day > 0 {
            last_day = day;
        }
        progress(n_day);
    }
    let Generator { sink, mut truth, .. } = g;
    sink.rt.block_on(sink.log.append_durable(Vec::new()))?;
    drop(sink);
    finish_truth(&mut truth, last_day);
    let mut f = std::fs::File::create(out.join("truth.json"))?;
    serde_json::to_writer_pretty(&mut f, &truth)?;
    f.write_all(b"\n")?;
    Ok(truth)
}

/// Sources: an AS each (uniform over ASes, so countries follow ORIGIN),
/// each address drawn once. Their Zipf weight (rank^-1, rounded to keep
/// integer weights) is `Generator::src_cum`.
fn pick_sources(p: &Params, asns: &[Asn], rng: &mut Rng) -> Vec<(u32, usize)> {
    let mut seen_ip = HashSet::new();
    (0..p.sources)
        .map(|_| loop {
            let a = rng.below(asns.len() as u64) as usize;
            let ip = asns[a].base | (1 + rng.below(65_000) as u32);
            if seen_ip.insert(ip) {
                break (ip, a);
            }
        })
        .collect()
}

/// The figures derived from the tallies, and a stable order for the
/// campaign clusters (the report sorts them the same way).
fn finish_truth(truth: &mut Truth, last_day: i64) {
    truth.last_day = crate::date::format_day(last_day);
    truth.unique_ips = truth.per_ip.len() as u64;
    truth.unique_asns = truth.per_asn.len() as u64;
    truth.countries = truth.per_country.len() as u64;
    truth.campaign_digests.retain(|c| !c.is_empty());
    for c in &mut truth.campaign_digests {
        c.sort();
    }
    truth.campaign_digests.sort();
}

/// Where the events and bodies go: the capture's event log (with the
/// runtime its durable appends run on) and body store.
struct Sink {
    log: Log,
    bodies: Bodies,
    /// Digests already stored, so that each body is put once.
    stored: HashSet<String>,
    lines: u64,
    /// Declared last so that it is dropped after the log, as before.
    rt: tokio::runtime::Runtime,
}

impl Sink {
    fn emit(&mut self, e: &Event, truth: &mut Truth) -> std::io::Result<()> {
        truth.events += 1;
        self.lines += 1;
        // The writer thread's queue is unbounded: wait for it every so often
        // so memory stays flat however many events are generated.
        if self.lines.is_multiple_of(20_000) {
            self.rt.block_on(self.log.append_durable(e.to_line()))
        } else {
            self.log.append(e.to_line());
            Ok(())
        }
    }
}

/// The generator's state. Every random draw goes through `rng` in a fixed
/// order: the same seed gives the same store byte for byte, so the draws
/// must stay in the order they are made here.
struct Generator<'a> {
    p: &'a Params,
    asns: Vec<Asn>,
    /// (address, index in `asns`).
    sources: Vec<(u32, usize)>,
    src_cum: Vec<u64>,
    dom_cum: Vec<u64>,
    proxy_cum: Vec<u64>,
    camp_cum: Vec<u64>,
    rng: Rng,
    sink: Sink,
    truth: Truth,
    /// Digest of each (campaign, variant) body already stored.
    digests: HashMap<(u32, u32), String>,
    /// Sources that have sent their proxy test already.
    probed: Vec<bool>,
    session_no: u64,
}

/// One proxy session being generated: what its events share, and its
/// wire counters.
struct ProxySession {
    base: Event,
    requested: Destination,
    session: String,
    sensor: String,
    /// Index of the source in `Generator::sources`.
    source: usize,
    port: u16,
    in_session: u64,
    wire_in: u64,
    wire_out: u64,
}

impl Generator<'_> {
    /// One day's sessions, until `n_day` spam messages are written.
    fn day(&mut self, day: i64, n_day: u64) -> std::io::Result<()> {
        let day_name = crate::date::format_day(day);
        let mut sent = 0u64;
        let mut second = 0u64;
        while sent < n_day {
            let mut s = self.open_session(&day_name, n_day, &mut second)?;
            if !self.probed[s.source] {
                self.probed[s.source] = true;
                self.probe(&mut s)?;
            }
            let batch = (1 + self.rng.below(5)).min(n_day - sent);
            for _ in 0..batch {
                self.spam(&mut s, &day_name)?;
                sent += 1;
            }
            self.close_session(s, &day_name)?;
        }
        Ok(())
    }

    /// Draws a session's source, sensor, proxy and time, and writes its
    /// connect and proxy request events.
    fn open_session(&mut self, day_name: &str, n_day: u64, second: &mut u64) -> std::io::Result<ProxySession> {
        let rng = &mut self.rng;
        let s = rng.weighted(&self.src_cum);
        let (ip, a) = self.sources[s];
        let sensor_no = 1 + rng.below(u64::from(self.p.sensors));
        let sensor = format!("br-sp-{sensor_no:02}");
        let site = site_of(sensor_no);
        let port = BAIT_PORTS[rng.below(BAIT_PORTS.len() as u64) as usize];
        let proxy_type = PROXY_TYPES[rng.weighted(&self.proxy_cum)].0;
        let requested_port = if rng.below(10) == 0 { 587 } else { 25 };
        self.session_no += 1;
        let session = format!("{:016X}", self.session_no);
        // Times increase within a day: 86,400 s shared by the day's sessions.
        *second = (*second + 1 + rng.below(86_400 / (n_day / 3 + 1) + 1)).min(86_399);
        let time = format!(
            "{day_name}T{:02}:{:02}:{:02}.{:03}Z",
            *second / 3600,
            *second / 60 % 60,
            *second % 60,
            rng.below(1000)
        );
        let base = Event {
            v: port25_capture::FORMAT_VERSION,
            sensor: sensor.clone(),
            time: time.clone(),
            session: session.clone(),
            src_ip: Some(ipv4(ip)),
            src_port: Some(1024 + rng.below(60_000) as u16),
            dst_port: Some(port),
            protocol: Some("proxy".into()),
            proxy_type: Some(proxy_type.into()),
            site: Some(site.clone()),
            ..Event::default()
        };
        self.truth.connections += 1;
        self.truth.connections_abroad += u64::from(self.asns[a].country != "BR");
        // Bytes on the wire: the handshake and SMTP dialogue, plus each
        // message's body and recipients (see below).
        let wire_in = 60 + rng.below(40);
        let wire_out = 40 + rng.below(20);
        self.sink.emit(
            &Event { event: "port25.spampot.connect".into(), proxy_type: None, ..base.clone() },
            &mut self.truth,
        )?;
        let mx = format!("mx{}.example.com", self.rng.below(50));
        let requested = Destination { host: mx, port: requested_port };
        self.sink.emit(
            &Event { event: "port25.spampot.proxy.request".into(), requested: Some(requested.clone()), ..base.clone() },
            &mut self.truth,
        )?;
        Ok(ProxySession { base, requested, session, sensor, source: s, port, in_session: 0, wire_in, wire_out })
    }

    /// A source's first message: the proxy test, counted apart as a probe.
    fn probe(&mut self, ss: &mut ProxySession) -> std::io::Result<()> {
        let s = ss.source;
        let body =
            format!("Subject: test\r\n\r\nproxy test {}:{} ok\r\n", sensor_address(&ss.sensor), ss.port).into_bytes();
        let digest = store(&self.sink.bodies, &mut self.sink.stored, &body)?;
        ss.in_session += 1;
        ss.wire_in += body.len() as u64 + 120;
        ss.wire_out += 150;
        self.truth.probes += 1;
        self.truth.probe_recipients += 1;
        self.sink.emit(
            &Event {
                event: "port25.spampot.message".into(),
                requested: Some(ss.requested.clone()),
                helo: Some("checker".into()),
                mail_from: Some(format!("check{s}@proxycheck.example")),
                rcpt_to: vec![format!("check{s}@proxycheck.example")],
                message_id: Some(format!("{}{:03}", ss.session, ss.in_session)),
                size: Some(body.len() as u64),
                duplicate: Some(digest.1),
                digest: Some(digest.0),
                probe: Some(true),
                probe_reasons: vec![
                    "first-message-from-source".into(),
                    "single-recipient".into(),
                    "mentions-sensor-address".into(),
                ],
                ..ss.base.clone()
            },
            &mut self.truth,
        )
    }

    /// One spam message of a campaign variant, tallied in the truth as the
    /// report must count it.
    fn spam(&mut self, ss: &mut ProxySession, day_name: &str) -> std::io::Result<()> {
        let (ip, a) = self.sources[ss.source];
        let c = self.rng.weighted(&self.camp_cum) as u32;
        let v = self.rng.below(u64::from(self.p.variants)) as u32;
        let body = campaign_body(c, v, self.p.seed);
        let digest = match self.digests.get(&(c, v)) {
            Some(d) => (d.clone(), true),
            None => {
                let d = store(&self.sink.bodies, &mut self.sink.stored, &body)?;
                self.digests.insert((c, v), d.0.clone());
                self.truth.campaign_digests[c as usize].push(d.0.clone());
                d
            }
        };
        let n_rcpt = 1 + self.rng.below(18);
        let rng = &mut self.rng;
        let dom_cum = &self.dom_cum;
        let rcpt: Vec<String> = (0..n_rcpt)
            .map(|i| format!("u{}@{}", rng.below(1_000_000) + i, DOMAINS[rng.weighted(dom_cum)].0))
            .collect();
        ss.in_session += 1;
        ss.wire_in += body.len() as u64 + 80 + 40 * n_rcpt;
        ss.wire_out += 110 + 20 * n_rcpt;
        let truth = &mut self.truth;
        let operator = ss.base.site.as_ref().and_then(|x| x.operator.clone());
        *truth.per_operator.entry(operator.unwrap_or_default()).or_default() += 1;
        truth.emails += 1;
        truth.recipients += n_rcpt;
        *truth.per_day.entry(day_name.into()).or_default() += 1;
        *truth.per_sensor.entry(ss.sensor.clone()).or_default() += 1;
        *truth.per_country.entry(self.asns[a].country.into()).or_default() += 1;
        *truth.per_asn.entry(self.asns[a].number).or_default() += 1;
        *truth.per_ip.entry(ipv4(ip)).or_default() += 1;
        *truth.per_proxy_type.entry(ss.base.proxy_type.clone().unwrap_or_default()).or_default() += 1;
        *truth.per_port.entry(ss.requested.port).or_default() += 1;
        *truth.per_digest.entry(digest.0.clone()).or_default() += 1;
        for r in &rcpt {
            let dom = r.split_once('@').map(|x| x.1).unwrap_or_default();
            *truth.per_domain.entry(dom.into()).or_default() += 1;
        }
        self.sink.emit(
            &Event {
                event: "port25.spampot.message".into(),
                requested: Some(ss.requested.clone()),
                helo: Some(format!("host{}.example", self.rng.below(100))),
                mail_from: Some(format!("sales{}@campaign{c}.example", self.rng.below(1000))),
                rcpt_to: rcpt,
                message_id: Some(format!("{}{:03}", ss.session, ss.in_session)),
                size: Some(body.len() as u64),
                duplicate: Some(digest.1),
                digest: Some(digest.0),
                probe: Some(false),
                ..ss.base.clone()
            },
            &mut self.truth,
        )
    }

    /// The session's close event with its wire counters, added to the
    /// truth's bandwidth per sensor and day.
    fn close_session(&mut self, ss: ProxySession, day_name: &str) -> std::io::Result<()> {
        let ProxySession { base, sensor, in_session, wire_in, wire_out, .. } = ss;
        self.sink.emit(
            &Event {
                event: "port25.spampot.session.closed".into(),
                proxy_type: None,
                messages: Some(in_session),
                bytes: Some(in_session * 1200),
                bytes_in: Some(wire_in),
                bytes_out: Some(wire_out),
                reason: Some("client quit".into()),
                ..base
            },
            &mut self.truth,
        )?;
        let b = self.truth.bandwidth.entry(sensor).or_default().entry(day_name.into()).or_default();
        b[0] += wire_in;
        b[1] += wire_out;
        Ok(())
    }
}

/// The address a probe mentions: the sensor's (documentation range) address.
fn sensor_address(sensor: &str) -> String {
    let n: u32 = sensor.rsplit('-').next().and_then(|x| x.parse().ok()).unwrap_or(0);
    format!("198.51.100.{n}")
}

/// Stores a body once; (digest, was it already there).
fn store(bodies: &Bodies, stored: &mut HashSet<String>, body: &[u8]) -> std::io::Result<(String, bool)> {
    let d = port25_capture::bodies::digest_hex(body);
    if stored.contains(&d) {
        return Ok((d, true));
    }
    let put = bodies.put(body)?;
    stored.insert(d.clone());
    Ok((d, put.duplicate))
}

/// `geoip.csv` (tor-geoipdb's `INTIPLOW,INTIPHIGH,CC`) and
/// `routeviews.pfx2as` (CAIDA's `prefix<TAB>length<TAB>AS`) for the plan.
fn write_enrichment(asns: &[Asn], out: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(out)?;
    let mut geo = std::io::BufWriter::new(std::fs::File::create(out.join("geoip.csv"))?);
    let mut pfx = std::io::BufWriter::new(std::fs::File::create(out.join("routeviews.pfx2as"))?);
    writeln!(geo, "# synthetic plan: one /16 per AS")?;
    for a in asns {
        writeln!(geo, "{},{},{}", a.base, a.base | 0xFFFF, a.country)?;
        writeln!(pfx, "{}\t16\t{}", ipv4(a.base), a.number)?;
    }
    geo.flush()?;
    pfx.flush()
}
