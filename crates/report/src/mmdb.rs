//! MaxMind DB files (GeoLite2/GeoIP2 Country, City, ASN, and anything with
//! the same field names) read through the `maxminddb` crate. One record
//! shape covers them all: a country database answers the country
//! (`country`, else `registered_country`), an ASN database the AS.

use crate::error::InputError;
use serde::Deserialize;
use std::net::IpAddr;
use std::path::Path;

pub struct Mmdb {
    reader: maxminddb::Reader<Vec<u8>>,
}

#[derive(Deserialize)]
struct Iso<'a> {
    #[serde(borrow, default)]
    iso_code: Option<&'a str>,
}

#[derive(Deserialize)]
struct Record<'a> {
    #[serde(borrow, default)]
    country: Option<Iso<'a>>,
    #[serde(borrow, default)]
    registered_country: Option<Iso<'a>>,
    #[serde(default)]
    autonomous_system_number: Option<u32>,
}

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Answer {
    pub country: Option<[u8; 2]>,
    pub asn: Option<u32>,
}

impl Mmdb {
    pub fn open(path: &Path) -> Result<Mmdb, InputError> {
        let bytes = crate::error::read(path)?;
        let reader = maxminddb::Reader::from_source(bytes)
            .map_err(|e| InputError::file(path, format!("not a MaxMind DB (.mmdb) file: {e}")))?;
        Ok(Mmdb { reader })
    }

    /// The database type from its metadata (`GeoLite2-ASN`, ...).
    pub fn kind(&self) -> &str {
        &self.reader.metadata().database_type
    }

    pub fn lookup(&self, ip: IpAddr) -> Answer {
        let Ok(found) = self.reader.lookup(ip) else { return Answer::default() };
        let Ok(Some(rec)) = found.decode::<Record>() else { return Answer::default() };
        let cc = rec.country.and_then(|c| c.iso_code).or(rec.registered_country.and_then(|c| c.iso_code));
        let country = cc.and_then(|c| match c.as_bytes() {
            [a, b] => Some([a.to_ascii_uppercase(), b.to_ascii_uppercase()]),
            _ => None,
        });
        Answer { country, asn: rec.autonomous_system_number }
    }
}
