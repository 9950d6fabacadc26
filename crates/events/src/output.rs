//! Log output: human-readable text for a terminal, JSON lines for machines.

use std::str::FromStr;
use tracing_subscriber::{EnvFilter, Layer};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    #[default]
    Text,
    /// One JSON object per line, event fields at the top level.
    Json,
}

impl FromStr for LogFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "text" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            other => Err(format!("unknown log format {other:?}: use \"text\" or \"json\"")),
        }
    }
}

/// Installs the global subscriber; logs go to stderr so stdout stays free for
/// command output. `RUST_LOG` overrides `level` when set.
pub fn init(format: LogFormat, level: &str) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false);
    // A second init (tests) is harmless: keep the first subscriber.
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).with_current_span(false).try_init(),
    };
}

/// A layer to install next to the log output (the HTTP crate's metrics).
pub type ExtraLayer = Box<dyn Layer<tracing_subscriber::Registry> + Send + Sync>;

/// [`init`] plus `extra`, which sees events whatever the log level: the
/// level filter applies to the log output only, so `level = "warn"` does
/// not make counters miss the info events they count.
pub fn init_with(format: LogFormat, level: &str, extra: ExtraLayer) {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level));
    let fmt = tracing_subscriber::fmt::layer().with_writer(std::io::stderr).with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr())).with_target(false);
    let fmt: ExtraLayer = match format {
        LogFormat::Text => fmt.with_filter(filter).boxed(),
        LogFormat::Json => fmt.json().flatten_event(true).with_current_span(false).with_filter(filter).boxed(),
    };
    let _ = tracing_subscriber::registry().with(vec![fmt, extra]).try_init();
}
