//! iptables + ipset: `ipset restore` sets and `iptables-restore --noflush`
//! rules in a chain of their own, so loading never touches other rules.
//! The chain is hooked into FORWARD once by the operator (see docs/egress.md):
//! a restore file cannot add a jump idempotently.

use super::{Sets, LOG_PREFIX, MONITOR_PREFIX};
use crate::policy::Action;
use crate::prefix::{Family, Prefix};
use std::fmt::Write;

/// The ipset of monitored space (created only while a network is monitored).
pub fn monitor_set_name(table: &str, family: Family) -> String {
    match family {
        Family::V4 => format!("{table}_mon4"),
        Family::V6 => format!("{table}_mon6"),
    }
}

pub fn set_names(table: &str, family: Family) -> (String, String) {
    match family {
        Family::V4 => (format!("{table}_user4"), format!("{table}_exempt4")),
        Family::V6 => (format!("{table}_user6"), format!("{table}_exempt6")),
    }
}

/// hash:net refuses /0; two halves say the same.
fn members(v: &[Prefix]) -> Vec<String> {
    let mut out = Vec::new();
    for p in v {
        if p.len == 0 {
            let half = 1u128 << (p.family.bits() - 1);
            out.push(Prefix { family: p.family, addr: 0, len: 1 }.to_string());
            out.push(Prefix { family: p.family, addr: half, len: 1 }.to_string());
        } else {
            out.push(p.to_string());
        }
    }
    out
}

pub fn render_ipset(s: &Sets) -> String {
    let mut out = s.header("#");
    let t = &s.policy.table;
    for (family, fam, blocked, exempt, monitor) in [
        (Family::V4, "inet", &s.blocked_v4, &s.exempt_v4, &s.monitor_v4),
        (Family::V6, "inet6", &s.blocked_v6, &s.exempt_v6, &s.monitor_v6),
    ] {
        let (user, ex) = set_names(t, family);
        let mut sets = vec![(user, blocked), (ex, exempt)];
        if s.monitoring {
            sets.push((monitor_set_name(t, family), monitor));
        }
        for (name, v) in sets {
            let m = members(v);
            let maxelem = (m.len() * 2).max(65536);
            let _ =
                writeln!(out, "create {name} hash:net family {fam} hashsize 1024 maxelem {maxelem} counters -exist");
            let _ = writeln!(out, "flush {name}");
            for e in m {
                let _ = writeln!(out, "add {name} {e}");
            }
        }
    }
    out
}

pub fn render_rules(s: &Sets, family: Family) -> String {
    let p = s.policy;
    let mut out = s.header("#");
    let (user, ex) = set_names(&p.table, family);
    let chain = &p.table;
    let ports = p.blocked_ports.iter().map(u16::to_string).collect::<Vec<_>>().join(",");
    let m = format!("-p tcp -m multiport --dports {ports}");
    let _ = writeln!(out, "*filter\n:{chain} - [0:0]");
    let _ = writeln!(out, "-A {chain} {m} -m set --match-set {ex} src -m comment --comment \"exempt\" -j ACCEPT");
    if s.monitoring {
        // Monitored space: a rule with no target counts every attempt, a
        // rate-limited LOG names them; neither decides, so the packet
        // leaves the chain and goes on.
        let mon = monitor_set_name(&p.table, family);
        let _ = writeln!(out, "-A {chain} {m} -m set --match-set {mon} src -m comment --comment \"monitor: count\"");
        let _ = writeln!(
            out,
            "-A {chain} {m} -m set --match-set {mon} src -m limit --limit 10/sec --limit-burst 20 -j LOG --log-prefix \"{MONITOR_PREFIX}\" --log-level info"
        );
    }
    if p.log {
        let _ = writeln!(
            out,
            "-A {chain} {m} -m set --match-set {user} src -m limit --limit 10/sec --limit-burst 20 -j LOG --log-prefix \"{LOG_PREFIX}\" --log-level info"
        );
    }
    let verdict = match (p.action, family) {
        (Action::Drop, _) => "DROP",
        (Action::Reject, _) => "REJECT --reject-with tcp-reset",
    };
    let _ = writeln!(
        out,
        "-A {chain} {m} -m set --match-set {user} src -m comment --comment \"end-user port 25\" -j {verdict}"
    );
    out.push_str("COMMIT\n");
    out
}
