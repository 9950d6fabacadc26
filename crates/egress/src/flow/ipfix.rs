//! IPFIX (RFC 7011): templates with enterprise numbers and variable-length
//! fields, options templates, template withdrawal, data sets.

use super::template::{Field, Template, TemplateKey};
use super::{be16, be32, for_each_set, Collector, Context, Flow, Malformed};
use std::net::IpAddr;

pub fn decode(c: &mut Collector, exporter: IpAddr, d: &[u8], out: &mut Vec<Flow>) -> Result<(), Malformed> {
    let total = be16(d, 2)? as usize;
    if total < 16 || total > d.len() {
        return Err(Malformed("ipfix message length"));
    }
    let d = &d[..total];
    let export_ms = be32(d, 4)? as u64 * 1000;
    let domain = be32(d, 12)?;
    let ctx = Context { export_ms, uptime_ms: None, init_ms: None };
    let key = |id| TemplateKey { exporter, domain, id };
    for_each_set(d, 16, |id, body| match id {
        2 => templates(c, key, body, false, out),
        3 => templates(c, key, body, true, out),
        0..=255 => Ok(()),
        _ => c.data(key(id), body, ctx, out),
    })
}

fn templates(
    c: &mut Collector,
    key: impl Fn(u16) -> TemplateKey,
    b: &[u8],
    options: bool,
    out: &mut Vec<Flow>,
) -> Result<(), Malformed> {
    let mut pos = 0;
    let header = if options { 6 } else { 4 };
    while b.len() - pos >= header {
        let id = be16(b, pos)?;
        let n = be16(b, pos + 2)? as usize;
        let scope = if options { be16(b, pos + 4)? as usize } else { 0 };
        pos += header;
        if id == 0 {
            // Padding to a 4-byte boundary, not a template.
            break;
        }
        if id < 256 {
            return Err(Malformed("ipfix template id"));
        }
        let tkey = key(id);
        if n == 0 {
            // A withdrawal (RFC 7011 section 8.1).
            c.withdraw(tkey);
            continue;
        }
        if scope > n || (options && scope == 0) {
            return Err(Malformed("ipfix scope count"));
        }
        let mut fields = Vec::with_capacity(n);
        for i in 0..n {
            let raw = be16(b, pos)?;
            let len = be16(b, pos + 2)?;
            pos += 4;
            let mut enterprise = 0;
            if raw & 0x8000 != 0 {
                enterprise = be32(b, pos)?;
                pos += 4;
            }
            if len == 0 {
                return Err(Malformed("ipfix field length"));
            }
            // Scope fields are metadata keys, never flow values.
            if i < scope {
                enterprise = u32::MAX;
            }
            fields.push(Field { id: raw & 0x7fff, enterprise, len });
        }
        c.learn(tkey, Template::new(fields, options), out);
    }
    Ok(())
}
