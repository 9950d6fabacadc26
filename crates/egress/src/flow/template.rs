//! v9 and IPFIX templates: the field layout of the data records that follow.

use std::net::IpAddr;

/// Templates are scoped by exporter address, observation domain (IPFIX) or
/// source id (v9), and template id (RFC 7011 section 8, RFC 3954 section 5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TemplateKey {
    pub exporter: IpAddr,
    pub domain: u32,
    pub id: u16,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Field {
    pub id: u16,
    /// 0 for IANA elements; enterprise-specific fields are skipped.
    pub enterprise: u32,
    /// 65535: variable length (IPFIX only).
    pub len: u16,
}

pub const VARLEN: u16 = 65535;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    pub fields: Vec<Field>,
    /// Options templates describe metadata records (exporter boot time ...).
    pub options: bool,
    /// Smallest record: fixed lengths plus one length byte per varlen field.
    pub min_len: usize,
}

impl Template {
    pub fn new(fields: Vec<Field>, options: bool) -> Template {
        let min_len = fields.iter().map(|f| if f.len == VARLEN { 1 } else { f.len as usize }).sum();
        Template { fields, options, min_len }
    }
}
