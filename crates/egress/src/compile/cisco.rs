//! Cisco IOS extended ACLs (IPv4) and IPv6 access lists. IOS ACLs cannot
//! answer with a TCP reset, so `reject` becomes `deny` (ICMP unreachable,
//! when enabled on the interface); the remark says so.

use super::Sets;
use crate::policy::Action;
use crate::prefix::{Family, Prefix};
use std::fmt::Write;

fn source(p: &Prefix) -> String {
    match p.family {
        Family::V4 if p.len == 0 => "any".into(),
        Family::V4 if p.len == 32 => format!("host {}", p.network()),
        Family::V4 => format!("{} {}", p.network(), p.wildcard_v4()),
        Family::V6 if p.len == 0 => "any".into(),
        Family::V6 if p.len == 128 => format!("host {}", p.network()),
        Family::V6 => p.to_string(),
    }
}

pub fn render(s: &Sets) -> String {
    let p = s.policy;
    let mut out = s.header("!");
    let name = p.table.to_uppercase().replace('_', "-");
    if p.action == Action::Reject {
        out.push_str("! IOS ACLs cannot send TCP resets: reject is compiled as deny.\n");
    }
    let log = if p.log { " log" } else { "" };
    for (family, blocked, exempt, monitor) in [
        (Family::V4, &s.blocked_v4, &s.exempt_v4, &s.monitor_v4),
        (Family::V6, &s.blocked_v6, &s.exempt_v6, &s.monitor_v6),
    ] {
        match family {
            Family::V4 => {
                let _ = writeln!(out, "no ip access-list extended {name}-V4\nip access-list extended {name}-V4");
            }
            Family::V6 => {
                let _ = writeln!(out, "no ipv6 access-list {name}-V6\nipv6 access-list {name}-V6");
            }
        }
        out.push_str(" remark exempt: provider MTAs and business customers\n");
        for x in exempt.iter() {
            for port in &p.blocked_ports {
                let _ = writeln!(out, " permit tcp {} any eq {port}", source(x));
            }
        }
        if !monitor.is_empty() {
            out.push_str(" remark monitored end-user space: permitted and logged until enforced\n");
            for m in monitor.iter() {
                for port in &p.blocked_ports {
                    let _ = writeln!(out, " permit tcp {} any eq {port} log", source(m));
                }
            }
        }
        out.push_str(" remark end-user space: no direct SMTP\n");
        for b in blocked.iter() {
            for port in &p.blocked_ports {
                let _ = writeln!(out, " deny tcp {} any eq {port}{log}", source(b));
            }
        }
        let any = if family == Family::V4 { "ip" } else { "ipv6" };
        let _ = writeln!(out, " permit {any} any any");
    }
    out
}
