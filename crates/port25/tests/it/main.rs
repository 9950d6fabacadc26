//! Integration tests: the real binary, real sockets, real peers (swaks,
//! Python smtplib, curl, Postfix). One test binary, one module per area.

// Tests print freely: crates/port25/clippy.toml's ban on println! and
// friends is for the binary's output (src/out.rs), not for test logs.
#![allow(clippy::disallowed_macros)]

mod harness;

mod abuse;
mod abuse_dashboard;
mod acme;
mod auth_limits;
mod broken_pipe;
mod cli;
mod clients;
mod collect;
mod crash;
mod dane;
mod dashboard_auth;
mod directory;
mod directory_ldap;
mod directory_sql;
mod dns;
mod dns_check;
mod file_modes;
mod from_binding;
mod hostile_bytes;
mod http;
mod http_split;
mod listeners;
mod lmtp;
mod local_retry;
mod mta_sts;
mod mx_auth;
mod mx_explain_auth;
mod mx_recipients;
mod outbound;
mod outbound_dsn;
mod outbound_remote;
mod outbound_smarthost;
mod outbound_targets;
mod package;
mod parquet_sql;
mod postfix;
mod progress_bars;
mod protocol;
mod relay;
mod reload;
mod reload_live;
mod report;
mod report_cbl;
mod report_figures;
mod report_notices;
mod screen;
mod scripted;
mod shared_state;
mod shared_state_postgresql;
mod smtputf8;
mod spampot;
mod spampot_hpfeeds;
mod spampot_netns;
mod spampot_quota;
mod spampot_timeouts;
mod submission;
mod systemd;
mod systemd_spampot;
