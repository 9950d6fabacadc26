//! The SMTP server engine shared by port25's MX, submission and spampot.
//!
//! The engine owns the protocol (RFC 5321 with PIPELINING, SIZE, 8BITMIME,
//! SMTPUTF8, ENHANCEDSTATUSCODES, STARTTLS) and its strictness: CRLF-only
//! framing, exact dot-stuffing, limits on lines, messages, recipients,
//! commands, errors and time. Policies plug in through [`Hooks`].
//!
//! Layout: pure parsers first ([`command`], [`address`], [`data`],
//! [`proxy`], [`input`]'s line splitter, [`rfc5322`]'s header fields and
//! mailboxes for submission and the DKIM signer), [`budget`] (memory for
//! DATA in flight), then the I/O: [`session`] (the state machine) and
//! [`server`] (PROXY header, implicit TLS, the SMTP listener over
//! port25-listen's accept loop; certificates are port25-listen's too, and
//! replies, dot-stuffing and base64 on the wire port25-wire's).

pub mod address;
pub mod budget;
pub mod command;
pub mod data;
pub mod device_tls;
pub mod hooks;
pub mod input;
pub mod proxy;
pub mod received;
pub mod reply;
pub mod rfc5322;
pub mod sasl;
mod server;
mod session;
pub mod settings;
pub mod stream;

pub use budget::DataBudget;
pub use hooks::{AuthOffer, Decision, Envelope, Hooks, Message, Reset, SessionInfo, TlsInfo};
pub use reply::Reply;
pub use server::{accept_sessions_until, accept_until, queue_id, run, run_with, serve_stream, session_id, Admitted};
pub use settings::{Limits, ListenerSettings, TlsMode};
