//! `--group-by operator|asn|city|access|sensor`: every capture table once
//! per group of sensors. A sensor's group comes from the `site` its events
//! carry (capture format v2, the sensor's `[site]` configuration), event by
//! event, so a sensor moved to another network is counted where it was at
//! the time. Events without a site (version 1 captures, sensors without
//! `[site]`) fall in the group `(no site)`.
//!
//! One pass over the log feeds the overall accumulator and the group's.

use crate::stats::{Accumulator, Filter};
use port25_capture::view::{EventView, SiteView};
use std::collections::BTreeMap;

/// What events are grouped by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum GroupBy {
    /// The access network's operator (its AS when no name is given).
    Operator,
    /// The operator's AS number.
    Asn,
    City,
    /// Access type: cable, adsl, fiber...
    Access,
    Sensor,
}

impl std::str::FromStr for GroupBy {
    type Err = String;
    fn from_str(s: &str) -> Result<GroupBy, String> {
        Ok(match s {
            "operator" => GroupBy::Operator,
            "asn" => GroupBy::Asn,
            "city" => GroupBy::City,
            "access" => GroupBy::Access,
            "sensor" => GroupBy::Sensor,
            _ => return Err(format!("{s:?}: group by operator, asn, city, access or sensor")),
        })
    }
}

impl GroupBy {
    pub fn name(self) -> &'static str {
        match self {
            GroupBy::Operator => "operator",
            GroupBy::Asn => "asn",
            GroupBy::City => "city",
            GroupBy::Access => "access",
            GroupBy::Sensor => "sensor",
        }
    }

    /// The group an event belongs to.
    pub fn key(self, e: &EventView<'_>) -> String {
        if self == GroupBy::Sensor {
            return e.sensor.to_string();
        }
        e.site.as_ref().map(|s| Site::of(s).key(self)).unwrap_or_else(|| NO_SITE.to_owned())
    }
}

/// The group of events without a site.
pub const NO_SITE: &str = "(no site)";

/// A sensor's site, owned.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Site {
    pub operator: Option<String>,
    pub asn: Option<u32>,
    pub city: Option<String>,
    pub access: Option<String>,
}

impl Site {
    pub fn of(v: &SiteView<'_>) -> Site {
        Site {
            operator: v.operator.as_deref().map(str::to_owned),
            asn: v.asn,
            city: v.city.as_deref().map(str::to_owned),
            access: v.access.as_deref().map(str::to_owned),
        }
    }

    /// Whether `v` says the same as this site (no need to copy it again).
    pub fn is(&self, v: &SiteView<'_>) -> bool {
        self.operator.as_deref() == v.operator.as_deref()
            && self.asn == v.asn
            && self.city.as_deref() == v.city.as_deref()
            && self.access.as_deref() == v.access.as_deref()
    }

    pub fn key(&self, by: GroupBy) -> String {
        let unset = || format!("(no {})", by.name());
        match by {
            GroupBy::Operator => {
                self.operator.clone().or_else(|| self.asn.map(|a| format!("AS{a}"))).unwrap_or_else(unset)
            }
            GroupBy::Asn => self.asn.map(|a| format!("AS{a}")).unwrap_or_else(unset),
            GroupBy::City => self.city.clone().unwrap_or_else(unset),
            GroupBy::Access => self.access.clone().unwrap_or_else(unset),
            GroupBy::Sensor => unset(),
        }
    }
}

/// The whole capture's counts and, when grouping, each group's.
#[derive(Debug, Default)]
pub struct Grouped {
    pub by: Option<GroupBy>,
    pub total: Accumulator,
    pub groups: BTreeMap<String, Accumulator>,
}

impl Grouped {
    pub fn new(filter: Filter, by: Option<GroupBy>) -> Grouped {
        Grouped { by, total: Accumulator::new(filter), groups: BTreeMap::new() }
    }

    pub fn add(&mut self, e: &EventView<'_>) {
        self.total.add(e);
        if let Some(by) = self.by {
            let key = by.key(e);
            let filter = &self.total.filter;
            self.groups.entry(key).or_insert_with(|| Accumulator::new(filter.clone())).add(e);
        }
    }

    pub fn merge(&mut self, o: Grouped) {
        self.total.merge(o.total);
        for (k, v) in o.groups {
            match self.groups.get_mut(&k) {
                Some(mine) => mine.merge(v),
                None => {
                    self.groups.insert(k, v);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys() {
        let line =
            br#"{"v":2,"event":"port25.spampot.connect","sensor":"s1","time":"2007-01-01T00:00:00.000Z","site":{"asn":28573,"city":"Recife","access":"adsl"}}"#;
        let e: EventView = serde_json::from_slice(line).unwrap();
        assert_eq!(GroupBy::Operator.key(&e), "AS28573", "the AS stands for an unnamed operator");
        assert_eq!(
            (GroupBy::City.key(&e), GroupBy::Access.key(&e), GroupBy::Sensor.key(&e)),
            ("Recife".into(), "adsl".into(), "s1".into())
        );
        let v1: EventView = serde_json::from_slice(
            br#"{"v":1,"event":"port25.spampot.connect","sensor":"s1","time":"2007-01-01T00:00:00.000Z"}"#,
        )
        .unwrap();
        assert_eq!(GroupBy::City.key(&v1), NO_SITE);
    }
}
