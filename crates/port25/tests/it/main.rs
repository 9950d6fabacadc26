//! Integration tests: the real binary, real sockets, real peers (swaks,
//! Python smtplib, curl, Postfix). One test binary, one module per area.

mod harness;

mod cli;
mod clients;
mod crash;
mod http;
mod lmtp;
mod postfix;
mod protocol;
mod relay;
mod submission;
mod spampot;
