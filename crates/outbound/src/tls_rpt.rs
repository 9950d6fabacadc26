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

/// The UTC date of a Unix time, YYYY-MM-DD (civil-from-days, H. Hinnant).
pub fn day_of(unix: u64) -> String {
    let days = (unix / 86_400) as i64;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
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
