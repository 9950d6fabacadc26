//! What the layers beside the log (the metrics, the abuse desk's trace
//! index) share: a filter that lets through only catalogued events (those
//! with an `event` field, decided once per callsite), and a visitor that
//! reads an event's fields as strings.

use std::collections::HashMap;
use tracing::field::{Field, Visit};
use tracing_subscriber::layer::{Context, Filter};

/// Lets through only callsites that carry an `event` field.
pub struct Catalogued;

impl<S> Filter<S> for Catalogued {
    fn enabled(&self, meta: &tracing::Metadata<'_>, _: &Context<'_, S>) -> bool {
        meta.is_event() && meta.fields().field("event").is_some()
    }
    fn callsite_enabled(&self, meta: &'static tracing::Metadata<'static>) -> tracing::subscriber::Interest {
        if meta.is_event() && meta.fields().field("event").is_some() {
            tracing::subscriber::Interest::always()
        } else {
            tracing::subscriber::Interest::never()
        }
    }
}

/// Only the catalogued events named (by [`crate::emit!`], whose callsite
/// name is the event id): decided once per callsite, so every other event
/// never reaches the layer.
pub struct Named(pub &'static [&'static str]);

impl Named {
    fn wants(&self, meta: &tracing::Metadata<'_>) -> bool {
        meta.is_event() && self.0.contains(&meta.name()) && meta.fields().field("event").is_some()
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

/// One event's fields, as strings.
#[derive(Default)]
pub struct Fields(pub HashMap<&'static str, String>);

impl Visit for Fields {
    fn record_str(&mut self, f: &Field, v: &str) {
        self.0.insert(f.name(), v.to_owned());
    }
    fn record_debug(&mut self, f: &Field, v: &dyn std::fmt::Debug) {
        self.0.insert(f.name(), format!("{v:?}"));
    }
    fn record_u64(&mut self, f: &Field, v: u64) {
        self.0.insert(f.name(), v.to_string());
    }
    fn record_i64(&mut self, f: &Field, v: i64) {
        self.0.insert(f.name(), v.to_string());
    }
    fn record_bool(&mut self, f: &Field, v: bool) {
        self.0.insert(f.name(), v.to_string());
    }
}

impl Fields {
    /// A field's value, "" when absent.
    pub fn get(&self, k: &str) -> &str {
        self.0.get(k).map_or("", String::as_str)
    }
}
