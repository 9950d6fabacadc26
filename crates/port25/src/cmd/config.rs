//! `port25 config check FILE` and `port25 config default`.

use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Subcommand)]
pub enum Command {
    /// Check a configuration file; print a summary, or the error with its line and fix
    Check {
        /// The TOML file to check
        file: PathBuf,
    },
    /// Print the documented default configuration (every key, commented)
    Default,
}

pub const DEFAULT_TOML: &str = include_str!("../../../../dist/port25.toml");

pub fn run(cmd: Command) -> anyhow::Result<ExitCode> {
    match cmd {
        Command::Check { file } => match port25_config::load(&file) {
            Ok(c) => {
                println!("{}: ok", file.display());
                println!("  hostname   {}", c.hostname);
                println!("  data_dir   {}", c.data_dir.display());
                println!("  domains    {}", c.mx.domains.join(", "));
                if let Some(r) = &c.mx.recipients {
                    println!("  recipients {} addresses", r.len());
                }
                if !c.mx.catch_all.is_empty() {
                    println!("  catch_all  {}", c.mx.catch_all.join(", "));
                }
                for l in &c.listeners {
                    println!("  listener   {} {} {:?} tls={:?}{}", l.name, l.address, l.service, l.tls, if l.proxy_protocol { " proxy_protocol" } else { "" });
                }
                println!("  delivery   {:?}", c.delivery.method);
                Ok(ExitCode::SUCCESS)
            }
            Err(e) => {
                eprintln!("{e}");
                Ok(ExitCode::from(2))
            }
        },
        Command::Default => {
            print!("{DEFAULT_TOML}");
            Ok(ExitCode::SUCCESS)
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_documented_default_file_is_valid() {
        port25_config::parse(super::DEFAULT_TOML, std::path::Path::new("dist/port25.toml"), std::path::Path::new("/tmp")).unwrap();
    }

    /// Neither the documented default nor the built-in one accepts any
    /// plain local part: no recipient list, no catch-all, and no DSN to
    /// an unverified sender after acceptance (docs/mx.md).
    #[test]
    fn no_default_accepts_mail_for_anyone() {
        let dist = port25_config::parse(super::DEFAULT_TOML, std::path::Path::new("dist/port25.toml"), std::path::Path::new("/tmp")).unwrap();
        for mx in [dist.mx, port25_config::embedded_default().mx] {
            assert_eq!((mx.recipients, mx.catch_all, mx.bounce_after_accept), (None, vec![], false));
        }
    }
}
