//! `port25 report`: statistics over SpamPots captures, blocklist rank and
//! complaint trends, written as one HTML page plus JSON and CSV; and the
//! synthetic capture generator (`report generate`).

use super::progress::Progress;
use anyhow::Context;
use port25_report::{enrich::Enricher, generate, output, scan, stats::Filter, table1};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args)]
#[command(
    about = "Reports: Table 1 over SpamPots captures, origin/destination, campaigns, blocklist rank, complaints",
    long_about = "Counts what SpamPots sensors captured (the white paper's Table 1: emails, recipients, recipients per \
                  spam, emails per day, unique sender IPs, ASes and countries; probes apart), where it came from \
                  (country, AS, address) and went (recipient domain and its country), campaigns (identical and \
                  near-duplicate bodies); and, from dated blocklist dumps and abuse reports, the slides' results: a \
                  country's rank in a blocklist over time, its main ASNs, complaints per month by category.\n\n\
                  Try it on synthetic data:\n  port25 report generate /tmp/synth\n  port25 report build --capture /tmp/synth/capture \
                  --enrich /tmp/synth/geoip.csv --enrich /tmp/synth/routeviews.pfx2as --out /tmp/synth/report\n\n\
                  Details: docs/report.md"
)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Subcommand)]
enum Command {
    /// Write a deterministic synthetic capture store with known answers (truth.json)
    #[command(
        long_about = "Writes OUT/capture (a real capture store: events and bodies, through the capture crate's writer), \
        OUT/geoip.csv (tor-geoipdb format) and OUT/routeviews.pfx2as (CAIDA format) describing its address plan, and \
        OUT/truth.json with every figure a correct report must give. Same seed, same bytes."
    )]
    Generate(GenArgs),
    /// Build a report from captures, blocklist dumps and/or abuse reports
    Build(Box<BuildArgs>),
    /// Write ARF abuse reports, per AS, about the spam sources a capture saw, to the AS's abuse contact (from an offline file); nothing is sent
    #[command(
        long_about = "For every AS that spam sources in the capture belong to (by --enrich, as of each source's first \
        spam), writes OUT/AS<number>.mbox: one ARF report (RFC 5965 multipart/report, Feedback-Type abuse, Source-IP, \
        Arrival-Date = first seen, Incidents = messages) per source, most active first, with the evidence (first and last \
        time, messages, recipients, sensors, proxy types) and the headers of one captured message, addressed to the AS's \
        abuse mailbox from --contacts: CSV asn,abuse[,name] or an RIR whois export in RPSL (aut-num with abuse-mailbox, or \
        abuse-c/org naming a role or organisation that has one). OUT/index.csv lists the notices; OUT/no-contact.csv the \
        ASes without a contact. Nothing is sent: hand the mbox files to your mail system after reading them. \
        `port25 report build --complaints OUT` reads them back. Details: docs/report.md"
    )]
    Notices(NoticesArgs),
}

/// Which capture events count: the days and sensors (`report build` and `report notices`).
#[derive(clap::Args)]
struct Window {
    /// First day counted (YYYY-MM-DD, UTC)
    #[arg(long)]
    from: Option<String>,
    /// Last day counted (YYYY-MM-DD, UTC, inclusive)
    #[arg(long)]
    to: Option<String>,
    /// Count only this sensor (repeatable)
    #[arg(long)]
    sensor: Vec<String>,
}

impl Window {
    fn filter(&self) -> anyhow::Result<Filter> {
        Ok(Filter { from: day_arg("from", &self.from)?, to: day_arg("to", &self.to)?, sensors: self.sensor.clone() })
    }
}

#[derive(clap::Args)]
struct NoticesArgs {
    /// Capture directory (as for report build)
    #[arg(long)]
    capture: PathBuf,
    /// IP-to-AS enrichment (pfx2as, mmdb, ranges; as for report build). Repeatable
    #[arg(long, required = true)]
    enrich: Vec<PathBuf>,
    /// Abuse contacts per AS: CSV asn,abuse[,name] or an RIR whois (RPSL) export. Repeatable; the first file naming an AS wins
    #[arg(long, required = true)]
    contacts: Vec<PathBuf>,
    /// The reporter's address: From: of every notice
    #[arg(long, value_name = "ADDRESS")]
    reporter: String,
    /// The reporter's name in the text
    #[arg(long, default_value = "The SpamPots project")]
    organisation: String,
    /// Output directory (created; refused if it has files, so two runs never mix)
    #[arg(long, short)]
    out: PathBuf,
    #[command(flatten)]
    window: Window,
    /// At most this many sources (the most active) per AS
    #[arg(long, default_value_t = 100)]
    max_sources: usize,
}

#[derive(clap::Args)]
struct GenArgs {
    /// Output directory (created)
    out: PathBuf,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// First day, YYYY-MM-DD
    #[arg(long, default_value = "2006-06-10")]
    start: String,
    #[arg(long, default_value_t = 30)]
    days: u32,
    #[arg(long, default_value_t = 10)]
    sensors: u32,
    /// Distinct source addresses
    #[arg(long, default_value_t = 2000)]
    sources: u32,
    /// Spam messages (probes come on top: one per source)
    #[arg(long, default_value_t = 100_000)]
    messages: u64,
    #[arg(long, default_value_t = 40)]
    campaigns: u32,
    /// Body variants per campaign (near-duplicates)
    #[arg(long, default_value_t = 3)]
    variants: u32,
    #[arg(long, default_value_t = 300)]
    asns: u32,
    /// No progress bar (there is none anyway when standard error is not a terminal)
    #[arg(long, short)]
    quiet: bool,
}

#[derive(clap::Args)]
pub struct BuildArgs {
    /// Capture directory: a sensor's (has events/), a collector's (has sensors/*/events/), or an events/ directory; segments plain (.jsonl) or zstd-compressed (.jsonl.zst)
    #[arg(long)]
    capture: Option<PathBuf>,
    /// IP enrichment: .mmdb (MaxMind), *pfx2as* (CAIDA), or a low,high,CC|AS range file (e.g. /usr/share/tor/geoip); a directory = dated versions. Repeatable; first answer wins
    #[arg(long)]
    enrich: Vec<PathBuf>,
    #[command(flatten)]
    window: Window,
    /// Rows in top-N tables
    #[arg(long, default_value_t = 20)]
    top: usize,
    /// The sensors' country: recipients elsewhere are "abroad"
    #[arg(long, default_value = "BR")]
    home: String,
    /// Skip near-duplicate clustering (reads every distinct body)
    #[arg(long)]
    no_near_duplicates: bool,
    /// Threads reading the capture log
    #[arg(long, default_value_t = std::thread::available_parallelism().map_or(2, |n| n.get()))]
    threads: usize,
    /// Also export the capture's message records, enriched, as a Parquet dataset in this new directory, Hive-partitioned by day and sensor (DIR/day=YYYY-MM-DD/sensor=NAME/part-NNNNN.parquet; schema and the SQL for Table 1 in docs/report.md)
    #[arg(long, value_name = "DIR")]
    parquet: Option<PathBuf>,
    /// Blocklist dumps (rbldnsd ip4set or plain address lists), dated in their names; a directory = all its files. Repeatable
    #[arg(long)]
    blocklist: Vec<PathBuf>,
    /// CBL statistics snapshots (the CBL's country.html / asntraffic.html saved as HTML, or CSV country,listings / asn,listings[,country]), dated in their names; a directory = all its files. A blocklist source beside --blocklist: counts per country and per AS as the CBL gives them. Repeatable
    #[arg(long)]
    cbl: Vec<PathBuf>,
    /// Country followed in the blocklist section (its rank over time, its ASes in the top N)
    #[arg(long, default_value = "BR")]
    country: String,
    /// The AS ranking cut-off for "the country's ASes in the top N"
    #[arg(long, default_value_t = 200)]
    top_asns: usize,
    /// Abuse reports: ARF or plain messages in an mbox file, a Maildir or a directory of files. Repeatable
    #[arg(long)]
    complaints: Vec<PathBuf>,
    /// End-user (residential/dynamic) prefixes, one a line: complaints from them are "direct delivery"
    #[arg(long)]
    end_user: Option<PathBuf>,
    /// Write report.html, report.json and csv/ here
    #[arg(long, short)]
    out: Option<PathBuf>,
    /// Print the summary as JSON instead of text
    #[arg(long)]
    json: bool,
    /// A day something changed, DAY=LABEL (e.g. 2013-03-01="port 25 blocked"): every time series is split into before/after it, with the change, and every time chart marks it. Repeatable
    #[arg(long = "event", value_name = "DAY=LABEL")]
    events: Vec<String>,
    /// Also count every capture table per group of sensors, by the site in their events ([site] in spampot.toml): operator, asn, city, access or sensor
    #[arg(long, value_name = "operator|asn|city|access|sensor")]
    group_by: Option<port25_report::group::GroupBy>,
    /// No progress bars (there are none anyway when standard error is not a terminal)
    #[arg(long, short)]
    quiet: bool,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    match args.command {
        Command::Generate(g) => {
            let start = port25_report::date::parse_day(&g.start)
                .with_context(|| format!("--start {:?}: expected YYYY-MM-DD", g.start))?;
            let p = generate::Params {
                seed: g.seed,
                start_day: start,
                days: g.days.max(1),
                sensors: g.sensors.max(1),
                sources: g.sources.max(1),
                messages: g.messages,
                campaigns: g.campaigns.max(1),
                variants: g.variants.max(1),
                asns: g.asns.max(1),
            };
            let bar = Progress::new(g.quiet, "generating spam", p.messages, false);
            let t = generate::generate_with(&p, &g.out, &|n| bar.inc(n))
                .with_context(|| format!("writing {}", g.out.display()))?;
            bar.finish();
            outln!(
                "wrote {}: {} events, {} emails, {} recipients, {} probes, {} source IPs, {} ASes, {} countries ({} to {}); truth in truth.json",
                g.out.display(),
                t.events,
                t.emails,
                t.recipients,
                t.probes,
                t.unique_ips,
                t.unique_asns,
                t.countries,
                t.first_day,
                t.last_day
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Build(b) => build(*b),
        Command::Notices(n) => notices(n),
    }
}

fn notices(n: NoticesArgs) -> anyhow::Result<ExitCode> {
    use port25_report::notices;
    if !notices::address_ok(&n.reporter) {
        anyhow::bail!("--reporter {:?}: expected one e-mail address (it is the notices' From:)", n.reporter);
    }
    if n.out.exists()
        && std::fs::read_dir(&n.out).with_context(|| format!("reading {}", n.out.display()))?.next().is_some()
    {
        anyhow::bail!(
            "{}: exists and is not empty; give a new directory (notices of two runs must not mix)",
            n.out.display()
        );
    }
    let mut enricher = Enricher::default();
    for p in &n.enrich {
        enricher.add(p)?;
    }
    let mut contacts = notices::Contacts::default();
    for p in &n.contacts {
        let text = std::fs::read(p).with_context(|| format!("reading {}", p.display()))?;
        let (c, bad) = notices::Contacts::parse(&String::from_utf8_lossy(&text))
            .map_err(|m| anyhow::anyhow!("{}: {m}", p.display()))?;
        for b in bad.iter().take(20) {
            errln!("port25 report: {}:{}: {}; skipped", p.display(), b.line, b.msg);
        }
        for (asn, contact) in c.by_asn {
            contacts.by_asn.entry(asn).or_insert(contact);
        }
    }
    let filter = n.window.filter()?;
    let (seen, damage) = notices::sources(&n.capture, &filter)?;
    for d in &damage.examples {
        errln!("port25 report: {d}");
    }
    let bodies_dir = n.capture.join("bodies");
    let bodies = if bodies_dir.is_dir() { Some(port25_capture::bodies::Bodies::open(&bodies_dir)?) } else { None };
    let now = std::time::SystemTime::now();
    let opt = notices::Options {
        from: n.reporter.clone(),
        organisation: n.organisation.clone(),
        max_sources: n.max_sources.max(1),
        date: notices::rfc5322(&port25_time::rfc3339_millis(now)).unwrap_or_default(),
        run_id: format!("{}-{}", port25_time::since_epoch(now).as_secs(), std::process::id()),
    };
    std::fs::create_dir_all(&n.out).with_context(|| format!("creating {}", n.out.display()))?;
    let mut index = String::from("asn,contact,sources,emails,notices,file\n");
    let mut missing = String::from("asn,sources,emails\n");
    let (mut written, mut ases, mut lost_sources, mut lost_ases) = (0usize, 0usize, 0usize, 0usize);
    let no_asn = notices::build(&seen, &enricher, &contacts, bodies.as_ref(), &opt, &mut |a| {
        match &a.contact {
            Some(c) => {
                let file = format!("AS{}.mbox", a.asn);
                std::fs::write(n.out.join(&file), &a.mbox).map_err(|e| {
                    std::io::Error::new(e.kind(), format!("writing {}: {e}", n.out.join(&file).display()))
                })?;
                let k = a.sources.min(opt.max_sources);
                index.push_str(&format!("{},{},{},{},{k},{file}\n", a.asn, c.address, a.sources, a.emails));
                written += k;
                ases += 1;
            }
            None => {
                missing.push_str(&format!("{},{},{}\n", a.asn, a.sources, a.emails));
                lost_sources += a.sources;
                lost_ases += 1;
            }
        }
        Ok(())
    })?;
    std::fs::write(n.out.join("index.csv"), index)?;
    std::fs::write(n.out.join("no-contact.csv"), missing)?;
    outln!(
        "wrote {written} notices to {ases} ASes' abuse contacts in {} (index.csv); nothing was sent",
        n.out.display()
    );
    if lost_ases > 0 {
        outln!("{lost_ases} ASes ({lost_sources} sources) have no contact in the contacts files: no-contact.csv");
    }
    if no_asn > 0 {
        outln!("{no_asn} spam messages came from addresses the enrichment maps to no AS: no notice");
    }
    Ok(ExitCode::SUCCESS)
}

fn day_arg(name: &str, v: &Option<String>) -> anyhow::Result<Option<i64>> {
    v.as_ref()
        .map(|s| port25_report::date::parse_day(s).with_context(|| format!("--{name} {s:?}: expected YYYY-MM-DD")))
        .transpose()
}

fn build(b: BuildArgs) -> anyhow::Result<ExitCode> {
    let mut enricher = Enricher::default();
    for p in &b.enrich {
        enricher.add(p)?;
    }
    let markers = port25_report::markers::sorted(
        b.events
            .iter()
            .map(|e| port25_report::markers::parse(e))
            .collect::<Result<Vec<_>, _>>()
            .map_err(anyhow::Error::msg)?,
    )
    .map_err(anyhow::Error::msg)?;
    let mut sections = Vec::new();
    let mut summary = serde_json::Map::new();
    let mut lead = None;
    if let Some(dir) = &b.capture {
        let filter = b.window.filter()?;
        let size = scan::segments(dir)?.iter().map(|p| std::fs::metadata(p).map_or(0, |m| m.len())).sum();
        let bar = Progress::new(b.quiet, "reading capture", size, true);
        let (grouped, damage) = scan::scan_grouped(dir, &filter, b.group_by, b.threads, &|n| bar.inc(n))?;
        bar.finish();
        for d in &damage.examples {
            errln!("port25 report: {d}");
        }
        let bodies_dir = dir.join("bodies");
        let bodies = if bodies_dir.is_dir() { Some(port25_capture::bodies::Bodies::open(&bodies_dir)?) } else { None };
        let opt = table1::Options {
            top: b.top,
            markers: markers.clone(),
            home: b.home.to_ascii_uppercase(),
            near_duplicates: !b.no_near_duplicates,
            ..Default::default()
        };
        let spin = Progress::spinner(b.quiet, "tables, campaigns");
        let mut r = table1::build(&grouped.total, damage, &enricher, bodies.as_ref(), &opt);
        // The sensors seen in the window: with spam, a site or a session.
        let sensors_of = |a: &port25_report::stats::Accumulator| {
            a.per_sensor
                .keys()
                .chain(a.sites.keys())
                .chain(a.wire.keys().map(|k| &k.0))
                .collect::<std::collections::BTreeSet<_>>()
                .len()
        };
        let ctx = |r: &table1::CaptureReport, acc: &port25_report::stats::Accumulator, what: &str| {
            let n = sensors_of(acc);
            output::Context {
                source: format!(
                    "SpamPots capture {} ({what}{n} sensor{})",
                    dir.display(),
                    if n == 1 { "" } else { "s" }
                ),
                window: output::capture_window(r, filter.from, filter.to),
                markers: markers.clone(),
            }
        };
        let mut groups = Vec::new();
        if let Some(by) = b.group_by {
            // Near-duplicate clustering reads every body: once, overall.
            let gopt = table1::Options { near_duplicates: false, ..opt.clone() };
            for (name, acc) in &grouped.groups {
                groups.push((name.clone(), table1::build(acc, scan::Damage::default(), &enricher, None, &gopt)));
            }
            r.tables.insert(1, table1::groups_table(by.name(), &groups, &r.table1));
        }
        spin.finish();
        summary.insert("table1".into(), serde_json::to_value(&r.table1)?);
        if let Some(by) = b.group_by {
            let per: serde_json::Map<String, serde_json::Value> = groups
                .iter()
                .map(|(n, g)| Ok((n.clone(), serde_json::to_value(&g.table1)?)))
                .collect::<Result<_, serde_json::Error>>()?;
            summary.insert("groups".into(), serde_json::json!({"by": by.name(), "table1": per}));
        }
        if !b.json {
            print_table1(&r);
            if let Some(by) = b.group_by {
                print_groups(by.name(), &groups);
            }
        }
        let mut columns = vec![("All sensors".to_string(), &r.table1)];
        columns.extend(groups.iter().map(|(n, g)| (n.clone(), &g.table1)));
        lead = Some(output::table1_html(&columns));
        sections.push(output::capture_section(&r, &ctx(&r, &grouped.total, ""), "capture", "SpamPots capture"));
        if let Some(by) = b.group_by {
            for (i, (name, g)) in groups.iter().enumerate() {
                let id = format!("capture-{}-{}", by.name(), i + 1);
                let what = format!("{} = {name}: ", by.name());
                let section = output::capture_section(
                    g,
                    &ctx(g, &grouped.groups[name], &what),
                    &id,
                    &format!("SpamPots capture, {} = {name}", by.name()),
                );
                sections.push(section);
            }
        }
        if let Some(pq) = &b.parquet {
            let first_day = |ip: std::net::IpAddr| grouped.total.sources.get(&ip).map(|s| s.first_day);
            let w = port25_report::parquet_export::export(dir, &filter, &enricher, &first_day, pq)
                .with_context(|| format!("writing {}", pq.display()))?;
            errln!(
                "port25 report: wrote {} message records in {} Parquet files under {}",
                w.rows,
                w.files,
                pq.display()
            );
        }
    }
    if !b.blocklist.is_empty() {
        let files = port25_report::blocklist::dated_files(&b.blocklist)?;
        let mut examples = Vec::new();
        let mut dumps = Vec::new();
        let bar = Progress::new(b.quiet, "blocklist dumps", files.len() as u64, false);
        for (day, f) in files {
            dumps.push(port25_report::blocklist::count(&f, day, &enricher, &mut examples)?);
            bar.inc(1);
        }
        bar.finish();
        let s = rank_section(
            &b,
            &markers,
            ("blocklist", "Blocklist rank", "blocklist dump"),
            &dumps,
            examples,
            &b.blocklist,
        );
        if !b.json {
            print_tables(&s, "before_after");
        }
        if !b.json {
            print_tables(&s, "focus_rank");
        }
        summary.insert("blocklist".into(), s.summary.clone());
        sections.push(s);
    }
    if !b.cbl.is_empty() {
        let mut examples = Vec::new();
        let dumps = port25_report::cbl::read(&b.cbl, &mut examples)?;
        let what = ("cbl", "CBL statistics: rank by country and AS", "CBL statistics snapshot day");
        let s = rank_section(&b, &markers, what, &dumps, examples, &b.cbl);
        if !b.json {
            outln!("CBL statistics");
            print_tables(&s, "focus_rank");
            print_tables(&s, "focus_asns");
            print_tables(&s, "before_after");
        }
        summary.insert("cbl".into(), s.summary.clone());
        sections.push(s);
    }
    if !b.complaints.is_empty() {
        let end_user = match &b.end_user {
            Some(p) => {
                let text = std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
                port25_report::complaints::parse_prefixes(&text).map_err(|e| e.in_file(p))?
            }
            None => Vec::new(),
        };
        let mut trend = port25_report::complaints::Trend::default();
        // One message in memory at a time: the trend holds only counts.
        let bar = Progress::counter(b.quiet, "complaints");
        for p in &b.complaints {
            port25_report::complaints::for_each_message(p, &mut |place, raw| {
                trend.add(place, raw, &end_user, &enricher);
                bar.inc(1);
            })?;
        }
        bar.finish();
        for e in &trend.examples {
            errln!("port25 report: {e}");
        }
        let ctx = output::Context {
            source: format!(
                "{} complaint report{} ({})",
                trend.reports,
                if trend.reports == 1 { "" } else { "s" },
                list_paths(&b.complaints)
            ),
            window: match (trend.per_month.keys().next(), trend.per_month.keys().next_back()) {
                (Some(a), Some(z)) => format!("{a} to {z} (months of arrival)"),
                _ => "no reports".into(),
            },
            markers: markers.clone(),
        };
        let s = trend.section(&ctx);
        if !b.json {
            print_tables(&s, "per_month");
            print_tables(&s, "before_after");
        }
        summary.insert("complaints".into(), s.summary.clone());
        sections.push(s);
    }
    if sections.is_empty() {
        anyhow::bail!("nothing to report: give --capture DIR, --blocklist DUMPS, --cbl SNAPSHOTS or --complaints REPORTS (see port25 report build --help)");
    }
    if b.json {
        outln!("{}", serde_json::to_string_pretty(&serde_json::Value::Object(summary))?);
    }
    if let Some(out) = &b.out {
        let html = output::write_dir(out, "port25 report", lead.as_deref(), &sections)
            .with_context(|| format!("writing {}", out.display()))?;
        errln!("port25 report: wrote {} (and report.json, csv/)", html.display());
    }
    Ok(ExitCode::SUCCESS)
}

/// The rank section over dated counts (blocklist dumps or CBL snapshots):
/// `what` is (section id, title, what one input is called); the bad lines
/// found while reading are named on standard error and in its notes.
fn rank_section(
    b: &BuildArgs,
    markers: &[port25_report::markers::Marker],
    what: (&str, &str, &str),
    dumps: &[port25_report::blocklist::Dump],
    examples: Vec<String>,
    paths: &[PathBuf],
) -> output::Section {
    for e in &examples {
        errln!("port25 report: {e}");
    }
    let (id, title, one) = what;
    let opt =
        port25_report::blocklist::Options { country: b.country.clone(), top_asns: b.top_asns, chart_countries: 5 };
    let ctx = output::Context {
        source: format!("{} {one}{} ({})", dumps.len(), if dumps.len() == 1 { "" } else { "s" }, list_paths(paths)),
        window: match (dumps.first(), dumps.last()) {
            (Some(a), Some(z)) => {
                format!("{} to {}", port25_report::date::format_day(a.day), port25_report::date::format_day(z.day))
            }
            _ => "nothing dated".into(),
        },
        markers: markers.to_vec(),
    };
    port25_report::blocklist::section_as(id, title, dumps, examples, &opt, &ctx)
}

fn print_table1(r: &table1::CaptureReport) {
    let t = &r.table1;
    let opt = |v: Option<u64>| v.map_or("(no enrichment)".to_string(), |n| n.to_string());
    outln!("Start of data collection     {}", t.start.as_deref().unwrap_or("-"));
    outln!("End of data collection       {}", t.end.as_deref().unwrap_or("-"));
    outln!("Days of data collected       {}", t.days);
    outln!("Emails collected             {}", t.emails);
    outln!("Recipients                   {}", t.recipients);
    outln!("Recipients per spam          {:.2}", t.recipients_per_spam);
    outln!("Emails per day               {}", t.emails_per_day);
    outln!("Unique sender IPs            {}", t.unique_ips);
    outln!("Unique sender ASes           {}", opt(t.unique_asns));
    outln!("Countries of origin          {}", opt(t.countries));
    outln!("Probes (apart)               {} from {} IPs", t.probes, t.probe_sources);
    if let Some(s) = r.top5_country_share {
        outln!("Top 5 countries' share       {s:.2}%");
    }
    if let Some(s) = r.abroad_recipient_share {
        outln!("Recipients abroad            {s:.2}%");
    }
    outln!("Connections (proxy, relay)   {}", t.connections);
    match t.connections_abroad_pct {
        Some(p) => outln!(
            "Connections from abroad      {p:.2}% ({} of {} placed in a country)",
            t.connections_abroad.unwrap_or(0),
            t.connections - t.connections_unknown_country.unwrap_or(0)
        ),
        None => outln!("Connections from abroad      (no enrichment)"),
    }
    if t.sessions > 0 && t.sessions == t.sessions_without_counters {
        outln!("Bytes on the wire            unknown (no session has wire counters: capture format v1)");
    } else {
        outln!("Bytes on the wire            {} in, {} out", t.bytes_in, t.bytes_out);
    }
    for n in &r.notes {
        outln!("note: {n}");
    }
    if let Some(t) = r.tables.iter().find(|t| t.id == "before_after") {
        print_table(t);
    }
}

fn print_groups(by: &str, groups: &[(String, table1::CaptureReport)]) {
    outln!("By {by}:");
    for (name, g) in groups {
        let t = &g.table1;
        let abroad = t.connections_abroad_pct.map_or("-".into(), |p| format!("{p:.2}%"));
        outln!(
            "  {name}: {} emails, {} recipients, {} IPs, {} connections ({abroad} from abroad), {} bytes in, {} bytes out",
            t.emails,
            t.recipients,
            t.unique_ips,
            t.connections,
            t.bytes_in,
            t.bytes_out
        );
    }
}

fn list_paths(p: &[PathBuf]) -> String {
    p.iter().map(|x| x.display().to_string()).collect::<Vec<_>>().join(", ")
}

/// One table of a section as aligned text on standard output.
fn print_tables(s: &port25_report::output::Section, id: &str) {
    if let Some(t) = s.tables.iter().find(|t| t.id == id) {
        print_table(t);
    }
}

fn print_table(t: &port25_report::table::Table) {
    outln!("{}", t.title);
    outln!("{}", t.columns.join("\t"));
    for r in &t.rows {
        outln!("{}", r.iter().map(port25_report::table::cell_text).collect::<Vec<_>>().join("\t"));
    }
}
