//! NetFlow v9 (RFC 3954): templates, options templates and data flowsets.

use super::template::{Field, Template, TemplateKey};
use super::{be16, be32, Collector, Context, Flow, Malformed};
use std::net::IpAddr;

pub fn decode(
    c: &mut Collector,
    exporter: IpAddr,
    d: &[u8],
    out: &mut Vec<Flow>,
) -> Result<(), Malformed> {
    let uptime = be32(d, 4)? as u64;
    let secs = be32(d, 8)? as u64;
    let domain = be32(d, 16)?;
    let ctx = Context {
        export_ms: secs * 1000,
        uptime_ms: Some(uptime),
        init_ms: None,
    };
    let mut pos = 20;
    while pos < d.len() {
        // Some exporters pad the datagram; fewer than 4 bytes cannot be a flowset.
        if d.len() - pos < 4 {
            break;
        }
        let id = be16(d, pos)?;
        let len = be16(d, pos + 2)? as usize;
        if len < 4 || pos + len > d.len() {
            return Err(Malformed("v9 flowset length"));
        }
        let body = &d[pos + 4..pos + len];
        pos += len;
        match id {
            0 => templates(c, exporter, domain, body, out)?,
            1 => options_templates(c, exporter, domain, body, out)?,
            2..=255 => {}
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
    out: &mut Vec<Flow>,
) -> Result<(), Malformed> {
    let mut pos = 0;
    while b.len() - pos >= 4 {
        let id = be16(b, pos)?;
        let n = be16(b, pos + 2)? as usize;
        pos += 4;
        if id == 0 {
            // Padding to a 4-byte boundary, not a template.
            break;
        }
        if id < 256 || n == 0 {
            return Err(Malformed("v9 template header"));
        }
        let mut fields = Vec::with_capacity(n);
        for _ in 0..n {
            let (fid, flen) = (be16(b, pos)?, be16(b, pos + 2)?);
            pos += 4;
            if flen == 0 || flen == super::template::VARLEN {
                return Err(Malformed("v9 field length"));
            }
            fields.push(Field {
                id: fid,
                enterprise: 0,
                len: flen,
            });
        }
        c.learn(
            TemplateKey {
                exporter,
                domain,
                id,
            },
            Template::new(fields, false),
            out,
        );
    }
    Ok(())
}

fn options_templates(
    c: &mut Collector,
    exporter: IpAddr,
    domain: u32,
    b: &[u8],
    out: &mut Vec<Flow>,
) -> Result<(), Malformed> {
    let mut pos = 0;
    while b.len() - pos >= 6 {
        let id = be16(b, pos)?;
        let scope_len = be16(b, pos + 2)? as usize;
        let opt_len = be16(b, pos + 4)? as usize;
        pos += 6;
        if id == 0 {
            break;
        }
        if id < 256 || (scope_len + opt_len) & 3 != 0 || scope_len + opt_len == 0 {
            return Err(Malformed("v9 options template header"));
        }
        let mut fields = Vec::new();
        for _ in 0..(scope_len + opt_len) / 4 {
            let (fid, flen) = (be16(b, pos)?, be16(b, pos + 2)?);
            pos += 4;
            if flen == 0 || flen == super::template::VARLEN {
                return Err(Malformed("v9 field length"));
            }
            // Scope fields reuse small numbers (1 = system, 2 = interface)
            // that collide with flow elements; mark them as "enterprise" so
            // the record decoder skips them.
            let enterprise = if fields.len() < scope_len / 4 {
                u32::MAX
            } else {
                0
            };
            fields.push(Field {
                id: fid,
                enterprise,
                len: flen,
            });
        }
        c.learn(
            TemplateKey {
                exporter,
                domain,
                id,
            },
            Template::new(fields, true),
            out,
        );
    }
    Ok(())
}
