//! The policy file: its shape as written (`Raw*`) and the checked [`Policy`].
//!
//! Errors name the file, the line and the fix (the workspace's
//! [`ConfigError`]), because a policy is edited by hand by the network team
//! and a silent misreading would either block submission or leave port 25
//! open.

use crate::prefix::Prefix;
use port25_config::ConfigError;
use serde::Deserialize;
use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use toml::Spanned;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPolicy {
    #[serde(default)]
    policy: RawSettings,
    #[serde(default, rename = "network")]
    networks: Vec<Spanned<RawNetwork>>,
    #[serde(default, rename = "exempt")]
    exemptions: Vec<Spanned<RawExempt>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawSettings {
    name: Option<Spanned<String>>,
    blocked_ports: Option<Spanned<Vec<Spanned<i64>>>>,
    protected_ports: Option<Spanned<Vec<Spanned<i64>>>>,
    action: Option<Spanned<String>>,
    log: Option<bool>,
    counters: Option<bool>,
    table: Option<Spanned<String>>,
    monitor_log_group: Option<Spanned<i64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNetwork {
    name: Spanned<String>,
    class: Spanned<String>,
    prefixes: Vec<Spanned<String>>,
    block: Option<bool>,
    mode: Option<Spanned<String>>,
    enforce_from: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawExempt {
    name: Spanned<String>,
    #[serde(default)]
    reason: String,
    prefixes: Vec<Spanned<String>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Class {
    Residential,
    Dynamic,
    Mobile,
    Business,
}

impl Class {
    pub fn as_str(self) -> &'static str {
        match self {
            Class::Residential => "residential",
            Class::Dynamic => "dynamic",
            Class::Mobile => "mobile",
            Class::Business => "business",
        }
    }
    /// The seeds' recommendation: block end-user space that is residential,
    /// dynamic or mobile; business customers run their own servers.
    pub fn blocks_by_default(self) -> bool {
        self != Class::Business
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Silently discard: the client waits for its connect timeout.
    Drop,
    /// Answer with a TCP reset so mail clients fail fast and say so.
    Reject,
}

/// Where a blocked network stands in the staged rollout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Count and log port-25 attempts, no verdict: subscribers keep
    /// sending while the plan finds who they are.
    Monitor,
    /// Block.
    Enforce,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Monitor => "monitor",
            Mode::Enforce => "enforce",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Network {
    pub name: String,
    pub class: Class,
    pub block: bool,
    pub prefixes: Vec<Prefix>,
    pub line: usize,
    /// `monitor` until `enforce_from` (if given), `enforce` otherwise.
    pub mode: Mode,
    /// Unix milliseconds from which a monitored network is enforced.
    pub enforce_from_ms: Option<u64>,
}

impl Network {
    /// The stage at `at_ms`: a monitored network with a date enforces from it.
    pub fn mode_at(&self, at_ms: u64) -> Mode {
        match (self.mode, self.enforce_from_ms) {
            (Mode::Monitor, Some(from)) if at_ms >= from => Mode::Enforce,
            (m, _) => m,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exemption {
    pub name: String,
    pub reason: String,
    pub prefixes: Vec<Prefix>,
    pub line: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    pub name: String,
    /// Sorted, distinct.
    pub blocked_ports: Vec<u16>,
    pub protected_ports: Vec<u16>,
    pub action: Action,
    pub log: bool,
    pub counters: bool,
    /// Table (nftables), chain and set name stem for every dialect.
    pub table: String,
    /// The nflog group monitored networks log to (`log group N`).
    pub monitor_log_group: u16,
    pub networks: Vec<Network>,
    pub exemptions: Vec<Exemption>,
}

pub const DEFAULT_BLOCKED: &[u16] = &[25];
/// The nflog group of monitored networks' log rules (nftables `log group`).
pub const DEFAULT_MONITOR_LOG_GROUP: u16 = 25;
/// Submission (587), submissions (465), and the web: the ports the seeds
/// insist stay open so that blocking 25 costs customers nothing.
pub const DEFAULT_PROTECTED: &[u16] = &[587, 465, 80, 443];
/// Submission (RFC 6409) and submissions (RFC 8314): protected whatever
/// `protected_ports` says, since the block is harmless only while customers
/// can still reach their provider on them. An empty `protected_ports` must
/// not turn that guard off.
pub const ALWAYS_PROTECTED: &[u16] = &[587, 465];

fn port_name(p: u16) -> &'static str {
    match p {
        25 => " (SMTP transport)",
        587 => " (message submission, RFC 6409)",
        465 => " (submission over implicit TLS, RFC 8314)",
        80 => " (HTTP)",
        443 => " (HTTPS)",
        _ => "",
    }
}

/// Reads and checks a policy file.
pub fn load(path: &Path) -> Result<Policy, ConfigError> {
    let text =
        port25_config::read(path, "the policy file", "give the path of an egress policy (see dist/egress.toml)")?;
    parse(&text, path)
}

/// Parses policy text; `file` only names the source in errors.
pub fn parse(text: &str, file: &Path) -> Result<Policy, ConfigError> {
    let raw: RawPolicy = port25_config::from_toml(text, file, "see dist/egress.toml for every key and its meaning")?;
    resolve(raw, text, file)
}

fn resolve(raw: RawPolicy, text: &str, file: &Path) -> Result<Policy, ConfigError> {
    let err = |offset: usize, msg: String, hint: &str| ConfigError::at(file, text, offset, msg, hint);
    let (blocked_ports, protected_ports) = port_lists(&raw.policy, text, file)?;
    let (action, table) = action_and_table(&raw.policy, text, file)?;
    let monitor_log_group = monitor_log_group(&raw.policy, text, file)?;
    let (networks, exemptions) = spaces(&raw, text, file)?;
    opposite_verdicts(&networks, file)?;
    let s = raw.policy;
    if networks.is_empty() {
        return Err(err(
            0,
            "the policy lists no [[network]]: nothing is end-user space".into(),
            "add a [[network]] with a class and prefixes (see dist/egress.toml)",
        ));
    }

    Ok(Policy {
        name: s.name.map_or_else(|| "egress".to_owned(), |n| n.into_inner()),
        blocked_ports,
        protected_ports,
        action,
        log: s.log.unwrap_or(true),
        counters: s.counters.unwrap_or(true),
        table,
        monitor_log_group,
        networks,
        exemptions,
    })
}

/// `blocked_ports` and `protected_ports` (587 and 465 always among the
/// protected), sorted; a port in both is refused.
fn port_lists(s: &RawSettings, text: &str, file: &Path) -> Result<(Vec<u16>, Vec<u16>), ConfigError> {
    let err = |offset: usize, msg: String, hint: &str| ConfigError::at(file, text, offset, msg, hint);
    let ports =
        |list: Option<Spanned<Vec<Spanned<i64>>>>, default: &[u16], key: &str| -> Result<Vec<u16>, ConfigError> {
            let Some(list) = list else {
                let mut v = default.to_vec();
                v.sort_unstable();
                return Ok(v);
            };
            let mut out = BTreeSet::new();
            for p in list.get_ref() {
                match u16::try_from(*p.get_ref()) {
                    Ok(n) if n > 0 => {
                        out.insert(n);
                    }
                    _ => {
                        return Err(err(
                            p.span().start,
                            format!("{key}: {} is not a TCP port", p.get_ref()),
                            "use numbers from 1 to 65535",
                        ))
                    }
                }
            }
            Ok(out.into_iter().collect())
        };
    let blocked_span = s.blocked_ports.as_ref().map_or(0, |l| l.span().start);
    let blocked_ports = ports(s.blocked_ports.clone(), DEFAULT_BLOCKED, "blocked_ports")?;
    if blocked_ports.is_empty() {
        return Err(err(
            blocked_span,
            "blocked_ports is empty: the policy would block nothing".into(),
            "list 25, or remove the key for the default [25]",
        ));
    }
    let mut protected_ports = ports(s.protected_ports.clone(), DEFAULT_PROTECTED, "protected_ports")?;
    for p in ALWAYS_PROTECTED {
        if !protected_ports.contains(p) {
            protected_ports.push(*p);
        }
    }
    protected_ports.sort_unstable();
    if let Some(p) = blocked_ports.iter().find(|p| protected_ports.contains(p)) {
        return Err(err(
            blocked_span,
            format!(
                "port {p}{} is protected but listed in blocked_ports: blocking it would cut customers off from their provider's mail service",
                port_name(*p)
            ),
            "remove it from blocked_ports; customers submit mail on 587/465 precisely because those stay open",
        ));
    }

    Ok((blocked_ports, protected_ports))
}

/// `action` (reject unless "drop") and the firewall `table` name.
fn action_and_table(s: &RawSettings, text: &str, file: &Path) -> Result<(Action, String), ConfigError> {
    let err = |offset: usize, msg: String, hint: &str| ConfigError::at(file, text, offset, msg, hint);
    let action = match &s.action {
        None => Action::Reject,
        Some(a) => match a.get_ref().as_str() {
            "drop" => Action::Drop,
            "reject" => Action::Reject,
            other => {
                return Err(err(
                    a.span().start,
                    format!("action {other:?} is neither \"drop\" nor \"reject\""),
                    "\"reject\" answers with a TCP reset so clients fail fast; \"drop\" discards silently",
                ))
            }
        },
    };
    let table = match &s.table {
        None => "port25_egress".to_owned(),
        Some(t) => {
            let v = t.get_ref();
            if v.is_empty()
                || v.len() > 24
                || !v.starts_with(|c: char| c.is_ascii_alphabetic())
                || !v.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            {
                return Err(err(
                    t.span().start,
                    format!("table {v:?} is not a usable name"),
                    "start with a letter; letters, digits and _ only; at most 24 characters (ipset names are short)",
                ));
            }
            v.clone()
        }
    };

    Ok((action, table))
}

/// `monitor_log_group`: the nflog group of monitored networks (25 unless set).
fn monitor_log_group(s: &RawSettings, text: &str, file: &Path) -> Result<u16, ConfigError> {
    let err = |offset: usize, msg: String, hint: &str| ConfigError::at(file, text, offset, msg, hint);
    Ok(match &s.monitor_log_group {
        None => DEFAULT_MONITOR_LOG_GROUP,
        Some(g) => u16::try_from(*g.get_ref()).map_err(|_| {
            err(
                g.span().start,
                format!("monitor_log_group {} is not an nflog group", g.get_ref()),
                "use a number from 0 to 65535 (the group ulogd2 listens on)",
            )
        })?,
    })
}

/// The `[[network]]` and `[[exempt]]` entries: names unique and simple,
/// classes known, prefixes valid.
fn spaces(raw: &RawPolicy, text: &str, file: &Path) -> Result<(Vec<Network>, Vec<Exemption>), ConfigError> {
    let err = |offset: usize, msg: String, hint: &str| ConfigError::at(file, text, offset, msg, hint);
    let line_of = |offset: usize| port25_config::line_col(text, offset).0;
    let mut names: HashMap<String, usize> = HashMap::new();
    let mut check_name = |n: &Spanned<String>| -> Result<String, ConfigError> {
        let v = n.get_ref();
        if v.is_empty() || !v.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)) {
            return Err(err(
                n.span().start,
                format!("name {v:?} may hold only letters, digits, - _ ."),
                "names appear in firewall comments and reports; keep them simple",
            ));
        }
        if let Some(prev) = names.insert(v.clone(), line_of(n.span().start)) {
            return Err(err(
                n.span().start,
                format!("name {v:?} is already used on line {prev}"),
                "give every network and exemption its own name",
            ));
        }
        Ok(v.clone())
    };
    let prefixes = |list: &[Spanned<String>], at: usize, what: &str| -> Result<Vec<Prefix>, ConfigError> {
        if list.is_empty() {
            return Err(err(
                at,
                format!("{what} has no prefixes"),
                "list at least one prefix such as \"198.51.100.0/24\" or \"2001:db8::/32\"",
            ));
        }
        list.iter()
            .map(|p| {
                p.get_ref().parse::<Prefix>().map_err(|e| {
                    err(
                        p.span().start,
                        e.0,
                        "write a prefix such as \"198.51.100.0/24\" or \"2001:db8::/32\", or a single address",
                    )
                })
            })
            .collect()
    };

    let mut networks = Vec::new();
    for n in &raw.networks {
        let at = n.span().start;
        let n = n.get_ref();
        let name = check_name(&n.name)?;
        let class = match n.class.get_ref().as_str() {
            "residential" => Class::Residential,
            "dynamic" => Class::Dynamic,
            "mobile" => Class::Mobile,
            "business" => Class::Business,
            other => {
                return Err(err(
                    n.class.span().start,
                    format!("class {other:?} is not one of residential, dynamic, mobile, business"),
                    "pick the class that says who uses the addresses",
                ))
            }
        };
        let prefixes = prefixes(&n.prefixes, n.name.span().start, &format!("network {name:?}"))?;
        let block = n.block.unwrap_or(class.blocks_by_default());
        let mode = match &n.mode {
            None => Mode::Enforce,
            Some(m) => match m.get_ref().as_str() {
                "monitor" => Mode::Monitor,
                "enforce" => Mode::Enforce,
                other => {
                    return Err(err(
                        m.span().start,
                        format!("mode {other:?} is neither \"monitor\" nor \"enforce\""),
                        "\"monitor\" counts and logs port-25 attempts without blocking; \"enforce\" blocks",
                    ))
                }
            },
        };
        if let (Some(m), false) = (&n.mode, block) {
            return Err(err(
                m.span().start,
                format!(
                    "network {name:?} is not blocked (block = false or class business): a mode means nothing for it"
                ),
                "remove mode, or set block = true to roll the block out in stages",
            ));
        }
        let enforce_from_ms = match &n.enforce_from {
            None => None,
            Some(d) => {
                if mode != Mode::Monitor {
                    return Err(err(
                        d.span().start,
                        "enforce_from is the date a monitored network starts enforcing; this network has no mode = \"monitor\"".into(),
                        "set mode = \"monitor\" with enforce_from, or remove enforce_from to enforce now",
                    ));
                }
                Some(crate::report::parse_time(d.get_ref()).map_err(|e| {
                    err(
                        d.span().start,
                        format!("enforce_from: {e}"),
                        "write a UTC time such as \"2027-03-01T00:00:00Z\"",
                    )
                })?)
            }
        };
        networks.push(Network { name, class, block, prefixes, line: line_of(at), mode, enforce_from_ms });
    }
    let mut exemptions = Vec::new();
    for x in &raw.exemptions {
        let at = x.span().start;
        let x = x.get_ref();
        let name = check_name(&x.name)?;
        let prefixes = prefixes(&x.prefixes, x.name.span().start, &format!("exemption {name:?}"))?;
        exemptions.push(Exemption { name, reason: x.reason.clone(), prefixes, line: line_of(at) });
    }

    Ok((networks, exemptions))
}

/// The same prefix in two networks with opposite verdicts has no
/// meaningful winner under longest-prefix match: refused.
fn opposite_verdicts(networks: &[Network], file: &Path) -> Result<(), ConfigError> {
    let mut seen: HashMap<Prefix, (usize, bool, &str)> = HashMap::new();
    for n in networks {
        for p in &n.prefixes {
            if let Some((line, block, other)) = seen.insert(*p, (n.line, n.block, &n.name)) {
                if block != n.block {
                    return Err(ConfigError {
                        file: file.to_owned(),
                        line: n.line,
                        column: 1,
                        message: format!("{p} is in network {:?} (blocked: {}) and in network {other:?} on line {line} (blocked: {block})", n.name, n.block),
                        hint: "keep each prefix in one network, or use an [[exempt]] entry for the exception".into(),
                    });
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const OK: &str = r#"
[policy]
action = "drop"

[[network]]
name = "res"
class = "residential"
prefixes = ["198.51.100.0/24", "2001:db8:1::/48"]

[[exempt]]
name = "mta"
prefixes = ["198.51.100.25"]
"#;

    fn parse_err(text: &str) -> String {
        parse(text, Path::new("p.toml")).unwrap_err().to_string()
    }

    #[test]
    fn parses_with_defaults() {
        let p = parse(OK, Path::new("p.toml")).unwrap();
        assert_eq!(p.blocked_ports, [25]);
        assert_eq!(p.protected_ports, [80, 443, 465, 587]);
        assert_eq!(p.action, Action::Drop);
        assert!(p.networks[0].block);
        assert_eq!(p.networks[0].line, 5);
        assert_eq!(p.exemptions[0].prefixes[0].to_string(), "198.51.100.25/32");
    }

    #[test]
    fn refuses_protected_ports() {
        let e = parse_err(&format!("[policy]\nblocked_ports = [25, 587]\n{}", OK.get(10..).unwrap()));
        assert!(e.starts_with("p.toml:2:17: port 587 (message submission, RFC 6409) is protected"), "{e}");
        assert!(e.contains("fix:"));
    }

    #[test]
    fn submission_ports_stay_protected_with_an_empty_list() {
        let p =
            parse(&format!("[policy]\nprotected_ports = []\n{}", OK.get(10..).unwrap()), Path::new("p.toml")).unwrap();
        assert_eq!(p.protected_ports, [465, 587]);
        let e =
            parse_err(&format!("[policy]\nprotected_ports = []\nblocked_ports = [25, 465]\n{}", OK.get(10..).unwrap()));
        assert!(e.starts_with("p.toml:3:17: port 465"), "{e}");
    }

    #[test]
    fn errors_name_the_line() {
        let e = parse_err("[[network]]\nname = \"a\"\nclass = \"residental\"\nprefixes = [\"10.0.0.0/8\"]\n");
        assert!(e.starts_with("p.toml:3:9: class \"residental\""), "{e}");
        let e = parse_err("[[network]]\nname = \"a\"\nclass = \"mobile\"\nprefixes = [\"10.0.0.1/8\"]\n");
        assert!(e.starts_with("p.toml:4:13: \"10.0.0.1/8\" has host bits set; did you mean 10.0.0.0/8?"), "{e}");
        let e = parse_err("[[network]]\nname = \"a\"\nclass = \"mobile\"\nprefixes = [\"10.0.0.0/8\"]\nbolck = true\n");
        assert!(e.starts_with("p.toml:"), "{e}");
        assert!(e.contains("unknown field `bolck`"), "{e}");
        let e = parse_err("[[network]]\nname = \"a\"\nclass = \"mobile\"\nprefixes = [\"10.0.0.0/8\"]\n[[network]]\nname = \"a\"\nclass = \"mobile\"\nprefixes = [\"10.0.0.0/8\"]\n");
        assert!(e.contains("already used on line 2"), "{e}");
        let e = parse_err("[policy]\naction = \"deny\"\n");
        assert!(e.starts_with("p.toml:2:10: action \"deny\""), "{e}");
        let e = parse_err("");
        assert!(e.contains("no [[network]]"), "{e}");
    }

    #[test]
    fn staged_modes_and_dates() {
        let net = |extra: &str| {
            format!("[[network]]\nname = \"a\"\nclass = \"residential\"\nprefixes = [\"10.0.0.0/8\"]\n{extra}")
        };
        let p = parse(&net("mode = \"monitor\"\nenforce_from = \"2027-03-01T00:00:00Z\"\n"), Path::new("p")).unwrap();
        let n = &p.networks[0];
        assert_eq!((n.mode, n.enforce_from_ms), (Mode::Monitor, Some(1_803_859_200_000)));
        assert_eq!(n.mode_at(1_803_859_199_999), Mode::Monitor);
        assert_eq!(n.mode_at(1_803_859_200_000), Mode::Enforce);
        assert_eq!(p.monitor_log_group, 25);
        assert_eq!(parse(&net(""), Path::new("p")).unwrap().networks[0].mode, Mode::Enforce);
        let e = parse_err(&net("mode = \"watch\"\n"));
        assert!(e.starts_with("p.toml:5:8: mode \"watch\""), "{e}");
        let e = parse_err(&net("enforce_from = \"2027-03-01T00:00:00Z\"\n"));
        assert!(e.starts_with("p.toml:5:16: enforce_from is the date"), "{e}");
        let e = parse_err(&net("mode = \"monitor\"\nenforce_from = \"1 March\"\n"));
        assert!(e.starts_with("p.toml:6:16: enforce_from: \"1 March\""), "{e}");
        let e = parse_err(&net("mode = \"monitor\"\nblock = false\n"));
        assert!(e.contains("is not blocked"), "{e}");
        let e = parse_err(&format!("[policy]\nmonitor_log_group = 70000\n{}", net("")));
        assert!(e.starts_with("p.toml:2:21: monitor_log_group 70000"), "{e}");
    }

    #[test]
    fn business_is_not_blocked_by_default() {
        let p = parse("[[network]]\nname = \"b\"\nclass = \"business\"\nprefixes = [\"10.0.0.0/8\"]\n", Path::new("p"))
            .unwrap();
        assert!(!p.networks[0].block);
    }
}
