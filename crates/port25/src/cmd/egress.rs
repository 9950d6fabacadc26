//! `port25 egress`: placeholder until the egress crate lands.
#[derive(clap::Args)]
pub struct Args {}
pub fn run(_args: Args) -> anyhow::Result<std::process::ExitCode> {
    anyhow::bail!("egress is not built yet")
}
