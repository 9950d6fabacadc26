//! `port25 migration keygen | sign | verify`: a provider's migration report
//! (`port25 migration report --json`) signed with Ed25519, so an access
//! network can let `egress plan --readiness` trust the share of users on
//! 587/465 without trusting the file's path or the mail that carried it.
//!
//! Keys are ring's Ed25519 (ring is already the workspace's crypto through
//! rustls and the accounts crate; no second implementation). The private
//! key file is the PKCS#8 document in base64 on one line, mode 0600; the
//! public key file is the 32-byte key in base64 and the signer's name.
//!
//! The signed file is JSON: the format name, the signer, the signing time,
//! the public key, the report's exact text and the signature over
//! `FORMAT \n signer \n signed_at \n report` (so neither the name, the time
//! nor the report can be changed or swapped without breaking it).

use anyhow::Context;
use port25_egress::plan::{Provider, Readiness};
use ring::signature::{Ed25519KeyPair, KeyPair, UnparsedPublicKey, ED25519};
use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

pub const FORMAT: &str = "port25-signed-migration-report/1";
/// A report is small (one line per user still on 25); refuse anything huge.
const MAX_REPORT: u64 = 64 << 20;

#[derive(clap::Args)]
#[command(after_help = "Example:\n  port25 migration keygen --out example-mail.key --signer example-mail\n  \
                        port25 migration report --json > report.json\n  \
                        port25 migration sign --key example-mail.key report.json > report.signed.json\n  \
                        port25 migration verify --key example-mail.key.pub report.signed.json")]
pub struct KeygenArgs {
    /// Private key file to create (mode 0600); the public key goes to FILE.pub
    #[arg(long)]
    out: PathBuf,
    /// The name the signature carries (the provider's name in the access network's providers file)
    #[arg(long)]
    signer: String,
}

#[derive(clap::Args)]
pub struct SignArgs {
    /// Private key (port25 migration keygen)
    #[arg(long)]
    key: PathBuf,
    /// The report (port25 migration report --json); - or nothing: standard input
    report: Option<PathBuf>,
}

#[derive(clap::Args)]
#[command(after_help = "Exit status: 0 good signature, 1 bad signature or unknown key, 2 error.")]
pub struct VerifyArgs {
    /// Public key(s) accepted (FILE.pub from keygen), repeatable
    #[arg(long, required = true)]
    key: Vec<PathBuf>,
    /// The signed report
    file: PathBuf,
}

/// A public key and the signer named with it.
#[derive(Debug, Clone)]
pub struct PublicKey {
    pub signer: String,
    pub key: Vec<u8>,
}

/// A verified report.
#[derive(Debug, Clone)]
pub struct Verified {
    pub signer: String,
    pub signed_at: String,
    pub report: serde_json::Value,
}

fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

fn signer_ok(s: &str) -> bool {
    !s.is_empty() && s.len() <= 64 && s.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
}

fn message(signer: &str, signed_at: &str, report: &str) -> Vec<u8> {
    format!("{FORMAT}\n{signer}\n{signed_at}\n{report}").into_bytes()
}

pub fn keygen(a: KeygenArgs) -> anyhow::Result<ExitCode> {
    if !signer_ok(&a.signer) {
        anyhow::bail!(
            "--signer {:?}: letters, digits, - _ . only, at most 64 (the provider's name in the providers file)",
            a.signer
        );
    }
    let rng = ring::rand::SystemRandom::new();
    let pkcs8 =
        Ed25519KeyPair::generate_pkcs8(&rng).map_err(|_| anyhow::anyhow!("generating an Ed25519 key failed"))?;
    let pair =
        Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).map_err(|_| anyhow::anyhow!("the generated key does not load"))?;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&a.out)
        .with_context(|| format!("creating {} (an existing key is never overwritten)", a.out.display()))?;
    writeln!(f, "port25-ed25519-private {} {}", a.signer, port25_wire::base64::encode(pkcs8.as_ref()))?;
    f.sync_all()?;
    let public = PathBuf::from(format!("{}.pub", a.out.display()));
    std::fs::write(
        &public,
        format!("port25-ed25519-public {} {}\n", a.signer, port25_wire::base64::encode(pair.public_key().as_ref())),
    )
    .with_context(|| format!("writing {}", public.display()))?;
    errln!(
        "port25: private key {} (keep it), public key {} (give it to the access networks)",
        a.out.display(),
        public.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// `port25-ed25519-{kind} SIGNER BASE64`, one line.
fn read_key_line(path: &Path, kind: &str) -> anyhow::Result<(String, Vec<u8>)> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut parts = text.split_whitespace();
    let tag = format!("port25-ed25519-{kind}");
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(t), Some(signer), Some(b64), None) if t == tag && signer_ok(signer) => {
            let key = port25_wire::base64::decode(b64.as_bytes())
                .ok_or_else(|| anyhow::anyhow!("{}: the key is not base64", path.display()))?;
            Ok((signer.to_owned(), key))
        }
        _ => anyhow::bail!(
            "{}: not a port25 {kind} key (one line: {tag} SIGNER BASE64, from port25 migration keygen)",
            path.display()
        ),
    }
}

pub fn read_public_key(path: &Path) -> anyhow::Result<PublicKey> {
    let (signer, key) = read_key_line(path, "public")?;
    if key.len() != 32 {
        anyhow::bail!("{}: an Ed25519 public key is 32 bytes, this one {}", path.display(), key.len());
    }
    Ok(PublicKey { signer, key })
}

pub fn sign(a: SignArgs) -> anyhow::Result<ExitCode> {
    let (signer, pkcs8) = read_key_line(&a.key, "private")?;
    let pair = Ed25519KeyPair::from_pkcs8(&pkcs8)
        .map_err(|_| anyhow::anyhow!("{}: not an Ed25519 PKCS#8 key", a.key.display()))?;
    let mut report = String::new();
    match a.report.as_deref() {
        None => std::io::stdin().lock().take(MAX_REPORT + 1).read_to_string(&mut report)?,
        Some(p) if p == Path::new("-") => std::io::stdin().lock().take(MAX_REPORT + 1).read_to_string(&mut report)?,
        Some(p) => std::fs::File::open(p)
            .with_context(|| format!("opening {}", p.display()))?
            .take(MAX_REPORT + 1)
            .read_to_string(&mut report)?,
    };
    if report.len() as u64 > MAX_REPORT {
        anyhow::bail!("the report is larger than {MAX_REPORT} bytes");
    }
    let parsed: serde_json::Value = serde_json::from_str(&report)
        .context("the report is not JSON (give the output of port25 migration report --json)")?;
    if !parsed["domains"].is_array() {
        anyhow::bail!("the report has no \"domains\" list (give the output of port25 migration report --json)");
    }
    let signed_at = port25_egress::report::rfc3339(now_ms());
    let sig = pair.sign(&message(&signer, &signed_at, &report));
    let doc = serde_json::json!({
        "format": FORMAT,
        "signer": signer,
        "signed_at": signed_at,
        "public_key": port25_wire::base64::encode(pair.public_key().as_ref()),
        "report": report,
        "signature": port25_wire::base64::encode(sig.as_ref()),
    });
    outln!("{}", serde_json::to_string_pretty(&doc)?);
    Ok(ExitCode::SUCCESS)
}

/// Verifies a signed report against the accepted keys: the signer named in
/// the file must be a key's signer and the signature must verify with it
/// (the public key carried in the file is never trusted).
pub fn verify_bytes(data: &[u8], keys: &[PublicKey]) -> Result<Verified, String> {
    let doc: serde_json::Value =
        serde_json::from_slice(data).map_err(|e| format!("not a signed report (JSON: {e})"))?;
    if doc["format"] != FORMAT {
        return Err(format!("not a signed report (format is not {FORMAT:?})"));
    }
    let field = |k: &str| doc[k].as_str().ok_or_else(|| format!("the signed report has no {k:?}"));
    let (signer, signed_at, report, sig) =
        (field("signer")?, field("signed_at")?, field("report")?, field("signature")?);
    // Fields are joined with newlines in the signed message: neither may
    // hold one, or a field boundary could be moved without breaking it.
    if !signer_ok(signer) || port25_egress::report::parse_time(signed_at).is_err() {
        return Err("the signer or the signing time is malformed".into());
    }
    let sig = port25_wire::base64::decode(sig.as_bytes()).ok_or("the signature is not base64")?;
    let Some(key) = keys.iter().find(|k| k.signer == signer) else {
        return Err(format!("signed by {signer:?}, whose key was not given (--key)"));
    };
    UnparsedPublicKey::new(&ED25519, &key.key).verify(&message(signer, signed_at, report), &sig).map_err(|_| {
        format!(
            "BAD signature: the report, its signer or its time was changed, or it was not signed with {signer:?}'s key"
        )
    })?;
    let report: serde_json::Value =
        serde_json::from_str(report).map_err(|e| format!("the signed report's text is not JSON: {e}"))?;
    Ok(Verified { signer: signer.to_owned(), signed_at: signed_at.to_owned(), report })
}

pub fn verify_file(path: &Path, keys: &[PublicKey]) -> anyhow::Result<Verified> {
    let mut data = Vec::new();
    std::fs::File::open(path)
        .with_context(|| format!("opening {}", path.display()))?
        .take(MAX_REPORT * 2)
        .read_to_end(&mut data)?;
    verify_bytes(&data, keys).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
}

pub fn verify(a: VerifyArgs) -> anyhow::Result<ExitCode> {
    let keys = a.key.iter().map(|k| read_public_key(k)).collect::<anyhow::Result<Vec<_>>>()?;
    let mut data = Vec::new();
    std::fs::File::open(&a.file)
        .with_context(|| format!("opening {}", a.file.display()))?
        .take(MAX_REPORT * 2)
        .read_to_end(&mut data)?;
    match verify_bytes(&data, &keys) {
        Ok(v) => {
            let domains = v.report["domains"].as_array().map_or(0, Vec::len);
            outln!(
                "good signature by {} at {}: {domains} domain(s), all_met {}",
                v.signer,
                v.signed_at,
                v.report["all_met"]
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            outln!("{}: {e}", a.file.display());
            Ok(ExitCode::from(1))
        }
    }
}

/// The readiness a verified report gives: the provider whose domains it
/// lists (by the providers file), the lowest share among them, and
/// whether that share reaches `threshold`.
pub fn readiness(v: &Verified, providers: &[Provider], threshold: f64) -> anyhow::Result<Readiness> {
    let domains =
        v.report["domains"].as_array().ok_or_else(|| anyhow::anyhow!("the report has no \"domains\" list"))?;
    let mut provider: Option<&Provider> = None;
    let mut share = f64::INFINITY;
    for d in domains {
        let name = d["domain"].as_str().unwrap_or("").to_ascii_lowercase();
        let s = d["share"].as_f64().ok_or_else(|| anyhow::anyhow!("domain {name:?} has no share"))?;
        let Some(p) = providers.iter().find(|p| p.domains.contains(&name)) else {
            continue;
        };
        if let Some(prev) = provider {
            if prev.name != p.name {
                anyhow::bail!(
                    "the report lists domains of two providers ({} and {}): one report per provider",
                    prev.name,
                    p.name
                );
            }
        }
        provider = Some(p);
        share = share.min(s);
    }
    let Some(p) = provider else {
        anyhow::bail!("none of the report's domains belongs to a provider in the providers file (its domains = [...])");
    };
    if p.name != v.signer {
        anyhow::bail!(
            "the report covers provider {:?} but is signed by {:?}: a provider vouches only for itself",
            p.name,
            v.signer
        );
    }
    Ok(Readiness {
        provider: p.name.clone(),
        share,
        met: share >= threshold,
        signed_by: v.signer.clone(),
        signed_at: v.signed_at.clone(),
    })
}
