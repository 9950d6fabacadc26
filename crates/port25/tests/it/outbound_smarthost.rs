//! Issue 13 item 2: the smarthost gets our password and all our mail, so
//! its certificate is verified (system CAs, `smarthost_ca`, or a pinned
//! key) and AUTH is never sent without verified TLS, whatever
//! `smarthost_require_tls` says. The smarthost here is another port25's
//! submission listener with STARTTLS (it records AUTH as events), or a
//! scripted server that does not offer STARTTLS at all.

use crate::dns::DnsServer;
use crate::harness::*;
use crate::outbound::*;
use crate::scripted::{Script, Scripted};
use sha2::Digest;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

/// A test CA and a server certificate it signed for `ip`, written into
/// `dir`: (ca.pem, server.pem, server.key, SHA-256 of the server key's SPKI).
pub(crate) fn test_pki(dir: &Path, ip: IpAddr) -> (PathBuf, PathBuf, PathBuf, String) {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca.distinguished_name.push(rcgen::DnType::CommonName, "port25 test CA");
    ca.key_usages = vec![rcgen::KeyUsagePurpose::KeyCertSign, rcgen::KeyUsagePurpose::CrlSign];
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let mut leaf = rcgen::CertificateParams::new(vec![ip.to_string()]).unwrap();
    leaf.distinguished_name.push(rcgen::DnType::CommonName, ip.to_string());
    leaf.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
    let cert = leaf.signed_by(&key, &ca_cert, &ca_key).unwrap();
    let (ca_pem, cert_pem, key_pem) = (dir.join("ca.pem"), dir.join("server.pem"), dir.join("server.key"));
    std::fs::write(&ca_pem, ca_cert.pem()).unwrap();
    std::fs::write(&cert_pem, cert.pem()).unwrap();
    std::fs::write(&key_pem, key.serialize_pem()).unwrap();
    let pin: String = sha2::Sha256::digest(key.public_key_der()).iter().map(|b| format!("{b:02x}")).collect();
    (ca_pem, cert_pem, key_pem, pin)
}

/// A port25 on 127.0.`net`.1 whose submission listener (STARTTLS, AUTH
/// required) relays for relayuser; its certificate is `cert` (None: the
/// self-signed one port25 makes for itself).
fn smarthost(net: u8, cert: Option<(&Path, &Path)>) -> (Server, SocketAddr) {
    let ip = IpAddr::V4(v4(127, 0, net, 1));
    let port = free_port(&[ip]);
    let tls = match cert {
        Some((c, k)) => format!("[tls]\ncertificate = \"{}\"\nprivate_key = \"{}\"\n", c.display(), k.display()),
        None => String::new(),
    };
    let b = Server::start(
        &format!("domains = [\"relay.example\"]\nrecipients = [\"ivan@relay.example\"]\n{tls}"),
        &format!(
            "[[listener]]\nname = \"sub\"\naddress = \"{ip}:{port}\"\nservice = \"submission\"\ntls = \"starttls\"\n"
        ),
    );
    add_user(&b, "relayuser@relay.example", &["@example.net"], "relay-secret");
    (b, SocketAddr::new(ip, port))
}

/// The sending port25 with the smarthost at `at` and relayuser's password.
fn sending_through(at: SocketAddr, dir: &Path, extra: &str) -> Server {
    let secret = dir.join("smarthost.pass");
    std::fs::write(&secret, "relay-secret\n").unwrap();
    let cfg = format!("smarthost = \"{at}\"\nsmarthost_username = \"relayuser@relay.example\"\nsmarthost_password_file = \"{}\"\n{extra}", secret.display());
    let a = sender(&DnsServer::start(), 25, &cfg);
    submit(&a, &["ivan@relay.example"], "via the smarthost");
    a
}

fn auth_events(b: &Server) -> usize {
    b.events("port25.smtp.auth.accepted").len()
        + b.events("port25.smtp.auth.rejected").len()
        + b.events("port25.submission.auth.failed").len()
}

#[test]
fn outbound_a_smarthost_whose_certificate_no_trusted_ca_signed_gets_no_auth_and_no_mail() {
    // port25's own self-signed certificate: valid TLS, but nobody vouches for it.
    let (b, at) = smarthost(71, None);
    let dir = tempfile::tempdir().unwrap();
    let a = sending_through(at, dir.path(), "");
    let deferred = wait_events(&a, "port25.outbound.deferred", "to", "ivan@relay.example", 2);
    for d in &deferred {
        let reason = d["reason"].as_str().unwrap();
        assert!(reason.starts_with("451 4.7.5 verified TLS with") && reason.contains("certificate"), "{reason}");
    }
    assert!(a.events("port25.outbound.delivered").is_empty());
    assert_eq!(auth_events(&b), 0, "the smarthost saw AUTH");
    assert!(b.all_mail().is_empty());

    // Another CA's certificate file does not help either.
    let (other_ca, ..) = test_pki(dir.path(), at.ip());
    let a2 = sending_through(at, dir.path(), &format!("smarthost_ca = \"{}\"", other_ca.display()));
    wait_events(&a2, "port25.outbound.deferred", "to", "ivan@relay.example", 1);
    assert_eq!(auth_events(&b), 0, "the smarthost saw AUTH");
}

#[test]
fn outbound_a_smarthost_verified_by_smarthost_ca_gets_auth_and_the_mail() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, cert, key, _) = test_pki(dir.path(), IpAddr::V4(v4(127, 0, 72, 1)));
    let (b, at) = smarthost(72, Some((&cert, &key)));
    let a = sending_through(at, dir.path(), &format!("smarthost_ca = \"{}\"", ca.display()));
    let got = b.wait_for_mail("relay.example", "ivan", 1, WAIT);
    assert_eq!(got.len(), 1, "not relayed: {:?}", a.events("port25.outbound.deferred"));
    let text = String::from_utf8_lossy(&got[0]);
    assert!(text.contains("with ESMTPSA"), "the smarthost saw no AUTH over TLS: {text}");
    // b's log is read by another thread: the mail on disk does not mean the line was read.
    assert_eq!(b.wait_events("port25.smtp.auth.accepted", 1, WAIT).len(), 1);
}

#[test]
fn outbound_a_smarthost_whose_key_is_pinned_gets_auth_and_the_mail_and_another_key_does_not() {
    let dir = tempfile::tempdir().unwrap();
    let (_, cert, key, pin) = test_pki(dir.path(), IpAddr::V4(v4(127, 0, 73, 1)));
    let (b, at) = smarthost(73, Some((&cert, &key)));
    let a = sending_through(at, dir.path(), &format!("smarthost_pin_sha256 = [\"{pin}\"]"));
    let got = b.wait_for_mail("relay.example", "ivan", 1, WAIT);
    assert_eq!(got.len(), 1, "not relayed: {:?}", a.events("port25.outbound.deferred"));
    assert!(String::from_utf8_lossy(&got[0]).contains("with ESMTPSA"));

    let wrong = "00".repeat(32);
    let c = sending_through(at, dir.path(), &format!("smarthost_pin_sha256 = [\"{wrong}\"]"));
    let deferred = wait_events(&c, "port25.outbound.deferred", "to", "ivan@relay.example", 1);
    assert!(deferred[0]["reason"].as_str().unwrap().contains("not in smarthost_pin_sha256"), "{deferred:?}");
    assert_eq!(
        b.wait_events("port25.smtp.auth.accepted", 1, WAIT).len(),
        1,
        "only the pinned connection authenticated"
    );
}

#[test]
fn outbound_a_smarthost_that_does_not_offer_starttls_gets_no_auth_even_without_smarthost_require_tls() {
    // STARTTLS stripped (by the server or by a man in the middle).
    let ip = IpAddr::V4(v4(127, 0, 74, 1));
    let at = SocketAddr::new(ip, free_port(&[ip]));
    let remote = Scripted::start(at, Script { ehlo: vec!["AUTH PLAIN LOGIN", "8BITMIME"], ..Script::default() });
    let dir = tempfile::tempdir().unwrap();
    let a = sending_through(at, dir.path(), "smarthost_require_tls = false");
    let deferred = wait_events(&a, "port25.outbound.deferred", "to", "ivan@relay.example", 2);
    for d in &deferred {
        let reason = d["reason"].as_str().unwrap();
        assert!(
            reason.starts_with("451 4.7.5 TLS is required but") && reason.contains("does not offer STARTTLS"),
            "{reason}"
        );
    }
    let conns = remote.conns();
    assert!(conns.len() >= 2, "{conns:?}");
    for c in &conns {
        assert_eq!(c.verbs(), ["EHLO"], "nothing but EHLO, never AUTH: {conns:?}");
    }
}

#[test]
fn config_check_says_auth_goes_to_the_smarthost_only_over_verified_tls() {
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("pass");
    std::fs::write(&secret, "x\n").unwrap();
    let file = dir.path().join("port25.toml");
    std::fs::write(
        &file,
        format!(
            "[outbound]\nsmarthost = \"relay.example.net:587\"\nsmarthost_username = \"u\"\nsmarthost_password_file = \"{}\"\nsmarthost_pin_sha256 = [\"{}\"]\n",
            secret.display(),
            "ab".repeat(32)
        ),
    )
    .unwrap();
    let out = std::process::Command::new(BIN).args(["config", "check"]).arg(&file).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        text.contains(
            "smarthost  relay.example.net:587: AUTH PLAIN as u only after STARTTLS with a certificate whose key is one of the 1 in smarthost_pin_sha256"
        ) && text.contains("never AUTH in clear"),
        "{text}"
    );
}

#[test]
fn outbound_a_smarthost_without_credentials_is_verified_too_and_never_falls_back_to_cleartext() {
    let (_b, at) = smarthost(75, None);
    let a = sender(&DnsServer::start(), 25, &format!("smarthost = \"{at}\""));
    submit(&a, &["ivan@relay.example"], "no password, still verified");
    let deferred = wait_events(&a, "port25.outbound.deferred", "to", "ivan@relay.example", 2);
    for d in &deferred {
        let reason = d["reason"].as_str().unwrap();
        assert!(reason.starts_with("451 4.7.5 verified TLS with") && reason.contains("certificate"), "{reason}");
    }
    let fallbacks = events_where(&a, "port25.outbound.connect_failed", "fallback", "cleartext");
    assert!(fallbacks.is_empty(), "{fallbacks:?}");
}
