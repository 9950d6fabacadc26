//! `port25 dkim keygen`: a DKIM signing key and the DNS record to publish.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Subcommand)]
pub enum Command {
    /// Make an RSA key for DKIM signing, write it (PEM, mode 0600) and print
    /// the TXT record to publish; then add an [[outbound.dkim]] table
    #[command(
        after_help = "Example:\n  port25 dkim keygen --domain example.net --selector port25 --out /etc/port25/dkim/example.net.pem\n  \
                            then publish the printed record and add to port25.toml:\n    [[outbound.dkim]]\n    domain = \"example.net\"\n    \
                            selector = \"port25\"\n    private_key = \"/etc/port25/dkim/example.net.pem\""
    )]
    Keygen {
        /// The signing domain (the From: domain of the mail to sign)
        #[arg(long)]
        domain: String,
        /// The selector: the record is published at SELECTOR._domainkey.DOMAIN
        #[arg(long, default_value = "port25")]
        selector: String,
        /// Where to write the private key (refuses to overwrite)
        #[arg(long)]
        out: PathBuf,
        /// RSA key size; RFC 8301 asks for at least 1024, 2048 is the norm
        #[arg(long, default_value_t = 2048)]
        bits: usize,
    },
}

pub fn run(cmd: Command) -> anyhow::Result<ExitCode> {
    let Command::Keygen { domain, selector, out, bits } = cmd;
    if !(1024..=4096).contains(&bits) {
        anyhow::bail!("--bits {bits}: use 1024 to 4096 (2048 is the norm)");
    }
    if selector.is_empty()
        || !selector.split('.').all(|l| !l.is_empty() && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
    {
        anyhow::bail!("--selector {selector:?} is not a DNS label (letters, digits, '-')");
    }
    let (private, txt) = port25_outbound::dkim::keygen(bits).map_err(anyhow::Error::msg)?;
    let mut f =
        std::fs::OpenOptions::new().write(true).create_new(true).mode_0600().open(&out).map_err(|e| {
            anyhow::anyhow!("cannot create {}: {e} (an existing key is never overwritten)", out.display())
        })?;
    f.write_all(private.as_bytes())?;
    f.sync_all()?;
    // TXT strings are at most 255 bytes each (RFC 1035); resolvers join them.
    let chunks: Vec<String> =
        txt.as_bytes().chunks(255).map(|c| format!("\"{}\"", String::from_utf8_lossy(c))).collect();
    outln!("{selector}._domainkey.{domain}. IN TXT ( {} )", chunks.join(" "));
    errln!("private key written to {}; publish the record above, then add [[outbound.dkim]] (see `port25 dkim keygen --help`)", out.display());
    Ok(ExitCode::SUCCESS)
}

trait Mode0600 {
    fn mode_0600(&mut self) -> &mut Self;
}

impl Mode0600 for std::fs::OpenOptions {
    fn mode_0600(&mut self) -> &mut Self {
        std::os::unix::fs::OpenOptionsExt::mode(self, 0o600)
    }
}
