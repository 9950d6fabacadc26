//! Thunderbird's autoconfig (`/mail/config-v1.1.xml`, also under
//! `/.well-known/autoconfig/`), the format Mozilla documents as
//! "clientConfig version 1.1". Thunderbird fetches
//! `https://autoconfig.<domain>/mail/config-v1.1.xml?emailaddress=<address>`
//! and `https://<domain>/.well-known/autoconfig/mail/config-v1.1.xml?...`;
//! other clients (K-9/Thunderbird for Android, Evolution, KMail) read it too.

use crate::clients::{ClientSettings, Security};
use crate::email::Address;
use crate::escape::xml;
use std::fmt::Write;

fn socket_type(s: Security) -> &'static str {
    match s {
        Security::Implicit => "SSL",
        Security::StartTls => "STARTTLS",
    }
}

/// The document for `address` (its domain becomes the provider id), or for
/// every domain when the client sent none.
pub fn render(settings: &ClientSettings, address: Option<&Address>) -> String {
    let (id, domains): (&str, Vec<&str>) = match address {
        Some(a) => (&a.domain, vec![&a.domain]),
        None => {
            (settings.domains.first().map_or("", String::as_str), settings.domains.iter().map(String::as_str).collect())
        }
    };
    // %EMAILADDRESS% is Thunderbird's placeholder; with an address we know
    // the login already (logins are addresses).
    let username = address.map_or_else(|| "%EMAILADDRESS%".to_owned(), Address::full);
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<clientConfig version=\"1.1\">\n");
    let _ = writeln!(out, "  <emailProvider id=\"{}\">", xml(id));
    for d in domains {
        let _ = writeln!(out, "    <domain>{}</domain>", xml(d));
    }
    let _ = writeln!(out, "    <displayName>{}</displayName>", xml(&settings.display_name));
    let _ = writeln!(out, "    <displayShortName>{}</displayShortName>", xml(&settings.display_name));
    for s in settings.incoming() {
        server(&mut out, "incomingServer", "imap", s.host, s.port, s.security, &username);
    }
    for s in settings.outgoing() {
        server(&mut out, "outgoingServer", "smtp", s.host, s.port, s.security, &username);
    }
    out.push_str("  </emailProvider>\n</clientConfig>\n");
    out
}

fn server(out: &mut String, element: &str, kind: &str, host: &str, port: u16, security: Security, username: &str) {
    let _ = writeln!(out, "    <{element} type=\"{kind}\">");
    let _ = writeln!(out, "      <hostname>{}</hostname>", xml(host));
    let _ = writeln!(out, "      <port>{port}</port>");
    let _ = writeln!(out, "      <socketType>{}</socketType>", socket_type(security));
    let _ = writeln!(out, "      <username>{}</username>", xml(username));
    // The password goes to the server as it is, inside TLS (AUTH PLAIN).
    let _ = writeln!(out, "      <authentication>password-cleartext</authentication>");
    let _ = writeln!(out, "    </{element}>");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outgoing_is_587_then_465_never_25_unless_the_operator_prefers_465() {
        let s = ClientSettings::sample();
        let doc = render(&s, None);
        assert!(doc.contains("<domain>example.net</domain>") && doc.contains("<domain>example.org</domain>"));
        assert!(doc.contains("<displayName>Example &lt;Mail&gt; &amp; Co</displayName>"));
        let i465 = doc.find("<port>465</port>").unwrap();
        let i587 = doc.find("<port>587</port>").unwrap();
        assert!(i587 < i465, "587 first by default");
        assert!(!doc.contains("<port>25</port>"));
        let implicit = ClientSettings { implicit_tls_first: true, ..ClientSettings::sample() };
        let doc465 = render(&implicit, None);
        assert!(doc465.find("<port>465</port>").unwrap() < doc465.find("<port>587</port>").unwrap());
        assert!(doc.contains("<username>%EMAILADDRESS%</username>"));
        let a = Address { local: "o'neil".into(), domain: "example.org".into() };
        let doc = render(&s, Some(&a));
        assert!(doc.contains("<emailProvider id=\"example.org\">") && !doc.contains("example.net</domain>"));
        assert!(doc.contains("<username>o&#39;neil@example.org</username>"));
    }
}
