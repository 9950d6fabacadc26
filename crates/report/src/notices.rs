//! Notices to abuse contacts: per AS, the spam sources a capture saw, with
//! the evidence (first and last time, messages, recipients, sensors, a
//! sample of the headers the spammer sent), as ARF messages (RFC 5965
//! multipart/report with a `message/feedback-report` part, `Incidents`
//! of RFC 6650) addressed to the AS's abuse mailbox from an offline file.
//! They are written to files (one mbox per AS); nothing is sent.
//!
//! Contacts ([`Contacts::parse`]): CSV `asn,abuse[,name]`, or an RIR whois
//! export in RPSL (RIPE/APNIC/AFRINIC/LACNIC split or full dumps):
//! `aut-num:` objects with their `abuse-mailbox:`, or the one of the
//! `role`/`organisation` their `abuse-c:` or `org:` names.
//!
//! The notices are read back by the complaint reader ([`crate::arf`]), so a
//! recipient running `port25 report build --complaints` counts them.

use crate::error::LineError;
use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;

/// An AS's abuse contact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Contact {
    pub address: String,
    pub name: Option<String>,
}

#[derive(Debug, Default)]
pub struct Contacts {
    pub by_asn: HashMap<u32, Contact>,
}

/// What the refusal of an unknown contacts file says.
pub const EXPECTED: &str =
    "not an abuse-contacts file: expected CSV with the header \"asn,abuse\" (optionally \",name\") \
or an RIR whois export in RPSL (aut-num: objects with abuse-mailbox:, or abuse-c:/org: naming a role or organisation \
that has one); an RIR delegated-stats file has no contacts";

/// An e-mail address good enough for a To: field: one `@`, no spaces,
/// controls, commas or angle brackets (the file is input: it must not
/// inject header fields or further recipients).
pub fn address_ok(a: &str) -> bool {
    let Some((l, d)) = a.split_once('@') else { return false };
    !l.is_empty()
        && d.contains('.')
        && !d.contains('@')
        && a.len() <= 254
        && a.bytes().all(|b| {
            b.is_ascii_graphic()
                && !matches!(b, b'<' | b'>' | b',' | b';' | b'"' | b'(' | b')' | b'\\' | b'[' | b']' | b':')
        })
}

fn asn_of(s: &str) -> Option<u32> {
    let t = s.trim();
    let t = t.strip_prefix("AS").or_else(|| t.strip_prefix("as")).unwrap_or(t);
    t.parse().ok()
}

impl Contacts {
    /// Parses one contacts file. Bad lines are returned, not fatal.
    pub fn parse(text: &str) -> Result<(Contacts, Vec<LineError>), String> {
        let first = text.lines().map(str::trim).find(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with('%'));
        match first {
            Some(l) if l.to_ascii_lowercase().replace(' ', "").starts_with("asn,") => Contacts::csv(text),
            Some(l) if l.contains(':') && !l.contains(',') => Contacts::rpsl(text),
            _ => Err(EXPECTED.into()),
        }
    }

    fn csv(text: &str) -> Result<(Contacts, Vec<LineError>), String> {
        let mut lines =
            text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty() && !l.trim_start().starts_with('#'));
        let (_, header) = lines.next().ok_or(EXPECTED)?;
        let names: Vec<String> = crate::cbl::csv_fields(header).into_iter().map(|c| c.to_ascii_lowercase()).collect();
        let col = |want: &[&str]| names.iter().position(|n| want.contains(&n.as_str()));
        let (Some(a), Some(m)) = (col(&["asn"]), col(&["abuse", "abuse-mailbox", "email", "contact"])) else {
            return Err(EXPECTED.into());
        };
        let n = col(&["name", "as-name", "org"]);
        let mut c = Contacts::default();
        let mut bad = Vec::new();
        for (i, l) in lines {
            let f = crate::cbl::csv_fields(l);
            let (Some(asn), Some(addr)) = (f.get(a).and_then(|x| asn_of(x)), f.get(m)) else {
                bad.push(LineError::new(i as u64 + 1, "no AS number in the asn column"));
                continue;
            };
            if !address_ok(addr) {
                bad.push(LineError::new(
                    i as u64 + 1,
                    format!("{:?} is not an e-mail address", addr.chars().take(60).collect::<String>()),
                ));
                continue;
            }
            let name = n.and_then(|n| f.get(n)).filter(|x| !x.is_empty()).cloned();
            c.by_asn.insert(asn, Contact { address: addr.to_string(), name });
        }
        Ok((c, bad))
    }

    fn rpsl(text: &str) -> Result<(Contacts, Vec<LineError>), String> {
        // Objects are separated by blank lines; attributes are `name: value`,
        // continuation lines start with a space, tab or '+'.
        struct Obj {
            line: u64,
            attrs: Vec<(String, String)>,
        }
        let mut objs: Vec<Obj> = Vec::new();
        let mut cur: Option<Obj> = None;
        for (i, l) in text.lines().enumerate() {
            if l.trim().is_empty() {
                objs.extend(cur.take());
                continue;
            }
            if l.starts_with('%') || l.starts_with('#') {
                continue;
            }
            if l.starts_with([' ', '\t', '+']) {
                if let Some(last) = cur.as_mut().and_then(|o| o.attrs.last_mut()) {
                    last.1.push(' ');
                    last.1.push_str(l.trim_start_matches('+').trim());
                }
                continue;
            }
            if let Some((k, v)) = l.split_once(':') {
                let o = cur.get_or_insert_with(|| Obj { line: i as u64 + 1, attrs: Vec::new() });
                let v = v.split('#').next().unwrap_or("").trim();
                o.attrs.push((k.trim().to_ascii_lowercase(), v.to_owned()));
            }
        }
        objs.extend(cur);
        let get = |o: &Obj, k: &str| o.attrs.iter().find(|a| a.0 == k).map(|a| a.1.clone());
        // Handles (role nic-hdl, organisation id) with an abuse mailbox.
        let mut mailbox: HashMap<String, String> = HashMap::new();
        for o in &objs {
            let Some(m) = get(o, "abuse-mailbox") else { continue };
            for k in ["nic-hdl", "organisation", "role"] {
                if let Some(h) = get(o, k) {
                    mailbox.insert(h.to_ascii_uppercase(), m.clone());
                }
            }
        }
        let mut c = Contacts::default();
        let mut bad = Vec::new();
        let mut aut_nums = 0;
        for o in objs.iter().filter(|o| o.attrs.first().is_some_and(|a| a.0 == "aut-num")) {
            aut_nums += 1;
            let Some(asn) = get(o, "aut-num").and_then(|a| asn_of(&a)) else {
                bad.push(LineError::new(o.line, "aut-num is not AS<number>"));
                continue;
            };
            let m = get(o, "abuse-mailbox")
                .or_else(|| get(o, "abuse-c").and_then(|h| mailbox.get(&h.to_ascii_uppercase()).cloned()))
                .or_else(|| get(o, "org").and_then(|h| mailbox.get(&h.to_ascii_uppercase()).cloned()));
            match m {
                Some(m) if address_ok(&m) => {
                    c.by_asn.insert(asn, Contact { address: m, name: get(o, "as-name") });
                }
                Some(m) => bad.push(LineError::new(
                    o.line,
                    format!(
                        "AS{asn}: abuse mailbox {:?} is not an e-mail address",
                        m.chars().take(60).collect::<String>()
                    ),
                )),
                None => bad.push(LineError::new(
                    o.line,
                    format!("AS{asn}: no abuse-mailbox (directly, or in its abuse-c/org object)"),
                )),
            }
        }
        if aut_nums == 0 {
            return Err(EXPECTED.into());
        }
        Ok((c, bad))
    }
}

/// What the capture says about one source address.
#[derive(Debug, Clone, Default)]
pub struct Seen {
    pub first: String,
    pub last: String,
    pub emails: u64,
    pub recipients: u64,
    pub sensors: std::collections::BTreeSet<String>,
    pub proxy_types: std::collections::BTreeSet<String>,
    /// A message body's digest (its headers are the sample).
    pub sample: Option<String>,
    pub first_day: i64,
}

/// Spam (not probes) per source address in a capture, within `filter`.
/// Memory: one entry per distinct source, like the report's own table.
pub fn sources(
    dir: &std::path::Path,
    filter: &crate::stats::Filter,
) -> std::io::Result<(HashMap<IpAddr, Seen>, crate::scan::Damage)> {
    let mut seen: HashMap<IpAddr, Seen> = HashMap::new();
    let mut damage = crate::scan::Damage::default();
    for seg in crate::scan::segments(dir)? {
        crate::scan::read_segment(&seg, &mut damage, &mut |e| {
            if e.event != "port25.spampot.message" || e.probe == Some(true) {
                return;
            }
            let Some(day) = crate::date::parse_day(&e.time) else { return };
            if !filter.day_ok(day) || !filter.sensor_ok(&e.sensor) {
                return;
            }
            let Some(ip) = e.src_ip.as_deref().and_then(|s| s.parse::<IpAddr>().ok()) else { return };
            let s = seen.entry(ip).or_insert_with(|| Seen {
                first: e.time.to_string(),
                last: e.time.to_string(),
                first_day: day,
                ..Seen::default()
            });
            s.emails += 1;
            s.recipients += e.rcpt_to.len() as u64;
            if *e.time < *s.first {
                s.first = e.time.to_string();
                s.first_day = day;
            }
            if *e.time > *s.last {
                s.last = e.time.to_string();
            }
            if s.sensors.len() < 32 && !s.sensors.contains(&*e.sensor) {
                s.sensors.insert(e.sensor.to_string());
            }
            if let Some(p) = e.proxy_type.as_deref() {
                if s.proxy_types.len() < 8 && !s.proxy_types.contains(p) {
                    s.proxy_types.insert(p.to_owned());
                }
            }
            if s.sample.is_none() {
                s.sample = e.digest.as_deref().map(str::to_owned);
            }
        })?;
    }
    Ok((seen, damage))
}

/// `2006-06-10T12:34:56.789Z` as an RFC 5322 date, `Sat, 10 Jun 2006 12:34:56 +0000`.
pub fn rfc5322(t: &str) -> Option<String> {
    let day = crate::date::parse_day(t)?;
    let hms = t
        .get(11..19)
        .filter(|x| x.len() == 8 && x.as_bytes()[2] == b':' && x.as_bytes()[5] == b':')
        .unwrap_or("00:00:00");
    let wd = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"][day.rem_euclid(7) as usize];
    let (y, m, d) = port25_time::civil_from_days(day);
    let mon = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"][(m - 1) as usize];
    Some(format!("{wd}, {d} {mon} {y} {hms} +0000"))
}

/// The header section of a stored body, at most `max` bytes, lines ending
/// CRLF, only printable ASCII kept (it goes into a text/rfc822-headers part).
pub fn sample_headers(body: &[u8], max: usize) -> String {
    let end = body
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .or_else(|| body.windows(2).position(|w| w == b"\n\n"))
        .unwrap_or(body.len());
    let head = &body[..end.min(max)];
    let mut s = String::new();
    for line in head.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            continue;
        }
        // A line starting with "From " would split an mbox: quote it.
        if line.starts_with(b"From ") {
            s.push('>');
        }
        s.extend(line.iter().map(|&b| if b == b'\t' || (0x20..0x7f).contains(&b) { b as char } else { '?' }));
        s.push_str("\r\n");
    }
    s
}

/// Options of a run.
pub struct Options {
    /// The reporter's address (From:).
    pub from: String,
    /// The reporter's name, in the text.
    pub organisation: String,
    /// At most this many sources per AS (the most active first).
    pub max_sources: usize,
    /// When the notices are written (Date:), RFC 5322.
    pub date: String,
    /// A unique part for Message-IDs and boundaries.
    pub run_id: String,
}

/// One AS's notices.
#[derive(Debug, Clone)]
pub struct AsNotices {
    pub asn: u32,
    pub contact: Option<Contact>,
    pub sources: usize,
    pub emails: u64,
    /// One ARF message per source (an mbox's worth, `From ` lines included).
    pub mbox: String,
}

/// Builds the notices: sources grouped by their origin AS (the first AS of
/// a multi-origin prefix, as of the source's first spam), most spam first;
/// each AS's are handed to `sink` as soon as they are made (one AS's
/// notices in memory at a time). Returns the spam from addresses in no AS.
pub fn build(
    seen: &HashMap<IpAddr, Seen>,
    enricher: &crate::enrich::Enricher,
    contacts: &Contacts,
    bodies: Option<&port25_capture::bodies::Bodies>,
    opt: &Options,
    sink: &mut dyn FnMut(AsNotices) -> std::io::Result<()>,
) -> std::io::Result<u64> {
    let mut per_as: BTreeMap<u32, Vec<(&IpAddr, &Seen)>> = BTreeMap::new();
    let mut no_asn = 0u64;
    for (ip, s) in seen {
        match enricher.lookup(*ip, s.first_day).asns.first() {
            Some(a) => per_as.entry(*a).or_default().push((ip, s)),
            None => no_asn += s.emails,
        }
    }
    for (asn, mut v) in per_as {
        v.sort_by(|a, b| b.1.emails.cmp(&a.1.emails).then(a.0.cmp(b.0)));
        let contact = contacts.by_asn.get(&asn).cloned();
        let emails = v.iter().map(|x| x.1.emails).sum();
        let sources = v.len();
        let mut mbox = String::new();
        if let Some(c) = &contact {
            for (i, (ip, s)) in v.iter().take(opt.max_sources).enumerate() {
                let sample = s
                    .sample
                    .as_deref()
                    .and_then(|d| bodies.and_then(|b| b.get(d).ok()))
                    .map(|b| sample_headers(&b, 8192));
                mbox.push_str(&format!("From {} {}\n", opt.from, "Thu Jan  1 00:00:00 1970"));
                mbox.push_str(&message(asn, c, ip, s, sample.as_deref(), opt, i));
                mbox.push('\n');
            }
        }
        sink(AsNotices { asn, contact, sources, emails, mbox })?;
    }
    Ok(no_asn)
}

/// One ARF report (RFC 5965) about `ip`, CRLF line ends.
fn message(asn: u32, c: &Contact, ip: &IpAddr, s: &Seen, sample: Option<&str>, opt: &Options, n: usize) -> String {
    let boundary = format!("=_port25-arf-{}-{asn}-{n}", opt.run_id);
    let first = rfc5322(&s.first).unwrap_or_else(|| opt.date.clone());
    let last = rfc5322(&s.last).unwrap_or_else(|| opt.date.clone());
    let sensors = s.sensors.iter().cloned().collect::<Vec<_>>().join(", ");
    let via = if s.proxy_types.is_empty() {
        "open-proxy/open-relay bait".to_owned()
    } else {
        s.proxy_types.iter().cloned().collect::<Vec<_>>().join(", ")
    };
    let name = c.name.as_deref().map(|n| format!(" ({n})")).unwrap_or_default();
    let mut m = String::new();
    m.push_str(&format!("From: {}\r\nTo: {}\r\nDate: {}\r\n", opt.from, c.address, opt.date));
    m.push_str(&format!(
        "Subject: Abuse report: spam from {ip} (AS{asn}), {} messages seen by SpamPots sensors\r\n",
        s.emails
    ));
    m.push_str(&format!(
        "Message-ID: <arf-{}-{asn}-{n}@{}>\r\n",
        opt.run_id,
        opt.from.rsplit_once('@').map_or("localhost", |x| x.1)
    ));
    m.push_str("Auto-Submitted: auto-generated\r\nMIME-Version: 1.0\r\n");
    m.push_str(&format!(
        "Content-Type: multipart/report; report-type=feedback-report;\r\n\tboundary=\"{boundary}\"\r\n\r\n"
    ));
    m.push_str("This is a multipart message in MIME format (an abuse report, RFC 5965).\r\n\r\n");
    m.push_str(&format!("--{boundary}\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n"));
    m.push_str(&format!(
        "This is an email abuse report for spam sent from IP {ip} in AS{asn}{name}.\r\n\
         {org} runs SpamPots honeypot sensors: they pose as open proxies and open relays, and capture\r\n\
         what is sent through them without delivering it. From {ip} they received:\r\n\r\n\
         \x20 messages:    {emails}\r\n\
         \x20 recipients:  {rcpt}\r\n\
         \x20 first seen:  {f} ({first})\r\n\
         \x20 last seen:   {l} ({last})\r\n\
         \x20 sensors:     {sensors}\r\n\
         \x20 through:     {via}\r\n\r\n\
         The machine at this address is probably infected or an open proxy. The headers of one captured\r\n\
         message follow. Times are UTC.\r\n\r\n",
        org = opt.organisation,
        emails = s.emails,
        rcpt = s.recipients,
        f = s.first,
        l = s.last,
    ));
    m.push_str(&format!("--{boundary}\r\nContent-Type: message/feedback-report\r\n\r\n"));
    m.push_str("Feedback-Type: abuse\r\nUser-Agent: port25-report/1\r\nVersion: 1\r\n");
    m.push_str(&format!("Source-IP: {ip}\r\nArrival-Date: {first}\r\nIncidents: {}\r\n", s.emails));
    m.push_str(&format!("Reported-Domain: AS{asn}\r\n\r\n"));
    if let Some(h) = sample {
        m.push_str(&format!("--{boundary}\r\nContent-Type: text/rfc822-headers\r\n\r\n{h}\r\n"));
    }
    m.push_str(&format!("--{boundary}--\r\n"));
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_and_rpsl_contacts() {
        let (c, bad) = Contacts::parse(
            "asn,abuse,name\nAS28573,abuse@claro.example,CLARO\n18881,abuse@gvt.example\nx,y\n64500,abuse at isp\n",
        )
        .unwrap();
        assert_eq!(c.by_asn[&28573], Contact { address: "abuse@claro.example".into(), name: Some("CLARO".into()) });
        assert_eq!(c.by_asn[&18881].address, "abuse@gvt.example");
        assert_eq!(bad.iter().map(|b| b.line).collect::<Vec<_>>(), vec![4, 5]);
        let rpsl = "% whois export\n\naut-num: AS28573\nas-name: CLARO\nabuse-c: AR1-LACNIC\n\nrole: Abuse\nnic-hdl: AR1-LACNIC\nabuse-mailbox: abuse@claro.example\n\n\
aut-num: AS3333\nas-name: RIPE-NCC-AS\norg: ORG-RIEN1-RIPE\n\norganisation: ORG-RIEN1-RIPE\nabuse-mailbox: abuse@ripe.example\n\n\
aut-num: AS1\nabuse-mailbox: abuse@one.example\n\naut-num: AS2\nas-name: NONE\n";
        let (c, bad) = Contacts::parse(rpsl).unwrap();
        assert_eq!(c.by_asn[&28573].address, "abuse@claro.example");
        assert_eq!(c.by_asn[&3333].address, "abuse@ripe.example");
        assert_eq!(c.by_asn[&1].address, "abuse@one.example");
        assert!(bad[0].msg.contains("AS2: no abuse-mailbox"));
        for t in ["", "2|lacnic|20130301|asn\nlacnic|BR|asn|28573|1|20000101|allocated\n", "ip,abuse\n1.2.3.4,a@b.c\n"]
        {
            assert!(Contacts::parse(t).unwrap_err().contains("expected CSV"), "{t:?}");
        }
    }

    #[test]
    fn addresses_cannot_inject() {
        assert!(address_ok("abuse@isp.example"));
        for a in [
            "abuse@isp.example\r\nBcc: x@y.z",
            "a@b.example, c@d.example",
            "<a@b.example>",
            "no-at",
            "a@nodot",
            "a b@c.example",
        ] {
            assert!(!address_ok(a), "{a:?}");
        }
    }

    #[test]
    fn dates_and_headers() {
        assert_eq!(rfc5322("2006-06-10T12:34:56.789Z").unwrap(), "Sat, 10 Jun 2006 12:34:56 +0000");
        assert_eq!(
            crate::arf::parse_date(&rfc5322("2013-03-01T00:00:00Z").unwrap()),
            crate::date::parse_day("2013-03-01")
        );
        let h = sample_headers(b"Received: x\r\nFrom bad\r\nSubject: \xff\x01hi\r\n\r\nbody", 100);
        assert_eq!(h, "Received: x\r\n>From bad\r\nSubject: ??hi\r\n");
    }
}
