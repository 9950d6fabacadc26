//! IPFIX (RFC 7011): templates with enterprise numbers and variable-length
//! fields, options templates, template withdrawal, data sets.

use super::template::{Field, Template, TemplateKey};
use super::{be16, be32, Collector, Context, Flow, Malformed};
use std::net::IpAddr;

pub fn decode(
    c: &mut Collector,
    exporter: IpAddr,
    d: &[u8],
    out: &mut Vec<Flow>,
) -> Result<(), Malformed> {
    let total = be16(d, 2)? as usize;
    if total < 16 || total > d.len() {
        return Err(Malformed("ipfix message length"));
    }
    let d = &d[..total];
    let export_ms = be32(d, 4)? as u64 * 1000;
    let domain = be32(d, 12)?;
    let ctx = Context {
        export_ms,
        uptime_ms: None,
        init_ms: None,
    };
    let mut pos = 16;
    while pos < d.len() {
        let id = be16(d, pos)?;
        let len = be16(d, pos + 2)? as usize;
        if len < 4 || pos + len > d.len() {
            return Err(Malformed("ipfix set length"));
        }
        let body = &d[pos + 4..pos + len];
        pos += len;
        match id {
            2 => templates(c, exporter, domain, body, false, out)?,
            3 => templates(c, exporter, domain, body, true, out)?,
            0..=255 => {}
            _ => c.data(
                TemplateKey {
                    exporter,
                    domain,
                    id,
                },
                body,
                ctx,
                out,
            )?,
        }
    }
    Ok(())
}

fn templates(
    c: &mut Collector,
    exporter: IpAddr,
    domain: u32,
    b: &[u8],
    options: bool,
    out: &mut Vec<Flow>,
) -> Result<(), Malformed> {
    let mut pos = 0;
    let header = if options { 6 } else { 4 };
    while b.len() - pos >= header {
        let id = be16(b, pos)?;
        let n = be16(b, pos + 2)? as usize;
        let scope = if options {
            be16(b, pos + 4)? as usize
        } else {
            0
        };
        pos += header;
        if id == 0 {
            // Padding to a 4-byte boundary, not a template.
            break;
        }
        if id < 256 {
            return Err(Malformed("ipfix template id"));
        }
        let key = TemplateKey {
            exporter,
            domain,
            id,
        };
        if n == 0 {
            // A withdrawal (RFC 7011 section 8.1).
            c.withdraw(key);
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
            fields.push(Field {
                id: raw & 0x7fff,
                enterprise,
                len,
            });
        }
        c.learn(key, Template::new(fields, options), out);
    }
    Ok(())
}
