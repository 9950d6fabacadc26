//! The same ruleset as nft.rs in libnftables' JSON schema (`nft -j -f`),
//! for controllers that drive nftables through its JSON API.

use super::{Sets, LOG_PREFIX, MONITOR_PREFIX};
use crate::policy::Action;
use crate::prefix::Prefix;
use serde_json::{json, Value};

fn elems(v: &[Prefix]) -> Value {
    Value::Array(
        v.iter()
            .map(|p| {
                if p.len == p.family.bits() {
                    json!(p.network().to_string())
                } else {
                    json!({"prefix": {"addr": p.network().to_string(), "len": p.len}})
                }
            })
            .collect(),
    )
}

pub fn render(s: &Sets) -> String {
    let p = s.policy;
    let t = p.table.as_str();
    let mut cmds = vec![
        json!({"metainfo": {"json_schema_version": 1}}),
        json!({"add": {"table": {"family": "inet", "name": t}}}),
        json!({"delete": {"table": {"family": "inet", "name": t}}}),
        json!({"add": {"table": {"family": "inet", "name": t}}}),
    ];
    for (name, ty, v) in [
        ("enduser_v4", "ipv4_addr", &s.blocked_v4),
        ("enduser_v6", "ipv6_addr", &s.blocked_v6),
        ("exempt_v4", "ipv4_addr", &s.exempt_v4),
        ("exempt_v6", "ipv6_addr", &s.exempt_v6),
    ]
    .into_iter()
    .chain(if s.monitoring {
        vec![("monitor_v4", "ipv4_addr", &s.monitor_v4), ("monitor_v6", "ipv6_addr", &s.monitor_v6)]
    } else {
        vec![]
    }) {
        let mut set = json!({"family": "inet", "table": t, "name": name, "type": ty, "flags": ["interval"]});
        if !v.is_empty() {
            set["elem"] = elems(v);
        }
        cmds.push(json!({"add": {"set": set}}));
    }
    if p.counters {
        let monitor: &[&str] = if s.monitoring { &["monitor_v4", "monitor_v6"] } else { &[] };
        for c in ["blocked_v4", "blocked_v6", "exempt_v4", "exempt_v6"].iter().chain(monitor) {
            cmds.push(json!({"add": {"counter": {"family": "inet", "table": t, "name": c}}}));
        }
    }
    cmds.push(json!({"add": {"chain": {"family": "inet", "table": t, "name": "forward", "type": "filter", "hook": "forward", "prio": 0, "policy": "accept"}}}));
    let ports = if p.blocked_ports.len() == 1 { json!(p.blocked_ports[0]) } else { json!({"set": p.blocked_ports}) };
    for (fam, v) in [("ip", "v4"), ("ip6", "v6")] {
        let m = |set: &str| {
            vec![
                json!({"match": {"op": "==", "left": {"payload": {"protocol": fam, "field": "saddr"}}, "right": format!("@{set}_{v}")}}),
                json!({"match": {"op": "==", "left": {"payload": {"protocol": "tcp", "field": "dport"}}, "right": ports}}),
            ]
        };
        let rule = |expr: Vec<Value>, comment: Option<&str>| {
            let mut r = json!({"family": "inet", "table": t, "chain": "forward", "expr": expr});
            if let Some(c) = comment {
                r["comment"] = json!(c);
            }
            json!({"add": {"rule": r}})
        };
        let mut e = m("exempt");
        if p.counters {
            e.push(json!({"counter": format!("exempt_{v}")}));
        }
        e.push(json!({"accept": null}));
        cmds.push(rule(e, Some("exempt")));
        if s.monitoring {
            let mut e = m("monitor");
            if p.counters {
                e.push(json!({"counter": format!("monitor_{v}")}));
            }
            e.push(json!({"log": {"prefix": MONITOR_PREFIX, "group": p.monitor_log_group}}));
            cmds.push(rule(e, Some("monitor: log only")));
        }
        if p.log {
            let mut e = m("enduser");
            e.push(json!({"limit": {"rate": 10, "per": "second", "burst": 20, "burst_unit": "packets"}}));
            e.push(json!({"log": {"prefix": LOG_PREFIX, "level": "info"}}));
            cmds.push(rule(e, None));
        }
        let mut e = m("enduser");
        if p.counters {
            e.push(json!({"counter": format!("blocked_{v}")}));
        }
        e.push(match p.action {
            Action::Drop => json!({"drop": null}),
            Action::Reject => json!({"reject": {"type": "tcp reset"}}),
        });
        cmds.push(rule(e, Some("end-user port 25")));
    }
    let mut text = serde_json::to_string_pretty(&json!({"nftables": cmds})).expect("JSON values serialise");
    text.push('\n');
    text
}
