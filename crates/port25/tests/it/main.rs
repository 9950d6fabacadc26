//! Integration tests: the real binary, real sockets, real peers (swaks,
//! Python smtplib, curl, Postfix). One test binary, one module per area.

mod harness;

mod auth_limits;
mod cli;
mod clients;
mod collect;
mod crash;
mod dashboard_auth;
mod dns;
mod file_modes;
mod from_binding;
mod hostile_bytes;
mod http;
mod http_split;
mod listeners;
mod lmtp;
mod local_retry;
mod mx_recipients;
mod outbound;
mod outbound_dsn;
mod outbound_remote;
mod outbound_smarthost;
mod outbound_targets;
mod postfix;
mod protocol;
mod relay;
mod report;
mod report_figures;
mod scripted;
mod smtputf8;
mod spampot;
mod spampot_hpfeeds;
mod spampot_netns;
mod spampot_quota;
mod spampot_timeouts;
mod submission;
