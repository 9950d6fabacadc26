//! SMTP on the wire, the pieces both ends of a connection need: one copy
//! for the server engine, the outbound SMTP client and the LMTP client.
//!
//! Pure functions over bytes, no I/O; every other port25 crate may depend
//! on this one and it depends on none of them.

pub mod base64;
pub mod mta_sts;
pub mod reply;
pub mod stuff;
