//! Shipping SpamPots captures from many sensors to one collector.
//!
//! A sensor runs a [`shipper::Shipper`] next to its bait; `port25 spampot
//! collect` runs [`collector::run`]. They speak a small HTTP/1.1 over TLS
//! ([`http`], [`wire`]) with a bearer token per sensor; the collector
//! appends by byte offset ([`append`]) so that nothing is lost and nothing
//! is stored twice whatever fails and whenever.

pub mod append;
pub mod collector;
pub mod hpfeeds;
pub mod http;
pub mod shipper;
pub mod wire;
