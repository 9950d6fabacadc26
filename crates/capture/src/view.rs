//! A borrowed view of one event line, for readers that go through millions
//! of lines (the report): the same fields and rules as [`crate::Event`],
//! but strings point into the line (`Cow::Borrowed`) unless they hold JSON
//! escapes, so counting does not allocate every field of every event.
//! Unknown fields are ignored, absent optional fields are `None`/empty, and
//! `v`, `event`, `sensor`, `time` are required, exactly as for `Event`.

use serde::Deserialize;
use std::borrow::Cow;

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct DestinationView<'a> {
    #[serde(borrow)]
    pub host: Cow<'a, str>,
    pub port: u16,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct EventView<'a> {
    pub v: u32,
    #[serde(borrow)]
    pub event: Cow<'a, str>,
    #[serde(borrow)]
    pub sensor: Cow<'a, str>,
    #[serde(borrow)]
    pub time: Cow<'a, str>,
    #[serde(borrow, default)]
    pub session: Cow<'a, str>,
    #[serde(borrow, default)]
    pub src_ip: Option<Cow<'a, str>>,
    #[serde(default)]
    pub src_port: Option<u16>,
    #[serde(default)]
    pub dst_port: Option<u16>,
    #[serde(borrow, default)]
    pub protocol: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub proxy_type: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub requested: Option<DestinationView<'a>>,
    #[serde(borrow, default)]
    pub username: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub password: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub method: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub url: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub user_agent: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub helo: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub mail_from: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub rcpt_to: Vec<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub message_id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub digest: Option<Cow<'a, str>>,
    #[serde(default)]
    pub size: Option<u64>,
    #[serde(default)]
    pub duplicate: Option<bool>,
    #[serde(default)]
    pub probe: Option<bool>,
    #[serde(borrow, default)]
    pub probe_reasons: Vec<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub reason: Option<Cow<'a, str>>,
    #[serde(default)]
    pub messages: Option<u64>,
    #[serde(default)]
    pub bytes: Option<u64>,
    #[serde(default)]
    pub bytes_in: Option<u64>,
    #[serde(default)]
    pub bytes_out: Option<u64>,
    #[serde(borrow, default)]
    pub site: Option<SiteView<'a>>,
}

/// [`crate::Site`], borrowed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct SiteView<'a> {
    #[serde(borrow, default)]
    pub operator: Option<Cow<'a, str>>,
    #[serde(default)]
    pub asn: Option<u32>,
    #[serde(borrow, default)]
    pub city: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub access: Option<Cow<'a, str>>,
}
