//! Probe recognition: spammers test an open proxy before using it, mostly
//! by mailing themselves through it, often with the proxy's address and
//! port in the message so they know which proxy worked. Pure.

/// What is known about a message when it is captured.
pub struct Facts<'a> {
    /// How many messages this source IP sent before this one.
    pub earlier_from_source: u64,
    pub rcpts: usize,
    pub body: &'a [u8],
    /// The sensor's own addresses (configured public IPs and the local
    /// address the client connected to), as text.
    pub sensor_addresses: &'a [String],
    /// The sensor port the client connected to.
    pub sensor_port: u16,
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && hay.windows(needle.len()).any(|w| w == needle)
}

/// `port` in the text as `:port` not followed by another digit.
fn mentions_port(body: &[u8], port: u16) -> bool {
    let needle = format!(":{port}");
    let n = needle.as_bytes();
    body.windows(n.len()).enumerate().any(|(i, w)| w == n && !body.get(i + n.len()).is_some_and(|b| b.is_ascii_digit()))
}

/// (probe?, reasons). A probe is an early message from its source with at
/// least one telltale; the reasons are recorded either way so the report
/// can apply a stricter rule.
pub fn classify(f: &Facts, first_messages: u64) -> (bool, Vec<&'static str>) {
    let mut reasons = Vec::new();
    let early = f.earlier_from_source < first_messages;
    if early {
        reasons.push("first-message-from-source");
    }
    let mut telltale = false;
    if f.rcpts == 1 {
        reasons.push("single-recipient");
        telltale = true;
    }
    if f.sensor_addresses.iter().any(|a| contains(f.body, a.as_bytes())) {
        reasons.push("mentions-sensor-address");
        telltale = true;
    }
    if mentions_port(f.body, f.sensor_port) {
        reasons.push("mentions-sensor-port");
        telltale = true;
    }
    (early && telltale, reasons)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts<'a>(earlier: u64, rcpts: usize, body: &'a [u8], addrs: &'a [String]) -> Facts<'a> {
        Facts { earlier_from_source: earlier, rcpts, body, sensor_addresses: addrs, sensor_port: 1080 }
    }

    #[test]
    fn typical_probe_and_bulk() {
        let addrs = vec!["198.51.100.7".to_owned()];
        let probe = b"Subject: test\r\n\r\nproxy 198.51.100.7:1080 works\r\n";
        assert_eq!(
            classify(&facts(0, 1, probe, &addrs), 3),
            (
                true,
                vec![
                    "first-message-from-source",
                    "single-recipient",
                    "mentions-sensor-address",
                    "mentions-sensor-port"
                ]
            )
        );
        let bulk = b"Subject: cheap\r\n\r\nbuy\r\n";
        assert_eq!(classify(&facts(0, 10, bulk, &addrs), 3), (false, vec!["first-message-from-source"]));
        assert!(!classify(&facts(5, 1, probe, &addrs), 3).0);
        assert!(!mentions_port(b"port :10800", 1080));
        assert!(mentions_port(b"port :1080\r\n", 1080));
    }
}
