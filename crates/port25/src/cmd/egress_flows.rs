//! `port25 egress flows`: NetFlow v5/v9/IPFIX from UDP or pcap files to the
//! list of subscribers that still try port 25.

use anyhow::Context;
use port25_egress::attribution::load::{self as attribution, Spec};
use port25_egress::attribution::{Named, WarningKind};
use port25_egress::flow::{nfcapd, pcap, Collector, Flow};
use port25_egress::prefix::Prefix;
use port25_egress::report::{self, Analyzer, Options, Wanted, DEFAULT_MAX_INBOUND, DEFAULT_MAX_ROWS};
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
                        IPv6: a row is the session's delegated prefix that matched, and without a session the\n\
                        source's /64 (--ipv6-prefix-length): hosts choose their addresses inside their prefix.\n\
                        Memory is bounded: at most --max-rows rows and --max-inbound subscribers with open-proxy\n\
                        evidence; what comes past a cap is counted and reported on standard error, never kept.\n\n\
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
    #[command(flatten)]
    bounds: Bounds,
}

/// How rows are made and how many are kept (`egress flows`, `plan`, `notify`).
#[derive(clap::Args, Clone, Copy)]
pub struct Bounds {
    /// IPv6 sources no session names are counted per prefix of this length: the size you delegate (e.g. 56), 128 for one row per address (a session's row is its delegated prefix)
    #[arg(long = "ipv6-prefix-length", value_name = "BITS", default_value_t = 64, value_parser = clap::value_parser!(u8).range(1..=128))]
    pub ipv6_prefix_len: u8,
    /// Keep at most this many rows; flows of senders past it are counted and reported, not kept
    #[arg(long, value_name = "N", default_value_t = DEFAULT_MAX_ROWS, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    pub max_rows: usize,
    /// Keep open-proxy evidence (inbound proxy-port connections) for at most this many subscribers
    #[arg(long, value_name = "N", default_value_t = DEFAULT_MAX_INBOUND, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    pub max_inbound: usize,
}

impl Bounds {
    /// The analysis options with these bounds.
    pub fn options(self, window_s: u64, threshold: usize, block_at_ms: Option<u64>) -> Options {
        Options {
            window_ms: window_s * 1000,
            threshold,
            block_at_ms,
            ipv6_prefix_len: self.ipv6_prefix_len,
            max_rows: self.max_rows,
            max_inbound: self.max_inbound,
        }
    }
}

/// The bounds' warnings: what was counted but not kept. Standard error.
pub(crate) fn report_caps(analyzer: &Analyzer, b: &Bounds) {
    if analyzer.flows_past_row_cap > 0 {
        errln!(
            "port25: warning: {} matched flows are counted but in no row: the --max-rows cap of {} rows was reached (raise it, or narrow the flows)",
            analyzer.flows_past_row_cap,
            b.max_rows
        );
    }
    let inbound = analyzer.inbound_flows_past_cap();
    if inbound > 0 {
        errln!(
            "port25: warning: {inbound} inbound proxy-port flows are counted but not kept as open-proxy evidence: the --max-inbound cap of {} subscribers was reached",
            b.max_inbound
        );
    }
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
    let opts = a.bounds.options(a.window, a.threshold, a.block_at);
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
    report_caps(&analyzer, &a.bounds);
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
                    "flows_past_row_cap": analyzer.flows_past_row_cap,
                    "inbound_flows_past_cap": analyzer.inbound_flows_past_cap(),
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
    // The process ends next: freeing every row's state and the attribution
    // index one allocation at a time (a few percent of a large run's wall
    // time in a profile) would only delay the exit.
    std::mem::forget(rows);
    std::mem::forget(analyzer);
    std::mem::forget(loaded);
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

/// A block on its way from a reader thread to the analysis: its stored
/// bytes, and the flows the analysis wants from it with the counts of what
/// decoding found. The slots are a fixed few, passed back and forth, so
/// memory stays a few block buffers whatever the files' sizes.
#[derive(Default)]
struct Slot {
    raw: Vec<u8>,
    /// Per shard of the analysis ([`report::Prefilter::shard`]), with what the
    /// prefilter found, so the analysis does not look it up again.
    flows: Vec<Vec<(Flow, u64, Wanted)>>,
    /// Flows the prefilter dropped, which the analysis only counts.
    dropped: u64,
    stats: nfcapd::Stats,
    problem: Option<nfcapd::Problem>,
    /// Index of the file in the list read.
    file: usize,
}

/// An nfcapd file being read.
type FileReader = nfcapd::Reader<std::io::BufReader<std::fs::File>>;

/// What a reader thread hands the analysis, numbered in file order.
enum Step {
    Block(Slot),
    /// A file read to its end: the reader's own counts and problems.
    FileEnd(Slot, Box<FileReader>),
    Failed(anyhow::Error),
    /// No more files.
    End,
    /// A reader thread panicked: the step it would have sent never comes.
    Lost,
}

/// The files and the one being read, shared by the reader threads:
/// taking a block, and its number, is one step under the lock, so the
/// numbers follow the files' order whatever thread decodes each block.
struct Feed<'a> {
    files: &'a [PathBuf],
    file: usize,
    reader: Option<Box<FileReader>>,
    seq: u64,
    finished: bool,
}

/// What the reader thread does next with its slot.
enum Next {
    Decode(nfcapd::RawBlock),
    End,
    FileEnd(Box<FileReader>),
    Failed(anyhow::Error),
}

impl Feed<'_> {
    /// Reads the next block into `slot` (opening the next file when one
    /// ends); its sequence number and what to do with it.
    fn next(&mut self, slot: &mut Slot) -> (u64, Next) {
        let seq = self.seq;
        self.seq += 1;
        (seq, self.step(slot))
    }

    fn step(&mut self, slot: &mut Slot) -> Next {
        if self.finished {
            return Next::End;
        }
        let Some(path) = self.files.get(self.file) else {
            self.finished = true;
            return Next::End;
        };
        slot.file = self.file;
        let reader = match &mut self.reader {
            Some(r) => r,
            None => {
                let opened =
                    std::fs::File::open(path).with_context(|| format!("opening {}", path.display())).and_then(|f| {
                        nfcapd::Reader::new(std::io::BufReader::with_capacity(1 << 16, f))
                            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
                    });
                match opened {
                    Ok(r) => self.reader.insert(Box::new(r)),
                    Err(e) => {
                        self.finished = true;
                        return Next::Failed(e);
                    }
                }
            }
        };
        match reader.next_raw(&mut slot.raw) {
            Ok(Some(b)) => Next::Decode(b),
            Ok(None) => {
                self.file += 1;
                Next::FileEnd(self.reader.take().expect("being read"))
            }
            Err(e) => {
                self.finished = true;
                Next::Failed(anyhow::Error::new(e).context(format!("reading {}", path.display())))
            }
        }
    }
}

/// Sends [`Step::Lost`] if its reader thread unwinds, so that the analysis
/// does not wait for a block that will never come.
struct LostGuard<'a>(&'a std::sync::mpsc::Sender<(u64, Step)>);

impl Drop for LostGuard<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let _ = self.0.send((u64::MAX, Step::Lost));
        }
    }
}

/// Reader threads: as many as the machine has cores, at most 4 (the
/// analysis, on the calling thread, is the rest of the work).
fn reader_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get()).clamp(1, 4)
}

/// Shards of the analysis: as many as the machine has cores, at most 4.
/// The calling thread analyzes one and puts the blocks in order; each
/// other shard has a thread.
fn analysis_shards() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get()).clamp(1, 4)
}

/// Streams every block of every file into the analyzer. Reader threads
/// read, decompress and decode blocks, drop the flows the analysis would
/// only count ([`Analyzer::prefilter`]) and split the rest by subscriber
/// into shards ([`report::Prefilter::shard`]); the calling thread takes the
/// blocks in file order and analyzes one shard's flows, and a thread per
/// other shard its own (when the analyzer holds nothing yet: otherwise one
/// shard). Each subscriber's flows are analyzed in file order by one
/// analyzer, so every figure is what one thread reading the files in order
/// computes. Memory: a fixed number of block buffers, whatever the files'
/// sizes.
pub(crate) fn read_nfcapd(paths: &[PathBuf], analyzer: &mut Analyzer) -> anyhow::Result<NfcapdRead> {
    let mut files = Vec::new();
    for path in paths {
        files.extend(nfcapd_files(path)?);
    }
    let mut r = NfcapdRead::default();
    if files.is_empty() {
        return Ok(r);
    }
    let threads = reader_threads();
    let shards = if analyzer.is_empty() { analysis_shards() } else { 1 };
    let prefilter = analyzer.prefilter();
    let feed = std::sync::Mutex::new(Feed { files: &files, file: 0, reader: None, seq: 0, finished: false });
    let (free_tx, free_rx) = std::sync::mpsc::channel::<Slot>();
    let free_rx = std::sync::Mutex::new(free_rx);
    let (done_tx, done_rx) = std::sync::mpsc::channel::<(u64, Step)>();
    // Two slots per reader thread (one being decoded, one waiting to be
    // analyzed) and one per shard being analyzed.
    for _ in 0..2 * threads + shards {
        free_tx.send(Slot::default()).expect("receiver held here");
    }
    std::thread::scope(|scope| {
        for _ in 0..threads {
            let (feed, free_rx, done_tx, prefilter) = (&feed, &free_rx, done_tx.clone(), &prefilter);
            scope.spawn(move || {
                let _guard = LostGuard(&done_tx);
                let mut scratch = Vec::new();
                loop {
                    // Err: the analysis is over (finished or failed).
                    let Ok(mut slot) = free_rx.lock().unwrap_or_else(|e| e.into_inner()).recv() else { return };
                    let (seq, next) = feed.lock().unwrap_or_else(|e| e.into_inner()).next(&mut slot);
                    let step = match next {
                        Next::Decode(b) => {
                            slot.flows.resize_with(shards, Vec::new);
                            slot.flows.iter_mut().for_each(Vec::clear);
                            slot.stats = nfcapd::Stats::default();
                            let (flows, mut dropped, mut refused) = (&mut slot.flows, 0, 0);
                            // Flows whose protocol and port the prefilter
                            // refuses anyway are not even built.
                            let may_want = |proto, port| prefilter.may_want(proto, port);
                            slot.problem = nfcapd::decode_block_where(
                                &b,
                                &slot.raw,
                                &mut scratch,
                                &mut slot.stats,
                                &may_want,
                                &mut |n| refused += n,
                                &mut |f, n| {
                                    if let Some(w) = prefilter.wants(f) {
                                        flows[prefilter.shard(w, f, shards)].push((*f, n, w));
                                    } else {
                                        dropped += n;
                                    }
                                },
                            );
                            slot.dropped = dropped + refused;
                            Step::Block(slot)
                        }
                        Next::End => Step::End,
                        Next::FileEnd(reader) => Step::FileEnd(slot, reader),
                        Next::Failed(e) => Step::Failed(e),
                    };
                    let end = matches!(step, Step::End | Step::Failed(_));
                    if done_tx.send((seq, step)).is_err() || end {
                        return;
                    }
                }
            });
        }
        // The other shards' threads: each analyzes its flows of every block,
        // in the order the calling thread hands them over.
        let mut to_shards = Vec::new();
        let mut joined = Vec::new();
        for k in 1..shards {
            let (tx, rx) = std::sync::mpsc::channel::<std::sync::Arc<Slot>>();
            to_shards.push(tx);
            let (free_tx, done_tx) = (free_tx.clone(), done_tx.clone());
            let mut shard = analyzer.shard();
            joined.push(scope.spawn(move || {
                let _guard = LostGuard(&done_tx);
                for slot in rx {
                    for (f, n, w) in &slot.flows[k] {
                        shard.add_wanted(f, *n, *w);
                    }
                    // The last one done with the block hands the slot back.
                    if let Some(slot) = std::sync::Arc::into_inner(slot) {
                        let _ = free_tx.send(slot);
                    }
                }
                // Its last batch folded here, while the calling thread
                // folds its own, not after it in absorb.
                shard.fold();
                shard
            }));
        }
        drop(done_tx);
        let analyzed = analyze_in_order(&files, &done_rx, &free_tx, &to_shards, analyzer, &mut r);
        // The shards' threads end when their channels close.
        drop(to_shards);
        analyzer.fold();
        let analyzed = analyzed.and_then(|()| {
            for j in joined {
                let shard = j.join().map_err(|_| anyhow::anyhow!("an nfcapd analysis thread failed"))?;
                analyzer.absorb(shard);
            }
            Ok(())
        });
        // Whatever happened, the reader threads stop: no more slots come
        // back (they wait on none), and what they send is not read.
        drop(free_tx);
        drop(done_rx);
        analyzed
    })?;
    Ok(r)
}

/// A problem as the report names it: file, byte offset, what was wrong.
fn named(file: &std::path::Path, p: &nfcapd::Problem) -> String {
    format!("{}: byte {}: {}", file.display(), p.offset, p.message)
}

/// The analysis side of [`read_nfcapd`]: steps taken in their numbered
/// order (a few wait while an earlier block is still being decoded).
fn analyze_in_order(
    files: &[PathBuf],
    done: &std::sync::mpsc::Receiver<(u64, Step)>,
    free: &std::sync::mpsc::Sender<Slot>,
    shards: &[std::sync::mpsc::Sender<std::sync::Arc<Slot>>],
    analyzer: &mut Analyzer,
    r: &mut NfcapdRead,
) -> anyhow::Result<()> {
    let mut waiting = std::collections::BTreeMap::new();
    let mut next = 0u64;
    // Problems named so far for the file being read (blocks' first, then
    // the reader's own, which come at its end).
    let mut named_here = 0;
    loop {
        let step = match waiting.remove(&next) {
            Some(step) => step,
            None => {
                let (seq, step) = done.recv().context("the nfcapd reader threads stopped early")?;
                if matches!(step, Step::Lost) {
                    anyhow::bail!("an nfcapd reader or analysis thread failed");
                }
                waiting.insert(seq, step);
                continue;
            }
        };
        next += 1;
        let slot = match step {
            Step::Block(slot) => {
                let slot = std::sync::Arc::new(slot);
                for s in shards {
                    s.send(slot.clone()).map_err(|_| anyhow::anyhow!("an nfcapd analysis thread stopped early"))?;
                }
                for (f, n, w) in slot.flows.first().into_iter().flatten() {
                    analyzer.add_wanted(f, *n, *w);
                }
                analyzer.flows_seen += slot.dropped;
                r.stats.add(&slot.stats);
                if let Some(p) = &slot.problem {
                    r.problems += 1;
                    if named_here < nfcapd::MAX_NAMED {
                        named_here += 1;
                        r.named.push(named(&files[slot.file], p));
                    }
                }
                // The last one done with the block hands the slot back.
                match std::sync::Arc::into_inner(slot) {
                    Some(slot) => slot,
                    None => continue,
                }
            }
            Step::FileEnd(slot, reader) => {
                r.files += 1;
                r.stats.add(&reader.stats);
                r.truncated += u64::from(reader.stats.truncated);
                r.problems += reader.problems_total;
                for p in reader.problems.iter().take(nfcapd::MAX_NAMED - named_here) {
                    r.named.push(named(&files[slot.file], p));
                }
                named_here = 0;
                slot
            }
            Step::Failed(e) => return Err(e),
            Step::End => return Ok(()),
            Step::Lost => unreachable!("handled when received"),
        };
        // The receiving end lives as long as the reader threads do.
        let _ = free.send(slot);
    }
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
        // Streamed one record at a time: memory does not follow the
        // capture's size (issue 20).
        let input = std::fs::File::open(file).with_context(|| format!("reading {}", file.display()))?;
        let len = input.metadata().map_or(0, |m| m.len());
        let mut reader = pcap::Stream::new(std::io::BufReader::with_capacity(1 << 16, input))
            .map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
        let mut done = 0;
        while let Some(d) = reader.next_datagram().with_context(|| format!("reading {}", file.display()))? {
            collector.datagram(d.src, d.payload, &mut flows);
            for f in flows.drain(..) {
                analyzer.add(&f);
            }
            bar.inc(reader.position() - done);
            done = reader.position();
        }
        bar.inc(len.saturating_sub(done));
        let counts = reader.counts();
        skipped += counts.skipped;
        if counts.oversized > 0 {
            errln!(
                "port25: {}: {} packets longer than {} KiB skipped (not flow exports)",
                file.display(),
                counts.oversized,
                pcap::MAX_RECORD / 1024
            );
        }
        if counts.truncated {
            errln!("port25: {}: the last packet is cut short (capture still running?); read up to it", file.display());
        }
    }
    bar.finish();
    Ok(skipped)
}
