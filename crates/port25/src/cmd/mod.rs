//! One module per subcommand.
pub mod config;
pub mod egress;
pub mod migration;
pub mod serve;
pub mod users;
