//! `egress check`: which rule decides for an address (and port), and why.
//!
//! The decision is computed from the policy entries directly (a linear scan
//! for the most specific prefix), independently of the flattened [`Table`];
//! tests hold the two to the same answers.

use crate::policy::{Action, Mode, Policy};
use crate::prefix::{ip_to_u128, Prefix};
use crate::table::EntryKind;
use std::fmt::Write;
use std::net::IpAddr;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub address: IpAddr,
    pub port: Option<u16>,
    /// True when a TCP connection from this address to the port is blocked
    /// (with no port: to the blocked ports).
    pub blocked: bool,
    /// True when the address is blocked space whose network is still in
    /// `mode = "monitor"`: attempts are counted and logged, not blocked
    /// (`blocked` is then false).
    pub monitored: bool,
    /// The deciding entry: kind, index into the policy list, matching prefix.
    pub rule: Option<(EntryKind, usize, Prefix)>,
}

/// The most specific entry containing `ip` (exemption wins an exact tie).
pub fn deciding_entry(policy: &Policy, ip: IpAddr) -> Option<(EntryKind, usize, Prefix)> {
    let (family, v) = ip_to_u128(ip);
    let mut best: Option<(EntryKind, usize, Prefix)> = None;
    let better = |p: &Prefix, kind: EntryKind, best: &Option<(EntryKind, usize, Prefix)>| match best {
        None => true,
        Some((bk, _, bp)) => {
            p.len > bp.len || (p.len == bp.len && kind == EntryKind::Exempt && *bk == EntryKind::Network)
        }
    };
    for (i, n) in policy.networks.iter().enumerate() {
        for p in &n.prefixes {
            if p.contains(family, v) && better(p, EntryKind::Network, &best) {
                best = Some((EntryKind::Network, i, *p));
            }
        }
    }
    for (i, x) in policy.exemptions.iter().enumerate() {
        for p in &x.prefixes {
            if p.contains(family, v) && better(p, EntryKind::Exempt, &best) {
                best = Some((EntryKind::Exempt, i, *p));
            }
        }
    }
    best
}

pub fn decide(policy: &Policy, ip: IpAddr, port: Option<u16>) -> Decision {
    let now = port25_time::unix_millis();
    decide_at(policy, ip, port, now)
}

/// The decision with each network in its rollout stage at `at_ms`.
pub fn decide_at(policy: &Policy, ip: IpAddr, port: Option<u16>, at_ms: u64) -> Decision {
    let rule = deciding_entry(policy, ip);
    let in_blocked_space = matches!(rule, Some((EntryKind::Network, i, _)) if policy.networks[i].block);
    let monitoring =
        matches!(rule, Some((EntryKind::Network, i, _)) if policy.networks[i].mode_at(at_ms) == Mode::Monitor);
    let port_blocked = port.is_none_or(|p| policy.blocked_ports.contains(&p));
    let hit = in_blocked_space && port_blocked;
    Decision { address: ip, port, blocked: hit && !monitoring, monitored: hit && monitoring, rule }
}

fn ports(list: &[u16]) -> String {
    list.iter().map(u16::to_string).collect::<Vec<_>>().join(", ")
}

/// The human explanation `egress check` prints.
pub fn explain(policy: &Policy, d: &Decision) -> String {
    let mut s = String::new();
    let target = match d.port {
        Some(p) => format!("{} -> TCP port {p}", d.address),
        None => format!("{} -> TCP ports {}", d.address, ports(&policy.blocked_ports)),
    };
    let verdict = if d.blocked {
        match policy.action {
            Action::Drop => "BLOCKED (drop)",
            Action::Reject => "BLOCKED (reject with TCP reset)",
        }
    } else if d.monitored {
        "MONITORED (counted and logged, not blocked yet)"
    } else {
        "PASS"
    };
    let _ = writeln!(s, "{target}: {verdict}");
    match d.rule {
        Some((EntryKind::Network, i, p)) => {
            let n = &policy.networks[i];
            let _ =
                writeln!(s, "  rule: network {:?} ({}), prefix {p}, policy line {}", n.name, n.class.as_str(), n.line);
            if n.block {
                let _ = writeln!(
                    s,
                    "  why:  the most specific prefix holding the address is end-user space ({}) whose outbound TCP to ports {} is blocked",
                    n.class.as_str(),
                    ports(&policy.blocked_ports)
                );
                if n.mode == Mode::Monitor {
                    let when = n.enforce_from_ms.map_or_else(
                        || "no enforcement date yet".to_owned(),
                        |t| format!("enforced from {}", crate::report::rfc3339(t)),
                    );
                    let _ = writeln!(s, "  stage: mode = \"monitor\" (line {}), {when}", n.line);
                }
            } else {
                let _ = writeln!(
                    s,
                    "  why:  the network is {} with block = false: its customers may run their own mail servers",
                    n.class.as_str()
                );
            }
        }
        Some((EntryKind::Exempt, i, p)) => {
            let x = &policy.exemptions[i];
            let _ = writeln!(s, "  rule: exemption {:?}, prefix {p}, policy line {}", x.name, x.line);
            let reason = if x.reason.is_empty() { String::new() } else { format!(" ({})", x.reason) };
            let _ = writeln!(s, "  why:  exempt addresses may send on port 25{reason}; an exemption wins over any less specific network");
        }
        None => {
            let _ = writeln!(s, "  rule: none");
            let _ = writeln!(
                s,
                "  why:  the address is in no end-user network of the policy, so the egress filter leaves it alone"
            );
        }
    }
    if let Some(p) = d.port {
        if !policy.blocked_ports.contains(&p) {
            let protected =
                if policy.protected_ports.contains(&p) { " and protected: the policy never blocks it" } else { "" };
            let _ = writeln!(s, "  port: {p} is not a blocked port{protected}");
        }
    }
    s
}
