//! The admin API's lists are bounded: `GET /api/calls?limit=N` and `GET /api/audit?limit=N`
//! answer at most 1,000 entries, newest first, whatever N (the router reads and encodes
//! them off its async worker, which carries every call's SIP).

use crate::common;

use common::process::Process;
use common::*;
use sas_router::pii::CallerNumber;
use sas_router::store::Store;
use sas_router::store::record::{CallRecord, Outcome};

/// 2026-11-23T07:15:02.123Z
const T0: u64 = 1_795_418_102_123;
const STORED: u64 = 1_005;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn call_and_audit_lists_answer_at_most_a_thousand_newest_first() {
    let data = temp_dir("api-lists");
    let store = Store::open(&data).unwrap();
    for i in 0..STORED {
        let at = T0 + i * 1_000;
        let id = format!("20261123T{:06}.000Z-{i:04}", 71502 + i);
        let caller = CallerNumber::new("0612345678");
        let mut record = CallRecord::new(
            id,
            format!("sip-{i}"),
            "samu".into(),
            "15".into(),
            caller,
            at,
        );
        record.outcome = Some(Outcome::Abandoned);
        record.ended_at = Some(at + 500);
        store.put_call(&record).unwrap();
    }
    drop(store);
    let config = data.join("config.toml");
    std::fs::write(&config, config_text(&Options::default(), &data)).unwrap();
    let router = Process::start(&config);
    let token = std::fs::read_to_string(data.join("admin.token")).unwrap();

    let (status, body) = http_get(router.http, "/api/calls?limit=100000", Some(&token)).await;
    assert_eq!(status, 200, "{body}");
    let listed: Vec<CallRecord> = serde_json::from_str(&body).unwrap();
    assert_eq!(listed.len(), 1_000);
    assert!(
        listed[0].id.ends_with("-1004"),
        "newest first: {}",
        listed[0].id
    );
    let (status, body) = http_get(router.http, "/api/calls?limit=3", Some(&token)).await;
    assert_eq!(status, 200);
    assert_eq!(
        serde_json::from_str::<Vec<CallRecord>>(&body)
            .unwrap()
            .len(),
        3
    );

    let (status, body) = http_get(router.http, "/api/audit?limit=100000", Some(&token)).await;
    assert_eq!(status, 200, "{body}");
    let entries: Vec<serde_json::Value> = serde_json::from_str(&body).unwrap();
    assert!(entries.len() <= 1_000);
}
