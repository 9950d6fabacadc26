//! Reading the attribution sources named on the command line
//! (`radius:DIR`, `radacct-csv:FILE`, `kea:FILE`, `dhcpd:FILE`,
//! `dnsmasq:FILE`) into one [`Index`]. The only I/O of attribution: it
//! opens the files and hands each parser a buffered reader, which the
//! parser reads line by line.

use super::cgnat::{self, NatIndex, Numbering};
use super::{dhcpd, dnsmasq, kea, radacct, radius, Index, Origin, Source, Store, Warnings};
use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};

/// One `--attribution KIND:PATH`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spec {
    pub source: Source,
    pub path: PathBuf,
}

impl std::str::FromStr for Spec {
    type Err = String;
    fn from_str(s: &str) -> Result<Spec, String> {
        let (kind, path) = s
            .split_once(':')
            .ok_or_else(|| format!("{s:?}: expected KIND:PATH, KIND one of radius, radacct-csv, kea, dhcpd, dnsmasq, cgnat-csv, cgnat-ipfix"))?;
        let source = match kind {
            "radius" => Source::Radius,
            "radacct-csv" => Source::Radacct,
            "kea" => Source::Kea,
            "dhcpd" => Source::Dhcpd,
            "dnsmasq" => Source::Dnsmasq,
            "cgnat-csv" => Source::CgnatCsv,
            "cgnat-ipfix" => Source::CgnatIpfix,
            _ => {
                return Err(format!(
                    "{kind:?} is not an attribution source: radius:DIR, radacct-csv:FILE, kea:FILE, dhcpd:FILE, dnsmasq:FILE, cgnat-csv:FILE or cgnat-ipfix:FILE.pcap"
                ))
            }
        };
        if path.is_empty() {
            return Err(format!("{s:?}: no path after {kind}:"));
        }
        Ok(Spec { source, path: PathBuf::from(path) })
    }
}

/// The index over every source, the files read (what [`super::Origin`]
/// numbers), and the warnings.
pub struct Loaded {
    pub index: Index,
    /// CGNAT port blocks, when a cgnat source was given.
    pub nat: Option<NatIndex>,
    pub files: Vec<String>,
    pub warnings: Warnings,
}

/// Opens a source file for reading as a stream, numbered in `files`.
fn open(path: &Path, files: &mut Vec<String>) -> Result<(BufReader<File>, u32), String> {
    let f = File::open(path).map_err(failed(path))?;
    files.push(path.display().to_string());
    Ok((BufReader::with_capacity(1 << 16, f), u32::try_from(files.len() - 1).unwrap_or(u32::MAX)))
}

/// A read error, naming the file.
fn failed(path: &Path) -> impl Fn(std::io::Error) -> String + '_ {
    move |e| format!("{}: {e}", path.display())
}

/// Hands each record of the detail file `path` to `each` as it is read;
/// `file` is its number in the loader's names.
fn read_detail(
    path: &Path,
    file: u32,
    each: &mut dyn FnMut(radius::Record<'_>),
    w: &mut Warnings,
) -> Result<(), String> {
    let f = File::open(path).map_err(failed(path))?;
    radius::read_records(BufReader::with_capacity(1 << 16, f), file, each, w).map_err(failed(path))
}

/// The sessions of a `radius:DIR`: every detail file's records replayed as
/// they are read ([`radius::Replay`]: memory is the sessions', not the
/// records'); if some session's records are out of time order across the
/// files, read again, in passes that each replay the next records in time
/// order ([`radius::replay_in_time_order`]). A pass holds as many records
/// as fit in what the first replay took when it gave up, at least
/// [`radius::ORDER_BUDGET`]: memory stays within about twice the sessions'
/// (the first replay's is given back first), and the bench's million
/// sessions read out of order take two passes.
fn radius_sessions(paths: &[PathBuf], files: &mut Vec<String>, w: &mut Warnings) -> Result<Store, String> {
    let first = files.len();
    let mut replay = radius::Replay::new();
    for p in paths {
        files.push(p.display().to_string());
        let id = u32::try_from(files.len() - 1).unwrap_or(u32::MAX);
        read_detail(p, id, &mut |r| replay.record(&r), w)?;
    }
    let budget = replay.bytes().max(radius::ORDER_BUDGET);
    if let Some(store) = replay.finish(w) {
        return Ok(store);
    }
    // The warnings about the records themselves were counted above.
    let mut again = Warnings::default();
    let mut read_all = |each: &mut dyn FnMut(radius::Record<'_>)| -> Result<(), String> {
        for (i, p) in paths.iter().enumerate() {
            let id = u32::try_from(first + i).unwrap_or(u32::MAX);
            read_detail(p, id, each, &mut again)?;
        }
        Ok(())
    };
    radius::replay_in_time_order(budget, &mut read_all, w)?
        .ok_or_else(|| "more RADIUS sessions or names than one index holds (4,294,967,295)".to_string())
}

/// Detail files under `dir` (FreeRADIUS keeps one directory per client,
/// `detail-YYYYMMDD` in each), sorted by path; `dir` may be a file.
fn detail_files(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), String> {
    if dir.is_file() {
        out.push(dir.to_path_buf());
        return Ok(());
    }
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            detail_files(&p, out)?;
        } else if p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("detail")) {
            out.push(p);
        }
    }
    Ok(())
}

/// Kea's journal, oldest first: `FILE.completed` (the cleanup's merge of
/// `.1` and `.2`) if present, else `FILE.1` and `FILE.2`; then `FILE`.
pub fn kea_files(file: &Path) -> Vec<PathBuf> {
    let with = |suffix: &str| {
        let mut s = file.as_os_str().to_owned();
        s.push(suffix);
        PathBuf::from(s)
    };
    let completed = with(".completed");
    let mut out: Vec<PathBuf> = if completed.is_file() {
        vec![completed]
    } else {
        [with(".1"), with(".2")].into_iter().filter(|p| p.is_file()).collect()
    };
    out.push(file.to_path_buf());
    out
}

/// Reads every source; a missing or unreadable path is an error (naming
/// it), everything inside the files is at most a warning.
pub fn load(specs: &[Spec]) -> Result<Loaded, String> {
    load_with(specs, &[])
}

/// The warning for a packet longer than a datagram can be.
fn too_long() -> String {
    format!("a packet longer than {} KiB (not an IPFIX export; skipped)", crate::flow::pcap::MAX_RECORD / 1024)
}

/// NAT event records of an IPFIX capture, each with the number of the
/// datagram (packet) it came in as its line.
fn read_nat_pcap(
    path: &Path,
    numbering: &[Numbering],
    files: &mut Vec<String>,
    events: &mut Vec<cgnat::Event>,
    w: &mut Warnings,
) -> Result<(), String> {
    use crate::flow::pcap;
    let input = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    files.push(path.display().to_string());
    let file = u32::try_from(files.len() - 1).unwrap_or(u32::MAX);
    // Streamed one record at a time: memory does not follow the capture.
    let mut r = pcap::Stream::new(std::io::BufReader::with_capacity(1 << 16, input))
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let mut c = crate::flow::Collector::new();
    let mut flows = Vec::new();
    let mut n = 0u32;
    let mut oversized = 0;
    while let Some(d) = r.next_datagram().map_err(|e| format!("{}: {e}", path.display()))? {
        n = n.saturating_add(1);
        let malformed = c.stats.malformed;
        c.datagram(d.src, d.payload, &mut flows);
        flows.clear();
        let origin = Origin { file, line: n };
        // Packets too long to be a datagram, skipped before this one.
        for _ in oversized..r.counts().oversized {
            w.add(super::WarningKind::BadRecord, origin, too_long());
        }
        oversized = r.counts().oversized;
        if c.stats.malformed > malformed {
            w.add(super::WarningKind::BadRecord, origin, "an IPFIX datagram that does not decode (skipped)");
        }
        let records = std::mem::take(&mut c.nat_records);
        cgnat::events_from_records(&records, numbering, origin, events, w);
    }
    for _ in oversized..r.counts().oversized {
        w.add(super::WarningKind::BadRecord, Origin { file, line: n.saturating_add(1) }, too_long());
    }
    if r.counts().truncated {
        w.add(
            super::WarningKind::Truncated,
            Origin { file, line: n.saturating_add(1) },
            "the capture ends inside a packet",
        );
    }
    Ok(())
}

/// [`load`], with the natEvent numbering of CGNAT exporters.
pub fn load_with(specs: &[Spec], numbering: &[Numbering]) -> Result<Loaded, String> {
    let mut files = Vec::new();
    let mut w = Warnings::default();
    // Each source's sessions go into the compact store as they are read.
    let mut store = Store::default();
    let mut nat_events: Vec<cgnat::Event> = Vec::new();
    let mut any_nat = false;
    for spec in specs {
        match spec.source {
            Source::CgnatCsv => {
                any_nat = true;
                let (r, id) = open(&spec.path, &mut files)?;
                cgnat::read_csv(r, id, &mut nat_events, &mut w).map_err(failed(&spec.path))?;
            }
            Source::CgnatIpfix => {
                any_nat = true;
                read_nat_pcap(&spec.path, numbering, &mut files, &mut nat_events, &mut w)?;
            }
            Source::Radius => {
                let mut paths = Vec::new();
                detail_files(&spec.path, &mut paths)?;
                if paths.is_empty() {
                    return Err(format!("{}: no detail files (detail*) in it", spec.path.display()));
                }
                let st = radius_sessions(&paths, &mut files, &mut w)?;
                store.append(st);
            }
            Source::Kea | Source::Dhcpd => {
                let paths = if spec.source == Source::Kea { kea_files(&spec.path) } else { vec![spec.path.clone()] };
                // Rows go into the leases as they are read: only the
                // leases are kept.
                let mut t = kea::Timeline::new(spec.source);
                for p in paths {
                    let (r, id) = open(&p, &mut files)?;
                    if spec.source == Source::Kea {
                        kea::read_each(r, id, &mut |r| t.row(r), &mut w)
                    } else {
                        dhcpd::read_each(r, id, &mut |r| t.row(r), &mut w)
                    }
                    .map_err(failed(&p))?;
                }
                store.append(t.finish());
            }
            Source::Radacct => {
                let (r, id) = open(&spec.path, &mut files)?;
                radacct::read_each(r, id, &mut |s| _ = store.push(&s), &mut w).map_err(failed(&spec.path))?;
            }
            Source::Dnsmasq => {
                let (r, id) = open(&spec.path, &mut files)?;
                dnsmasq::read_each(r, id, &mut |s| _ = store.push(&s), &mut w).map_err(failed(&spec.path))?;
            }
        }
    }
    let index = Index::build(store, &mut w);
    let nat = any_nat.then(|| NatIndex::build(cgnat::blocks(nat_events, &mut w)));
    Ok(Loaded { index, nat, files, warnings: w })
}

#[cfg(test)]
mod tests {
    use super::super::{WarningKind, MAX_LINE};
    use super::*;

    /// The first line of a Kea DHCPv4 memfile.
    const KEA_HEADER: &str =
        "address,hwaddr,client_id,valid_lifetime,expire,subnet_id,fqdn_fwd,fqdn_rev,hostname,state,user_context\n";

    #[test]
    fn kea_rotated_files_are_read_oldest_first() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().join("kea-leases4.csv");
        let header = KEA_HEADER;
        let row = |mac: &str, expire: u64| format!("{header}10.0.0.1,{mac},,3600,{expire},1,0,0,,0,\n");
        std::fs::write(format!("{}.1", base.display()), row("02:00:00:00:00:01", 1_764_003_600)).unwrap();
        std::fs::write(format!("{}.2", base.display()), row("02:00:00:00:00:02", 1_764_007_200)).unwrap();
        std::fs::write(&base, row("02:00:00:00:00:03", 1_764_010_800)).unwrap();
        let spec: Spec = format!("kea:{}", base.display()).parse().unwrap();
        let who = |l: &Loaded, t: u64| {
            l.index.lookup("10.0.0.1".parse().unwrap(), t * 1000).map(|i| l.index.session(i).subscriber)
        };
        let l = load(std::slice::from_ref(&spec)).unwrap();
        assert_eq!(l.files.len(), 3);
        assert!(l.files[0].ends_with(".1") && l.files[1].ends_with(".2"), "{:?}", l.files);
        assert_eq!(who(&l, 1_764_001_000).as_deref(), Some("02:00:00:00:00:01"));
        assert_eq!(who(&l, 1_764_004_000).as_deref(), Some("02:00:00:00:00:02"));
        assert_eq!(who(&l, 1_764_010_000).as_deref(), Some("02:00:00:00:00:03"));
        // The cleanup's result replaces .1 and .2.
        std::fs::write(format!("{}.completed", base.display()), row("02:00:00:00:00:02", 1_764_007_200)).unwrap();
        let l = load(&[spec]).unwrap();
        assert_eq!(l.files.len(), 2);
        assert_eq!(who(&l, 1_764_001_000), None);
        assert_eq!(who(&l, 1_764_004_000).as_deref(), Some("02:00:00:00:00:02"));
        assert!("nope:x".parse::<Spec>().is_err() && "kea:".parse::<Spec>().is_err());
        let missing = load(&["kea:/nonexistent/leases.csv".parse().unwrap()]);
        assert!(missing.is_err_and(|e| e.contains("/nonexistent/leases.csv")));
    }

    #[test]
    fn detail_files_out_of_time_order_are_replayed_in_time_order() {
        // client-b's file sorts after client-a's but holds the Start of the
        // session whose Stop is in client-a's: read again, replayed in
        // time order, the session found whole and nothing warned twice.
        let dir = tempfile::tempdir().unwrap();
        let rec = |status: &str, t: u64| {
            format!("Mon Nov 24 16:00:00 2025\n\tAcct-Status-Type = {status}\n\tUser-Name = \"alice\"\n\tAcct-Session-Id = \"s1\"\n\tFramed-IP-Address = 100.64.0.1\n\tNAS-IP-Address = 192.0.2.1\n\tTimestamp = {t}\n\n")
        };
        for (client, text) in
            [("client-a", rec("Stop", 1_764_003_600) + "\tbroken\n\n"), ("client-b", rec("Start", 1_764_000_000))]
        {
            std::fs::create_dir(dir.path().join(client)).unwrap();
            std::fs::write(dir.path().join(client).join("detail-20251124"), text).unwrap();
        }
        let l = load(&[format!("radius:{}", dir.path().display()).parse().unwrap()]).unwrap();
        assert_eq!(l.files.len(), 2);
        assert_eq!(l.index.len(), 1);
        let s = l.index.session(l.index.lookup("100.64.0.1".parse().unwrap(), 1_764_001_000_000).unwrap());
        assert_eq!(
            (s.subscriber.as_str(), s.start_ms, s.end_ms),
            ("alice", 1_764_000_000_000, Some(1_764_003_600_000))
        );
        assert_eq!((s.origin.file, s.origin.line), (1, 1));
        assert_eq!(l.warnings.total(), 2, "{:?}", l.warnings.named);
        assert_eq!(l.warnings.count(WarningKind::BadRecord), 1);
    }

    #[test]
    fn a_detail_file_read_as_a_stream_reads_as_the_text() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("detail-20251124");
        let mut text = String::new();
        for i in 0..20 {
            text.push_str(&format!("Mon Nov 24 16:00:00 2025\n\tAcct-Status-Type = Start\n\tUser-Name = \"u{i}\"\n\tAcct-Session-Id = \"{i}\"\n\tFramed-IP-Address = 10.0.0.{i}\n\tTimestamp = {}\n\n", 1_764_000_000 + i));
            if i % 7 == 3 {
                text.push_str("\n\tbroken line\n\n");
            }
        }
        text.push_str("Mon Nov 24 16:00:00 2025\n\tAcct-Status-Type = Stop\n");
        std::fs::write(&path, &text).unwrap();
        let (mut whole, mut ww) = (Vec::new(), Warnings::default());
        radius::parse(&text, 0, &mut whole, &mut ww);
        let (mut events, mut w) = (Vec::new(), Warnings::default());
        read_detail(&path, 0, &mut |r| events.push(r.to_event()), &mut w).unwrap();
        assert_eq!(events, whole);
        assert_eq!(w.named, ww.named);
        assert_eq!(whole.len(), 20);
        assert_eq!(ww.count(WarningKind::Truncated), 1);
        assert_eq!(ww.named.last().unwrap().origin.line, text.lines().count() as u32 - 1);
    }

    /// A line of `n` bytes that would read as a record if it were short.
    fn long(n: usize) -> String {
        "x".repeat(n)
    }

    /// `(file, line, kind)` of each named warning, the file by its name's end.
    fn named(l: &Loaded) -> Vec<(String, u32, WarningKind)> {
        l.warnings
            .named
            .iter()
            .map(|x| {
                let f = &l.files[x.origin.file as usize];
                (f.rsplit('/').next().unwrap_or(f).to_owned(), x.origin.line, x.kind)
            })
            .collect()
    }

    fn subscriber(l: &Loaded, ip: &str, t_ms: u64) -> Option<String> {
        l.index.lookup(ip.parse().unwrap(), t_ms).map(|i| l.index.session(i).subscriber)
    }

    #[test]
    fn kea_rotated_files_with_an_overlong_row_and_a_cut_last_row() {
        // The journal read as a stream: a row longer than MAX_LINE in .1
        // (a hostname of 64 KiB and more: as if binary garbage) is skipped
        // and named; .1 ends inside a row (LFC cut it) and its last row is
        // named; .2 and the file read after it, oldest first.
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().join("kea-leases4.csv");
        let header = KEA_HEADER;
        let row = |ip: &str, mac: &str, expire: u64, host: &str| format!("{ip},{mac},,3600,{expire},1,0,0,{host},0,\n");
        let one = format!(
            "{header}{}{}{}{}",
            row("10.0.0.1", "02:00:00:00:00:01", 1_764_003_600, "a"),
            row("10.0.0.2", "02:00:00:00:00:02", 1_764_003_600, &long(MAX_LINE)),
            row("10.0.0.3", "02:00:00:00:00:03", 1_764_003_600, "c"),
            "10.0.0.4,02:00:00:00:00:04,,3600,1764"
        );
        std::fs::write(format!("{}.1", base.display()), one).unwrap();
        std::fs::write(
            format!("{}.2", base.display()),
            format!("{header}{}", row("10.0.0.1", "02:00:00:00:00:11", 1_764_007_200, "b")),
        )
        .unwrap();
        std::fs::write(&base, format!("{header}{}", row("10.0.0.4", "02:00:00:00:00:14", 1_764_007_200, "d"))).unwrap();
        let l = load(&[format!("kea:{}", base.display()).parse().unwrap()]).unwrap();
        assert_eq!(
            named(&l),
            [
                ("kea-leases4.csv.1".to_string(), 3, WarningKind::BadRecord),
                ("kea-leases4.csv.1".to_string(), 5, WarningKind::Truncated)
            ]
        );
        assert!(l.warnings.named[0].message.contains("longer than 64 KiB"), "{:?}", l.warnings.named);
        let at = |s: u64| s * 1000;
        assert_eq!(subscriber(&l, "10.0.0.1", at(1_764_001_000)).as_deref(), Some("02:00:00:00:00:01"));
        assert_eq!(subscriber(&l, "10.0.0.1", at(1_764_004_000)).as_deref(), Some("02:00:00:00:00:11"));
        assert_eq!(subscriber(&l, "10.0.0.2", at(1_764_001_000)), None, "the over-long row is not read");
        assert_eq!(subscriber(&l, "10.0.0.3", at(1_764_001_000)).as_deref(), Some("02:00:00:00:00:03"));
        assert_eq!(subscriber(&l, "10.0.0.4", at(1_764_001_000)), None, "the cut row is not read");
        assert_eq!(subscriber(&l, "10.0.0.4", at(1_764_004_000)).as_deref(), Some("02:00:00:00:00:14"));
    }

    #[test]
    fn every_source_skips_an_overlong_line_and_names_a_cut_last_line() {
        // Each source as a file: a line of MAX_LINE + 1 bytes, a record
        // after it that is read, and a last line without its line end. The
        // over-long line is a counted warning naming file:line, never read.
        let dir = tempfile::tempdir().unwrap();
        let big = long(MAX_LINE + 1);
        let t0 = 1_764_000_000u64;
        let detail = |user: &str, ip: &str| {
            format!("Mon Nov 24 16:00:00 2025\n\tAcct-Status-Type = Start\n\tUser-Name = \"{user}\"\n\tAcct-Session-Id = \"{user}\"\n\tFramed-IP-Address = {ip}\n\tTimestamp = {t0}\n\n")
        };
        let cases: [(&str, String, u32, u32); 5] = [
            // (kind, text, line of the over-long line, line of the cut one)
            (
                "radius",
                format!(
                    "{}{}\n\t{big}\n\n{}Mon Nov 24 16:00:00 2025\n\tAcct-Status-Type = Start",
                    detail("u1", "10.0.0.1"),
                    detail("u2", "10.0.0.2").trim_end(),
                    detail("u3", "10.0.0.3")
                ),
                14,
                23,
            ),
            (
                "radacct-csv",
                format!("acctsessionid,username,acctstarttime,acctstoptime,framedipaddress\ns1,u1,2025-11-24 16:00:00,,10.0.0.1\n{big}\ns3,u3,2025-11-24 16:00:00,,10.0.0.3\ns4,u4,2025-11-24"),
                3,
                5,
            ),
            (
                "dhcpd",
                format!("lease 10.0.0.1 {{\n  starts epoch {t0};\n  hardware ethernet u1;\n}}\nlease 10.0.0.2 {{\n  starts epoch {t0};\n  client-hostname \"{big}\";\n  hardware ethernet u2;\n}}\nlease 10.0.0.3 {{\n  starts epoch {t0};\n  hardware ethernet u3;\n}}\nlease 10.0.0.4 {{\n  starts epoch {t0};"),
                7,
                14,
            ),
            ("dnsmasq", format!("0 u1 10.0.0.1 * *\n{big}\n0 u3 10.0.0.3 * *\n0 u4 10.0.0.4 * *"), 2, 4),
            // (cgnat: inside addresses of port blocks, no subscribers.)
            (
                "cgnat-csv",
                format!("time,event,inside,outside,port_first,port_last\n{t0},allocate,10.0.0.1,192.0.2.1,1024,2047\n{big}\n{t0},allocate,10.0.0.3,192.0.2.1,2048,3071\n{t0},allocate,10.0.0.4,192.0.2.1,3072,4095"),
                3,
                5,
            ),
        ];
        for (kind, text, long_line, cut_line) in cases {
            let path = dir.path().join(format!("detail-{kind}"));
            std::fs::write(&path, text).unwrap();
            let l = load(&[format!("{kind}:{}", path.display()).parse().unwrap()]).unwrap();
            let name = format!("detail-{kind}");
            assert_eq!(
                named(&l),
                [(name.clone(), long_line, WarningKind::BadRecord), (name, cut_line, WarningKind::Truncated)],
                "{kind}: {:?}",
                l.warnings.named
            );
            assert!(l.warnings.named[0].message.contains("longer than 64 KiB"), "{kind}: {:?}", l.warnings.named);
            let t = t0 * 1000;
            if kind == "cgnat-csv" {
                let nat = l.nat.as_ref().unwrap();
                let inside = |port| nat.lookup("192.0.2.1".parse().unwrap(), port, t).map(|i| nat.block(i).inside);
                assert_eq!(inside(1024), Some("10.0.0.1".parse().unwrap()));
                assert_eq!(inside(2048), Some("10.0.0.3".parse().unwrap()));
                assert_eq!(inside(3072), None, "{kind}: the cut row is not read");
                continue;
            }
            assert_eq!(subscriber(&l, "10.0.0.1", t).as_deref(), Some("u1"), "{kind}");
            assert_eq!(subscriber(&l, "10.0.0.2", t), None, "{kind}: the record with the over-long line");
            assert_eq!(subscriber(&l, "10.0.0.3", t).as_deref(), Some("u3"), "{kind}");
            assert_eq!(subscriber(&l, "10.0.0.4", t), None, "{kind}: the cut record");
        }
    }
}
