//! `port25 egress flows`: NetFlow v5/v9/IPFIX from UDP or pcap files to the
//! list of subscribers that still try port 25.

use anyhow::Context;
use port25_egress::attribution::load::{self as attribution, Spec};
use port25_egress::attribution::{Named, WarningKind};
use port25_egress::flow::{nfcapd, pcap, Collector, Flow};
use port25_egress::prefix::Prefix;
use port25_egress::report::{self, Analyzer, Options};
use port25_egress::{policy, table::Table};
use std::net::UdpSocket;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Format {
    Table,
    Json,
    Csv,
}

#[derive(clap::Args)]
#[command(
    after_help = "Sources (at least one):\n  --pcap FILE      exported datagrams captured with tcpdump -w (any UDP port)\n  \
                        --nfcapd PATH    nfdump 1.7 files as nfcapd stores them (uncompressed, LZ4 or LZO); a\n                   \
                        directory means its nfcapd.* files (not nfcapd.current.*), in name order\n  \
                        --listen ADDR    receive exports on UDP (e.g. 0.0.0.0:2055) until --idle or --duration;\n                   \
                        needs --exporter: only the routers named there are heard\n\n\
                        --exporter CIDR (repeatable) is the allow-list of exporter addresses; datagrams from any\n\
                        other source are dropped undecoded and counted. --listen refuses to start without one\n\
                        (UDP comes from anyone). With --pcap it filters the captured sources too.\n\n\
                        A flow counts when it is TCP to a blocked port from an address the policy blocks.\n\
                        Decoder statistics (malformed datagrams, late or missing templates, refused datagrams,\n\
                        templates evicted by the bounds) go to standard error.\n\n\
                        Attribution (repeatable --attribution KIND:PATH) names the subscriber who held a flow's\n\
                        source address at the flow's start, and the session or lease that matched:\n  \
                        radius:DIR        FreeRADIUS accounting detail files (detail* under DIR, or one file)\n  \
                        radacct-csv:FILE  the SQL radacct table exported as CSV with a header\n  \
                        kea:FILE          Kea memfile leases (kea-leases4.csv / 6; also FILE.completed or FILE.1, FILE.2)\n  \
                        dhcpd:FILE        ISC dhcpd.leases\n  \
                        dnsmasq:FILE      dnsmasq.leases (current leases only: no start time)\n  \
                        cgnat-csv:FILE    CGNAT port blocks, CSV time,event,inside,outside,port_first,port_last\n  \
                        cgnat-ipfix:FILE  CGNAT port blocks from RFC 8158 IPFIX NAT events captured to pcap\n                    \
                        (--cgnat-numbering when the exporter numbers natEvent its own way)\n\
                        Behind a CGNAT a flow's public address and source port are first mapped to the inside\n\
                        address by the port block, then that address to the subscriber.\n\
                        Rows are then per address and session; warnings (cut records, Stop without Start,\n\
                        overlapping sessions) are counted and named file:line on standard error.\n\n\
                        Examples:\n  port25 egress flows --policy egress.toml --pcap exports.pcap --format csv\n  \
                        port25 egress flows --policy egress.toml --listen 0.0.0.0:2055 --exporter 192.0.2.0/28 --duration 3600 --block-at 2026-11-01T00:00:00Z\n  \
                        port25 egress flows --policy egress.toml --pcap exports.pcap --attribution radius:/var/log/freeradius/radacct --attribution kea:/var/lib/kea/kea-leases4.csv"
)]
pub struct Args {
    /// The policy file: which addresses are subscribers in blocked space
    #[arg(long, short)]
    policy: PathBuf,
    /// pcap file(s) of exported datagrams
    #[arg(long)]
    pcap: Vec<PathBuf>,
    /// nfdump 1.7 file(s) or director(ies) of them, as nfcapd writes (repeatable)
    #[arg(long, value_name = "PATH")]
    nfcapd: Vec<PathBuf>,
    /// Receive exports on this UDP address (needs --exporter)
    #[arg(long)]
    listen: Option<std::net::SocketAddr>,
    /// Accept exports only from this address or prefix (repeatable; required with --listen)
    #[arg(long = "exporter", value_name = "CIDR", value_parser = parse_exporter)]
    exporters: Vec<Prefix>,
    /// With --listen: stop after this many seconds without a datagram (once one came)
    #[arg(long, default_value_t = 5.0)]
    idle: f64,
    /// With --listen: stop after this many seconds in any case
    #[arg(long)]
    duration: Option<f64>,
    /// table | json | csv
    #[arg(long, short, value_enum, default_value_t = Format::Table)]
    format: Format,
    /// Spambot window in seconds (1 to 31622400, a leap year)
    #[arg(long, default_value_t = 600, value_parser = clap::value_parser!(u64).range(1..=31_622_400))]
    window: u64,
    /// Spambot threshold: distinct destination addresses within one window
    #[arg(long, default_value_t = 10)]
    threshold: usize,
    /// When the block went live (Unix seconds or YYYY-MM-DDTHH:MM:SSZ): split counts before/after
    #[arg(long, value_parser = report::parse_time)]
    block_at: Option<u64>,
    /// Name subscribers from RADIUS accounting or DHCP leases: radius:DIR, radacct-csv:FILE, kea:FILE, dhcpd:FILE, dnsmasq:FILE; behind a CGNAT also cgnat-csv:FILE or cgnat-ipfix:FILE.pcap (repeatable)
    #[arg(long = "attribution", value_name = "KIND:PATH")]
    attribution: Vec<Spec>,
    /// No progress bar over the --pcap files (there is none anyway when standard error is not a terminal)
    #[arg(long, short)]
    quiet: bool,
    /// natEvent numbers of a CGNAT exporter: [CIDR=]allocate:N[/N],release:N[/N] (default RFC 8158: allocate 13/1, release 14/2)
    #[arg(long = "cgnat-numbering", value_name = "SPEC")]
    cgnat_numbering: Vec<port25_egress::attribution::cgnat::Numbering>,
}

fn parse_exporter(s: &str) -> Result<Prefix, String> {
    s.parse::<Prefix>().map_err(|e| e.to_string())
}

pub fn run(a: Args) -> anyhow::Result<ExitCode> {
    if a.pcap.is_empty() && a.nfcapd.is_empty() && a.listen.is_none() {
        anyhow::bail!("no flow source: give --pcap FILE, --nfcapd PATH or --listen ADDR (see --help)");
    }
    if a.listen.is_some() && a.exporters.is_empty() {
        anyhow::bail!(
            "--listen needs at least one --exporter CIDR: the routers allowed to send flows (UDP comes from anyone), e.g. --exporter 192.0.2.1 or --exporter 127.0.0.1 for a local softflowd or nfcapd"
        );
    }
    let p = policy::load(&a.policy)?;
    let table = Table::new(&p);
    let opts = Options { window_ms: a.window * 1000, threshold: a.threshold, block_at_ms: a.block_at };
    let loaded = if a.attribution.is_empty() {
        None
    } else {
        Some(
            attribution::load_with(&a.attribution, &a.cgnat_numbering)
                .map_err(|e| anyhow::anyhow!("attribution: {e}"))?,
        )
    };
    let mut analyzer = Analyzer::new(&p, &table, opts);
    if let Some(l) = &loaded {
        analyzer.attribute(&l.index, &l.files);
        if let Some(nat) = &l.nat {
            analyzer.attribute_nat(nat);
        }
    }
    let mut collector = Collector::new();
    if !a.exporters.is_empty() {
        collector.only_from(a.exporters.clone());
    }
    let mut flows: Vec<Flow> = Vec::with_capacity(64);
    let mut skipped_packets = 0;

    skipped_packets += read_pcaps(&a.pcap, a.quiet, &mut collector, &mut analyzer)?;
    let nf = read_nfcapd(&a.nfcapd, &mut analyzer)?;
    if let Some(addr) = a.listen {
        let sock = UdpSocket::bind(addr).with_context(|| format!("binding UDP {addr}"))?;
        // Start-up line for scripts and tests that wait for the socket.
        let from: Vec<String> = a.exporters.iter().map(ToString::to_string).collect();
        errln!("port25: listening for NetFlow/IPFIX on udp {} from {}", sock.local_addr()?, from.join(", "));
        let started = Instant::now();
        let mut last: Option<Instant> = None;
        let mut buf = vec![0u8; 65536];
        sock.set_read_timeout(Some(Duration::from_millis(200)))?;
        loop {
            if a.duration.is_some_and(|d| started.elapsed().as_secs_f64() >= d) {
                break;
            }
            if last.is_some_and(|l| l.elapsed().as_secs_f64() >= a.idle) {
                break;
            }
            match sock.recv_from(&mut buf) {
                Ok((n, from)) => {
                    last = Some(Instant::now());
                    collector.datagram(from.ip(), &buf[..n], &mut flows);
                    for f in flows.drain(..) {
                        analyzer.add(&f);
                    }
                }
                Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
                Err(e) => return Err(e).context("receiving"),
            }
        }
    }
    collector.finish();

    let rows = analyzer.rows();
    let s = &collector.stats;
    errln!(
        "port25: {} datagrams, {} flows ({} to blocked ports from blocked space, {} subscribers, {} flagged); malformed {}, templates learned {} changed {} withdrawn {} evicted {}, sets deferred {} recovered {} without template {}, incomplete records {}, non-UDP packets {}, refused datagrams {}",
        s.datagrams,
        s.flows,
        analyzer.flows_matched,
        rows.len(),
        rows.iter().filter(|r| r.spambot).count(),
        s.malformed,
        s.templates_learned,
        s.templates_changed,
        s.templates_withdrawn,
        s.templates_evicted,
        s.sets_deferred,
        s.sets_recovered,
        s.sets_without_template,
        s.records_incomplete,
        skipped_packets,
        s.datagrams_refused
    );
    let estimated = rows.iter().filter(|r| !r.estimated.is_empty()).count();
    if estimated > 0 {
        errln!(
            "port25: {estimated} rows hold estimated figures (a per-subscriber cap was reached, or {} flows came further out of start-time order than the reorder buffer holds): see `estimated` in --format json, ~N and N+ in the table",
            analyzer.flows_late()
        );
    }
    if s.datagrams_refused > 0 {
        let named: Vec<String> = collector.refused_from.iter().map(ToString::to_string).collect();
        errln!(
            "port25: refused {} datagrams from sources outside --exporter: {}{}",
            s.datagrams_refused,
            named.join(", "),
            if named.len() >= port25_egress::flow::MAX_REFUSED_NAMED { ", ..." } else { "" }
        );
    }
    if !a.nfcapd.is_empty() {
        let t = &nf.stats;
        errln!(
            "port25: nfcapd: {} files, {} blocks, {} records, {} flows; corrupt blocks {}, malformed records {}, incomplete records {}, other records {}, files cut short {}",
            nf.files, t.blocks, t.records, t.flows, t.blocks_corrupt, t.records_malformed, t.records_incomplete, t.records_other, nf.truncated
        );
        for p in &nf.named {
            errln!("port25: nfcapd: {p}");
        }
        if nf.named.len() as u64 != nf.problems {
            errln!(
                "port25: nfcapd: (the first {} problems of each file are named; {} in all)",
                nfcapd::MAX_NAMED,
                nf.problems
            );
        }
    }
    if let Some(l) = &loaded {
        let w = &l.warnings;
        let counts: Vec<String> = WarningKind::ALL
            .iter()
            .filter(|k| w.count(**k) > 0)
            .map(|k| format!("{} {}", k.as_str(), w.count(*k)))
            .collect();
        if let Some(nat) = &l.nat {
            errln!("port25: attribution: {} CGNAT port blocks", nat.blocks.len());
        }
        errln!(
            "port25: attribution: {} sessions over {} prefixes from {} files; flows attributed {}, unattributed {}; warnings {}{}",
            l.index.len(),
            l.index.prefixes(),
            l.files.len(),
            analyzer.flows_attributed,
            analyzer.flows_unattributed,
            w.total(),
            if counts.is_empty() { String::new() } else { format!(" ({})", counts.join(", ")) }
        );
        for x in &w.named {
            errln!("port25: attribution: {}", Named(x, &l.files));
        }
        if w.named.len() as u64 != w.total() {
            errln!(
                "port25: attribution: (the first {} warnings of each kind are named)",
                port25_egress::attribution::MAX_WARNINGS_NAMED
            );
        }
    }
    let with_block = a.block_at.is_some();
    let with_attribution = loaded.is_some();
    let text = match a.format {
        Format::Table => report::table(&rows, with_block, with_attribution),
        Format::Csv => report::csv(&rows, with_block, with_attribution),
        Format::Json => {
            let mut v = serde_json::json!({
                "subscribers": rows,
                "stats": {
                    "datagrams": s.datagrams, "flows": s.flows, "flows_matched": analyzer.flows_matched,
                    "malformed": s.malformed, "templates_learned": s.templates_learned,
                    "templates_changed": s.templates_changed, "templates_withdrawn": s.templates_withdrawn,
                    "templates_evicted": s.templates_evicted, "datagrams_refused": s.datagrams_refused,
                    "sets_deferred": s.sets_deferred, "sets_recovered": s.sets_recovered,
                    "sets_without_template": s.sets_without_template, "records_incomplete": s.records_incomplete,
                }
            });
            if !a.nfcapd.is_empty() {
                let t = &nf.stats;
                v["nfcapd"] = serde_json::json!({
                    "files": nf.files, "blocks": t.blocks, "records": t.records, "flows": t.flows,
                    "blocks_corrupt": t.blocks_corrupt, "records_malformed": t.records_malformed,
                    "records_incomplete": t.records_incomplete, "records_other": t.records_other,
                    "files_cut_short": nf.truncated, "problems": nf.problems, "problems_named": nf.named,
                });
            }
            if let Some(l) = &loaded {
                let w = &l.warnings;
                let counts: serde_json::Map<String, serde_json::Value> =
                    WarningKind::ALL.iter().map(|k| (k.as_str().to_owned(), w.count(*k).into())).collect();
                let named: Vec<serde_json::Value> = w
                    .named
                    .iter()
                    .map(|x| serde_json::json!({"file": l.files.get(x.origin.file as usize), "line": x.origin.line, "kind": x.kind.as_str(), "message": x.message}))
                    .collect();
                v["attribution"] = serde_json::json!({
                    "files": l.files, "sessions": l.index.len(), "prefixes": l.index.prefixes(),
                    "flows_attributed": analyzer.flows_attributed, "flows_unattributed": analyzer.flows_unattributed,
                    "warnings": counts, "warnings_named": named,
                });
            }
            serde_json::to_string_pretty(&v)? + "\n"
        }
    };
    crate::out::write_stdout(text.as_bytes());
    Ok(ExitCode::SUCCESS)
}

/// What the nfcapd files held, over all of them.
#[derive(Default)]
pub(crate) struct NfcapdRead {
    pub files: u64,
    pub stats: nfcapd::Stats,
    pub truncated: u64,
    pub problems: u64,
    /// `FILE: byte OFFSET: message`, the first few of each file.
    pub named: Vec<String>,
}

/// The files `--nfcapd PATH` names: PATH itself, or a directory's
/// nfcapd.* files (the one nfcapd is writing, nfcapd.current.*, left out)
/// in name order, which is time order.
fn nfcapd_files(path: &std::path::Path) -> anyhow::Result<Vec<PathBuf>> {
    if !path.is_dir() {
        return Ok(vec![path.to_owned()]);
    }
    let mut files = Vec::new();
    for e in std::fs::read_dir(path).with_context(|| format!("listing {}", path.display()))? {
        let e = e?;
        let name = e.file_name();
        let name = name.to_string_lossy();
        if name.starts_with("nfcapd.") && !name.starts_with("nfcapd.current") && e.file_type()?.is_file() {
            files.push(e.path());
        }
    }
    files.sort();
    if files.is_empty() {
        anyhow::bail!("{}: no nfcapd.* files in this directory", path.display());
    }
    Ok(files)
}

/// Streams every block of every file into the analyzer: two block buffers
/// of memory whatever the files' sizes.
pub(crate) fn read_nfcapd(paths: &[PathBuf], analyzer: &mut Analyzer) -> anyhow::Result<NfcapdRead> {
    let mut r = NfcapdRead::default();
    for path in paths {
        for file in nfcapd_files(path)? {
            let f = std::fs::File::open(&file).with_context(|| format!("opening {}", file.display()))?;
            let mut reader = nfcapd::Reader::new(std::io::BufReader::with_capacity(1 << 16, f))
                .map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
            while reader
                .next_block_each(|f, n| analyzer.add_counted(f, n))
                .with_context(|| format!("reading {}", file.display()))?
            {}
            let s = &reader.stats;
            r.files += 1;
            r.stats.blocks += s.blocks;
            r.stats.records += s.records;
            r.stats.flows += s.flows;
            r.stats.blocks_corrupt += s.blocks_corrupt;
            r.stats.blocks_other += s.blocks_other;
            r.stats.records_malformed += s.records_malformed;
            r.stats.records_incomplete += s.records_incomplete;
            r.stats.records_other += s.records_other;
            r.truncated += u64::from(s.truncated);
            r.problems += reader.problems_total;
            for p in &reader.problems {
                r.named.push(format!("{}: byte {}: {}", file.display(), p.offset, p.message));
            }
        }
    }
    Ok(r)
}

/// Decodes every exported datagram of the pcap files into the analyzer;
/// the number of non-UDP packets skipped.
pub(crate) fn read_pcaps(
    files: &[PathBuf],
    quiet: bool,
    collector: &mut Collector,
    analyzer: &mut Analyzer,
) -> anyhow::Result<u64> {
    let mut flows: Vec<Flow> = Vec::with_capacity(64);
    let mut skipped = 0;
    let total = files.iter().map(|f| std::fs::metadata(f).map_or(0, |m| m.len())).sum();
    let bar = super::progress::Progress::new(quiet, "reading flows", total, true);
    for file in files {
        let data = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
        let mut reader = pcap::Reader::new(&data).map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
        let mut done = 0;
        #[allow(clippy::while_let_on_iterator)] // the loop reads reader.position()
        while let Some(d) = reader.next() {
            collector.datagram(d.src, d.payload, &mut flows);
            for f in flows.drain(..) {
                analyzer.add(&f);
            }
            bar.inc((reader.position() - done) as u64);
            done = reader.position();
        }
        bar.inc((data.len() - done) as u64);
        skipped += reader.skipped;
        if reader.truncated {
            errln!("port25: {}: the last packet is cut short (capture still running?); read up to it", file.display());
        }
    }
    bar.finish();
    Ok(skipped)
}
