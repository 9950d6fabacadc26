//! The one event catalogue of port25.
//!
//! Every structured log line port25 writes carries an `event` field whose value
//! is one of the constants below (`port25.<area>.<event>`), the way Cowrie
//! publishes its event ids: operators build alerts and dashboards on them, so
//! they are a contract. `docs/EVENTS.md` documents each one; a test in this
//! crate fails when the code and the document disagree, and another fails when
//! a crate logs an id that is not in this catalogue.
//!
//! Components log with [`emit!`], which is `tracing::info!` (or another level)
//! with the id in the `event` field. [`init`] chooses human text or JSON lines.

pub mod catalogue;
pub mod fields;
pub mod journal;
mod output;

pub use catalogue::*;
pub use output::{escaped, init, init_with, ExtraLayer, LogFormat};

/// Logs one catalogued event: `emit!(info, SESSION_CONNECT, peer = %addr)`.
///
/// The id is also the callsite's name (so it must be one of the constants):
/// a layer that reads a few events chooses them once per callsite
/// ([`fields::Named`]) instead of reading the `event` field of every event.
#[macro_export]
macro_rules! emit {
    ($level:ident, $id:expr $(, $($fields:tt)*)?) => {
        ::tracing::$level!(name: $id, event = $id $(, $($fields)*)?)
    };
}
