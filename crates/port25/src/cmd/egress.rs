//! `port25 egress`: the access network's policy (compile, check, diff) and
//! flow analysis (flows, in egress_flows.rs).

use anyhow::Context;
use port25_egress::{check, compile, diff, policy, publish};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args)]
#[command(
    after_help = "End-user networks (residential, dynamic, mobile) may not reach TCP port 25 on the Internet; submission (587/465) \
                        and the web stay open; the provider's MTAs and business customers stay free.\n\n\
                        Start from the documented example policy (dist/egress.toml, docs/egress.md):\n  \
                        port25 egress compile --policy dist/egress.toml --target nftables\n  \
                        port25 egress check --policy dist/egress.toml 198.51.100.77 25"
)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Subcommand)]
enum Command {
    /// Compile the policy for a firewall (prefixes aggregated, deterministic output)
    #[command(
        after_help = "Targets:\n  nftables       nft -f ruleset (table inet, interval sets, named counters)\n  \
                            nftables-json  the same for nft -j -f\n  ipset          ipset restore -exist input (load first)\n  \
                            iptables       iptables-restore --noflush input (IPv4 chain)\n  ip6tables      ip6tables-restore --noflush input (IPv6 chain)\n  \
                            cisco          Cisco IOS extended ACLs\n  juniper        Junos firewall filters and prefix lists\n\n\
                            Staged rollout: a [[network]] with mode = \"monitor\" compiles to rules that count and log\n\
                            port-25 attempts without a verdict (nftables counter + log group N, iptables LOG, Cisco\n\
                            permit ... log, Junos syslog + next term) until its enforce_from date; compile again on or\n\
                            after that date (or give --at) to enforce it.\n\n\
                            Example:\n  port25 egress compile --policy egress.toml --target nftables > egress.nft && nft -f egress.nft"
    )]
    Compile {
        /// The policy file (see dist/egress.toml)
        #[arg(long, short)]
        policy: PathBuf,
        /// nftables | nftables-json | ipset | iptables | ip6tables | cisco | juniper
        #[arg(long, short, default_value = "nftables")]
        target: compile::Target,
        /// Write here instead of standard output
        #[arg(long, short)]
        output: Option<PathBuf>,
        /// Compile each network's rollout stage as of this time (Unix seconds or YYYY-MM-DDTHH:MM:SSZ; default: now)
        #[arg(long, value_parser = port25_egress::report::parse_time)]
        at: Option<u64>,
    },
    /// Say whether TCP from ADDRESS to PORT (default: the blocked ports) is blocked, which rule decides, and why
    #[command(
        after_help = "Exit status: 0 pass, 1 blocked, 2 error.\n\nExample:\n  port25 egress check --policy egress.toml 198.51.100.77 25"
    )]
    Check {
        #[arg(long, short)]
        policy: PathBuf,
        /// IPv4 or IPv6 source address
        address: std::net::IpAddr,
        /// TCP destination port
        port: Option<u16>,
    },
    /// List the addresses whose port-25 verdict differs between two policies
    #[command(after_help = "Exit status: 0 no change, 1 changes listed, 2 error.")]
    Diff { old: PathBuf, new: PathBuf },
    /// Find subscribers still trying port 25, from NetFlow v5/v9 or IPFIX (UDP or pcap files)
    Flows(super::egress_flows::Args),
    /// Staged rollout: per network, who is still on port 25 (bot or unmigrated mail client, with evidence) and whether it is ready to enforce
    Plan(Box<super::egress_plan::Args>),
    /// One notice per subscriber still on port 25 (pt-BR or English, overridable) as Maildir, mbox or CSV; sent only with --send
    Notify(Box<super::egress_notify::Args>),
    /// Write the policy's end-user space (blocked networks, exemptions left out) as a DNSBL zone for other MXes
    #[command(
        after_help = "Formats:\n  rbldnsd  one combined dataset ($SOA, $NS, $TTL, an ip4set and an ip6trie section):\n           \
                            rbldnsd -b 192.0.2.53/53 ZONE:combined:FILE\n  bind     a master zone file of reversed names (*.c.b.a for a /24, nibbles for IPv6)\n\n\
                            Listed addresses answer --code (default 127.0.0.10, like the Spamhaus PBL's ISP-maintained entries) and a TXT\n\
                            record telling the person to use port 587 with their login; 127.0.0.2 is listed as RFC 5782's test entry.\n\
                            An MX (port25's [mx.screen], Postfix's postscreen_dnsbl_sites, ...) then refuses direct delivery from that space.\n\n\
                            Example:\n  port25 egress publish --policy egress.toml --format rbldnsd --zone enduser.dnsbl.isp.example \\\n      \
                            --ns ns1.isp.example -o enduser.rbldnsd"
    )]
    Publish {
        #[arg(long, short)]
        policy: PathBuf,
        /// rbldnsd | bind
        #[arg(long, short, default_value = "rbldnsd")]
        format: publish::Format,
        /// The list's zone name
        #[arg(long)]
        zone: String,
        /// A name server of the zone (repeat for more; default: ns.ZONE)
        #[arg(long)]
        ns: Vec<String>,
        /// The SOA's responsible person as a name (default: hostmaster.ZONE)
        #[arg(long)]
        hostmaster: Option<String>,
        /// SOA serial (default: the current time in Unix seconds)
        #[arg(long)]
        serial: Option<u32>,
        /// TTL of every record, in seconds
        #[arg(long, default_value_t = 3600)]
        ttl: u32,
        /// The A record of a listed address (127.0.0.0/8, RFC 5782)
        #[arg(long, default_value = "127.0.0.10")]
        code: std::net::Ipv4Addr,
        /// The TXT record (default: names the policy and says to use port 587 with a login)
        #[arg(long)]
        text: Option<String>,
        /// Write here instead of standard output
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    match args.command {
        Command::Compile { policy, target, output, at } => {
            let p = policy::load(&policy)?;
            let text = match at {
                Some(t) => compile::compile_at(&p, target, t),
                None => compile::compile(&p, target),
            };
            match output {
                Some(path) => std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?,
                None => crate::out::write_stdout(text.as_bytes()),
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Check { policy, address, port } => {
            let p = policy::load(&policy)?;
            let d = check::decide(&p, address, port);
            out!("{}", check::explain(&p, &d));
            Ok(if d.blocked { ExitCode::from(1) } else { ExitCode::SUCCESS })
        }
        Command::Diff { old, new } => {
            let (po, pn) = (policy::load(&old)?, policy::load(&new)?);
            let mut out = crate::out::Stdout;
            let ports = diff::port_changes(&po, &pn);
            for line in &ports {
                writeln!(out, "! {line}")?;
            }
            let changes = diff::diff(&po, &pn);
            for c in &changes {
                let (sign, what) = if c.now_blocked { ('+', "now blocked") } else { ('-', "no longer blocked") };
                writeln!(out, "{sign} {:<43} {what} ({} -> {})", c.prefix.to_string(), c.old_rule, c.new_rule)?;
            }
            if changes.is_empty() && ports.is_empty() {
                writeln!(out, "no address changes verdict")?;
                return Ok(ExitCode::SUCCESS);
            }
            Ok(ExitCode::from(1))
        }
        Command::Flows(a) => super::egress_flows::run(a),
        Command::Plan(a) => super::egress_plan::run(*a),
        Command::Notify(a) => super::egress_notify::run(*a),
        Command::Publish { policy, format, zone, ns, hostmaster, serial, ttl, code, text, output } => {
            let p = policy::load(&policy)?;
            let name = zone.trim_end_matches('.').to_owned();
            if name.is_empty()
                || name
                    .split('.')
                    .any(|l| l.is_empty() || l.len() > 63 || !l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
            {
                anyhow::bail!("--zone {zone:?} is not a DNS name (e.g. enduser.dnsbl.isp.example)");
            }
            if code.octets()[0] != 127 || code == std::net::Ipv4Addr::new(127, 0, 0, 1) {
                anyhow::bail!(
                    "--code {code} is not a listing code: RFC 5782 codes are in 127.0.0.0/8, 127.0.0.1 excluded"
                );
            }
            let serial = serial.unwrap_or_else(|| port25_time::unix_secs() as u32);
            let z = publish::Zone {
                ns: if ns.is_empty() { vec![format!("ns.{name}")] } else { ns },
                hostmaster: hostmaster.unwrap_or_else(|| format!("hostmaster.{name}")),
                serial,
                ttl,
                code,
                text: text.unwrap_or_else(|| publish::default_text(&p)),
                name,
            };
            let out = publish::publish(&p, &z, format);
            match output {
                Some(path) => std::fs::write(&path, out).with_context(|| format!("writing {}", path.display()))?,
                None => crate::out::write_stdout(out.as_bytes()),
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
