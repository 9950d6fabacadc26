//! The sensor's disk quota is on without configuration: a sensor started
//! with no `[store]` table enforces 1 GiB (a sparse file stands in for a
//! gigabyte of old captures, so the test writes next to nothing).

use crate::harness::*;
use std::path::Path;
use std::time::{Duration, SystemTime};

#[test]
fn a_sensor_without_store_settings_enforces_the_default_quota() {
    let data = tempfile::tempdir().unwrap();
    // 1.5 GiB of "old bodies" (apparent size; sparse on disk), seen long ago.
    let old = data.path().join("capture/bodies/00/00").join(format!("{}.zst", "0".repeat(64)));
    std::fs::create_dir_all(old.parent().unwrap()).unwrap();
    let f = std::fs::File::create(&old).unwrap();
    f.set_len(3 << 29).unwrap();
    f.set_modified(SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000_000)).unwrap();
    drop(f);
    let root = data.path().to_owned();
    let s = Server::start_with("spampot", move |_: &Path| {
        format!(
            "sensor = \"it-sensor\"\ndata_dir = \"{}\"\nlog_format = \"json\"\nlog_level = \"info\"\n\
             [[listener]]\nname = \"smtp\"\naddress = \"127.0.0.1:0\"\nkind = \"smtp\"\n",
            root.display()
        )
    });
    let mut c = Client::open(s.addr());
    assert!(c.cmd("EHLO quota.example").starts_with("250"));
    assert!(c
        .send_mail("a@spam.example", &["v@victim.example"], "Subject: new\r\n\r\nnew body\r\n")
        .starts_with("250"));
    let rotated = s
        .wait_event("port25.spampot.quota.rotated", Duration::from_secs(10))
        .expect("no quota rotation with the default settings");
    assert_eq!(rotated["limit"].as_u64(), Some(1 << 30), "{rotated}");
    assert!(rotated["bytes"].as_u64().unwrap() >= 3 << 29, "{rotated}");
    assert!(!old.exists(), "the body seen longest ago was removed");
}
