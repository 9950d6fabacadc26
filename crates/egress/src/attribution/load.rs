//! Reading the attribution sources named on the command line
//! (`radius:DIR`, `radacct-csv:FILE`, `kea:FILE`, `dhcpd:FILE`,
//! `dnsmasq:FILE`) into one [`Index`]. The only I/O of attribution; the
//! parsers it calls are pure.

use super::cgnat::{self, NatIndex, Numbering};
use super::{dhcpd, dnsmasq, kea, radacct, radius, Index, Origin, Session, Source, Warnings};
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
/// a blank line (a record's end), parsing each as it comes.
fn read_detail(
    path: &Path,
    files: &mut Vec<String>,
    events: &mut Vec<radius::Event>,
    w: &mut Warnings,
) -> Result<(), String> {
    read_detail_in(path, DETAIL_CHUNK, files, events, w)
}

fn read_detail_in(
    path: &Path,
    chunk_size: usize,
    files: &mut Vec<String>,
    events: &mut Vec<radius::Event>,
    w: &mut Warnings,
) -> Result<(), String> {
    use std::io::BufRead;
    let f = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    files.push(path.display().to_string());
    let id = u32::try_from(files.len() - 1).unwrap_or(u32::MAX);
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
            radius::parse_chunk(&text, id, first, events, w);
            first = first.saturating_add(lines - u32::from(n == 0));
            lines = 0;
            chunk.clear();
        }
        if n == 0 {
            return Ok(());
        }
    }
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
    let mut sessions: Vec<Session> = Vec::new();
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
                let mut events = Vec::new();
                for p in paths {
                    read_detail(&p, &mut files, &mut events, &mut w)?;
                }
                sessions.extend(radius::sessions(events, &mut w));
            }
            Source::Kea | Source::Dhcpd => {
                let paths = if spec.source == Source::Kea { kea_files(&spec.path) } else { vec![spec.path.clone()] };
                let mut rows = Vec::new();
                for p in paths {
                    let (text, id) = read(&p, &mut files)?;
                    if spec.source == Source::Kea {
                        kea::parse(&text, id, &mut rows, &mut w);
                    } else {
                        dhcpd::parse(&text, id, &mut rows, &mut w);
                    }
                }
                sessions.extend(if spec.source == Source::Kea { kea::sessions(rows) } else { dhcpd::sessions(rows) });
            }
            Source::Radacct => {
                let (text, id) = read(&spec.path, &mut files)?;
                radacct::parse(&text, id, &mut sessions, &mut w);
            }
            Source::Dnsmasq => {
                let (text, id) = read(&spec.path, &mut files)?;
                dnsmasq::parse(&text, id, &mut sessions, &mut w);
            }
        }
    }
    let index = Index::build(sessions, &mut w);
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
            l.index.lookup("10.0.0.1".parse().unwrap(), t * 1000).map(|i| l.index.session(i).subscriber.clone())
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
            let (mut files, mut events, mut w) = (Vec::new(), Vec::new(), Warnings::default());
            read_detail_in(&path, size, &mut files, &mut events, &mut w).unwrap();
            assert_eq!(events, whole, "chunks of {size}");
            assert_eq!(w.named, ww.named, "chunks of {size}");
        }
        assert_eq!(whole.len(), 20);
        assert_eq!(ww.count(super::super::WarningKind::Truncated), 1);
        assert_eq!(ww.named.last().unwrap().origin.line, text.lines().count() as u32 - 1);
    }
}
