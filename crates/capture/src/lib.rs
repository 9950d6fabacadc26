//! The SpamPots capture store: what a sensor saw, in a form a report can read.
//!
//! Two parts, documented as a versioned contract in docs/capture-format.md:
//! - an append-only event log of JSON lines ([`log`]), one [`Event`] per
//!   line, in segments rotated by size and by UTC day; a line is written
//!   whole or not at all, so a reader ([`reader`]) only ever meets a torn
//!   *last* line (after a crash), which it reports and skips;
//! - message bodies stored once by SHA-256, zstd-compressed, in a
//!   content-addressed fan-out ([`bodies`]): a campaign sent a million times
//!   costs one body.
//!
//! [`Store`] ties them together with the disk quota (oldest segments and
//! bodies go first, and the rotation is itself an event).

pub mod bodies;
pub mod event;
pub mod fastview;
pub mod log;
pub mod quota;
pub mod reader;
mod store;
pub mod view;

pub use event::{Destination, Event, Site, FORMAT_VERSION};
pub use store::{filesystem_space, free_floor, Store, StoreConfig, StoredBody};
