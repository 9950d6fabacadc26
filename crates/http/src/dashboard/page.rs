//! The dashboard's HTML, rendered on the server from a [`Snapshot`]: no
//! script, no external asset (the CSS is inline; the Content-Security-Policy
//! sent with it forbids scripts outright). Every value that came from
//! outside (HELO names, addresses, subjects, logins, peers) goes through
//! [`crate::escape::html`]; numbers are formatted here.
//!
//! Figures carry `data-*` attributes so tests (and scrapers) read the same
//! numbers a person sees.

use crate::escape::html;
use crate::metrics::Rejection;
use crate::state::Snapshot;
use std::fmt::Write;

const STYLE: &str = "body{font:14px/1.4 system-ui,sans-serif;margin:0 auto;max-width:72em;padding:1em;color:#222}\
h1{font-size:1.4em}h2{font-size:1.15em;border-bottom:1px solid #ccc;margin-top:1.6em}\
table{border-collapse:collapse;width:100%}td,th{text-align:left;padding:.25em .5em;border-bottom:1px solid #eee;vertical-align:top}\
td.n,th.n{text-align:right}.bar{background:#eee;height:.9em;width:12em;position:relative;display:inline-block}\
.bar span{background:#2a7;height:100%;display:block}.bar i{position:absolute;top:-.2em;bottom:-.2em;border-left:2px solid #c33}\
.no{color:#b00;font-weight:bold}.ok{color:#070;font-weight:bold}.err{color:#b00}code{word-break:break-all}\
small{color:#666}";

pub fn layout(title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width\"><title>{}</title><style>{STYLE}</style></head>\n<body>\n{body}</body></html>\n",
        html(title)
    )
}

pub fn login(message: Option<&str>) -> String {
    let mut b = String::from("<h1>port25 operator sign-in</h1>\n");
    if let Some(m) = message {
        let _ = writeln!(b, "<p class=\"err\" id=\"login-error\">{}</p>", html(m));
    }
    b.push_str(
        "<form method=\"post\" action=\"/dashboard/login\">\n<p><label>Login <input name=\"login\" autocomplete=\"username\" required></label></p>\n\
         <p><label>Password <input name=\"password\" type=\"password\" autocomplete=\"current-password\" required></label></p>\n\
         <p><button type=\"submit\">Sign in</button></p>\n</form>\n<p><small>Operators are accounts with the operator flag: \
         <code>port25 users operator LOGIN</code>.</small></p>\n",
    );
    layout("port25: sign in", &b)
}

fn age(secs: u64) -> String {
    match secs {
        s if s < 120 => format!("{s} s"),
        s if s < 7200 => format!("{} min", s / 60),
        s if s < 172_800 => format!("{} h", s / 3600),
        s => format!("{} days", s / 86400),
    }
}

fn time(t: i64) -> String {
    httpdate::fmt_http_date(std::time::UNIX_EPOCH + std::time::Duration::from_secs(t.max(0) as u64))
}

pub struct Counters {
    pub sessions: u64,
    pub accepted: u64,
    pub rejections: u64,
    pub auth_failures: u64,
    /// Screening verdicts per day: (day since the epoch, verdict, deciding
    /// check, count), newest day first.
    pub screen: Vec<(u64, String, String, u64)>,
}

pub fn dashboard(
    operator: &str,
    threshold: f64,
    days: u32,
    snap: &Snapshot,
    rejections: &[Rejection],
    counters: &Counters,
) -> String {
    let mut b = String::new();
    let _ = writeln!(
        b,
        "<h1>port25 dashboard</h1>\n<form method=\"post\" action=\"/dashboard/logout\">Signed in as <b id=\"operator\">{}</b>. <button>Sign out</button> <small>Read-only; reload for fresh figures.</small></form>",
        html(operator)
    );
    let _ = writeln!(
        b,
        "<p id=\"counters\" data-sessions=\"{}\" data-accepted=\"{}\" data-rejections=\"{}\" data-auth-failures=\"{}\">Since start: {} SMTP sessions, {} messages accepted, {} refusals, {} failed logins.</p>",
        counters.sessions, counters.accepted, counters.rejections, counters.auth_failures, counters.sessions, counters.accepted, counters.rejections, counters.auth_failures
    );
    migration(&mut b, threshold, days, snap);
    queue(&mut b, snap);
    screening(&mut b, &counters.screen);
    recent_rejections(&mut b, rejections);
    captures(&mut b, snap);
    abuse(&mut b, snap);
    layout("port25 dashboard", &b)
}

fn abuse(b: &mut String, snap: &Snapshot) {
    let Some(rows) = &snap.abuse else { return };
    b.push_str("<h2>Abuse desk</h2>\n<p>Logins held, locked or tagged, and logins with complaints today (UTC). <code>port25 users explain LOGIN</code> says why; <code>port25 users release LOGIN</code> undoes it (docs/abuse.md).</p>\n");
    if rows.is_empty() {
        b.push_str("<p id=\"abuse-empty\">No login is held or locked, and no complaint today.</p>\n");
        return;
    }
    b.push_str("<table id=\"abuse\"><tr><th>login</th><th>action</th><th>since</th><th class=\"n\">complaints today</th><th class=\"n\">first complaint to action</th><th>why</th></tr>\n");
    for r in rows {
        let _ = writeln!(
            b,
            "<tr class=\"abuse-login\" data-action=\"{}\" data-complaints=\"{}\"><td>{}</td><td>{}</td><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td>{}</td></tr>",
            html(&r.action),
            r.complaints_today,
            html(&r.login),
            html(&r.action),
            html(&r.since),
            r.complaints_today,
            r.to_action_secs.map(|s| format!("{s} s")).unwrap_or_else(|| "-".into()),
            html(&r.reason)
        );
    }
    b.push_str("</table>\n");
}

fn migration(b: &mut String, threshold: f64, days: u32, snap: &Snapshot) {
    let _ = writeln!(
        b,
        "<h2>Migration to submission (587/465)</h2>\n<p>Active users: those who submitted in the last {days} days. Port 25 can be blocked for end users once <b>{threshold}%</b> of a domain's active users submit only on 587/465 (same figures as <code>port25 migration report</code>).</p>"
    );
    let reports = match &snap.migration {
        Ok(r) => r,
        Err(e) => {
            let _ = writeln!(b, "<p class=\"err\">Cannot read the migration records: {}</p>", html(e));
            return;
        }
    };
    if reports.is_empty() {
        b.push_str("<p id=\"migration-empty\">No authenticated submission recorded yet.</p>\n");
        return;
    }
    b.push_str("<table id=\"migration\"><tr><th>domain</th><th class=\"n\">active</th><th class=\"n\">only 587/465</th><th class=\"n\">still on 25</th><th class=\"n\">share</th><th>progress</th><th></th></tr>\n");
    for d in reports {
        let share = (d.share * 10.0).round() / 10.0;
        let verdict = if d.threshold_met {
            "<span class=\"ok\">mark met</span>"
        } else {
            "<span class=\"no\">below the mark</span>"
        };
        let _ = writeln!(
            b,
            "<tr class=\"domain\" data-domain=\"{dom}\" data-active=\"{}\" data-submission-only=\"{}\" data-still-on-25=\"{}\" data-share=\"{share:.1}\" data-threshold-met=\"{}\"><td>{dom}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{share:.1}%</td><td><span class=\"bar\" title=\"{share:.1}%\"><span style=\"width:{:.1}%\"></span><i style=\"left:{:.1}%\"></i></span></td><td>{verdict}</td></tr>",
            d.active,
            d.submission_only,
            d.still_on_25.len(),
            d.threshold_met,
            d.active,
            d.submission_only,
            d.still_on_25.len(),
            share.clamp(0.0, 100.0),
            threshold.clamp(0.0, 100.0),
            dom = html(&d.domain),
        );
    }
    b.push_str("</table>\n");
    let still: Vec<_> = reports.iter().flat_map(|d| d.still_on_25.iter()).collect();
    if !still.is_empty() {
        b.push_str(
            "<h3>Users still submitting on port 25</h3>\n<table id=\"still-on-25\"><tr><th>login</th><th>last from</th><th>last seen</th><th></th></tr>\n",
        );
        for s in still {
            let also = if s.also_on_submission { "also uses 587/465" } else { "" };
            let _ = writeln!(
                b,
                "<tr class=\"still\" data-login=\"{l}\"><td>{l}</td><td>{}</td><td>{}</td><td>{also}</td></tr>",
                html(&s.last_ip),
                time(s.last_seen),
                l = html(&s.login)
            );
        }
        b.push_str("</table>\n");
    }
}

fn queue(b: &mut String, snap: &Snapshot) {
    b.push_str("<h2>Queues</h2>\n<table id=\"queues\"><tr><th>queue</th><th class=\"n\">messages waiting</th><th class=\"n\">recipients waiting</th><th class=\"n\">oldest</th><th class=\"n\">size</th><th class=\"n\">quarantined</th></tr>\n");
    for (name, q) in &snap.queues {
        let _ = writeln!(
            b,
            "<tr class=\"queue\" data-queue=\"{name}\" data-messages=\"{}\" data-recipients=\"{}\" data-oldest-age=\"{}\"><td>{name}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{} KiB</td><td class=\"n\">{}</td></tr>",
            q.messages,
            q.recipients,
            q.oldest_age,
            q.messages,
            q.recipients,
            if q.messages == 0 { "-".into() } else { age(q.oldest_age) },
            q.bytes.div_ceil(1024),
            q.quarantined
        );
    }
    b.push_str("</table>\n<p><small>The outbound queue in detail: <code>port25 queue list</code>.</small></p>\n");
}

/// Screening before the banner, per day: how much direct-to-MX mail from
/// end-user space is refused (check "end_user"), by lists, rDNS, pregreet.
fn screening(b: &mut String, rows: &[(u64, String, String, u64)]) {
    b.push_str("<h2>Screening before the banner (port 25)</h2>\n");
    if rows.is_empty() {
        b.push_str(
            "<p id=\"screening\">No screened connections since start (<code>[mx.screen]</code>, docs/screen.md).</p>\n",
        );
        return;
    }
    b.push_str("<table id=\"screening\"><tr><th>day (UTC)</th><th>verdict</th><th>decided by</th><th class=\"n\">connections</th></tr>\n");
    for (day, verdict, check, n) in rows {
        let date = httpdate::fmt_http_date(std::time::UNIX_EPOCH + std::time::Duration::from_secs(day * 86_400));
        let date = date.get(..16).unwrap_or(&date).to_owned();
        let _ = writeln!(
            b,
            "<tr data-verdict=\"{v}\" data-check=\"{c}\" data-count=\"{n}\"><td>{}</td><td>{v}</td><td>{c}</td><td class=\"n\">{n}</td></tr>",
            html(&date),
            v = html(verdict),
            c = html(check),
        );
    }
    b.push_str("</table>\n<p><small>end_user: the operator's own end-user space (its egress policy); score: DNSBL and reverse DNS; pregreet: talked before the banner. Since the last start.</small></p>\n");
}

fn recent_rejections(b: &mut String, rejections: &[Rejection]) {
    b.push_str("<h2>Recent refusals</h2>\n");
    if rejections.is_empty() {
        b.push_str("<p>None since start.</p>\n");
        return;
    }
    b.push_str("<table id=\"rejections\"><tr><th>when</th><th>listener</th><th>client</th><th>HELO</th><th>address</th><th>answer</th></tr>\n");
    for r in rejections {
        let _ = writeln!(
            b,
            "<tr class=\"rejection\"><td>{}</td><td>{}</td><td>{}</td><td class=\"helo\">{}</td><td>{}</td><td><code>{}</code></td></tr>",
            httpdate::fmt_http_date(r.time),
            html(&r.listener),
            html(&r.peer),
            html(&r.helo),
            html(&r.subject),
            html(&r.reason)
        );
    }
    b.push_str("</table>\n");
}

fn captures(b: &mut String, snap: &Snapshot) {
    b.push_str("<h2>SpamPots captures</h2>\n");
    let c = match &snap.captures {
        None => {
            b.push_str("<p>No capture directory configured (<code>[http] spampot_capture</code>).</p>\n");
            return;
        }
        Some(Err(e)) => {
            let _ = writeln!(b, "<p class=\"err\">Cannot read the capture directory: {}</p>", html(e));
            return;
        }
        Some(Ok(c)) => c,
    };
    let _ = writeln!(
        b,
        "<p id=\"captures\" data-messages=\"{}\" data-last-hour=\"{}\" data-sources=\"{}\">Messages captured: {}, from {} source addresses over {} connections; in the last hour: {} ({:.2} per minute).</p>",
        c.messages,
        c.last_hour,
        c.sources,
        c.messages,
        c.sources,
        c.connections,
        c.last_hour,
        c.last_hour as f64 / 60.0
    );
    if !c.top.is_empty() {
        b.push_str("<table id=\"top-sources\"><tr><th>source</th><th class=\"n\">messages</th></tr>\n");
        for (ip, n) in &c.top {
            let _ = writeln!(b, "<tr class=\"source\" data-source=\"{ip}\" data-messages=\"{n}\"><td>{ip}</td><td class=\"n\">{n}</td></tr>", ip = html(ip));
        }
        b.push_str("</table>\n");
    }
    if !c.recent.is_empty() {
        b.push_str("<h3>Latest captured messages</h3>\n<table id=\"recent-captures\"><tr><th>when</th><th>source</th><th>HELO</th><th>from</th><th class=\"n\">rcpts</th><th>subject</th></tr>\n");
        for (m, subject) in &c.recent {
            let _ = writeln!(
                b,
                "<tr class=\"capture\"><td>{}</td><td>{}</td><td class=\"helo\">{}</td><td>{}</td><td class=\"n\">{}</td><td class=\"subject\">{}</td></tr>",
                html(&m.time),
                html(&m.src_ip),
                html(&m.helo),
                html(&m.mail_from),
                m.rcpts,
                html(subject.as_deref().unwrap_or(""))
            );
        }
        b.push_str("</table>\n");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::captures::Captured;
    use crate::state::{AbuseRow, CaptureView};
    use port25_accounts::migration::{DomainReport, StillOn25};

    #[test]
    fn attacker_text_is_escaped() {
        let evil = "<script>alert(1)</script>";
        let snap = Snapshot {
            migration: Ok(vec![DomainReport {
                domain: "example.net".into(),
                active: 2,
                submission_only: 1,
                share: 50.0,
                threshold_met: false,
                still_on_25: vec![StillOn25 {
                    login: evil.into(),
                    last_ip: "192.0.2.1".into(),
                    last_seen: 0,
                    also_on_submission: false,
                }],
            }]),
            queues: vec![("local", Default::default())],
            captures: Some(Ok(CaptureView {
                messages: 1,
                connections: 1,
                last_hour: 1,
                sources: 1,
                top: vec![("192.0.2.9".into(), 1)],
                recent: vec![(
                    Captured {
                        time: "t".into(),
                        src_ip: "192.0.2.9".into(),
                        helo: evil.into(),
                        mail_from: evil.into(),
                        rcpts: 1,
                        digest: String::new(),
                    },
                    Some(evil.into()),
                )],
            })),
            abuse: Some(vec![AbuseRow {
                login: evil.into(),
                action: "lock".into(),
                reason: evil.into(),
                complaints_today: 3,
                ..Default::default()
            }]),
        };
        let r = Rejection {
            time: std::time::SystemTime::now(),
            event: "x",
            listener: "mx".into(),
            peer: "p".into(),
            helo: evil.into(),
            subject: evil.into(),
            reason: evil.into(),
        };
        let page = dashboard(
            evil,
            90.0,
            30,
            &snap,
            &[r],
            &Counters {
                sessions: 1,
                accepted: 0,
                rejections: 1,
                auth_failures: 0,
                screen: vec![(20_000, "reject".into(), "<end_user>".into(), 3)],
            },
        );
        assert!(!page.contains("<script"), "{page}");
        assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(page.contains("data-share=\"50.0\""));
        // Screening per day: 20000 days after the epoch is 2024-10-04.
        assert!(
            page.contains("<td>Fri, 04 Oct 2024</td><td>reject</td><td>&lt;end_user&gt;</td><td class=\"n\">3</td>"),
            "{page}"
        );
        assert!(page.contains("<tr class=\"abuse-login\" data-action=\"lock\" data-complaints=\"3\">"), "{page}");
    }
}
