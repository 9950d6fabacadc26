//! `egress diff OLD NEW`: the address ranges whose port-25 verdict changes.

use crate::policy::Policy;
use crate::prefix::{range_to_prefixes, Family, Prefix, Range};
use crate::table::{EntryKind, Table, NONE};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub prefix: Prefix,
    /// True when NEW blocks what OLD let through.
    pub now_blocked: bool,
    pub old_rule: String,
    pub new_rule: String,
}

fn rule_name(p: &Policy, t: &Table, e: u32) -> String {
    if e == NONE {
        return "no rule".into();
    }
    let entry = &t.entries[e as usize];
    match entry.kind {
        EntryKind::Network => format!("network {}", p.networks[entry.index].name),
        EntryKind::Exempt => format!("exemption {}", p.exemptions[entry.index].name),
    }
}

/// Ranges of addresses that change verdict, as minimal prefixes, sorted.
pub fn diff(old: &Policy, new: &Policy) -> Vec<Change> {
    let (to, tn) = (Table::new(old), Table::new(new));
    let mut out = Vec::new();
    for family in [Family::V4, Family::V6] {
        let (so, sn) = match family {
            Family::V4 => (&to.v4, &tn.v4),
            Family::V6 => (&to.v6, &tn.v6),
        };
        // Elementary intervals: between consecutive boundaries of either table.
        let mut bounds: Vec<u128> = vec![0];
        for s in so.iter().chain(sn.iter()) {
            bounds.push(s.first);
            if s.last < family.max() {
                bounds.push(s.last + 1);
            }
        }
        bounds.sort_unstable();
        bounds.dedup();
        let look = |t: &Table, v: u128| match family {
            Family::V4 => t.lookup_v4(v as u32),
            Family::V6 => t.lookup_v6(v),
        };
        let mut pending: Option<(Range, bool, u32, u32)> = None;
        let flush = |p: Option<(Range, bool, u32, u32)>, out: &mut Vec<Change>| {
            if let Some((r, now_blocked, eo, en)) = p {
                let mut ps = Vec::new();
                range_to_prefixes(r, &mut ps);
                for prefix in ps {
                    out.push(Change {
                        prefix,
                        now_blocked,
                        old_rule: rule_name(old, &to, eo),
                        new_rule: rule_name(new, &tn, en),
                    });
                }
            }
        };
        for (i, &b) in bounds.iter().enumerate() {
            let last = bounds.get(i + 1).map_or(family.max(), |n| n - 1);
            let (eo, en) = (look(&to, b), look(&tn, b));
            let (bo, bn) = (to.is_blocked(eo), tn.is_blocked(en));
            if bo == bn {
                flush(pending.take(), &mut out);
                continue;
            }
            match &mut pending {
                Some((r, nb, po, pn)) if *nb == bn && *po == eo && *pn == en && r.last + 1 == b => r.last = last,
                _ => {
                    flush(pending.take(), &mut out);
                    pending = Some((Range { family, first: b, last }, bn, eo, en));
                }
            }
        }
        flush(pending.take(), &mut out);
    }
    out
}

/// Port-list changes, which change the verdict for every end-user address.
pub fn port_changes(old: &Policy, new: &Policy) -> Vec<String> {
    let mut out = Vec::new();
    for p in &new.blocked_ports {
        if !old.blocked_ports.contains(p) {
            out.push(format!("port {p} is now blocked"));
        }
    }
    for p in &old.blocked_ports {
        if !new.blocked_ports.contains(p) {
            out.push(format!("port {p} is no longer blocked"));
        }
    }
    if old.action != new.action {
        out.push(format!("action {:?} -> {:?}", old.action, new.action).to_lowercase());
    }
    out
}
