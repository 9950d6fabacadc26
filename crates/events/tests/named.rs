//! A layer filtered by `fields::Named` sees the events it names, as
//! `emit!` makes them, and nothing else: not other catalogued events, not
//! an event that only carries the id in its `event` field.

use port25_events::fields::Named;
use port25_events::{emit, SESSION_CLOSED, SESSION_CONNECT};
use std::sync::{Arc, Mutex};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};

#[derive(Clone, Default)]
struct Seen(Arc<Mutex<Vec<&'static str>>>);

impl<S: tracing::Subscriber> Layer<S> for Seen {
    fn on_event(&self, event: &tracing::Event<'_>, _: Context<'_, S>) {
        self.0.lock().unwrap().push(event.metadata().name());
    }
}

#[test]
fn a_named_layer_gets_only_the_events_it_names() {
    let seen = Seen::default();
    let subscriber = tracing_subscriber::registry().with(seen.clone().with_filter(Named(&[(SESSION_CONNECT, &[])])));
    tracing::subscriber::with_default(subscriber, || {
        for port in [1u16, 2] {
            emit!(info, SESSION_CONNECT, session = %"S1", port);
            emit!(info, SESSION_CLOSED, session = %"S1");
            tracing::info!(event = SESSION_CONNECT, "not through emit!: no name");
            tracing::info!(port, "not catalogued");
        }
    });
    assert_eq!(*seen.0.lock().unwrap(), [SESSION_CONNECT, SESSION_CONNECT]);
}
