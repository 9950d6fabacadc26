//! Reading the attribution sources named on the command line
//! (`radius:DIR`, `radacct-csv:FILE`, `kea:FILE`, `dhcpd:FILE`,
//! `dnsmasq:FILE`) into one [`Index`]. The only I/O of attribution; the
//! parsers it calls are pure.

use super::cgnat::{self, NatIndex, Numbering};
use super::{dhcpd, dnsmasq, kea, radacct, radius, Index, Origin, Session, Source, Store, Warnings};
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

fn read(path: &Path, files: &mut Vec<String>) -> Result<(String, u32), String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    files.push(path.display().to_string());
    // One copy of the text: invalid UTF-8 (a stray byte in a user name) is
    // replaced, valid text is taken as it is.
    let text = String::from_utf8(bytes).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
    Ok((text, u32::try_from(files.len() - 1).unwrap_or(u32::MAX)))
}

/// Text read from a detail file at a time: a day's file of a large NAS
/// runs to gigabytes, and only the sessions need to stay in memory.
const DETAIL_CHUNK: usize = 8 << 20;

/// Reads a detail file in pieces of about [`DETAIL_CHUNK`], each cut after
/// a blank line (a record's end), handing each record to `each` as it is
/// read; `file` is its number in the loader's names.
fn read_detail(
    path: &Path,
    file: u32,
    each: &mut dyn FnMut(radius::Record<'_>),
    w: &mut Warnings,
) -> Result<(), String> {
    read_detail_in(path, DETAIL_CHUNK, file, each, w)
}

fn read_detail_in(
    path: &Path,
    chunk_size: usize,
    file: u32,
    each: &mut dyn FnMut(radius::Record<'_>),
    w: &mut Warnings,
) -> Result<(), String> {
    use std::io::BufRead;
    let f = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut r = std::io::BufReader::new(f);
    let (mut chunk, mut line) = (Vec::new(), Vec::new());
    let (mut first, mut lines) = (1u32, 0u32);
    loop {
        line.clear();
        let n = r.read_until(b'\n', &mut line).map_err(|e| format!("{}: {e}", path.display()))?;
        chunk.extend_from_slice(&line);
        lines = lines.saturating_add(1);
        let blank = line.iter().all(u8::is_ascii_whitespace) && line.ends_with(b"\n");
        if n == 0 || (blank && chunk.len() >= chunk_size) {
            let text = String::from_utf8_lossy(&chunk);
            radius::records(&text, file, first, each, w);
            first = first.saturating_add(lines - u32::from(n == 0));
            lines = 0;
            chunk.clear();
        }
        if n == 0 {
            return Ok(());
        }
    }
}

/// The sessions of a `radius:DIR`: every detail file's records replayed as
/// they are read ([`radius::Replay`]: memory is the sessions', not the
/// records'); if some session's records are out of time order across the
/// files, read again and replayed in time order ([`radius::sessions`],
/// which holds every record).
fn radius_sessions(paths: &[PathBuf], files: &mut Vec<String>, w: &mut Warnings) -> Result<Store, String> {
    let first = files.len();
    let mut replay = radius::Replay::new();
    for p in paths {
        files.push(p.display().to_string());
        let id = u32::try_from(files.len() - 1).unwrap_or(u32::MAX);
        read_detail(p, id, &mut |r| replay.record(&r), w)?;
    }
    if let Some(store) = replay.finish(w) {
        return Ok(store);
    }
    // The warnings about the records themselves were counted above.
    let mut again = Warnings::default();
    let mut events = Vec::new();
    for (i, p) in paths.iter().enumerate() {
        let id = u32::try_from(first + i).unwrap_or(u32::MAX);
        read_detail(p, id, &mut |r| events.push(r.to_event()), &mut again)?;
    }
    Ok(Store::from(radius::sessions(events, w)))
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

/// NAT event records of an IPFIX capture, each with the number of the
/// datagram (packet) it came in as its line.
fn read_nat_pcap(
    path: &Path,
    numbering: &[Numbering],
    files: &mut Vec<String>,
    events: &mut Vec<cgnat::Event>,
    w: &mut Warnings,
) -> Result<(), String> {
    let data = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    files.push(path.display().to_string());
    let file = u32::try_from(files.len() - 1).unwrap_or(u32::MAX);
    let mut r = crate::flow::pcap::Reader::new(&data).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut c = crate::flow::Collector::new();
    let mut flows = Vec::new();
    let mut n = 0u32;
    for d in r.by_ref() {
        n = n.saturating_add(1);
        let malformed = c.stats.malformed;
        c.datagram(d.src, d.payload, &mut flows);
        flows.clear();
        let origin = Origin { file, line: n };
        if c.stats.malformed > malformed {
            w.add(super::WarningKind::BadRecord, origin, "an IPFIX datagram that does not decode (skipped)");
        }
        let records = std::mem::take(&mut c.nat_records);
        cgnat::events_from_records(&records, numbering, origin, events, w);
    }
    if r.truncated {
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
    // Each source's sessions go into the compact store as soon as that
    // source is read, so only one source's `Session`s exist at a time.
    let mut store = Store::default();
    let add = |store: &mut Store, sessions: Vec<Session>| {
        for s in &sessions {
            store.push(s);
        }
    };
    let mut nat_events: Vec<cgnat::Event> = Vec::new();
    let mut any_nat = false;
    for spec in specs {
        match spec.source {
            Source::CgnatCsv => {
                any_nat = true;
                let (text, id) = read(&spec.path, &mut files)?;
                cgnat::parse_csv(&text, id, &mut nat_events, &mut w);
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
                    let (text, id) = read(&p, &mut files)?;
                    if spec.source == Source::Kea {
                        kea::parse_each(&text, id, &mut |r| t.row(r), &mut w);
                    } else {
                        dhcpd::parse_each(&text, id, &mut |r| t.row(r), &mut w);
                    }
                }
                store.append(t.finish());
            }
            Source::Radacct => {
                let (text, id) = read(&spec.path, &mut files)?;
                let mut sessions = Vec::new();
                radacct::parse(&text, id, &mut sessions, &mut w);
                add(&mut store, sessions);
            }
            Source::Dnsmasq => {
                let (text, id) = read(&spec.path, &mut files)?;
                let mut sessions = Vec::new();
                dnsmasq::parse(&text, id, &mut sessions, &mut w);
                add(&mut store, sessions);
            }
        }
    }
    let index = Index::build(store, &mut w);
    let nat = any_nat.then(|| NatIndex::build(cgnat::blocks(nat_events, &mut w)));
    Ok(Loaded { index, nat, files, warnings: w })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kea_rotated_files_are_read_oldest_first() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().join("kea-leases4.csv");
        let header =
            "address,hwaddr,client_id,valid_lifetime,expire,subnet_id,fqdn_fwd,fqdn_rev,hostname,state,user_context\n";
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
        assert_eq!(l.warnings.count(super::super::WarningKind::BadRecord), 1);
    }

    #[test]
    fn a_detail_file_read_in_pieces_reads_as_a_whole() {
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
        for size in [1, 100, 1 << 20] {
            let (mut events, mut w) = (Vec::new(), Warnings::default());
            read_detail_in(&path, size, 0, &mut |r| events.push(r.to_event()), &mut w).unwrap();
            assert_eq!(events, whole, "chunks of {size}");
            assert_eq!(w.named, ww.named, "chunks of {size}");
        }
        assert_eq!(whole.len(), 20);
        assert_eq!(ww.count(super::super::WarningKind::Truncated), 1);
        assert_eq!(ww.named.last().unwrap().origin.line, text.lines().count() as u32 - 1);
    }
}
