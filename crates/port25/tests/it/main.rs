//! Integration tests: the real binary, real sockets, real peers (swaks,
//! Python smtplib, curl, Postfix). One test binary, one module per area.

mod harness;

mod auth_limits;
mod cli;
mod clients;
mod crash;
mod dashboard_auth;
mod dns;
mod http;
mod lmtp;
mod outbound;
mod outbound_dsn;
mod outbound_remote;
mod postfix;
mod protocol;
mod relay;
mod report;
mod scripted;
mod spampot;
mod spampot_hpfeeds;
mod spampot_netns;
mod submission;
