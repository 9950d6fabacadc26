//! DKIM signing of submitted mail (RFC 6376, rsa-sha256, relaxed/relaxed
//! through mail-auth). One key and selector per signing domain; a message
//! is signed when its From: domain has a key, once, when it enters the
//! outbound queue, so retries send identical bytes.

use mail_auth::common::crypto::{RsaKey, Sha256};
use mail_auth::common::headers::HeaderWriter;
use mail_auth::dkim::{DkimSigner, Done};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::PrivateKeyDer;
use std::path::Path;

/// Header fields signed (RFC 6376 §5.4.1's list, trimmed). mail-auth signs
/// every instance present and lists a name it did not find once more, which
/// signs its absence (RFC 6376 §5.4.2): so From: written twice is
/// oversigned (a second From: added later breaks the signature), and
/// Sender: and the Resent-* fields, absent from most mail, cannot be added
/// after signing either.
const SIGNED: &[&str] = &[
    "From",
    "From",
    "Sender",
    "Resent-From",
    "Resent-Sender",
    "Reply-To",
    "Subject",
    "Date",
    "Message-ID",
    "To",
    "Cc",
    "MIME-Version",
    "Content-Type",
    "Content-Transfer-Encoding",
    "In-Reply-To",
    "References",
];

pub struct Key {
    pub domain: String,
    pub selector: String,
    signer: DkimSigner<RsaKey<Sha256>, Done>,
}

#[derive(Default)]
pub struct Dkim {
    keys: Vec<Key>,
}

impl Dkim {
    /// Loads PEM keys (PKCS#1 or PKCS#8 RSA). Errors name the file.
    pub fn load(keys: &[(String, String, std::path::PathBuf)]) -> Result<Dkim, String> {
        let mut out = Vec::new();
        for (domain, selector, path) in keys {
            let domain = domain.to_lowercase();
            let signer = DkimSigner::from_key(read_key(path)?)
                .domain(domain.clone())
                .selector(selector.clone())
                .headers(SIGNED.iter().copied());
            out.push(Key { domain, selector: selector.clone(), signer });
        }
        Ok(Dkim { keys: out })
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The DKIM-Signature header for `content` (CRLF-terminated), or None
    /// when no key matches the From: domain.
    pub fn sign(&self, content: &[u8]) -> Option<Result<String, String>> {
        let domain = from_domain(content)?;
        let key = self.keys.iter().find(|k| k.domain == domain)?;
        Some(
            key.signer
                .sign(content)
                .map(|s| s.to_header())
                .map_err(|e| format!("DKIM signing for {domain} failed: {e}")),
        )
    }
}

fn read_key(path: &Path) -> Result<RsaKey<Sha256>, String> {
    let der =
        PrivateKeyDer::from_pem_file(path).map_err(|e| format!("{}: not a PEM private key: {e}", path.display()))?;
    RsaKey::<Sha256>::from_key_der(der).map_err(|e| format!("{}: not an RSA key: {e}", path.display()))
}

/// The domain of the From: header's first mailbox, lower case: the key
/// that signs. Read by port25_engine::rfc5322, the reader submission's
/// sender binding uses, so the domain that signs is the one that was
/// checked; a header section or From: it cannot read (or more than one
/// From: field) signs nothing.
pub fn from_domain(content: &[u8]) -> Option<String> {
    let fields = port25_engine::rfc5322::fields(content).ok()?;
    let mut from = fields.iter().filter(|f| f.is("from"));
    let field = from.next()?;
    if from.next().is_some() {
        return None;
    }
    let first = port25_engine::rfc5322::mailbox_list(&field.value).ok()?.into_iter().next()?;
    let (_, domain) = first.addr_spec.rsplit_once('@')?;
    Some(domain.to_lowercase())
}

fn pem(label: &str, der: &[u8]) -> String {
    let b64 = port25_wire::base64::encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(chunk).expect("base64 is ASCII"));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// A new RSA key: (private key PEM, the TXT record's value "v=DKIM1; k=rsa; p=...").
pub fn keygen(bits: usize) -> Result<(String, String), String> {
    let pair = mail_auth::dkim::generate::DkimKeyPair::generate_rsa(bits).map_err(|e| e.to_string())?;
    let private = pem("RSA PRIVATE KEY", pair.private_key());
    let txt = format!("v=DKIM1; k=rsa; p={}", port25_wire::base64::encode(pair.public_key()));
    Ok((private, txt))
}

/// What DNS must hold for a configured key: the TXT value `keygen` prints
/// ("v=DKIM1; k=rsa; p=<PKCS#1 RSAPublicKey>"), and the p= values that
/// publish the same key (that one, and the SubjectPublicKeyInfo form some
/// tools write), for `port25 dns check`.
pub fn public_record(path: &Path) -> Result<(String, Vec<String>), String> {
    use rsa::pkcs1::{DecodeRsaPrivateKey, EncodeRsaPublicKey};
    use rsa::pkcs8::{DecodePrivateKey, EncodePublicKey};
    let der =
        PrivateKeyDer::from_pem_file(path).map_err(|e| format!("{}: not a PEM private key: {e}", path.display()))?;
    let key = match &der {
        PrivateKeyDer::Pkcs1(k) => rsa::RsaPrivateKey::from_pkcs1_der(k.secret_pkcs1_der()).map_err(|e| e.to_string()),
        PrivateKeyDer::Pkcs8(k) => rsa::RsaPrivateKey::from_pkcs8_der(k.secret_pkcs8_der()).map_err(|e| e.to_string()),
        _ => Err("not an RSA key".to_owned()),
    }
    .map_err(|e| format!("{}: not an RSA key: {e}", path.display()))?;
    let public = key.to_public_key();
    let pkcs1 = public.to_pkcs1_der().map_err(|e| e.to_string())?;
    let spki = public.to_public_key_der().map_err(|e| e.to_string())?;
    let p = port25_wire::base64::encode(pkcs1.as_bytes());
    Ok((format!("v=DKIM1; k=rsa; p={p}"), vec![p, port25_wire::base64::encode(spki.as_bytes())]))
}

/// A short fingerprint (128 bits of SHA-256, hex) of a DKIM-Signature
/// field's `b=` tag, the signature itself with white space removed: what
/// the abuse desk records of each message we signed, and looks for among a
/// complaint's reported headers. No one can make a signature of ours over
/// a message without our key, so a match is mail we really sent.
/// `value`: the field's value, folded or not.
pub fn signature_digest(value: &str) -> Option<String> {
    use sha2::Digest as _;
    let b =
        value.split(';').find_map(|tag| tag.split_once('=').filter(|(name, _)| name.trim() == "b").map(|(_, v)| v))?;
    let b: String = b.chars().filter(|c| !c.is_whitespace()).collect();
    if b.is_empty()
        || b.len() > 4096
        || !b.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'+' || c == b'/' || c == b'=')
    {
        return None;
    }
    let d = sha2::Sha256::digest(b.as_bytes());
    Some(d[..16].iter().map(|x| format!("{x:02x}")).collect())
}

/// [`signature_digest`] of the DKIM-Signature field our signer put first
/// in `content`, if any.
pub fn content_digest(content: &[u8]) -> Option<String> {
    let rest = content.strip_prefix(b"DKIM-Signature:")?;
    let mut end = 0;
    while let Some(i) = rest.get(end..).and_then(|r| r.windows(2).position(|w| w == b"\r\n")) {
        end += i + 2;
        if !matches!(rest.get(end), Some(b' ' | b'\t')) {
            break;
        }
    }
    signature_digest(&String::from_utf8_lossy(rest.get(..end).unwrap_or(rest)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_domain_reads_display_names_and_folding() {
        assert_eq!(
            from_domain(b"Subject: x\r\nFROM: Alice <alice@Example.NET>\r\n\r\nbody").as_deref(),
            Some("example.net")
        );
        assert_eq!(from_domain(b"From:\r\n bob@b.example\r\nTo: x\r\n\r\n").as_deref(), Some("b.example"));
        assert_eq!(from_domain(b"To: x@y\r\n\r\nFrom: a@b\r\n"), None);
        // What submission's binding reads, not the last <...>.
        assert_eq!(from_domain(b"From: \"a@example.net\" <ceo@bank.example>\r\n\r\n").as_deref(), Some("bank.example"));
        assert_eq!(from_domain(b"From: <ceo@bank.example> <a@example.net>\r\n\r\n"), None);
        assert_eq!(from_domain(b"Fr om: a@example.net\r\n\r\n"), None);
        assert_eq!(
            from_domain(b"To: \xc3\x89lise <e@example.org>\r\nFrom: a@Example.NET\r\n\r\n").as_deref(),
            Some("example.net")
        );
    }

    #[test]
    fn a_signature_fingerprint_is_the_b_tag_without_white_space() {
        let folded = b"DKIM-Signature: v=1; a=rsa-sha256; d=example.net; s=p25; bh=AAAA;\r\n\tb=SGVsbG8g\r\n d29ybGQ=\r\nFrom: a@example.net\r\n\r\nbody";
        let d = content_digest(folded).unwrap();
        assert_eq!(d.len(), 32);
        assert_eq!(
            signature_digest("v=1; bh=AAAA; b = SGVsbG8gd29ybGQ=").as_deref(),
            Some(d.as_str()),
            "the same signature, unfolded"
        );
        assert_ne!(signature_digest("v=1; b=SGVsbG8gd29ybGR=").as_deref(), Some(d.as_str()));
        assert_eq!(signature_digest("v=1; bh=AAAA"), None, "bh= is not b=");
        assert_eq!(signature_digest("v=1; b=<script>"), None);
        assert_eq!(
            content_digest(b"From: a@example.net\r\nDKIM-Signature: b=AAAA\r\n\r\n"),
            None,
            "only the field our signer puts first"
        );
    }

    #[test]
    fn generated_keys_sign() {
        let dir = tempfile::tempdir().unwrap();
        let (private, txt) = keygen(1024).unwrap();
        assert!(txt.starts_with("v=DKIM1; k=rsa; p=MI"));
        let path = dir.path().join("k.pem");
        std::fs::write(&path, private).unwrap();
        // The record dns check expects is the one keygen printed.
        assert_eq!(public_record(&path).unwrap().0, txt);
        let dkim = Dkim::load(&[("example.net".into(), "sel".into(), path)]).unwrap();
        let h = dkim.sign(b"From: a@example.net\r\nSubject: hi\r\n\r\nbody\r\n").unwrap().unwrap();
        assert!(
            h.starts_with("DKIM-Signature: v=1; a=rsa-sha256;") && h.contains("d=example.net") && h.contains("s=sel"),
            "{h}"
        );
        // From: oversigned, Sender: and Resent-From: signed as absent.
        let tag: String = h.split("h=").nth(1).unwrap().split(';').next().unwrap().split_whitespace().collect();
        let names: Vec<String> = tag.split(':').map(str::to_ascii_lowercase).collect();
        assert_eq!(names.iter().filter(|n| *n == "from").count(), 2, "{tag}");
        assert!(names.iter().any(|n| n == "sender") && names.iter().any(|n| n == "resent-from"), "{tag}");
        assert!(dkim.sign(b"From: a@other.example\r\n\r\nx\r\n").is_none());
    }
}
