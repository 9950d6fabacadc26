//! What every client-configuration document says: the provider's domains,
//! the submission host and its two public ports, and IMAP when there is
//! one. Built from `[http]` by the binary.

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientSettings {
    pub display_name: String,
    /// The provider's mail domains ([mx] domains), lower case.
    pub domains: Vec<String>,
    pub submission_host: String,
    /// 587, STARTTLS (RFC 6409 + RFC 3207).
    pub submission_port: u16,
    /// 465, implicit TLS (RFC 8314).
    pub submissions_port: u16,
    /// List 465 before 587 ([http] offer_first = "465"); default 587 first.
    pub implicit_tls_first: bool,
    pub imap: Option<(String, u16)>,
    pub imaps: Option<(String, u16)>,
}

/// How a client secures a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Security {
    /// TLS from the first byte (465, 993).
    Implicit,
    /// STARTTLS after the greeting (587, 143).
    StartTls,
}

pub struct Server<'a> {
    pub host: &'a str,
    pub port: u16,
    pub security: Security,
}

impl ClientSettings {
    /// Outgoing servers in the order clients should try them: 587 first by
    /// default (the port the seeds' campaign asked users to configure, and
    /// the one every client knows), 465 first when the operator prefers
    /// implicit TLS (RFC 8314 section 3.3). Both are always listed; port 25
    /// never appears: config refuses it.
    pub fn outgoing(&self) -> [Server<'_>; 2] {
        let starttls = Server { host: &self.submission_host, port: self.submission_port, security: Security::StartTls };
        let implicit =
            Server { host: &self.submission_host, port: self.submissions_port, security: Security::Implicit };
        if self.implicit_tls_first {
            [implicit, starttls]
        } else {
            [starttls, implicit]
        }
    }

    /// Incoming (IMAP) servers, implicit TLS first; empty when none is set.
    pub fn incoming(&self) -> Vec<Server<'_>> {
        let mut v = Vec::new();
        if let Some((h, p)) = &self.imaps {
            v.push(Server { host: h, port: *p, security: Security::Implicit });
        }
        if let Some((h, p)) = &self.imap {
            v.push(Server { host: h, port: *p, security: Security::StartTls });
        }
        v
    }

    #[cfg(test)]
    pub fn sample() -> ClientSettings {
        ClientSettings {
            display_name: "Example <Mail> & Co".into(),
            domains: vec!["example.net".into(), "example.org".into()],
            submission_host: "smtp.example.net".into(),
            submission_port: 587,
            submissions_port: 465,
            implicit_tls_first: false,
            imap: None,
            imaps: Some(("imap.example.net".into(), 993)),
        }
    }
}
