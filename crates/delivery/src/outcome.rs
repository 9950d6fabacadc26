//! What happened to one recipient.

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RcptOutcome {
    Delivered,
    /// Try again later (mailbox server down, disk full, 4xx).
    Deferred(String),
    /// Will never succeed (5xx, no such mailbox).
    Failed(String),
}

/// One message and the recipients (indices into its `rcpts`) to deliver.
#[derive(Debug, Clone)]
pub struct Work {
    pub message: std::sync::Arc<port25_spool::SpooledMessage>,
    pub index: usize,
    pub rcpts: Vec<usize>,
}

/// The headers final delivery adds (RFC 5321 §4.4 Return-Path; Delivered-To
/// as Postfix and Dovecot write it, for loop detection).
pub fn delivery_headers(from: &str, rcpt: &str) -> Vec<u8> {
    format!("Return-Path: <{from}>\r\nDelivered-To: {rcpt}\r\n").into_bytes()
}
