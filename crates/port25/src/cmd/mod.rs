//! One module per subcommand.
pub mod egress;
