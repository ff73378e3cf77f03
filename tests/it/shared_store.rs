//! The shared store with a real PostgreSQL started by the test (`common::postgres`) and
//! the real binary: calls land there with their node and fields, wrap-up entries and audit
//! entries follow; a PostgreSQL outage in the middle of calls and a `kill -9` with a full
//! outbox lose nothing and write nothing twice; two routers write to one PostgreSQL and
//! `calls list --shared` shows both.

use crate::common::postgres::Postgres;
use crate::common::process::{Process, setup};
use crate::common::*;
use sas_router::shared_store::{NodeAudit, NodeRecord};
use sas_router::store::audit::AuditEntry;
use sas_router::store::record::{CallRecord, Outcome};
use std::path::Path;
use std::time::Duration;

const CALLS: &str = "SELECT count(*) FROM sas_calls";
const OUTBOX: &str = "sas_shared_store_outbox";

fn options(pg: &Postgres, node: &str) -> Options {
    Options {
        extra: pg.config(node),
        ..Options::default()
    }
}

/// One trunk call to the 15 answered by the seat phone in place, `talk_ms` long.
async fn call(router: &Process, talk_ms: u64) {
    let caller = trunk_caller(router.sip, "caller.xml", "15", talk_ms);
    assert!(
        finish(caller, Duration::from_secs(30)).await,
        "the call went through"
    );
}

fn local_records(config: &Path) -> Vec<CallRecord> {
    serde_json::from_str(&cli(&["calls", "list", "--json"], config)).unwrap()
}

fn shared_records(config: &Path) -> Vec<NodeRecord> {
    let json = cli(&["calls", "list", "--shared", "--json"], config);
    serde_json::from_str(&json).unwrap()
}

/// Every call in PostgreSQL once, as the node stored it.
async fn assert_same_records_once(pg: &Postgres, config: &Path, node: &str) {
    let local = local_records(config);
    let distinct = "SELECT count(DISTINCT (node, id)) FROM sas_calls";
    assert_eq!(pg.count(distinct).await, local.len() as i64);
    assert_eq!(pg.count(CALLS).await, local.len() as i64);
    let mut shared = shared_records(config);
    shared.sort_by(|a, b| b.record.id.cmp(&a.record.id));
    let shared: Vec<CallRecord> = shared
        .into_iter()
        .inspect(|r| assert_eq!(r.node, node))
        .map(|r| r.record)
        .collect();
    assert_eq!(shared, local);
}

/// A call through the real binary lands in PostgreSQL with its node and fields, the same
/// record as `calls show --json` gives; the seat's wrap-up entry written after the call
/// ended updates it; an audited recording read lands in `sas_audit`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_land_in_postgres_with_their_node_fields_wrap_up_and_audit() {
    let pg = Postgres::start();
    let (data, config) = setup("shared-fields", &options(&pg, "alpha"));
    let router = Process::start(&config).drain_log();
    let phone = seat(&router.as_router(&data, &config), "arm1", 1, 100).await;
    call(&router, 1_500).await;
    pg.wait_count(CALLS, 1).await;
    let local = &local_records(&config)[0];
    let row = pg
        .client()
        .await
        .query_one(
            "SELECT node, id, line, called, outcome, seat, wait_ms, talk_ms, \
             (extract(epoch FROM arrived_at) * 1000)::bigint, record::text FROM sas_calls",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, &str>(0), "alpha");
    assert_eq!(row.get::<_, &str>(1), local.id);
    assert_eq!(row.get::<_, &str>(2), "samu");
    assert_eq!(row.get::<_, &str>(3), "15");
    assert_eq!(row.get::<_, Option<&str>>(4), Some("answered"));
    assert_eq!(row.get::<_, Option<&str>>(5), Some("arm1"));
    assert_eq!(
        row.get::<_, Option<i64>>(6),
        local.wait_ms.map(|v| v as i64)
    );
    assert_eq!(
        row.get::<_, Option<i64>>(7),
        local.talk_ms.map(|v| v as i64)
    );
    assert_eq!(row.get::<_, i64>(8), local.arrived_at as i64);
    let stored: CallRecord = serde_json::from_str(row.get(9)).unwrap();
    assert_eq!(&stored, local);
    assert!(local.talk_ms.unwrap() >= 1_000, "{local:#?}");

    // The seat writes the call file after the call ended: a new version of the record.
    let harness = router.as_router(&data, &config);
    let token = cti_login(&harness, "arm1").await;
    let file = serde_json::json!({ "reason": "malaise", "note": "rappel prévu" });
    let (status, answer) = cti(&harness, &token, "POST", "/api/cti/file", file).await;
    assert_eq!(status, 200, "{answer}");
    let noted = "SELECT count(*) FROM sas_calls WHERE record->'file'->0->>'note' = 'rappel prévu'";
    pg.wait_count(noted, 1).await;
    assert_eq!(pg.count(CALLS).await, 1);

    // An audited read of the recording.
    let out = data.join("copy.wav");
    let out_arg = out.to_str().unwrap();
    let args = [
        "recordings",
        "get",
        &local.id,
        "--as",
        "dr-martin",
        "--out",
        out_arg,
    ];
    cli(&args, &config);
    let audited = "SELECT count(*) FROM sas_audit WHERE node = 'alpha' AND actor = 'dr-martin' \
                   AND action = 'recording.read'";
    pg.wait_count(audited, 1).await;
    // The same entry as the node's own audit log, with its node.
    let json = cli(&["audit", "list", "--shared", "--json"], &config);
    let shared: Vec<NodeAudit> = serde_json::from_str(&json).unwrap();
    let listed: Vec<AuditEntry> =
        serde_json::from_str(&cli(&["audit", "list", "--json"], &config)).unwrap();
    assert_eq!(shared.len(), 1, "{shared:?}");
    assert_eq!(shared[0].node, "alpha");
    assert_eq!(listed, [shared[0].entry.clone()]);
    assert_same_records_once(&pg, &config, "alpha").await;
    assert_eq!(router.metric(OUTBOX).await, 0.0);
    assert_eq!(router.metric("sas_shared_store_connected").await, 1.0);
    drop(phone);
}

/// PostgreSQL stops while a call is in progress, more calls come and go during the outage
/// (the router answers them as usual and the outbox grows), then PostgreSQL comes back:
/// every record arrives, once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_outage_in_the_middle_of_calls_loses_nothing_and_writes_nothing_twice() {
    let pg = Postgres::start();
    let (data, config) = setup("shared-outage", &options(&pg, "alpha"));
    let router = Process::start(&config).drain_log();
    let phone = seat(&router.as_router(&data, &config), "arm1", 5, 100).await;
    call(&router, 200).await;
    pg.wait_count(CALLS, 1).await;

    // A call in progress when PostgreSQL goes away.
    let long = trunk_caller(router.sip, "caller.xml", "15", 3_000);
    router
        .await_metric("sas_seats{role=\"arm\",state=\"busy\"}", 1.0)
        .await;
    pg.stop();
    assert!(finish(long, Duration::from_secs(30)).await);
    for _ in 0..3 {
        call(&router, 200).await;
    }
    router.await_metric(OUTBOX, 4.0).await;
    assert_eq!(router.metric("sas_shared_store_connected").await, 0.0);
    assert!(router.metric("sas_shared_store_failures_total").await >= 1.0);
    assert_eq!(local_records(&config).len(), 5);

    pg.restart();
    router.await_metric(OUTBOX, 0.0).await;
    pg.wait_count(CALLS, 5).await;
    assert_eq!(router.metric("sas_shared_store_shipped_total").await, 5.0);
    assert_same_records_once(&pg, &config, "alpha").await;
    drop(phone);
}

/// `kill -9` with PostgreSQL down, calls in the outbox and one call in flight; PostgreSQL
/// comes back and the router restarts: the finished calls and the interrupted one arrive,
/// each once. The router starts and answers calls without PostgreSQL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_9_with_a_full_outbox_ships_everything_once_after_restart() {
    let pg = Postgres::start();
    pg.stop();
    let (data, config) = setup("shared-kill", &options(&pg, "alpha"));
    let mut router = Process::start(&config).drain_log();
    let phone = seat(&router.as_router(&data, &config), "arm1", 3, 100).await;
    for _ in 0..2 {
        call(&router, 200).await;
    }
    router.await_metric(OUTBOX, 2.0).await;
    let in_flight = trunk_caller(router.sip, "caller.xml", "15", 60_000);
    router
        .await_metric("sas_seats{role=\"arm\",state=\"busy\"}", 1.0)
        .await;
    // The journal past its flush interval.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    router.crash();
    drop((phone, in_flight));

    pg.restart();
    let restarted = Process::start(&config).drain_log();
    pg.wait_count(CALLS, 3).await;
    restarted.await_metric(OUTBOX, 0.0).await;
    let interrupted = "SELECT count(*) FROM sas_calls WHERE outcome = 'interrupted'";
    assert_eq!(pg.count(interrupted).await, 1);
    assert_same_records_once(&pg, &config, "alpha").await;
    let outcomes: Vec<Option<Outcome>> = local_records(&config).iter().map(|r| r.outcome).collect();
    assert_eq!(outcomes.len(), 3, "{outcomes:?}");
}

/// Two routers (two data directories, two node names) write to one PostgreSQL: `calls list
/// --shared` of either shows both nodes' calls, `calls show --shared` one of them, and so
/// does the admin API with `source=shared` (400 from a router without a shared store);
/// local reads stay local.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_routers_share_one_postgres_and_calls_list_shared_shows_both() {
    let pg = Postgres::start();
    let (data_a, config_a) = setup("shared-a", &options(&pg, "alpha"));
    let (data_b, config_b) = setup("shared-b", &options(&pg, "bravo"));
    let a = Process::start(&config_a).drain_log();
    let b = Process::start(&config_b).drain_log();
    let phone_a = seat(&a.as_router(&data_a, &config_a), "arm1", 1, 100).await;
    let phone_b = seat(&b.as_router(&data_b, &config_b), "arm1", 1, 100).await;
    call(&a, 200).await;
    call(&b, 200).await;
    pg.wait_count(CALLS, 2).await;

    let shared = shared_records(&config_a);
    let mut nodes: Vec<&str> = shared.iter().map(|r| r.node.as_str()).collect();
    nodes.sort();
    assert_eq!(nodes, ["alpha", "bravo"]);
    assert_eq!(shared_records(&config_b), shared);
    assert_eq!(local_records(&config_a).len(), 1);
    let listing = cli(&["calls", "list", "--shared"], &config_a);
    assert!(listing.starts_with("NODE "), "{listing}");
    assert!(
        listing.contains("alpha ") && listing.contains("bravo "),
        "{listing}"
    );
    assert!(
        !listing.contains("0612345678"),
        "caller numbers masked: {listing}"
    );

    let b_call = local_records(&config_b).remove(0);
    let shown = cli(&["calls", "show", &b_call.id, "--shared"], &config_a);
    assert!(shown.starts_with("node      bravo\n"), "{shown}");
    assert!(shown.contains(&b_call.id), "{shown}");

    let token = a.as_router(&data_a, &config_a).token();
    let (status, body) = http_get(a.http, "/api/calls?source=shared", Some(&token)).await;
    assert_eq!(status, 200, "{body}");
    let api: Vec<NodeRecord> = serde_json::from_str(&body).unwrap();
    assert_eq!(api, shared);
    let path = format!("/api/calls/{}?source=shared&node=bravo", b_call.id);
    let (status, body) = http_get(a.http, &path, Some(&token)).await;
    assert_eq!(status, 200, "{body}");
    let one: NodeRecord = serde_json::from_str(&body).unwrap();
    assert_eq!((one.node.as_str(), &one.record), ("bravo", &b_call));
    let (status, _) = http_get(a.http, "/api/calls?source=elsewhere", Some(&token)).await;
    assert_eq!(status, 400);
    let (status, body) = http_get(a.http, "/api/audit?source=shared", Some(&token)).await;
    assert_eq!((status, body.as_str()), (200, "[]"));
    // A router with no shared store says so.
    let mut plain = start(Options::default()).await;
    let (status, body) =
        http_get(plain.http, "/api/calls?source=shared", Some(&plain.token())).await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("[shared_store]"), "{body}");
    plain.stop().await;
    drop((phone_a, phone_b));
}

/// What a crash between PostgreSQL's commit and the outbox delete does: the same batch sent
/// again writes nothing twice, and an older version of a record sent after a newer one
/// does not replace it. A NUL character in a record is written, as U+FFFD.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replayed_and_stale_batches_write_nothing_twice() {
    use sas_router::shared_store::SharedStoreConfig;
    use sas_router::shared_store::pg::Writer;
    use sas_router::store::Store;
    use sas_router::store::record::{FileEntry, Qualification};

    let pg = Postgres::start();
    let dir = temp_dir("shared-replay");
    let store = Store::open(&dir).unwrap().with_outbox(true);
    let caller = sas_router::pii::CallerNumber::new("0612345678");
    let mut record = CallRecord::new(
        "c1".into(),
        "x".into(),
        "samu".into(),
        "15".into(),
        caller,
        1,
    );
    record.outcome = Some(Outcome::Answered);
    // A NUL from some SIP header: PostgreSQL refuses it, and it must not hold up the outbox.
    let kind = sas_router::store::record::EventKind::EnterQueue;
    record.event(1, kind, None, Some("odd\0header".into()));
    store.put_call(&record).unwrap();
    let note = Qualification {
        note: Some("rappel".into()),
        ..Default::default()
    };
    let entry = FileEntry {
        at: 2,
        seat: "arm1".into(),
        data: note,
    };
    store.append_file("c1", &entry).unwrap();
    let audit = AuditEntry {
        at: 3,
        actor: "dr".into(),
        action: "recording.read".into(),
        target: "c1".into(),
        detail: None,
    };
    store.audit(&audit).unwrap();
    let rows = store.outbox_batch(10).unwrap();
    assert_eq!(rows.len(), 3);

    let config: SharedStoreConfig = toml::from_str(&format!("url = \"{}\"", pg.url())).unwrap();
    let mut writer = Writer::connect(&config, "alpha").await.unwrap();
    // Twice the whole batch, then the first version alone (stale).
    writer.write(&rows).await.unwrap();
    writer.write(&rows).await.unwrap();
    writer.write(&rows[..1]).await.unwrap();
    // A second writer migrates nothing again.
    Writer::connect(&config, "alpha").await.unwrap();
    assert_eq!(pg.count(CALLS).await, 1);
    assert_eq!(pg.count("SELECT count(*) FROM sas_audit").await, 1);
    // One row per schema version (0001 to 0003), each applied once.
    let versions = pg.count("SELECT count(*) FROM sas_schema").await;
    assert_eq!(
        versions,
        pg.count("SELECT count(DISTINCT version) FROM sas_schema")
            .await
    );
    assert_eq!(versions, 3);
    let rev = pg.count("SELECT rev FROM sas_calls").await;
    assert_eq!(rev, rows[1].0 as i64);
    let notes = "SELECT count(*) FROM sas_calls WHERE record->'file'->0->>'note' = 'rappel'";
    assert_eq!(pg.count(notes).await, 1);
    let scrubbed = "SELECT count(*) FROM sas_calls WHERE record::text LIKE '%odd\u{FFFD}header%'";
    assert_eq!(pg.count(scrubbed).await, 1);
}

/// Measurement (README "Shared store"): how fast a full outbox drains once PostgreSQL is
/// back. `cargo test --test it shared_store::drain_rate -- --ignored --nocapture`
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement, not a check"]
async fn drain_rate() {
    use sas_router::shared_store::SharedStoreConfig;
    use sas_router::shared_store::shipper::{Shipper, ShipperMetrics};
    use sas_router::store::Store;

    const N: usize = 5_000;
    let pg = Postgres::start();
    let dir = temp_dir("shared-drain");
    let store = Store::open(&dir).unwrap().with_outbox(true);
    let caller = sas_router::pii::CallerNumber::new("0612345678");
    let mut record = CallRecord::new(
        "c".into(),
        "x".into(),
        "samu".into(),
        "15".into(),
        caller,
        1,
    );
    record.outcome = Some(Outcome::Answered);
    // About the size of a real answered call's record (offers, timeline, route).
    for at in 0..25 {
        let kind = sas_router::store::record::EventKind::EnterQueue;
        record.event(
            at,
            kind,
            Some("arm1"),
            Some("a detail of some length".into()),
        );
    }
    // The call path's cost of the outbox: the same writes without it, then with it.
    let plain = Store::open(&temp_dir("shared-plain")).unwrap();
    let mut cost = Vec::new();
    for (s, n) in [(&plain, 1_000), (&store, N)] {
        let t = std::time::Instant::now();
        for i in 0..n {
            record.id = format!("20261203T060000.000Z-{i:05}");
            s.put_call(&record).unwrap();
        }
        cost.push(t.elapsed() / n as u32);
    }
    eprintln!(
        "put_call: {:?} without the outbox, {:?} with it",
        cost[0], cost[1]
    );
    let bytes = serde_json::to_vec(&record).unwrap().len();
    let config: SharedStoreConfig = toml::from_str(&format!("url = \"{}\"", pg.url())).unwrap();
    let metrics = ShipperMetrics::register(&prometheus::Registry::new()).unwrap();
    let shipper = Shipper::new(
        store.clone(),
        config,
        "alpha".into(),
        metrics,
        Duration::from_secs(10),
    );
    let stop = tokio_util::sync::CancellationToken::new();
    let started = std::time::Instant::now();
    let task = tokio::spawn(shipper.run(stop.clone()));
    while store.outbox_pending() > 0 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let took = started.elapsed();
    stop.cancel();
    task.await.unwrap();
    assert_eq!(pg.count(CALLS).await, N as i64);
    eprintln!(
        "{N} records of {bytes} bytes shipped in {took:?}: {:.0} records/s",
        N as f64 / took.as_secs_f64()
    );
}
