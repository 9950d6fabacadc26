//! NetFlow v9 (RFC 3954): templates, options templates and data flowsets.

use super::template::{Field, Template, TemplateKey, VARLEN};
use super::{be16, be32, for_each_set, Collector, Context, Flow, Malformed};
use std::net::IpAddr;

pub fn decode(c: &mut Collector, exporter: IpAddr, d: &[u8], out: &mut Vec<Flow>) -> Result<(), Malformed> {
    let uptime = be32(d, 4)? as u64;
    let secs = be32(d, 8)? as u64;
    let domain = be32(d, 16)?;
    let ctx = Context { export_ms: secs * 1000, uptime_ms: Some(uptime), init_ms: None };
    let key = |id| TemplateKey { exporter, domain, id };
    for_each_set(d, 20, |id, body| match id {
        0 => templates(c, key, body, out),
        1 => options_templates(c, key, body, out),
        2..=255 => Ok(()),
        _ => c.data(key(id), body, ctx, out),
    })
}

/// `n` (type, length) pairs; v9 has no variable-length or enterprise fields.
/// The first `scope` fields are options scope: their numbers (1 = system,
/// 2 = interface) collide with flow elements, so they are marked with an
/// enterprise number the record decoder skips.
fn fields(b: &[u8], pos: &mut usize, n: usize, scope: usize) -> Result<Vec<Field>, Malformed> {
    let mut out = Vec::with_capacity(n.min(256));
    for i in 0..n {
        let (id, len) = (be16(b, *pos)?, be16(b, *pos + 2)?);
        *pos += 4;
        if len == 0 || len == VARLEN {
            return Err(Malformed("v9 field length"));
        }
        out.push(Field { id, enterprise: if i < scope { u32::MAX } else { 0 }, len });
    }
    Ok(out)
}

fn templates(
    c: &mut Collector,
    key: impl Fn(u16) -> TemplateKey,
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
        let f = fields(b, &mut pos, n, 0)?;
        c.learn(key(id), Template::new(f, false), out);
    }
    Ok(())
}

fn options_templates(
    c: &mut Collector,
    key: impl Fn(u16) -> TemplateKey,
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
        let f = fields(b, &mut pos, (scope_len + opt_len) / 4, scope_len / 4)?;
        c.learn(key(id), Template::new(f, true), out);
    }
    Ok(())
}
