//! `port25 egress flows`: placeholder until the flow collector lands.
#[derive(clap::Args)]
pub struct Args {}
pub fn run(_args: Args) -> anyhow::Result<std::process::ExitCode> {
    anyhow::bail!("egress flows is not built yet")
}
