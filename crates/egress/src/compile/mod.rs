//! Compilers from the flattened policy to firewall dialects.
//!
//! Every compiler gets the same [`Sets`]: for each family the minimal
//! disjoint prefixes that are blocked and those that are exempt (decided by an
//! exemption or an unblocked network inside end-user space). Because the sets
//! are disjoint, rule order cannot change the verdict, and because they are
//! minimal and sorted, the text is deterministic (golden tests hold it).

mod cisco;
mod iptables;
mod juniper;
mod nft;
mod nft_json;

use crate::policy::{Action, Mode, Policy};
use crate::prefix::{Family, Prefix};
use crate::table::Table;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// `nft -f` ruleset: table inet, named interval sets, named counters.
    Nftables,
    /// The same ruleset as `nft -j -f` JSON.
    NftablesJson,
    /// `ipset restore` input (hash:net sets for both families).
    Ipset,
    /// `iptables-restore --noflush` input (IPv4, uses the ipsets).
    Iptables,
    /// `ip6tables-restore --noflush` input (IPv6, uses the ipsets).
    Ip6tables,
    /// Cisco IOS extended ACLs (IPv4 and IPv6).
    Cisco,
    /// Juniper Junos firewall filters with prefix lists.
    Juniper,
}

impl Target {
    pub const ALL: &'static [(&'static str, Target)] = &[
        ("nftables", Target::Nftables),
        ("nftables-json", Target::NftablesJson),
        ("ipset", Target::Ipset),
        ("iptables", Target::Iptables),
        ("ip6tables", Target::Ip6tables),
        ("cisco", Target::Cisco),
        ("juniper", Target::Juniper),
    ];
    pub fn name(self) -> &'static str {
        Target::ALL.iter().find(|(_, t)| *t == self).unwrap().0
    }
}

impl std::str::FromStr for Target {
    type Err = String;
    fn from_str(s: &str) -> Result<Target, String> {
        Target::ALL.iter().find(|(n, _)| *n == s).map(|(_, t)| *t).ok_or_else(|| {
            format!(
                "unknown target {s:?}; one of: {}",
                Target::ALL.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", ")
            )
        })
    }
}

/// What every dialect needs: the policy's settings and its minimal sets.
/// `blocked_*` is the space enforced at the compile time, `monitor_*` the
/// space of networks still in `mode = "monitor"` then (rules that count
/// and log, no verdict).
pub struct Sets<'a> {
    pub policy: &'a Policy,
    pub blocked_v4: Vec<Prefix>,
    pub exempt_v4: Vec<Prefix>,
    pub blocked_v6: Vec<Prefix>,
    pub exempt_v6: Vec<Prefix>,
    pub monitor_v4: Vec<Prefix>,
    pub monitor_v6: Vec<Prefix>,
    /// Some network is monitored at the compile time: the monitor rules
    /// are emitted (with empty sets for a family that has none).
    pub monitoring: bool,
    pub at_ms: u64,
}

impl<'a> Sets<'a> {
    pub fn new(policy: &'a Policy, at_ms: u64) -> Sets<'a> {
        let table = Table::new(policy);
        let (blocked_v4, monitor_v4, exempt_v4) = table.staged_sets(policy, Family::V4, at_ms);
        let (blocked_v6, monitor_v6, exempt_v6) = table.staged_sets(policy, Family::V6, at_ms);
        let monitoring = policy.networks.iter().any(|n| n.block && n.mode_at(at_ms) == Mode::Monitor);
        Sets { policy, blocked_v4, exempt_v4, blocked_v6, exempt_v6, monitor_v4, monitor_v6, monitoring, at_ms }
    }

    /// One comment line per staged network (none when nothing is staged,
    /// so unstaged policies compile as before).
    fn stages(&self, mark: &str) -> String {
        let mut out = String::new();
        for n in self.policy.networks.iter().filter(|n| n.block && (n.mode == Mode::Monitor)) {
            let now = n.mode_at(self.at_ms);
            let line = match (now, n.enforce_from_ms) {
                (Mode::Monitor, Some(from)) => format!(
                    "network {:?}: monitor (count and log, no verdict) until {}; compile again on or after that date to enforce",
                    n.name,
                    crate::report::rfc3339(from)
                ),
                (Mode::Monitor, None) => format!("network {:?}: monitor (count and log, no verdict), no enforcement date", n.name),
                (Mode::Enforce, from) => {
                    format!("network {:?}: enforced since {} (was monitored)", n.name, from.map_or_else(|| "-".to_owned(), crate::report::rfc3339))
                }
            };
            out.push_str(mark);
            out.push(' ');
            out.push_str(&line);
            out.push('\n');
        }
        if !out.is_empty() {
            out = format!("{mark} staged rollout, compiled for {}:\n{out}", crate::report::rfc3339(self.at_ms));
        }
        out
    }

    /// The comment block every dialect opens with (its comment marker given).
    fn header(&self, mark: &str) -> String {
        let p = self.policy;
        let join = |v: &[u16]| v.iter().map(u16::to_string).collect::<Vec<_>>().join(", ");
        let action = match p.action {
            Action::Drop => "drop",
            Action::Reject => "reject (TCP reset)",
        };
        format!(
            "{mark} port25 egress policy {:?}: generated by `port25 egress compile`, do not edit.\n\
             {mark} blocked TCP ports: {}; protected, never blocked: {}; action: {action}\n\
             {mark} prefixes: {} blocked + {} exempt IPv4, {} blocked + {} exempt IPv6 (aggregated)\n",
            p.name,
            join(&p.blocked_ports),
            join(&p.protected_ports),
            self.blocked_v4.len(),
            self.exempt_v4.len(),
            self.blocked_v6.len(),
            self.exempt_v6.len()
        ) + &self.stages(mark)
    }
}

/// Compiles a policy for one target, staged as of now.
pub fn compile(policy: &Policy, target: Target) -> String {
    let now = port25_time::unix_millis();
    compile_at(policy, target, now)
}

/// Compiles a policy for one target with each network in its stage at
/// `at_ms` (Unix milliseconds): monitored networks get count-and-log rules.
pub fn compile_at(policy: &Policy, target: Target, at_ms: u64) -> String {
    let sets = Sets::new(policy, at_ms);
    match target {
        Target::Nftables => nft::render(&sets),
        Target::NftablesJson => nft_json::render(&sets),
        Target::Ipset => iptables::render_ipset(&sets),
        Target::Iptables => iptables::render_rules(&sets, Family::V4),
        Target::Ip6tables => iptables::render_rules(&sets, Family::V6),
        Target::Cisco => cisco::render(&sets),
        Target::Juniper => juniper::render(&sets),
    }
}

/// The log prefix every dialect uses, so one syslog filter finds them all.
pub const LOG_PREFIX: &str = "port25-egress: ";
/// The log prefix of monitored networks' attempts (logged, not blocked).
pub const MONITOR_PREFIX: &str = "port25-monitor: ";

#[cfg(test)]
mod tests {
    use super::*;

    const STAGED: &str = r#"
[[network]]
name = "res-north"
class = "residential"
prefixes = ["198.51.100.0/25", "2001:db8:100::/40"]
mode = "monitor"
enforce_from = "2027-03-01T00:00:00Z"

[[network]]
name = "res-south"
class = "residential"
prefixes = ["198.51.100.128/25"]

[[exempt]]
name = "mta"
prefixes = ["198.51.100.25"]
"#;
    const BEFORE: u64 = 1_800_000_000_000;
    const AFTER: u64 = 1_803_859_200_000;

    fn staged() -> Policy {
        crate::policy::parse(STAGED, std::path::Path::new("p.toml")).unwrap()
    }

    #[test]
    fn monitored_space_gets_count_and_log_rules_without_a_verdict() {
        let p = staged();
        let nft = compile_at(&p, Target::Nftables, BEFORE);
        assert!(
            nft.contains("# network \"res-north\": monitor (count and log, no verdict) until 2027-03-01T00:00:00Z"),
            "{nft}"
        );
        // The monitored /25 (around the exemption) is in the monitor set, not in the enforced one.
        let set =
            |name: &str| nft.split(&format!("set {name} {{")).nth(1).unwrap().split('}').next().unwrap().to_owned();
        assert!(
            set("monitor_v4").contains("198.51.100.0/25") && !set("enduser_v4").contains("198.51.100.0/25"),
            "{nft}"
        );
        assert!(set("enduser_v4").contains("198.51.100.128/25"), "{nft}");
        assert!(
            set("monitor_v6").contains("2001:db8:100::/40")
                && !nft.contains("set enduser_v6 {\n\t\ttype ipv6_addr\n\t\tflags interval\n\t\telements"),
            "{nft}"
        );
        let rule = nft.lines().find(|l| l.contains("@monitor_v4")).unwrap();
        assert_eq!(
            rule.trim(),
            "ip saddr @monitor_v4 tcp dport 25 counter name \"monitor_v4\" log prefix \"port25-monitor: \" group 25 comment \"monitor: log only\""
        );
        let ipt = compile_at(&p, Target::Iptables, BEFORE);
        assert!(ipt.contains("--match-set port25_egress_mon4 src -m comment --comment \"monitor: count\"\n"), "{ipt}");
        assert!(ipt.contains("--match-set port25_egress_mon4 src -m limit --limit 10/sec --limit-burst 20 -j LOG --log-prefix \"port25-monitor: \""), "{ipt}");
        assert!(compile_at(&p, Target::Ipset, BEFORE).contains("add port25_egress_mon4 198.51.100.0/25"));
        let cisco = compile_at(&p, Target::Cisco, BEFORE);
        assert!(
            cisco.contains(" permit tcp 198.51.100.0 0.0.0.127 any eq 25 log\n")
                && !cisco.contains("deny tcp 198.51.100.0 0.0.0.127"),
            "{cisco}"
        );
        let junos = compile_at(&p, Target::Juniper, BEFORE);
        assert!(
            junos.contains("term monitor-smtp {") && junos.contains("syslog;\n                    next term;"),
            "{junos}"
        );
        let json: serde_json::Value = serde_json::from_str(&compile_at(&p, Target::NftablesJson, BEFORE)).unwrap();
        let rules: Vec<&serde_json::Value> =
            json["nftables"].as_array().unwrap().iter().filter_map(|c| c["add"].get("rule")).collect();
        let mon = rules.iter().find(|r| r["comment"] == "monitor: log only").unwrap();
        assert_eq!(
            mon["expr"].as_array().unwrap().last().unwrap(),
            &serde_json::json!({"log": {"prefix": "port25-monitor: ", "group": 25}})
        );
        // Every monitor rule in every dialect is verdict-free.
        assert!(!mon["expr"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e.get("accept").is_some() || e.get("drop").is_some() || e.get("reject").is_some()));
    }

    #[test]
    fn from_the_date_the_monitored_network_is_enforced() {
        let p = staged();
        let nft = compile_at(&p, Target::Nftables, AFTER);
        assert!(!nft.contains("@monitor_v4") && !nft.contains("set monitor_v4"), "{nft}");
        assert!(nft.contains("# network \"res-north\": enforced since 2027-03-01T00:00:00Z"), "{nft}");
        let blocked = nft.split("set enduser_v4 {").nth(1).unwrap().split('}').next().unwrap();
        assert!(blocked.contains("198.51.100.0/24"), "{nft}");
        // A policy with no stages compiles as it always did: no stage lines, no monitor rules.
        let mut plain = staged();
        plain.networks[0].mode = crate::policy::Mode::Enforce;
        plain.networks[0].enforce_from_ms = None;
        for (_, t) in Target::ALL {
            let text = compile_at(&plain, *t, BEFORE);
            assert!(!text.contains("monitor") && !text.contains("staged"), "{text}");
            assert_eq!(text, compile_at(&plain, *t, AFTER));
        }
    }
}
