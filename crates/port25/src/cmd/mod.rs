//! One module per subcommand.
pub mod config;
pub mod dkim;
pub mod dns;
pub mod dns_check;
pub mod egress;
pub mod egress_flows;
pub mod migration;
pub mod outbound;
pub mod queue;
pub mod recipients;
pub mod report;
pub mod serve;
pub mod serve_check;
pub mod serve_http;
pub mod spampot;
pub mod systemd;
pub mod users;
