//! Compromised-account signals, pure: what counts as a jump against a
//! login's own history, and which action each signal takes.
//!
//! Memory per login is fixed (a day's counters and a 1 KiB bitmap for
//! distinct recipients, counted by linear counting), so the desk's memory
//! grows with the number of logins, never with messages or recipients.

use serde::{Deserialize, Serialize};

/// What the desk does when a signal is raised.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// Recorded and shown; nothing else.
    Tag,
    /// The login's outbound mail waits in the queue for review.
    Hold,
    /// AUTH answers 454 4.7.0; queued mail is held too.
    Lock,
}

impl Action {
    pub fn name(self) -> &'static str {
        match self {
            Action::Tag => "tag",
            Action::Hold => "hold",
            Action::Lock => "lock",
        }
    }

    pub fn parse(s: &str) -> Option<Action> {
        match s {
            "tag" => Some(Action::Tag),
            "hold" => Some(Action::Hold),
            "lock" => Some(Action::Lock),
            _ => None,
        }
    }
}

/// The kinds of signal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    Complaints,
    Messages,
    Recipients,
    NewNetwork,
    NewAsn,
    NewCountry,
    Bounces,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Complaints => "complaints",
            Kind::Messages => "messages",
            Kind::Recipients => "recipients",
            Kind::NewNetwork => "new_network",
            Kind::NewAsn => "new_asn",
            Kind::NewCountry => "new_country",
            Kind::Bounces => "bounces",
        }
    }
}

/// Thresholds and actions (`[abuse]`).
#[derive(Debug, Clone, PartialEq)]
pub struct Rules {
    /// Distinct recipients in a UTC day before a jump can count at all.
    pub recipients_per_day: u64,
    pub messages_per_day: u64,
    /// A day counts as a jump above this many times the login's own
    /// daily average over the days it sent before.
    pub jump_factor: f64,
    pub complaints_per_day: u64,
    pub bounces_per_day: u64,
    pub on_complaints: Action,
    pub on_volume: Action,
    pub on_new_network: Action,
    pub on_new_asn: Action,
    pub on_new_country: Action,
    pub on_bounces: Action,
}

impl Default for Rules {
    fn default() -> Rules {
        Rules {
            recipients_per_day: 300,
            messages_per_day: 300,
            jump_factor: 10.0,
            complaints_per_day: 3,
            bounces_per_day: 50,
            on_complaints: Action::Lock,
            on_volume: Action::Hold,
            on_new_network: Action::Tag,
            on_new_asn: Action::Tag,
            on_new_country: Action::Tag,
            on_bounces: Action::Hold,
        }
    }
}

impl Rules {
    pub fn action(&self, kind: Kind) -> Action {
        match kind {
            Kind::Complaints => self.on_complaints,
            Kind::Messages | Kind::Recipients => self.on_volume,
            Kind::NewNetwork => self.on_new_network,
            Kind::NewAsn => self.on_new_asn,
            Kind::NewCountry => self.on_new_country,
            Kind::Bounces => self.on_bounces,
        }
    }

    /// `today` is a jump over a history averaging `baseline` a day: at
    /// least `floor`, and above `jump_factor` times the baseline.
    pub fn jump(&self, today: u64, baseline: f64, floor: u64) -> bool {
        today >= floor && today as f64 > self.jump_factor * baseline
    }
}

const BITS: usize = 8192;

/// Distinct values seen, estimated by linear counting over a fixed
/// bitmap: exact enough (about 1 %) up to several thousand, and it never
/// grows.
#[derive(Clone)]
pub struct Distinct {
    bits: Box<[u64; BITS / 64]>,
    /// Bits set: [`Distinct::estimate`] is asked at every message.
    set: u32,
}

impl Default for Distinct {
    fn default() -> Distinct {
        Distinct { bits: Box::new([0; BITS / 64]), set: 0 }
    }
}

impl Distinct {
    /// Counts `value` case-insensitively (addresses as submission counts
    /// them); allocates only for a value with upper case or non-ASCII.
    pub fn add(&mut self, value: &str) {
        use std::hash::BuildHasher;
        // A fixed seed: estimates do not vary from run to run. The hash
        // is not a secret either way: a sender picks its recipients
        // from its list, not to collide in 13 bits.
        const SEED: foldhash::quality::FixedState = foldhash::quality::FixedState::with_seed(0x7025_a6b5_5eed_0019);
        let h = if value.bytes().any(|b| b.is_ascii_uppercase() || !b.is_ascii()) {
            SEED.hash_one(value.to_lowercase().as_bytes())
        } else {
            SEED.hash_one(value.as_bytes())
        };
        let n = (h % BITS as u64) as usize;
        let bit = 1 << (n % 64);
        if self.bits[n / 64] & bit == 0 {
            self.bits[n / 64] |= bit;
            self.set += 1;
        }
    }

    pub fn estimate(&self) -> u64 {
        let zero = BITS as f64 - f64::from(self.set);
        if zero < 1.0 {
            // Saturated: at least this many.
            return (BITS as f64 * (BITS as f64).ln()) as u64;
        }
        (-(BITS as f64) * (zero / BITS as f64).ln()).round() as u64
    }
}

/// One login's counters for one UTC day.
#[derive(Clone, Default)]
pub struct Day {
    pub day: i64,
    pub messages: u64,
    pub recipients: Distinct,
    pub complaints: u64,
    pub bounces: u64,
    /// Signals already raised today (each kind once a day).
    pub raised: Vec<Kind>,
}

impl Day {
    pub fn new(day: i64) -> Day {
        Day { day, ..Day::default() }
    }

    /// Raises `kind` once a day; true the first time.
    pub fn raise(&mut self, kind: Kind) -> bool {
        if self.raised.contains(&kind) {
            return false;
        }
        self.raised.push(kind);
        true
    }
}

/// The network a login came from, as compared with its history: an IPv4
/// /24 or an IPv6 /48.
pub fn network_of(ip: std::net::IpAddr) -> String {
    match ip.to_canonical() {
        std::net::IpAddr::V4(v4) => {
            let o = v4.octets();
            format!("{}.{}.{}.0/24", o[0], o[1], o[2])
        }
        std::net::IpAddr::V6(v6) => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}::/48", s[0], s[1], s[2])
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distinct_counts_close_to_the_truth_and_repeats_do_not_count() {
        let mut d = Distinct::default();
        for _ in 0..3 {
            for i in 0..500 {
                d.add(&format!("rcpt{i}@example.org"));
            }
        }
        let e = d.estimate();
        assert!((485..=515).contains(&e), "{e}");
        let mut big = Distinct::default();
        for i in 0..5000 {
            big.add(&format!("r{i}"));
        }
        assert!((4800..=5200).contains(&big.estimate()), "{}", big.estimate());
        assert_eq!(Distinct::default().estimate(), 0);
    }

    #[test]
    fn a_jump_is_against_the_logins_own_history_with_a_floor() {
        let r = Rules { jump_factor: 10.0, ..Rules::default() };
        assert!(r.jump(500, 0.0, 300), "no history, over the floor");
        assert!(!r.jump(299, 0.0, 300), "under the floor");
        assert!(!r.jump(500, 80.0, 300), "a big sender's usual day");
        assert!(r.jump(801, 80.0, 300));
        assert_eq!(r.action(Kind::Recipients), Action::Hold);
        assert_eq!(Action::parse("lock"), Some(Action::Lock));
        assert_eq!(Action::parse("Lock"), None);
    }

    #[test]
    fn networks_are_slash_24_and_slash_48() {
        assert_eq!(network_of("203.0.113.77".parse().unwrap()), "203.0.113.0/24");
        assert_eq!(network_of("::ffff:203.0.113.77".parse().unwrap()), "203.0.113.0/24");
        assert_eq!(network_of("2001:db8:1:2::5".parse().unwrap()), "2001:db8:1::/48");
    }
}
