//! What the layers beside the log (the metrics, the abuse desk's trace
//! index) share: a filter that lets through only the catalogued events a
//! layer names (decided once per callsite), and a visitor that reads only
//! the fields the layer reads of each, as strings.

use std::fmt::Write as _;
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

/// The fields of one event that a layer reads, as text: only the names it
/// was made for are kept, so no map of every field and no string for a
/// field nobody reads. The values are written one after the other into
/// one text buffer, each field a range of it; [`Picked::read`] reuses one
/// such buffer per thread, so reading an event allocates nothing once the
/// buffers have grown (about ten events a message, each of a few fields).
#[derive(Debug, Default)]
pub struct Picked {
    want: &'static [&'static str],
    text: String,
    got: Vec<(&'static str, usize, usize)>,
}

/// A kept buffer above this is dropped (a long field once, such as a
/// remote server's reply, does not stay allocated on a thread for ever).
const SPARE_TEXT: usize = 4096;

thread_local! {
    /// The buffers of the last [`Picked::read`] on this thread, emptied.
    static SPARE: std::cell::Cell<Picked> =
        const { std::cell::Cell::new(Picked { want: &[], text: String::new(), got: Vec::new() }) };
}

impl Picked {
    /// Reads the fields `want` of `event` and gives them to `with`, in
    /// buffers kept per thread. (An event emitted inside `with` gets
    /// buffers of its own: the kept ones are taken out meanwhile.)
    pub fn read<R>(want: &'static [&'static str], event: &tracing::Event<'_>, with: impl FnOnce(&Picked) -> R) -> R {
        let mut f = SPARE.take();
        f.want = want;
        event.record(&mut f);
        let r = with(&f);
        if f.text.capacity() <= SPARE_TEXT {
            f.text.clear();
            f.got.clear();
            SPARE.set(f);
        }
        r
    }

    /// Fields given by name, all kept (tests, tools).
    pub fn of(pairs: &[(&'static str, &str)]) -> Picked {
        let mut f = Picked::default();
        for (name, value) in pairs {
            f.push(name, |t| t.push_str(value));
        }
        f
    }

    fn keep(&mut self, name: &'static str, value: impl FnOnce(&mut String)) {
        if self.want.contains(&name) {
            self.push(name, value);
        }
    }

    fn push(&mut self, name: &'static str, value: impl FnOnce(&mut String)) {
        let start = self.text.len();
        value(&mut self.text);
        self.got.push((name, start, self.text.len()));
    }

    /// A field's value, "" when absent.
    pub fn get(&self, k: &str) -> &str {
        self.got.iter().find(|(n, ..)| *n == k).and_then(|&(_, a, b)| self.text.get(a..b)).unwrap_or("")
    }

    /// Whether the field is there and not empty.
    pub fn has(&self, k: &str) -> bool {
        !self.get(k).is_empty()
    }
}

impl Visit for Picked {
    fn record_str(&mut self, f: &Field, v: &str) {
        self.keep(f.name(), |t| t.push_str(v));
    }
    fn record_debug(&mut self, f: &Field, v: &dyn std::fmt::Debug) {
        // `%` fields come here too (their Debug is the value's Display).
        self.keep(f.name(), |t| {
            let _ = write!(t, "{v:?}");
        });
    }
    fn record_u64(&mut self, f: &Field, v: u64) {
        self.keep(f.name(), |t| {
            let _ = write!(t, "{v}");
        });
    }
    fn record_i64(&mut self, f: &Field, v: i64) {
        self.keep(f.name(), |t| {
            let _ = write!(t, "{v}");
        });
    }
    fn record_bool(&mut self, f: &Field, v: bool) {
        self.keep(f.name(), |t| t.push_str(if v { "true" } else { "false" }));
    }
}
