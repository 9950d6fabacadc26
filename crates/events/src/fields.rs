//! What the layers beside the log (the metrics, the abuse desk's trace
//! index) share: a filter that lets through only the catalogued events a
//! layer names (decided once per callsite), and a visitor that reads only
//! the fields the layer reads of each, as strings.

use tracing::field::{Field, Visit};
use tracing_subscriber::layer::{Context, Filter};

/// What a layer reads: each event id it takes (the callsite name
/// [`crate::emit!`] gives) with the fields it reads of that event. One
/// table gives both the layer's filter ([`Named`]) and each event's
/// [`Picked`].
pub type Reads = &'static [(&'static str, &'static [&'static str])];

/// Only the catalogued events a [`Reads`] table names: decided once per
/// callsite, so every other event never reaches the layer.
pub struct Named(pub Reads);

impl Named {
    fn wants(&self, meta: &tracing::Metadata<'_>) -> bool {
        meta.is_event() && self.0.iter().any(|(id, _)| *id == meta.name()) && meta.fields().field("event").is_some()
    }

    /// The fields read of event `id` (none for an event not named).
    pub fn fields(&self, id: &str) -> &'static [&'static str] {
        self.0.iter().find(|(e, _)| *e == id).map_or(&[], |(_, f)| f)
    }
}

impl<S> Filter<S> for Named {
    fn enabled(&self, meta: &tracing::Metadata<'_>, _: &Context<'_, S>) -> bool {
        self.wants(meta)
    }
    fn callsite_enabled(&self, meta: &'static tracing::Metadata<'static>) -> tracing::subscriber::Interest {
        if self.wants(meta) {
            tracing::subscriber::Interest::always()
        } else {
            tracing::subscriber::Interest::never()
        }
    }
}

/// The fields of one event that a layer reads, as strings: only the names
/// it was made for are kept, so no map of every field and no string for a
/// field nobody reads. A layer keeps a table of the fields it reads per
/// event id (the callsite name [`crate::emit!`] gives) and makes one of
/// these per event from it.
#[derive(Debug, Default)]
pub struct Picked {
    want: &'static [&'static str],
    got: Vec<(&'static str, String)>,
}

impl Picked {
    /// For an event of which only the fields `want` are read.
    pub fn new(want: &'static [&'static str]) -> Picked {
        Picked { want, got: Vec::with_capacity(want.len()) }
    }

    /// Fields given by name, all kept (tests, tools).
    pub fn of(pairs: &[(&'static str, &str)]) -> Picked {
        Picked { want: &[], got: pairs.iter().map(|(k, v)| (*k, (*v).to_owned())).collect() }
    }

    fn keep(&mut self, name: &'static str, value: impl FnOnce() -> String) {
        if self.want.contains(&name) {
            self.got.push((name, value()));
        }
    }

    /// A field's value, "" when absent.
    pub fn get(&self, k: &str) -> &str {
        self.got.iter().find(|(n, _)| *n == k).map_or("", |(_, v)| v.as_str())
    }

    /// A field's value taken out ("" when absent, or taken before).
    pub fn take(&mut self, k: &str) -> String {
        self.got.iter_mut().find(|(n, _)| *n == k).map(|(_, v)| std::mem::take(v)).unwrap_or_default()
    }

    /// Whether the field is there and not empty.
    pub fn has(&self, k: &str) -> bool {
        !self.get(k).is_empty()
    }
}

impl Visit for Picked {
    fn record_str(&mut self, f: &Field, v: &str) {
        self.keep(f.name(), || v.to_owned());
    }
    fn record_debug(&mut self, f: &Field, v: &dyn std::fmt::Debug) {
        self.keep(f.name(), || format!("{v:?}"));
    }
    fn record_u64(&mut self, f: &Field, v: u64) {
        self.keep(f.name(), || v.to_string());
    }
    fn record_i64(&mut self, f: &Field, v: i64) {
        self.keep(f.name(), || v.to_string());
    }
    fn record_bool(&mut self, f: &Field, v: bool) {
        self.keep(f.name(), || v.to_string());
    }
}
