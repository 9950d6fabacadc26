//! One module per subcommand.
pub mod config;
pub mod dkim;
pub mod dns;
pub mod egress;
pub mod egress_flows;
pub mod migration;
pub mod outbound;
pub mod queue;
pub mod recipients;
pub mod report;
pub mod serve;
pub mod serve_http;
pub mod spampot;
pub mod users;
pub mod wiring;
