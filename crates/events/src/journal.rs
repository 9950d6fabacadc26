//! Events to the systemd journal, natively: under systemd, stderr is a
//! stream into journald and `JOURNAL_STREAM=dev:inode` names it; a process
//! whose stderr is that stream may send its entries to journald's native
//! socket instead, one datagram per entry, fields and all (the protocol of
//! systemd's "Native Journal Protocol" document, what sd_journal_send(3)
//! does). Each event becomes an entry with `PORT25_EVENT=port25.<area>...`
//! and one `PORT25_<FIELD>` per field, so `journalctl PORT25_EVENT=...`
//! selects by event id; `MESSAGE` is the line the text output would print,
//! `PRIORITY` the level, `SYSLOG_IDENTIFIER=port25`.
//!
//! A field value is bounded (so an entry fits one datagram) and written in
//! the length-prefixed form when it holds a newline, so a value from the
//! network can never start a field of its own. An entry journald does not
//! take goes to stderr as text, which is the journal stream anyway.

use std::fmt::{self, Write as _};
use std::io::Write as _;
use std::os::unix::net::UnixDatagram;
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::Context;
use tracing_subscriber::Layer;

/// journald's native socket.
const SOCKET: &str = "/run/systemd/journal/socket";

/// Bytes kept of one field value (journald takes entries up to the
/// socket's send buffer; a HELO name or a URL is far below this).
const MAX_VALUE: usize = 8 * 1024;

/// Whether stderr is the journal stream `JOURNAL_STREAM` names: only then
/// is the native socket the same destination (a `port25 serve 2>file`
/// started from a systemd unit's shell must keep writing to the file).
pub fn stderr_is_journal() -> bool {
    let Ok(stream) = std::env::var("JOURNAL_STREAM") else { return false };
    let Some((dev, ino)) = stream.split_once(':') else { return false };
    let (Ok(dev), Ok(ino)) = (dev.parse::<u64>(), ino.parse::<u64>()) else { return false };
    // SAFETY: st is a valid out-pointer; fd 2 is only inspected.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    if unsafe { libc::fstat(2, &mut st) } != 0 {
        return false;
    }
    st.st_dev as u64 == dev && st.st_ino as u64 == ino
}

pub struct Journal {
    socket: UnixDatagram,
}

impl Journal {
    /// The layer, when stderr is the journal and its socket answers.
    pub fn detect() -> Option<Journal> {
        if !stderr_is_journal() {
            return None;
        }
        let socket = UnixDatagram::unbound().ok()?;
        socket.connect(SOCKET).ok()?;
        Some(Journal { socket })
    }
}

/// `PORT25_` and the field name in upper case, other characters `_`
/// (journal field names are A-Z, 0-9 and `_`, at most 64).
fn field_name(name: &str) -> String {
    let mut out = String::from("PORT25_");
    out.extend(name.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_uppercase() } else { '_' }));
    out.truncate(64);
    out
}

/// Appends `NAME=value\n`, or the length-prefixed form for a value with a
/// newline in it.
pub(crate) fn append(buf: &mut Vec<u8>, name: &str, value: &str) {
    let mut end = value.len().min(MAX_VALUE);
    while !value.is_char_boundary(end) {
        end -= 1;
    }
    let value = &value.as_bytes()[..end];
    buf.extend_from_slice(name.as_bytes());
    if value.contains(&b'\n') {
        buf.push(b'\n');
        buf.extend_from_slice(&(value.len() as u64).to_le_bytes());
    } else {
        buf.push(b'=');
    }
    buf.extend_from_slice(value);
    buf.push(b'\n');
}

#[derive(Default)]
struct Fields {
    /// The text output's line: `event="..." name=value ...`, escaped.
    line: String,
    fields: Vec<(&'static str, String)>,
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.push(field, value.to_owned(), &value);
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        let text = format!("{value:?}");
        self.push(field, text.clone(), &format_args!("{text}"));
    }
}

impl Fields {
    fn push(&mut self, field: &Field, raw: String, shown: &dyn fmt::Debug) {
        if !self.line.is_empty() {
            self.line.push(' ');
        }
        let mut out = crate::output::Escaping(&mut self.line);
        let _ = match field.name() {
            "message" => write!(out, "{shown:?}"),
            name => write!(out, "{name}={shown:?}"),
        };
        self.fields.push((field.name(), raw));
    }
}

fn priority(level: &Level) -> &'static str {
    match *level {
        Level::ERROR => "3",
        Level::WARN => "4",
        Level::INFO => "6",
        _ => "7",
    }
}

/// One entry's datagram. Pure, for the tests.
pub(crate) fn entry(level: &Level, event: &Event<'_>) -> (Vec<u8>, String) {
    let mut fields = Fields::default();
    event.record(&mut fields);
    let mut buf = Vec::with_capacity(256);
    append(&mut buf, "PRIORITY", priority(level));
    append(&mut buf, "SYSLOG_IDENTIFIER", "port25");
    append(&mut buf, "MESSAGE", &fields.line);
    for (name, value) in &fields.fields {
        if *name != "message" {
            append(&mut buf, &field_name(name), value);
        }
    }
    (buf, fields.line)
}

impl<S: Subscriber> Layer<S> for Journal {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let level = event.metadata().level();
        let (datagram, line) = entry(level, event);
        if self.socket.send(&datagram).is_err() {
            let _ = writeln!(std::io::stderr(), "{level} {line}");
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn values_with_newlines_are_length_prefixed_and_bounded() {
        let mut buf = Vec::new();
        super::append(&mut buf, "PORT25_HELO", "a\nPORT25_EVENT=forged");
        assert_eq!(buf, b"PORT25_HELO\n\x15\0\0\0\0\0\0\0a\nPORT25_EVENT=forged\n");
        let mut buf = Vec::new();
        super::append(&mut buf, "PORT25_URL", &"é".repeat(10_000));
        assert!(buf.len() <= "PORT25_URL=\n".len() + super::MAX_VALUE);
        assert!(std::str::from_utf8(&buf).is_ok());
        assert_eq!(super::field_name("client-ip.v6"), "PORT25_CLIENT_IP_V6");
    }
}
