//! The sensor cannot relay by construction: nothing in its dependency
//! closure can deliver mail, and its sources open no outbound connection.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

/// Every package the spampot crate depends on, transitively (normal deps).
fn dependency_closure() -> BTreeSet<String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml");
    let out = Command::new(cargo)
        .args(["metadata", "--format-version", "1", "--manifest-path"])
        .arg(&manifest)
        .output()
        .expect("cargo metadata runs");
    assert!(out.status.success(), "cargo metadata: {}", String::from_utf8_lossy(&out.stderr));
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let nodes = meta["resolve"]["nodes"].as_array().unwrap();
    let name_of = |id: &str| {
        meta["packages"].as_array().unwrap().iter().find(|p| p["id"] == id).unwrap()["name"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let root = meta["packages"].as_array().unwrap().iter().find(|p| p["name"] == "port25-spampot").unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut seen = BTreeSet::new();
    let mut stack = vec![root];
    while let Some(id) = stack.pop() {
        let node = nodes.iter().find(|n| n["id"] == id.as_str()).unwrap();
        for dep in node["deps"].as_array().unwrap() {
            let normal = dep["dep_kinds"].as_array().unwrap().iter().any(|k| k["kind"].is_null());
            let dep_id = dep["pkg"].as_str().unwrap().to_owned();
            if normal && seen.insert(name_of(&dep_id)) {
                stack.push(dep_id);
            }
        }
    }
    seen
}

#[test]
fn no_delivery_or_queue_crate_and_no_mail_client_in_the_dependency_closure() {
    let deps = dependency_closure();
    assert!(deps.contains("port25-engine") && deps.contains("port25-capture"), "{deps:?}");
    for forbidden in
        ["port25-delivery", "port25-spool", "lettre", "mail-send", "reqwest", "hyper", "ureq", "hickory-resolver"]
    {
        assert!(!deps.contains(forbidden), "the spampot must not depend on {forbidden}: {deps:?}");
    }
}

#[test]
fn sources_open_no_outbound_connection() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    for entry in std::fs::read_dir(&src).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        for needle in ["TcpStream::connect", "TcpSocket", "UdpSocket", "std::net::TcpStream"] {
            assert!(!text.contains(needle), "{} uses {needle}: the sensor must never connect out", path.display());
        }
    }
}
