//! `port25 egress plan`: per network of the policy, the subscribers seen on
//! port 25 while it was monitored, classified (bot, unmigrated mail client,
//! unclassified) with the evidence, and a verdict: ready to enforce, or
//! what blocks it.

use anyhow::Context;
use port25_egress::attribution::load::{self as attribution, Spec};
use port25_egress::flow::Collector;
use port25_egress::plan::{self, Readiness, Thresholds};
use port25_egress::report::{self, Analyzer};
use port25_egress::{policy, table::Table};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Format {
    Table,
    Json,
}

/// What `egress plan` and `egress notify` both read.
#[derive(clap::Args)]
pub struct Inputs {
    /// The policy file (networks, their mode and enforce_from date)
    #[arg(long, short)]
    pub policy: PathBuf,
    /// The providers file: each mail provider's submission hosts, domains and autoconfig (see dist/providers.toml)
    #[arg(long)]
    pub providers: PathBuf,
    /// pcap file(s) of exported NetFlow/IPFIX datagrams
    #[arg(long)]
    pub pcap: Vec<PathBuf>,
    /// nfdump 1.7 file(s) or directories of them
    #[arg(long, value_name = "PATH")]
    pub nfcapd: Vec<PathBuf>,
    /// Name subscribers: radius:DIR, radacct-csv:FILE, kea:FILE, dhcpd:FILE, dnsmasq:FILE, cgnat-csv:FILE, cgnat-ipfix:FILE.pcap (repeatable)
    #[arg(long = "attribution", value_name = "KIND:PATH")]
    pub attribution: Vec<Spec>,
    /// natEvent numbers of a CGNAT exporter: [CIDR=]allocate:N[/N],release:N[/N] (default RFC 8158)
    #[arg(long = "cgnat-numbering", value_name = "SPEC")]
    pub cgnat_numbering: Vec<port25_egress::attribution::cgnat::Numbering>,
    /// The stage of each network as of this time (Unix seconds or YYYY-MM-DDTHH:MM:SSZ; default: now)
    #[arg(long, value_parser = report::parse_time)]
    pub at: Option<u64>,
    /// Bot: distinct destinations within one window
    #[arg(long, default_value_t = 10)]
    pub threshold: usize,
    /// Window in seconds (1 to 31622400, a leap year)
    #[arg(long, default_value_t = 600, value_parser = clap::value_parser!(u64).range(1..=31_622_400))]
    pub window: u64,
    /// Bot: attempts within one minute
    #[arg(long, default_value_t = 30)]
    pub rate: usize,
    /// Mail client: at most this many destinations
    #[arg(long, default_value_t = 3)]
    pub client_destinations: usize,
    /// Open proxy: inbound connections on proxy ports (1080, 3128, 8080, 8000, 6588, 80) from at least this many outside addresses, then port 25
    #[arg(long, default_value_t = 5)]
    pub proxy_sources: usize,
    #[command(flatten)]
    pub bounds: super::egress_flows::Bounds,
}

#[derive(clap::Args)]
#[command(
    after_help = "Flows (at least one source) are those recorded while the networks were monitored (mode = \"monitor\"\n\
                        in the policy); a network's flows from its enforce_from date on are left out.\n\n\
                        Each subscriber seen on port 25 is classified:\n  \
                        bot           many distinct destinations in one window (--threshold, --window) or many\n                \
                        attempts in one minute (--rate)\n  \
                        mail-client   at most --client-destinations destinations, all submission hosts of a provider\n                \
                        in --providers: a mail program still set to port 25 (send it the notice)\n  \
                        unclassified  few destinations, not all of them a known provider's: review\n  \
                        open-proxy    inbound connections on proxy ports (1080, 3128, 8080, 8000, 6588, 80) from at\n                \
                        least --proxy-sources outside addresses, then port 25: a program relaying for others\n\
                        A monitored network is READY TO ENFORCE when no mail client and no unclassified sender is\n\
                        left and, with --readiness, every provider its mail clients use is past --readiness-threshold.\n\n\
                        Exit status: 0 every monitored network is ready (or enforcing), 1 one is not, 2 error.\n\n\
                        Example:\n  port25 egress plan --policy egress.toml --providers providers.toml --nfcapd /var/cache/nfdump \\\n    \
                        --attribution radius:/var/log/freeradius/radacct --readiness example-mail.signed.json --key example-mail.pub"
)]
pub struct Args {
    #[command(flatten)]
    inputs: Inputs,
    /// A provider's signed migration report (port25 migration sign), repeatable; needs --key
    #[arg(long, value_name = "FILE")]
    readiness: Vec<PathBuf>,
    /// Public key(s) a readiness report must be signed with (port25 migration keygen), repeatable
    #[arg(long, value_name = "FILE")]
    key: Vec<PathBuf>,
    /// Share (percent) of a provider's users that must be on 587/465
    #[arg(long, default_value_t = 90.0)]
    readiness_threshold: f64,
    /// table | json
    #[arg(long, short, value_enum, default_value_t = Format::Table)]
    format: Format,
}

/// The providers and the plan of every blocked network.
pub struct Analysed {
    pub providers: Vec<plan::Provider>,
    pub plans: Vec<plan::NetworkPlan>,
    pub at: u64,
}

/// Reads the inputs and classifies every subscriber seen on 25.
pub fn analyse(
    i: &Inputs,
    readiness: &BTreeMap<String, Readiness>,
    readiness_threshold: f64,
) -> anyhow::Result<Analysed> {
    if i.pcap.is_empty() && i.nfcapd.is_empty() {
        anyhow::bail!("no flows: give --pcap FILE or --nfcapd PATH (the flows seen while the networks were monitored)");
    }
    let p = policy::load(&i.policy)?;
    let providers = load_providers(&i.providers)?;
    let at = i.at.unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
    });
    let table = Table::new(&p);
    let opts = i.bounds.options(i.window, i.threshold, None);
    let loaded = if i.attribution.is_empty() {
        None
    } else {
        Some(
            attribution::load_with(&i.attribution, &i.cgnat_numbering)
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
    // Only the flows of the monitoring period count: a network's flows
    // from its enforce_from date on are what the block stopped.
    analyzer.only_before(p.networks.iter().map(|n| n.enforce_from_ms).collect());
    let mut collector = Collector::new();
    super::egress_flows::read_pcaps(&i.pcap, true, &mut collector, &mut analyzer)?;
    let nf = super::egress_flows::read_nfcapd(&i.nfcapd, &mut analyzer)?;
    for x in &nf.named {
        errln!("port25: nfcapd: {x}");
    }
    let rows = analyzer.rows();
    let t = Thresholds {
        bot_destinations: i.threshold,
        bot_rate_per_minute: i.rate,
        client_destinations: i.client_destinations,
        readiness_percent: readiness_threshold,
        proxy_sources: i.proxy_sources,
    };
    let plans = plan::plan(&p, &rows, &providers, readiness, &t, at);
    errln!(
        "port25: plan: {} flows read ({} on blocked ports from blocked space, {} after an enforce_from date left out), {} subscribers on 25",
        analyzer.flows_seen,
        analyzer.flows_matched,
        analyzer.flows_after_enforcement,
        rows.len()
    );
    super::egress_flows::report_caps(&analyzer, &i.bounds);
    Ok(Analysed { providers, plans, at })
}

pub fn load_providers(path: &std::path::Path) -> anyhow::Result<Vec<plan::Provider>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    Ok(plan::parse_providers(&text, path)?)
}

pub fn run(a: Args) -> anyhow::Result<ExitCode> {
    let providers = load_providers(&a.inputs.providers)?;
    let readiness = load_readiness(&a.readiness, &a.key, &providers, a.readiness_threshold)?;
    let r = analyse(&a.inputs, &readiness, a.readiness_threshold)?;
    let plans = r.plans;
    let out = match a.format {
        Format::Table => plan::text(&plans),
        Format::Json => {
            serde_json::to_string_pretty(
                &serde_json::json!({"at": report::rfc3339(r.at), "networks": plans, "readiness": readiness.values().collect::<Vec<_>>()}),
            )? + "\n"
        }
    };
    crate::out::write_stdout(out.as_bytes());
    let ready = plans.iter().all(|n| n.verdict != "not ready");
    Ok(if ready { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

/// Verified readiness per provider (by the domains its report lists).
fn load_readiness(
    files: &[PathBuf],
    keys: &[PathBuf],
    providers: &[plan::Provider],
    threshold: f64,
) -> anyhow::Result<BTreeMap<String, Readiness>> {
    let mut out = BTreeMap::new();
    if files.is_empty() {
        return Ok(out);
    }
    if keys.is_empty() {
        anyhow::bail!("--readiness needs --key: the public key(s) the reports must be signed with (an unsigned or unverifiable report is refused)");
    }
    let keys = keys.iter().map(|k| super::migration_sign::read_public_key(k)).collect::<anyhow::Result<Vec<_>>>()?;
    for f in files {
        let v = super::migration_sign::verify_file(f, &keys)?;
        let r =
            super::migration_sign::readiness(&v, providers, threshold).with_context(|| format!("{}", f.display()))?;
        out.insert(r.provider.clone(), r);
    }
    Ok(out)
}
