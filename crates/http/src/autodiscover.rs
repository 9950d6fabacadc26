//! Microsoft Autodiscover, the "plain old XML" protocol Outlook (desktop,
//! 2007 to Microsoft 365 with non-Exchange accounts) posts to
//! `https://<domain>/autodiscover/autodiscover.xml` and
//! `https://autodiscover.<domain>/autodiscover/autodiscover.xml`.
//!
//! Request: `<Autodiscover xmlns=".../outlook/requestschema/2006"><Request>
//! <EMailAddress>..</EMailAddress><AcceptableResponseSchema>
//! .../outlook/responseschema/2006a</AcceptableResponseSchema></Request>`.
//! [`parse_request`] is pure and fuzzed: a DOCTYPE is refused (no entity
//! tricks), the body is bounded by the caller, nesting is bounded here.

use crate::clients::{ClientSettings, Security};
use crate::email::Address;
use crate::escape::xml;
use quick_xml::events::Event;
use std::fmt::Write;

pub const OUTLOOK_RESPONSE_SCHEMA: &str =
    "http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a";
const RESPONSE_NS: &str = "http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006";
/// Largest request body accepted; a real one is about 400 bytes.
pub const MAX_REQUEST: usize = 16 * 1024;
const MAX_DEPTH: usize = 16;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub email: String,
    /// `None` when the client did not say (older clients): Outlook's schema.
    pub schema: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("the request is not well-formed XML: {0}")]
    Xml(String),
    #[error("a DOCTYPE is not allowed in an Autodiscover request")]
    Doctype,
    #[error("the request is nested deeper than {MAX_DEPTH} elements")]
    TooDeep,
    #[error("the root element is not Autodiscover")]
    NotAutodiscover,
    #[error("the request has no Request/EMailAddress")]
    NoEmail,
}

/// Reads EMailAddress and AcceptableResponseSchema from Autodiscover/Request.
/// Element names are matched without their namespace prefix, as Outlook
/// versions differ in how they write it.
pub fn parse_request(body: &[u8]) -> Result<Request, ParseError> {
    let mut reader = quick_xml::Reader::from_reader(body);
    reader.config_mut().trim_text(true);
    let mut path: Vec<Vec<u8>> = Vec::new();
    let (mut email, mut schema) = (None, None);
    loop {
        match reader.read_event().map_err(|e| ParseError::Xml(e.to_string()))? {
            Event::DocType(_) => return Err(ParseError::Doctype),
            Event::Start(e) => {
                let name = e.local_name().as_ref().to_vec();
                if path.is_empty() && name != b"Autodiscover" {
                    return Err(ParseError::NotAutodiscover);
                }
                path.push(name);
                if path.len() > MAX_DEPTH {
                    return Err(ParseError::TooDeep);
                }
            }
            Event::Empty(e) if path.is_empty() && e.local_name().as_ref() != b"Autodiscover" => {
                return Err(ParseError::NotAutodiscover)
            }
            Event::End(_) => {
                path.pop();
            }
            Event::Text(t) => {
                let at = |leaf: &[u8]| path.len() == 3 && path[1] == b"Request" && path[2] == leaf;
                if at(b"EMailAddress") || at(b"AcceptableResponseSchema") {
                    let text = t.unescape().map_err(|e| ParseError::Xml(e.to_string()))?.trim().to_owned();
                    if at(b"EMailAddress") {
                        email.get_or_insert(text);
                    } else {
                        schema.get_or_insert(text);
                    }
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    if !path.is_empty() {
        return Err(ParseError::Xml("the document ends inside an element".into()));
    }
    Ok(Request { email: email.filter(|e| !e.is_empty()).ok_or(ParseError::NoEmail)?, schema })
}

/// Outlook's settings for `address`: IMAP when configured, then SMTP on 465
/// (SSL) and 587 (TLS, i.e. STARTTLS), never 25.
pub fn render(settings: &ClientSettings, address: &Address) -> String {
    let login = xml(&address.full());
    let mut out =
        format!("<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<Autodiscover xmlns=\"{RESPONSE_NS}\">\n  <Response xmlns=\"{OUTLOOK_RESPONSE_SCHEMA}\">\n");
    let _ = writeln!(out, "    <User><DisplayName>{login}</DisplayName></User>");
    out.push_str("    <Account>\n      <AccountType>email</AccountType>\n      <Action>settings</Action>\n");
    let servers = settings
        .incoming()
        .into_iter()
        .map(|s| ("IMAP", s))
        .chain(settings.outgoing().into_iter().map(|s| ("SMTP", s)));
    for (kind, s) in servers {
        let _ = writeln!(
            out,
            "      <Protocol>\n        <Type>{kind}</Type>\n        <Server>{}</Server>\n        <Port>{}</Port>",
            xml(s.host),
            s.port
        );
        let _ = writeln!(out, "        <DomainRequired>off</DomainRequired>\n        <LoginName>{login}</LoginName>\n        <SPA>off</SPA>");
        // SSL on = encrypted; Encryption says which kind (SSL = implicit, TLS = STARTTLS).
        let encryption = if s.security == Security::Implicit { "SSL" } else { "TLS" };
        let _ = writeln!(out, "        <SSL>on</SSL>\n        <Encryption>{encryption}</Encryption>\n        <AuthRequired>on</AuthRequired>");
        if kind == "SMTP" {
            out.push_str("        <UsePOPAuth>off</UsePOPAuth>\n        <SMTPLast>off</SMTPLast>\n");
        }
        out.push_str("      </Protocol>\n");
    }
    out.push_str("    </Account>\n  </Response>\n</Autodiscover>\n");
    out
}

/// Autodiscover's error answer (code 600 invalid request, 601 provider not
/// available), with a message that says what to fix.
pub fn render_error(code: u16, message: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<Autodiscover xmlns=\"{RESPONSE_NS}\">\n  <Response>\n    <Error Time=\"{}\" Id=\"1\">\n      <ErrorCode>{code}</ErrorCode>\n      <Message>{}</Message>\n      <DebugData />\n    </Error>\n  </Response>\n</Autodiscover>\n",
        xml(&httpdate::fmt_http_date(std::time::SystemTime::now())),
        xml(message)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const OUTLOOK: &str = r#"<?xml version="1.0" encoding="utf-8"?>
<Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006">
  <Request>
    <EMailAddress>alice@example.net</EMailAddress>
    <AcceptableResponseSchema>http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a</AcceptableResponseSchema>
  </Request>
</Autodiscover>"#;

    #[test]
    fn outlook_request() {
        let r = parse_request(OUTLOOK.as_bytes()).unwrap();
        assert_eq!(r.email, "alice@example.net");
        assert_eq!(r.schema.as_deref(), Some(OUTLOOK_RESPONSE_SCHEMA));
        let prefixed = "<a:Autodiscover xmlns:a=\"x\"><a:Request><a:EMailAddress>b&amp;c@example.net</a:EMailAddress></a:Request></a:Autodiscover>";
        assert_eq!(
            parse_request(prefixed.as_bytes()).unwrap(),
            Request { email: "b&c@example.net".into(), schema: None }
        );
    }

    #[test]
    fn bad_requests() {
        let dtd = "<?xml version=\"1.0\"?><!DOCTYPE a [<!ENTITY x \"y\">]><Autodiscover><Request><EMailAddress>&x;</EMailAddress></Request></Autodiscover>";
        assert_eq!(parse_request(dtd.as_bytes()), Err(ParseError::Doctype));
        assert_eq!(parse_request(b"<Other/>"), Err(ParseError::NotAutodiscover));
        assert_eq!(parse_request(b"<Autodiscover><Request></Request></Autodiscover>"), Err(ParseError::NoEmail));
        assert!(matches!(parse_request(b"<Autodiscover><Request>"), Err(ParseError::Xml(_))));
        assert!(matches!(parse_request(b"<Autodiscover><Request></Autodiscover>"), Err(ParseError::Xml(_))));
        let deep = format!("<Autodiscover>{}", "<a>".repeat(40));
        assert_eq!(parse_request(deep.as_bytes()), Err(ParseError::TooDeep));
    }

    #[test]
    fn response_points_at_submission() {
        let s = ClientSettings::sample();
        let a = Address { local: "alice".into(), domain: "example.net".into() };
        let doc = render(&s, &a);
        assert!(doc.contains("<Type>SMTP</Type>\n        <Server>smtp.example.net</Server>\n        <Port>587</Port>"));
        assert!(doc.find("<Port>587</Port>").unwrap() < doc.find("<Port>465</Port>").unwrap());
        assert!(!doc.contains("<Port>25</Port>"));
        assert!(doc.contains("<Encryption>TLS</Encryption>"));
        assert!(render_error(600, "<bad>").contains("&lt;bad&gt;"));
    }
}
