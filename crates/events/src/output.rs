//! Log output: human-readable text for a terminal, JSON lines for machines.
//!
//! Field values come from the network (request lines, HELO names, reply
//! texts), so the text output escapes every control character in them: a
//! bare CR or LF in a value would otherwise start a forged log line, and an
//! ESC would drive the operator's terminal. JSON output escapes them already.

use std::fmt::{self, Write as _};
use std::str::FromStr;
use tracing::field::Field;
use tracing_subscriber::field::MakeExt;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::FormatFields;
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
/// command output. `RUST_LOG` overrides `level` when set. Under systemd
/// (stderr is the journal stream) events go to the journal with their
/// fields, whatever `format` says (crate::journal).
pub fn init(format: LogFormat, level: &str) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level));
    if let Some(journal) = crate::journal::Journal::detect() {
        use tracing_subscriber::layer::SubscriberExt;
        use tracing_subscriber::util::SubscriberInitExt;
        let _ = tracing_subscriber::registry().with(journal.with_filter(filter)).try_init();
        return;
    }
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        // A closed standard error (`port25 serve 2>&1 | head`) must not
        // stop the server: tracing-subscriber's own report of the failed
        // write is an eprintln!, which panics on that same closed stream.
        .log_internal_errors(false);
    // A second init (tests) is harmless: keep the first subscriber.
    let _ = match format {
        LogFormat::Text => builder.fmt_fields(text_fields()).try_init(),
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
    let log_output_max = filter.max_level_hint();
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .log_internal_errors(false);
    let fmt: ExtraLayer = match (crate::journal::Journal::detect(), format) {
        (Some(journal), _) => journal.with_filter(filter).boxed(),
        (None, LogFormat::Text) => fmt.fmt_fields(text_fields()).with_filter(filter).boxed(),
        (None, LogFormat::Json) => fmt.json().flatten_event(true).with_current_span(false).with_filter(filter).boxed(),
    };
    if tracing_subscriber::registry().with(vec![fmt, extra]).try_init().is_ok() {
        // Records of the `log` crate (rustls, the Redis client, ...) reach
        // the log output only: the extra layers read catalogued events,
        // which are tracing events. The bridge installed with the
        // subscriber lets every level through, so each of their trace!
        // calls (several per TLS record or Redis command) would ask the
        // whole subscriber whether it is wanted; the log output's own
        // level answers at the call instead.
        use tracing_log::AsLog;
        let max = log_output_max.unwrap_or(tracing::level_filters::LevelFilter::TRACE);
        tracing_log::log::set_max_level(max.as_log());
    }
}

/// Whether a character is written escaped in the text log: control
/// characters (C0, DEL, C1), and the non-ASCII ones Rust does not print as
/// they are (format characters such as bidi overrides, zero-width spaces
/// and the BOM; line and paragraph separators; lone combining marks):
/// a log line shows what was sent, never a reordered or split line. The
/// Received header's HELO name keeps out the same characters.
pub fn escaped(c: char) -> bool {
    c.is_control() || (!c.is_ascii() && c.escape_debug().next() == Some('\\'))
}

/// Writes through to `inner`, escaping what [`escaped`] names: `\r`, `\n`,
/// `\t`, `\u{1b}`, `\u{202e}`, ... as Rust writes them.
pub(crate) struct Escaping<'a, W: fmt::Write>(pub(crate) &'a mut W);

impl<W: fmt::Write> fmt::Write for Escaping<'_, W> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        // Each piece ends with one control character, or is the tail.
        for piece in s.split_inclusive(escaped) {
            let mut chars = piece.chars();
            match chars.next_back() {
                Some(c) if escaped(c) => {
                    self.0.write_str(chars.as_str())?;
                    write!(self.0, "{}", c.escape_debug())?;
                }
                _ => self.0.write_str(piece)?,
            }
        }
        Ok(())
    }
}

/// The text output's fields: `name=value` separated by spaces, the message
/// first without its name (as tracing's default), control characters in
/// names and values escaped.
fn text_fields() -> impl for<'w> FormatFields<'w> + Send + Sync + 'static {
    tracing_subscriber::fmt::format::debug_fn(|w: &mut Writer<'_>, field: &Field, value: &dyn fmt::Debug| {
        let mut out = Escaping(w);
        match field.name() {
            "message" => write!(out, "{value:?}"),
            name => write!(out, "{name}={value:?}"),
        }
    })
    .delimited(" ")
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl Write for Buffer {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn text_output_escapes_control_characters_in_values() {
        let buf = Buffer::default();
        let writer = buf.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .with_target(false)
            .fmt_fields(super::text_fields())
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            let url =
                "/x\rINFO event=\"port25.session.closed\"\n\u{1b}[2J\u{7f}\u{85}é\t\u{202e}\u{2028}\u{feff}\u{200b}";
            crate::emit!(info, crate::SPAMPOT_HTTP_REQUEST, url = %url, quoted = url, n = 3);
            tracing::info!("message with a\rCR");
        });
        let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{text:?}");
        let want = format!(
            r#"event="{}" url=/x\rINFO event="{}"\n\u{{1b}}[2J\u{{7f}}\u{{85}}é\t\u{{202e}}\u{{2028}}\u{{feff}}\u{{200b}} quoted="#,
            crate::SPAMPOT_HTTP_REQUEST,
            crate::SESSION_CLOSED
        );
        assert!(lines[0].contains(&want), "{text:?}");
        assert!(lines[0].ends_with(" n=3"), "{text:?}");
        assert!(lines[1].ends_with(r"message with a\rCR"), "{text:?}");
        assert!(!text.contains('\r') && !text.contains('\u{1b}') && text.matches('\n').count() == 2, "{text:?}");
        assert!(
            !text.contains(['\u{202e}', '\u{2028}', '\u{feff}', '\u{200b}']),
            "bidi, separator or zero-width written raw: {text:?}"
        );
    }
}
