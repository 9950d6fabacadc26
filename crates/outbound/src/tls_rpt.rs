//! TLS-RPT (RFC 8460): for each recipient domain with a policy and each
//! UTC day, how many TLS sessions to its MXes succeeded and which failed
//! why, written as the RFC's JSON aggregate report (§4.4) to
//! `data_dir/tls-rpt/YYYY-MM-DD/DOMAIN.json`.
//!
//! The file is rewritten (temporary file, rename) after every session
//! counted, so it is complete at any moment and a restart goes on from
//! it: the day's counts are read back the first time the domain is
//! counted again. docs/outbound-tls.md says how to read it.

use port25_events as ev;
use port25_events::emit;
use serde_json::{json, Map, Value};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// The policy a session was under, as the report names it (§4.4
/// `policy`): `sts` with the policy's lines and MX patterns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyDesc {
    pub policy_type: &'static str,
    pub policy_string: Vec<String>,
    pub mx_host: Vec<String>,
}

/// One failed session (§4.4 `failure-details`).
#[derive(Debug, Clone)]
pub struct Failure<'a> {
    pub result_type: &'static str,
    pub receiving_mx_hostname: Option<&'a str>,
    pub receiving_ip: Option<std::net::IpAddr>,
    pub sending_mta_ip: Option<std::net::IpAddr>,
    pub additional_information: &'a str,
}

pub struct TlsRpt {
    dir: PathBuf,
    /// Who we are in the report: organization-name and contact-info.
    hostname: String,
    /// (day, domain) → the report as written.
    open: Mutex<HashMap<(String, String), Value>>,
}

/// The UTC date of a Unix time, YYYY-MM-DD.
pub fn day_of(unix: u64) -> String {
    let (y, m, d) = port25_time::civil_from_days((unix / 86_400) as i64);
    format!("{y:04}-{m:02}-{d:02}")
}

/// The `mailto:` addresses of the `rua=` of a domain's `_smtp._tls` TXT
/// records (RFC 8460 §3): exactly one record must start with
/// `v=TLSRPTv1`; at most 10 addresses, each a plain `local@domain`
/// (anything that could break an SMTP command or a header is dropped).
/// `https:` URIs are not supported (the report stays on disk).
pub fn mailto_rua<S: AsRef<str>>(records: &[S]) -> Vec<String> {
    let ours: Vec<&str> = records.iter().map(AsRef::as_ref).filter(|r| r.starts_with("v=TLSRPTv1")).collect();
    let [record] = ours.as_slice() else { return Vec::new() };
    let Some(rua) = record.split(';').map(|f| f.trim_matches([' ', '\t'])).find_map(|f| f.strip_prefix("rua=")) else {
        return Vec::new();
    };
    rua.split(',')
        .filter_map(|u| u.trim_matches([' ', '\t']).strip_prefix("mailto:"))
        .filter(|a| {
            a.len() <= 254
                && a.split_once('@').is_some_and(|(l, d)| !l.is_empty() && !d.is_empty() && !d.contains('@'))
                && a.bytes().all(|b| b.is_ascii_alphanumeric() || b"@.-_+=".contains(&b))
        })
        .take(10)
        .map(str::to_owned)
        .collect()
}

impl std::fmt::Debug for TlsRpt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TlsRpt({})", self.dir.display())
    }
}

impl TlsRpt {
    pub fn new(dir: PathBuf, hostname: &str) -> TlsRpt {
        TlsRpt { dir, hostname: hostname.to_owned(), open: Mutex::default() }
    }

    /// Where the report of `domain` for `day` is.
    pub fn path(&self, day: &str, domain: &str) -> PathBuf {
        self.dir.join(day).join(format!("{domain}.json"))
    }

    pub fn success(&self, domain: &str, policy: &PolicyDesc) {
        self.count(domain, policy, None);
    }

    pub fn failure(&self, domain: &str, policy: &PolicyDesc, failure: &Failure<'_>) {
        self.count(domain, policy, Some(failure));
    }

    fn count(&self, domain: &str, policy: &PolicyDesc, failure: Option<&Failure<'_>>) {
        let day = day_of(port25_time::unix_secs());
        let path = self.path(&day, domain);
        let mut open = self.open.lock().expect("tls-rpt reports");
        // Only today's reports stay in memory.
        open.retain(|(d, _), _| *d == day);
        let report = open
            .entry((day.clone(), domain.to_owned()))
            .or_insert_with(|| read(&path).unwrap_or_else(|| self.empty(&day, domain)));
        add(report, policy, failure);
        if let Err(e) = write(&path, report) {
            emit!(error, ev::OUTBOUND_TLS_RPT_FAILED, path = %path.display(), error = %e);
        }
    }

    /// Mails the reports of finished days (before today) that are not sent
    /// yet to the `rua=mailto:` of their domain, through `outbound`;
    /// marks each with `DOMAIN.json.sent` (also when the domain asks for
    /// none). A DNS failure leaves it for the next round.
    pub async fn send_finished(&self, dns: &crate::dns::Dns, outbound: &crate::Enqueuer) {
        let today = day_of(port25_time::unix_secs());
        let Ok(days) = std::fs::read_dir(&self.dir) else { return };
        let mut days: Vec<String> = days.filter_map(|d| d.ok()?.file_name().into_string().ok()).collect();
        days.sort();
        for day in days.into_iter().filter(|d| d.len() == 10 && *d < today) {
            let Ok(files) = std::fs::read_dir(self.dir.join(&day)) else { continue };
            for f in files.filter_map(|f| f.ok()) {
                let path = f.path();
                let Some(domain) = path.file_name().and_then(|n| n.to_str()).and_then(|n| n.strip_suffix(".json"))
                else {
                    continue;
                };
                let sent = path.with_extension("json.sent");
                if sent.exists() {
                    continue;
                }
                let rua = match dns.txt(&format!("_smtp._tls.{domain}")).await {
                    Ok(records) => mailto_rua(&records),
                    Err(_) => continue,
                };
                let Ok(json) = std::fs::read(&path) else { continue };
                let mut done = format!("{}\n", rua.join(","));
                if !rua.is_empty() {
                    let message = self.message(&day, domain, &json, rua.clone());
                    let id = message.id.clone();
                    if let Err(e) = outbound.enqueue(message).await {
                        emit!(error, ev::OUTBOUND_TLS_RPT_FAILED, path = %path.display(), error = %e);
                        continue;
                    }
                    emit!(info, ev::OUTBOUND_TLS_RPT_SENT, destination = %domain, day = %day, id = %id, to = %rua.join(","));
                    done = format!("{id} {done}");
                }
                if let Err(e) = std::fs::write(&sent, done) {
                    emit!(error, ev::OUTBOUND_TLS_RPT_FAILED, path = %sent.display(), error = %e);
                }
            }
        }
    }

    /// The report as mail (RFC 8460 §5.3): multipart/report with the JSON
    /// gzipped as application/tlsrpt+gzip, from the null sender (a report
    /// that cannot be delivered makes no bounce).
    fn message(&self, day: &str, domain: &str, json: &[u8], rcpts: Vec<String>) -> port25_spool::SpooledMessage {
        use std::io::Write;
        let now = port25_time::unix_secs();
        let host = &self.hostname;
        let report_id = format!("{day}_{domain}@{host}");
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        let _ = gz.write_all(json);
        let gz = gz.finish().unwrap_or_default();
        let b64 = port25_wire::base64::encode(&gz);
        let mut body = String::new();
        for chunk in b64.as_bytes().chunks(76) {
            body.push_str(&String::from_utf8_lossy(chunk));
            body.push_str("\r\n");
        }
        let boundary = format!("tlsrpt-{:016x}", fastrand::u64(..));
        // The filename's Unix times of the day's first and last second.
        let part = |r: std::ops::Range<usize>, default: i64| day.get(r).and_then(|v| v.parse().ok()).unwrap_or(default);
        let (y, m, d) = (part(0..4, 1970), part(5..7, 1), part(8..10, 1));
        let at = |hh, mm, ss| port25_time::unix_from_civil(y, m, d, hh, mm, ss).unwrap_or(0);
        let content = format!(
            "From: TLS reports <postmaster@{host}>\r\nTo: {to}\r\nSubject: Report Domain: {domain} Submitter: {host} Report-ID: <{report_id}>\r\n\
             Date: {date}\r\nMessage-ID: <{report_id}.{now}.tlsrpt>\r\nTLS-Report-Domain: {domain}\r\nTLS-Report-Submitter: {host}\r\n\
             MIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=\"tlsrpt\"; boundary=\"{boundary}\"\r\n\r\n\
             --{boundary}\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n\
             The TLS report (RFC 8460) of {host} for {domain} on {day} (UTC) is attached.\r\n\r\n\
             --{boundary}\r\nContent-Type: application/tlsrpt+gzip\r\nContent-Transfer-Encoding: base64\r\n\
             Content-Disposition: attachment; filename=\"{host}!{domain}!{start}!{end}.json.gz\"\r\n\r\n{body}\r\n--{boundary}--\r\n",
            to = rcpts.iter().map(|r| format!("<{r}>")).collect::<Vec<_>>().join(", "),
            date = crate::dsn::date(now),
            start = at(0, 0, 0),
            end = at(23, 59, 59),
        );
        port25_spool::SpooledMessage {
            id: format!("R{now:X}{:04X}", fastrand::u16(..)),
            received_at: now,
            peer: "local".into(),
            helo: host.clone(),
            from: String::new(),
            rcpts,
            content: content.into_bytes(),
            from_mx: false,
        }
    }

    fn empty(&self, day: &str, domain: &str) -> Value {
        json!({
            "organization-name": self.hostname,
            "date-range": {
                "start-datetime": format!("{day}T00:00:00Z"),
                "end-datetime": format!("{day}T23:59:59Z"),
            },
            "contact-info": format!("postmaster@{}", self.hostname),
            "report-id": format!("{day}_{domain}@{}", self.hostname),
            "policies": [],
        })
    }
}

fn read(path: &Path) -> Option<Value> {
    let v: Value = serde_json::from_slice(&std::fs::read(path).ok()?).ok()?;
    v.get("policies")?.as_array()?;
    Some(v)
}

fn write(path: &Path, report: &Value) -> std::io::Result<()> {
    let dir = path.parent().expect("a report path has a directory");
    std::fs::create_dir_all(dir)?;
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, serde_json::to_vec_pretty(report).map_err(std::io::Error::other)?)?;
    std::fs::rename(&tmp, path)
}

/// Counts one session in `report` under `policy` (its entry made if new).
fn add(report: &mut Value, policy: &PolicyDesc, failure: Option<&Failure<'_>>) {
    let Some(policies) = report.get_mut("policies").and_then(Value::as_array_mut) else { return };
    let wanted = json!({
        "policy-type": policy.policy_type,
        "policy-string": policy.policy_string,
        "mx-host": policy.mx_host,
    });
    let at = match policies.iter().position(|p| p.get("policy").is_some_and(|p| same_policy(p, &wanted))) {
        Some(i) => i,
        None => {
            let mut p = wanted.clone();
            if let Some(domain) = report_domain(report) {
                p["policy-domain"] = Value::String(domain);
            }
            policies_push(report, p);
            report["policies"].as_array().map_or(0, |a| a.len() - 1)
        }
    };
    let Some(entry) = report.get_mut("policies").and_then(|p| p.get_mut(at)) else { return };
    let key = if failure.is_some() { "total-failure-session-count" } else { "total-successful-session-count" };
    let n = entry["summary"][key].as_u64().unwrap_or(0);
    entry["summary"][key] = Value::from(n + 1);
    let Some(f) = failure else { return };
    let mut detail = Map::new();
    detail.insert("result-type".into(), f.result_type.into());
    if let Some(ip) = f.sending_mta_ip {
        detail.insert("sending-mta-ip".into(), ip.to_canonical().to_string().into());
    }
    if let Some(h) = f.receiving_mx_hostname {
        detail.insert("receiving-mx-hostname".into(), h.into());
    }
    if let Some(ip) = f.receiving_ip {
        detail.insert("receiving-ip".into(), ip.to_canonical().to_string().into());
    }
    let details = entry.as_object_mut().expect("policy entry").entry("failure-details").or_insert_with(|| json!([]));
    let Some(details) = details.as_array_mut() else { return };
    let same = details.iter_mut().find(|d| {
        let mut d = (*d).clone();
        if let Some(o) = d.as_object_mut() {
            o.remove("failed-session-count");
            o.remove("additional-information");
        }
        d == Value::Object(detail.clone())
    });
    match same {
        Some(d) => {
            let n = d["failed-session-count"].as_u64().unwrap_or(0);
            d["failed-session-count"] = Value::from(n + 1);
            d["additional-information"] = f.additional_information.into();
        }
        None => {
            detail.insert("failed-session-count".into(), 1.into());
            detail.insert("additional-information".into(), f.additional_information.into());
            details.push(Value::Object(detail));
        }
    }
}

fn same_policy(have: &Value, wanted: &Value) -> bool {
    ["policy-type", "policy-string", "mx-host"].iter().all(|k| have.get(k) == wanted.get(k))
}

/// The domain a report is about, from its report-id (`DAY_DOMAIN@us`).
fn report_domain(report: &Value) -> Option<String> {
    let id = report.get("report-id")?.as_str()?;
    let (_, rest) = id.split_once('_')?;
    Some(rest.rsplit_once('@')?.0.to_owned())
}

fn policies_push(report: &mut Value, policy: Value) {
    if let Some(a) = report.get_mut("policies").and_then(Value::as_array_mut) {
        a.push(json!({
            "policy": policy,
            "summary": {"total-successful-session-count": 0, "total-failure-session-count": 0},
        }));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_mailto_rua_only() {
        let r = ["v=TLSRPTv1; rua=mailto:tls@them.example, https://r.example/x,mailto:b@x.example"];
        assert_eq!(mailto_rua(&r), ["tls@them.example", "b@x.example"]);
        assert!(mailto_rua(&["v=TLSRPTv1; rua=mailto:a@b.example", "v=TLSRPTv1; rua=mailto:c@d.example"]).is_empty());
        assert!(mailto_rua(&["v=TLSRPTv1; rua=mailto:a@b.example>\r\nRCPT TO:<x@y"]).is_empty());
        assert!(mailto_rua(&["v=spf1 -all"]).is_empty());
    }

    #[test]
    fn days_are_utc_dates() {
        assert_eq!(day_of(0), "1970-01-01");
        assert_eq!(day_of(951_782_400), "2000-02-29");
        assert_eq!(day_of(1_796_169_600), "2026-12-02");
    }

    #[test]
    fn counts_sessions_and_failures_per_policy_and_reads_them_back() {
        let dir = tempfile::tempdir().unwrap();
        let rpt = TlsRpt::new(dir.path().to_owned(), "mx.us.example");
        let policy = PolicyDesc {
            policy_type: "sts",
            policy_string: vec!["version: STSv1".into(), "mode: testing".into()],
            mx_host: vec!["*.them.example".into()],
        };
        rpt.success("them.example", &policy);
        let f = Failure {
            result_type: "certificate-host-mismatch",
            receiving_mx_hostname: Some("mx.them.example"),
            receiving_ip: Some("192.0.2.1".parse().unwrap()),
            sending_mta_ip: None,
            additional_information: "x",
        };
        rpt.failure("them.example", &policy, &f);
        // A restart: a new recorder goes on from the file.
        let rpt = TlsRpt::new(dir.path().to_owned(), "mx.us.example");
        rpt.failure("them.example", &policy, &f);
        let day = day_of(port25_time::unix_secs());
        let v: Value = serde_json::from_slice(&std::fs::read(rpt.path(&day, "them.example")).unwrap()).unwrap();
        let p = &v["policies"][0];
        assert_eq!(p["policy"]["policy-domain"], "them.example");
        assert_eq!(p["summary"]["total-successful-session-count"], 1);
        assert_eq!(p["summary"]["total-failure-session-count"], 2);
        assert_eq!(p["failure-details"][0]["failed-session-count"], 2);
        assert_eq!(p["failure-details"][0]["result-type"], "certificate-host-mismatch");
    }
}
