//! What every port25 listener needs, whatever it speaks: the SMTP engine's
//! listeners, the spampot's bait and the collector's HTTPS. [`accept`]: the
//! accept loop, connection caps overall and per client, and drain;
//! [`tls`]: certificates and the rustls server configuration.
//!
//! Out of the engine (issue 17, step 4) so that a listener that is not
//! SMTP (the collector) does not depend on the SMTP engine. Depends on no
//! port25 crate.

pub mod accept;
pub mod tls;
