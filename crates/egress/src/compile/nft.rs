//! nftables text for `nft -f`.
//!
//! `table X` followed by `delete table X` makes the file idempotent: loading
//! it again replaces the table atomically (one transaction) instead of
//! failing or duplicating rules.

use super::{Sets, LOG_PREFIX, MONITOR_PREFIX};
use crate::policy::Action;
use crate::prefix::Prefix;
use std::fmt::Write;

fn set(out: &mut String, name: &str, ty: &str, elems: &[Prefix]) {
    let _ = writeln!(out, "\tset {name} {{\n\t\ttype {ty}\n\t\tflags interval");
    if !elems.is_empty() {
        out.push_str("\t\telements = {\n");
        for chunk in elems.chunks(4) {
            let line: Vec<String> = chunk.iter().map(Prefix::to_string).collect();
            let _ = writeln!(out, "\t\t\t{},", line.join(", "));
        }
        out.push_str("\t\t}\n");
    }
    out.push_str("\t}\n");
}

pub fn render(s: &Sets) -> String {
    let p = s.policy;
    let t = &p.table;
    let mut out = s.header("#");
    let _ = writeln!(out, "table inet {t}\ndelete table inet {t}\n\ntable inet {t} {{");
    set(&mut out, "enduser_v4", "ipv4_addr", &s.blocked_v4);
    set(&mut out, "enduser_v6", "ipv6_addr", &s.blocked_v6);
    set(&mut out, "exempt_v4", "ipv4_addr", &s.exempt_v4);
    set(&mut out, "exempt_v6", "ipv6_addr", &s.exempt_v6);
    if s.monitoring {
        set(&mut out, "monitor_v4", "ipv4_addr", &s.monitor_v4);
        set(&mut out, "monitor_v6", "ipv6_addr", &s.monitor_v6);
    }
    if p.counters {
        for c in ["blocked_v4", "blocked_v6", "exempt_v4", "exempt_v6"] {
            let _ = writeln!(out, "\tcounter {c} {{\n\t}}");
        }
        if s.monitoring {
            for c in ["monitor_v4", "monitor_v6"] {
                let _ = writeln!(out, "\tcounter {c} {{\n\t}}");
            }
        }
    }
    let ports = if p.blocked_ports.len() == 1 {
        p.blocked_ports[0].to_string()
    } else {
        format!("{{ {} }}", p.blocked_ports.iter().map(u16::to_string).collect::<Vec<_>>().join(", "))
    };
    let verdict = match p.action {
        Action::Drop => "drop",
        Action::Reject => "reject with tcp reset",
    };
    let _ = writeln!(out, "\tchain forward {{\n\t\ttype filter hook forward priority filter; policy accept;");
    for (fam, v) in [("ip", "v4"), ("ip6", "v6")] {
        let count = |name: &str| {
            if p.counters {
                format!("counter name \"{name}_{v}\" ")
            } else {
                String::new()
            }
        };
        let _ =
            writeln!(out, "\t\t{fam} saddr @exempt_{v} tcp dport {ports} {}accept comment \"exempt\"", count("exempt"));
        if s.monitoring {
            // No verdict: the packet goes on to the chain's accept policy.
            let _ = writeln!(
                out,
                "\t\t{fam} saddr @monitor_{v} tcp dport {ports} {}log prefix \"{MONITOR_PREFIX}\" group {} comment \"monitor: log only\"",
                count("monitor"),
                p.monitor_log_group
            );
        }
        if p.log {
            let _ =
                writeln!(out, "\t\t{fam} saddr @enduser_{v} tcp dport {ports} limit rate 10/second burst 20 packets log prefix \"{LOG_PREFIX}\" level info");
        }
        let _ = writeln!(
            out,
            "\t\t{fam} saddr @enduser_{v} tcp dport {ports} {}{verdict} comment \"end-user port 25\"",
            count("blocked")
        );
    }
    out.push_str("\t}\n}\n");
    out
}
