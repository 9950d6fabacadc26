//! An Apple configuration profile (`.mobileconfig`, a property list) with
//! one `com.apple.mail.managed` payload: iOS, iPadOS and macOS Mail install
//! it from a download link. Apple's mail payload needs an incoming server,
//! so the profile is only offered when `[http] imaps` or `imap` is set.
//!
//! The profile is not signed (installing shows "Unverified"); signing needs
//! the provider's certificate and is left to a deployment that has one.
//! UUIDs are derived from the address, so installing the profile again
//! replaces the earlier one instead of adding a second account.

use crate::clients::{ClientSettings, Security};
use crate::email::Address;
use crate::escape::xml;
use sha2::{Digest, Sha256};
use std::fmt::Write;

fn uuid(seed: &str) -> String {
    let d = Sha256::digest(seed.as_bytes());
    let mut out = String::with_capacity(36);
    for (i, b) in d.iter().take(16).enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            out.push('-');
        }
        let _ = write!(out, "{b:02X}");
    }
    out
}

/// Reverse-DNS identifier of the profile: `net.example.mail.alice`.
fn identifier(address: &Address) -> String {
    let mut labels: Vec<&str> = address.domain.split('.').collect();
    labels.reverse();
    let local: String = address.local.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '-' }).collect();
    format!("{}.mail.{local}", labels.join("."))
}

/// `None` when no IMAP server is configured.
pub fn render(settings: &ClientSettings, address: &Address) -> Option<String> {
    let incoming = settings.incoming().into_iter().next()?;
    let outgoing = &settings.outgoing()[0];
    let email = address.full();
    let id = identifier(address);
    let s = |k: &str, v: &str| format!("      <key>{k}</key>\n      <string>{}</string>\n", xml(v));
    let i = |k: &str, v: u16| format!("      <key>{k}</key>\n      <integer>{v}</integer>\n");
    let b = |k: &str, v: bool| format!("      <key>{k}</key>\n      <{v}/>\n");
    let mut p = String::new();
    p += &s("EmailAccountDescription", &settings.display_name);
    p += &s("EmailAccountName", &email);
    p += &s("EmailAccountType", "EmailTypeIMAP");
    p += &s("EmailAddress", &email);
    p += &s("IncomingMailServerAuthentication", "EmailAuthPassword");
    p += &s("IncomingMailServerHostName", incoming.host);
    p += &i("IncomingMailServerPortNumber", incoming.port);
    // Apple's UseSSL means "TLS": implicit on 993/465, STARTTLS on 143/587.
    p += &b("IncomingMailServerUseSSL", matches!(incoming.security, Security::Implicit | Security::StartTls));
    p += &s("IncomingMailServerUsername", &email);
    p += &s("OutgoingMailServerAuthentication", "EmailAuthPassword");
    p += &s("OutgoingMailServerHostName", outgoing.host);
    p += &i("OutgoingMailServerPortNumber", outgoing.port);
    p += &b("OutgoingMailServerUseSSL", true);
    p += &s("OutgoingMailServerUsername", &email);
    p += &b("OutgoingPasswordSameAsIncomingPassword", true);
    p += &s("PayloadDisplayName", &format!("{} mail ({email})", settings.display_name));
    p += &s("PayloadIdentifier", &format!("{id}.account"));
    p += &s("PayloadType", "com.apple.mail.managed");
    p += &s("PayloadUUID", &uuid(&format!("account:{email}")));
    p += &i("PayloadVersion", 1);
    let mut out = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<!DOCTYPE plist PUBLIC \"-//Apple//DTD PLIST 1.0//EN\" \"http://www.apple.com/DTDs/PropertyList-1.0.dtd\">\n<plist version=\"1.0\">\n<dict>\n  <key>PayloadContent</key>\n  <array>\n    <dict>\n",
    );
    out += &p;
    out += "    </dict>\n  </array>\n";
    let top = |k: &str, v: &str| format!("  <key>{k}</key>\n  <string>{}</string>\n", xml(v));
    out += &top(
        "PayloadDescription",
        &format!("Sends mail through {} on port {} (TLS); never port 25.", outgoing.host, outgoing.port),
    );
    out += &top("PayloadDisplayName", &format!("{} mail", settings.display_name));
    out += &top("PayloadIdentifier", &id);
    out += &top("PayloadType", "Configuration");
    out += &top("PayloadUUID", &uuid(&format!("profile:{email}")));
    let _ = write!(out, "  <key>PayloadVersion</key>\n  <integer>1</integer>\n</dict>\n</plist>\n");
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuids_have_the_8_4_4_4_12_form() {
        for seed in ["", "alice@example.net", "\u{c9}lise@\u{e9}.example"] {
            let u = uuid(seed);
            let groups: Vec<usize> = u.split('-').map(str::len).collect();
            assert_eq!(groups, [8, 4, 4, 4, 12], "{u}");
            assert!(u.bytes().all(|b| b == b'-' || b.is_ascii_digit() || b.is_ascii_uppercase()), "{u}");
        }
        // The bytes of SHA-256("") in order, as the old slicing of its hex gave.
        assert_eq!(uuid(""), "E3B0C442-98FC-1C14-9AFB-F4C8996FB924");
    }

    #[test]
    fn profile() {
        let mut s = ClientSettings::sample();
        let a = Address { local: "alice".into(), domain: "example.net".into() };
        let doc = render(&s, &a).unwrap();
        assert!(doc.contains("<key>OutgoingMailServerPortNumber</key>\n      <integer>587</integer>"));
        assert!(doc.contains("<string>net.example.mail.alice</string>"));
        assert!(doc.contains("<string>Example &lt;Mail&gt; &amp; Co mail</string>"));
        assert_eq!(render(&s, &a), render(&s, &a), "stable UUIDs");
        assert_eq!(uuid("x").len(), 36);
        s.imaps = None;
        assert_eq!(render(&s, &a), None);
    }
}
