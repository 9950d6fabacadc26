//! From what the checks found to what happens to the client, pure: each
//! check's answer, score and reason ([`Line`]), the total score, and the
//! verdict with the reply a refused client gets. `port25 mx explain`
//! prints the same lines the server logs.

use crate::dnsbl::{self, Answer};
use crate::rdns::{self, Finding};
use port25_config::{Screen, ScreenAction};
use port25_engine::Reply;
use std::net::IpAddr;

/// The operator's end-user network a client is in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndUser {
    pub network: String,
    pub class: &'static str,
    pub prefix: String,
}

/// What reverse DNS said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rdns {
    /// Not asked (allowlisted, or no time left).
    NotAsked,
    /// NXDOMAIN or no PTR record.
    NoPtr,
    /// Timeout or server failure: counts for nothing.
    TempError(String),
    /// The PTR names (at most a few) and the first that resolves back to
    /// the address (forward-confirmed, RFC 8601 iprev "pass").
    Names { names: Vec<String>, confirmed: Option<String> },
}

/// Bytes the client sent before the banner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pregreet {
    /// The first bytes (at most [`PREGREET_KEEP`]).
    pub bytes: Vec<u8>,
    /// They look like HTTP or a proxy request, not SMTP.
    pub non_smtp: bool,
}

pub const PREGREET_KEEP: usize = 64;

/// Everything the checks found about one client.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Evidence {
    pub end_user: Option<EndUser>,
    /// One answer per distinct zone, in configuration order.
    pub dnsbl: Vec<(String, Answer)>,
    pub rdns: Option<Rdns>,
    pub pregreet: Option<Pregreet>,
}

/// One check's line in the log and in `mx explain`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// "end_user", "dnsbl", "rdns", "pregreet".
    pub check: &'static str,
    /// The list's zone for "dnsbl", else empty.
    pub list: String,
    /// A short fixed word: "listed", "clean", "unusable", "error", ...
    pub outcome: &'static str,
    pub score: i32,
    pub reason: String,
}

/// What happens to the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Nothing fired: hand over, and allowlist.
    Pass,
    /// A DNSWL allowlisted it: hand over, and allowlist.
    Allowlisted,
    /// Something fired whose action is `ignore` (monitor) or `tag`: hand
    /// over without allowlisting.
    Monitored,
    Tag,
    Tempfail,
    Reject,
    /// HTTP or a proxy request on the SMTP port: 521 and close.
    NonSmtp,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Pass => "pass",
            Outcome::Allowlisted => "allowlisted",
            Outcome::Monitored => "ignore",
            Outcome::Tag => "tag",
            Outcome::Tempfail => "tempfail",
            Outcome::Reject => "reject",
            Outcome::NonSmtp => "non_smtp",
        }
    }

    /// The client keeps its socket.
    pub fn hands_over(self) -> bool {
        matches!(self, Outcome::Pass | Outcome::Allowlisted | Outcome::Monitored | Outcome::Tag)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub lines: Vec<Line>,
    pub score: i32,
    pub outcome: Outcome,
    /// The check that decided a refusal or a tag ("end_user", "score",
    /// "pregreet", "non_smtp"), else "".
    pub decided_by: &'static str,
    /// The refusal sent (tempfail, reject, non-SMTP).
    pub reply: Option<Reply>,
    /// The X-Port25-Screen header's value for `tag`.
    pub tag: Option<String>,
}

/// The reply to HTTP or a proxy request on the SMTP port (the engine's).
pub const NON_SMTP: Reply = port25_engine::reply::std_replies::HTTP_ON_SMTP;

/// The text that tells a person in end-user space what to do instead.
pub fn use_submission(ip: IpAddr, hostname: &str) -> String {
    format!(
        "{ip} is end-user address space: {hostname} does not take mail delivered directly from it on port 25. \
         If this is your computer or phone, send through your provider's submission server on port 587 (or 465) with your login"
    )
}

fn refusal(action: ScreenAction, text: String) -> Reply {
    match action {
        ScreenAction::Tempfail => Reply::owned(421, "4.7.1", format!("{text}; try again later")),
        _ => Reply::owned(554, "5.7.1", text),
    }
}

/// Does `bytes` (sent before the banner) look like HTTP or a proxy request?
pub fn looks_non_smtp(bytes: &[u8]) -> bool {
    const METHODS: &[&[u8]] =
        &[b"GET ", b"POST ", b"HEAD ", b"PUT ", b"CONNECT ", b"OPTIONS ", b"DELETE ", b"PATCH ", b"TRACE ", b"PROXY "];
    let upper: Vec<u8> = bytes.iter().take(16).map(u8::to_ascii_uppercase).collect();
    // SOCKS4/5 greetings start with their version byte.
    METHODS.iter().any(|m| upper.starts_with(m)) || matches!(bytes.first(), Some(4 | 5))
}

/// Judges the evidence with the configuration's weights and actions.
pub fn judge(cfg: &Screen, ip: IpAddr, hostname: &str, ev: &Evidence) -> Verdict {
    let mut lines = Vec::new();
    // The end-user network: a policy, not a score.
    let end_user_fired = match &ev.end_user {
        Some(e) => {
            let reason =
                format!("in end-user network {:?} ({}, prefix {}) of the egress policy", e.network, e.class, e.prefix);
            lines.push(Line { check: "end_user", list: String::new(), outcome: "inside", score: 0, reason });
            true
        }
        None => false,
    };
    // The lists: each zone's answer, then each entry's weight.
    let mut score = 0i32;
    let mut score_reasons = Vec::new();
    for (zone, answer) in &ev.dnsbl {
        let entries: Vec<_> = cfg.lists.iter().filter(|l| &l.zone == zone).collect();
        match answer {
            Answer::NotListed => lines.push(Line {
                check: "dnsbl",
                list: zone.clone(),
                outcome: "clean",
                score: 0,
                reason: "not listed".into(),
            }),
            Answer::Listed(codes) => {
                let codes_text = codes.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ");
                let mut weight = 0i32;
                for e in &entries {
                    if let Some((w, _)) = dnsbl::rule_score(e, answer) {
                        weight = weight.saturating_add(w);
                    }
                }
                score = score.saturating_add(weight);
                let kind = if weight < 0 { "allowlisted" } else { "listed" };
                let reason = format!("{kind} by {zone} ({codes_text})");
                if weight > 0 {
                    score_reasons.push(reason.clone());
                }
                let outcome = if weight == 0 { "filtered" } else { kind };
                lines.push(Line { check: "dnsbl", list: zone.clone(), outcome, score: weight, reason });
            }
            Answer::Unusable(code) => lines.push(Line {
                check: "dnsbl",
                list: zone.clone(),
                outcome: "unusable",
                score: 0,
                reason: format!(
                    "error answer {code}: {} (counts for nothing)",
                    dnsbl::error_meaning(*code).unwrap_or("error")
                ),
            }),
            Answer::Bogus(codes) => lines.push(Line {
                check: "dnsbl",
                list: zone.clone(),
                outcome: "bogus",
                score: 0,
                reason: format!(
                    "answered {} which is no listing code (counts for nothing)",
                    codes.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
                ),
            }),
            Answer::Failed(why) => lines.push(Line {
                check: "dnsbl",
                list: zone.clone(),
                outcome: "error",
                score: 0,
                reason: format!("no answer: {why} (counts for nothing)"),
            }),
        }
    }
    // Reverse DNS.
    match &ev.rdns {
        None | Some(Rdns::NotAsked) => {}
        Some(Rdns::NoPtr) => {
            score = score.saturating_add(cfg.rdns_no_ptr);
            score_reasons.push("no reverse DNS name".into());
            lines.push(Line {
                check: "rdns",
                list: String::new(),
                outcome: "no_ptr",
                score: cfg.rdns_no_ptr,
                reason: format!("no PTR record for {ip}"),
            });
        }
        Some(Rdns::TempError(why)) => lines.push(Line {
            check: "rdns",
            list: String::new(),
            outcome: "error",
            score: 0,
            reason: format!("no answer: {why} (counts for nothing)"),
        }),
        Some(Rdns::Names { names, confirmed }) => {
            let name = confirmed.clone().or_else(|| names.first().cloned()).unwrap_or_default();
            match confirmed {
                Some(n) => lines.push(Line {
                    check: "rdns",
                    list: String::new(),
                    outcome: "confirmed",
                    score: 0,
                    reason: format!("{n} resolves back to {ip} (iprev pass)"),
                }),
                None => {
                    score = score.saturating_add(cfg.rdns_unconfirmed);
                    score_reasons.push(format!("reverse DNS name {name} does not resolve back"));
                    lines.push(Line {
                        check: "rdns",
                        list: String::new(),
                        outcome: "unconfirmed",
                        score: cfg.rdns_unconfirmed,
                        reason: format!("{} does not resolve back to {ip} (iprev fail)", names.join(", ")),
                    });
                }
            }
            let findings = rdns::classify(ip, &name);
            let mut tokens_scored = false;
            for f in findings {
                let (outcome, weight) = match &f {
                    Finding::AddressInName(_) => ("generic", cfg.rdns_address_in_name),
                    // The tokens together weigh once.
                    Finding::DynamicToken(_) if tokens_scored => ("generic", 0),
                    Finding::DynamicToken(_) => ("generic", cfg.rdns_dynamic_token),
                };
                tokens_scored |= matches!(f, Finding::DynamicToken(_));
                score = score.saturating_add(weight);
                if weight > 0 {
                    score_reasons.push(format!("generic reverse DNS name {name}"));
                }
                lines.push(Line {
                    check: "rdns",
                    list: String::new(),
                    outcome,
                    score: weight,
                    reason: format!("{name}: {f}"),
                });
            }
        }
    }
    score_reasons.dedup();
    if let Some(p) = &ev.pregreet {
        let shown: String = p.bytes.iter().map(|b| std::ascii::escape_default(*b).to_string()).collect();
        let (check, outcome) = if p.non_smtp { ("pregreet", "non_smtp") } else { ("pregreet", "talked_first") };
        lines.push(Line {
            check,
            list: String::new(),
            outcome,
            score: 0,
            reason: format!("sent {shown:?} before the greeting"),
        });
    }

    let mut verdict = Verdict { lines, score, outcome: Outcome::Pass, decided_by: "", reply: None, tag: None };
    if ev.pregreet.as_ref().is_some_and(|p| p.non_smtp) {
        verdict.outcome = Outcome::NonSmtp;
        verdict.decided_by = "non_smtp";
        verdict.reply = Some(NON_SMTP);
        return verdict;
    }
    // Each fired check with its action; the strictest action decides.
    let mut fired: Vec<(ScreenAction, &'static str, String)> = Vec::new();
    if end_user_fired {
        fired.push((cfg.end_user_action, "end_user", use_submission(ip, hostname)));
    }
    if ev.pregreet.is_some() {
        fired.push((cfg.pregreet_action, "pregreet", format!("Protocol error: [{ip}] talked before the greeting")));
    }
    if score >= cfg.threshold {
        let mut text = format!("Service unavailable; client [{ip}] refused: {}", score_reasons.join("; "));
        if score_reasons.iter().any(|r| r.contains("reverse DNS")) {
            text.push_str(". If this is your own computer, send through your provider's submission server on port 587 with your login");
        }
        fired.push((cfg.score_action, "score", text));
    }
    let Some((action, check, text)) = fired.iter().max_by_key(|f| f.0).cloned() else {
        if score <= cfg.allowlist_threshold {
            verdict.outcome = Outcome::Allowlisted;
        }
        return verdict;
    };
    verdict.decided_by = check;
    match action {
        ScreenAction::Ignore => verdict.outcome = Outcome::Monitored,
        ScreenAction::Tag => {
            verdict.outcome = Outcome::Tag;
            let checks: Vec<&str> = fired.iter().filter(|f| f.0 == ScreenAction::Tag).map(|f| f.1).collect();
            verdict.tag = Some(format!("score={score}; checks={}", checks.join(",")));
        }
        ScreenAction::Tempfail => {
            verdict.outcome = Outcome::Tempfail;
            verdict.reply = Some(refusal(action, text));
        }
        ScreenAction::Reject => {
            verdict.outcome = Outcome::Reject;
            verdict.reply = Some(refusal(action, text));
        }
    }
    verdict
}

#[cfg(test)]
mod tests {
    use super::*;
    use port25_config::ScreenList;

    fn cfg() -> Screen {
        let mut c = port25_config::embedded_default().mx.screen;
        c.lists = vec![
            ScreenList {
                zone: "bl.example".into(),
                codes: vec![("127.0.0.2".parse().unwrap(), "127.0.0.9".parse().unwrap())],
                weight: 3,
            },
            ScreenList {
                zone: "bl.example".into(),
                codes: vec![("127.0.0.10".parse().unwrap(), "127.0.0.11".parse().unwrap())],
                weight: 1,
            },
            ScreenList { zone: "wl.example".into(), codes: vec![], weight: -5 },
        ];
        c
    }

    fn listed(code: &str) -> Answer {
        Answer::Listed(vec![code.parse().unwrap()])
    }

    const IP: &str = "192.0.2.7";

    fn run(c: &Screen, ev: &Evidence) -> Verdict {
        judge(c, IP.parse().unwrap(), "mx.example", ev)
    }

    #[test]
    fn listed_clients_are_refused_with_the_reason() {
        let ev = Evidence {
            dnsbl: vec![("bl.example".into(), listed("127.0.0.2")), ("wl.example".into(), Answer::NotListed)],
            ..Default::default()
        };
        let v = run(&cfg(), &ev);
        assert_eq!((v.outcome, v.score, v.decided_by), (Outcome::Reject, 3, "score"));
        let reply = v.reply.unwrap().to_string();
        assert!(reply.starts_with("554 5.7.1 ") && reply.contains("listed by bl.example (127.0.0.2)"), "{reply}");
    }

    #[test]
    fn pbl_codes_weigh_apart_and_dnswl_allowlists() {
        let ev = Evidence { dnsbl: vec![("bl.example".into(), listed("127.0.0.10"))], ..Default::default() };
        assert_eq!(run(&cfg(), &ev).outcome, Outcome::Pass, "weight 1 is under the threshold");
        let ev = Evidence {
            dnsbl: vec![("bl.example".into(), listed("127.0.0.2")), ("wl.example".into(), listed("127.0.0.2"))],
            ..Default::default()
        };
        let v = run(&cfg(), &ev);
        assert_eq!((v.outcome, v.score), (Outcome::Allowlisted, -2));
    }

    #[test]
    fn error_answers_and_timeouts_never_refuse() {
        let mut c = cfg();
        c.threshold = 1;
        c.allowlist_threshold = -1;
        for answer in [
            Answer::Unusable("127.255.255.254".parse().unwrap()),
            Answer::Failed("timeout".into()),
            Answer::Bogus(vec!["127.0.0.1".parse().unwrap()]),
        ] {
            let ev = Evidence {
                dnsbl: vec![("bl.example".into(), answer.clone())],
                rdns: Some(Rdns::TempError("timeout".into())),
                ..Default::default()
            };
            let v = run(&c, &ev);
            assert_eq!((v.outcome, v.score), (Outcome::Pass, 0), "{answer:?}");
        }
    }

    #[test]
    fn generic_rdns_adds_up() {
        let names = vec!["dsl-192-0-2-7.dyn.isp.example".to_owned()];
        let ev = Evidence { rdns: Some(Rdns::Names { names, confirmed: None }), ..Default::default() };
        let v = run(&cfg(), &ev);
        // unconfirmed 1 + address 1 + tokens (dsl, dyn) 1 = 3.
        assert_eq!((v.outcome, v.score), (Outcome::Reject, 3), "{:?}", v.lines);
        assert!(v.reply.unwrap().text.contains("port 587"));
        let names = vec!["mail.example.net".to_owned()];
        let ev = Evidence {
            rdns: Some(Rdns::Names { names, confirmed: Some("mail.example.net".into()) }),
            ..Default::default()
        };
        assert_eq!(run(&cfg(), &ev).outcome, Outcome::Pass);
    }

    #[test]
    fn actions_per_check() {
        let mut c = cfg();
        let ev = Evidence {
            end_user: Some(EndUser { network: "dsl".into(), class: "residential", prefix: "192.0.2.0/24".into() }),
            ..Default::default()
        };
        let v = run(&c, &ev);
        assert_eq!((v.outcome, v.decided_by), (Outcome::Reject, "end_user"));
        assert!(v.reply.as_ref().unwrap().to_string().starts_with("554 5.7.1 192.0.2.7 is end-user address space"));
        assert!(v.reply.unwrap().text.contains("port 587 (or 465) with your login"));
        c.end_user_action = ScreenAction::Tempfail;
        assert!(run(&c, &ev).reply.unwrap().to_string().starts_with("421 4.7.1 "));
        c.end_user_action = ScreenAction::Ignore;
        assert_eq!(run(&c, &ev).outcome, Outcome::Monitored);
        c.end_user_action = ScreenAction::Tag;
        let v = run(&c, &ev);
        assert_eq!((v.outcome, v.tag.as_deref()), (Outcome::Tag, Some("score=0; checks=end_user")));
        // The strictest fired action decides.
        let ev = Evidence { pregreet: Some(Pregreet { bytes: b"EHLO x\r\n".to_vec(), non_smtp: false }), ..ev };
        let v = run(&c, &ev);
        assert_eq!((v.outcome, v.decided_by), (Outcome::Reject, "pregreet"));
        let ev = Evidence {
            pregreet: Some(Pregreet { bytes: b"GET / HTTP/1.1\r\n".to_vec(), non_smtp: true }),
            ..Default::default()
        };
        assert_eq!(run(&c, &ev).reply.unwrap().code, 521);
    }

    #[test]
    fn non_smtp_openings() {
        assert!(looks_non_smtp(b"GET / HTTP/1.1\r\n"));
        assert!(looks_non_smtp(b"connect mx:25 HTTP/1.0"));
        assert!(looks_non_smtp(&[5, 1, 0]));
        assert!(!looks_non_smtp(b"EHLO bot\r\n"));
        assert!(!looks_non_smtp(b""));
    }
}
