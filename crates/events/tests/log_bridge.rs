//! The `log` crate's records (rustls, the Redis client) are cut at the log
//! output's level where they are made, not offered to every layer: its own
//! test binary, since the subscriber is process-wide.

use tracing_log::log;
use tracing_subscriber::layer::Layer;

struct Nothing;
impl<S: tracing::Subscriber> Layer<S> for Nothing {}

#[test]
fn log_records_below_the_output_level_are_cut_at_the_call() {
    std::env::remove_var("RUST_LOG");
    port25_events::init_with(port25_events::LogFormat::Text, "warn", Box::new(Nothing));
    assert_eq!(log::max_level(), log::LevelFilter::Warn);
    assert!(log::log_enabled!(log::Level::Warn), "a warning of rustls still reaches the log");
    assert!(!log::log_enabled!(log::Level::Debug), "a debug record is not offered to the layers");
    assert!(!log::log_enabled!(target: "fred", log::Level::Trace));
}
