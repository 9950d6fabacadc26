//! Juniper Junos firewall filters (family inet and inet6) over prefix lists,
//! in the curly-brace configuration format `load merge` accepts.

use super::Sets;
use crate::policy::Action;
use crate::prefix::Prefix;
use std::fmt::Write;

pub fn render(s: &Sets) -> String {
    let p = s.policy;
    let mut out = s.header("#");
    let stem = p.table.replace('_', "-");
    let list = |out: &mut String, name: &str, v: &[Prefix]| {
        let _ = writeln!(out, "    replace: prefix-list {name} {{");
        for x in v {
            let _ = writeln!(out, "        {x};");
        }
        out.push_str("    }\n");
    };
    out.push_str("policy-options {\n");
    list(&mut out, &format!("{stem}-enduser-v4"), &s.blocked_v4);
    list(&mut out, &format!("{stem}-exempt-v4"), &s.exempt_v4);
    list(&mut out, &format!("{stem}-enduser-v6"), &s.blocked_v6);
    if s.monitoring {
        list(&mut out, &format!("{stem}-monitor-v4"), &s.monitor_v4);
        list(&mut out, &format!("{stem}-monitor-v6"), &s.monitor_v6);
    }
    list(&mut out, &format!("{stem}-exempt-v6"), &s.exempt_v6);
    out.push_str("}\nfirewall {\n");
    let ports = if p.blocked_ports.len() == 1 {
        format!("{};", p.blocked_ports[0])
    } else {
        format!("[ {} ];", p.blocked_ports.iter().map(u16::to_string).collect::<Vec<_>>().join(" "))
    };
    let verdict = match p.action {
        Action::Drop => "discard;",
        Action::Reject => "reject tcp-reset;",
    };
    for (fam, v, proto, empty_b, empty_e, empty_m) in [
        ("inet", "v4", "protocol", s.blocked_v4.is_empty(), s.exempt_v4.is_empty(), s.monitor_v4.is_empty()),
        ("inet6", "v6", "next-header", s.blocked_v6.is_empty(), s.exempt_v6.is_empty(), s.monitor_v6.is_empty()),
    ] {
        let _ = writeln!(out, "    family {fam} {{\n        replace: filter {stem}-{v} {{");
        let term = |out: &mut String, name: &str, list: &str, then: &str| {
            let _ = writeln!(
                out,
                "            term {name} {{\n                from {{\n                    source-prefix-list {{\n                        {stem}-{list}-{v};\n                    }}\n                    {proto} tcp;\n                    destination-port {ports}\n                }}\n                then {{\n{then}                }}\n            }}"
            );
        };
        // Junos refuses a term over an empty prefix list; skip it instead.
        if !empty_e {
            let count =
                if p.counters { format!("                    count {stem}-exempt-{v};\n") } else { String::new() };
            term(&mut out, "exempt", "exempt", &format!("{count}                    accept;\n"));
        }
        if !empty_m {
            // Log only: count and syslog, then on to the next term (the
            // enforced list does not hold this space; the default accepts).
            let count =
                if p.counters { format!("                    count {stem}-monitor-{v};\n") } else { String::new() };
            term(
                &mut out,
                "monitor-smtp",
                "monitor",
                &format!("{count}                    syslog;\n                    next term;\n"),
            );
        }
        if !empty_b {
            let count =
                if p.counters { format!("                    count {stem}-blocked-{v};\n") } else { String::new() };
            let log = if p.log { "                    syslog;\n" } else { "" };
            term(&mut out, "enduser-smtp", "enduser", &format!("{count}{log}                    {verdict}\n"));
        }
        out.push_str("            term default {\n                then accept;\n            }\n        }\n    }\n");
    }
    out.push_str("}\n");
    out
}
