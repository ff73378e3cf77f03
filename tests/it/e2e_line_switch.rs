//! Switching a line to the backup centre through the real binary: a supervisor (admin
//! token, or the CLI) switches the 15, the next SIPp trunk call is forwarded at once to a
//! SIPp "backup centre" through the trunk, the audit log says who and why, restoring queues
//! the next call again; the switch survives a restart; `backup_when = ["no_seat"]` sends a
//! call to the backup centre at once when no ARM is logged in; and two nodes sharing one
//! PostgreSQL (`[shared_store]`) follow each other's switches and restores.

use crate::common;

use common::process::{Process, setup};
use common::*;
use sas_router::store::record::Outcome;
use std::time::Duration;

/// The 15 with a `backup` step (the backup centre) and `extra` entry keys.
fn plan(extra: &str) -> String {
    switchable_plan(extra)
}

/// A router process on `plan`, forwarding to `centre_port`: (process, its view).
fn start(name: &str, plan: String, centre_port: u16) -> (Process, Router) {
    start_with(name, plan, centre_port, String::new())
}

/// [`start`] with `extra` config sections.
fn start_with(name: &str, plan: String, centre_port: u16, extra: String) -> (Process, Router) {
    let opts = Options {
        plans: Some(plan),
        outbound: Some(format!("127.0.0.1:{centre_port}").parse().unwrap()),
        extra,
        ..Options::default()
    };
    let (data, config) = setup(name, &opts);
    let process = Process::start(&config).drain_log();
    let view = process.as_router(&data, &config);
    (process, view)
}

async fn lines(router: &Router) -> serde_json::Value {
    let (status, body) =
        http_get(router.http, "/api/supervisor/lines", Some(&router.token())).await;
    assert_eq!(status, 200, "{body}");
    serde_json::from_str(&body).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_switched_line_goes_to_the_backup_centre_until_restored() {
    let (centre, port) = answering_sipp("127.0.0.1:9".parse().unwrap(), 1, 200);
    let (_process, router) = start("line-switch", plan(""), port);
    let token = router.token();
    // An empty reason, an unknown line: clear refusals.
    let path = "/api/supervisor/lines/samu/switch";
    let (status, body) =
        http_send(router.http, "POST", path, Some(&token), r#"{"reason":" "}"#).await;
    assert_eq!(status, 400, "{body}");
    let unknown = "/api/supervisor/lines/nope/switch";
    let (status, body) = http_send(
        router.http,
        "POST",
        unknown,
        Some(&token),
        r#"{"reason":"x"}"#,
    )
    .await;
    assert_eq!(status, 404, "{body}");
    // Switched through the API.
    let body = r#"{"reason":"plateau évacué","move_waiting":true}"#;
    let (status, answer) = http_send(router.http, "POST", path, Some(&token), body).await;
    assert_eq!(status, 200, "{answer}");
    let listed = lines(&router).await;
    assert_eq!(listed["lines"][0]["line"], "samu");
    assert_eq!(listed["lines"][0]["switched"], true);
    assert_eq!(listed["lines"][0]["by"], "admin");
    let table = cli(&["lines", "list"], &router.config_path);
    assert!(
        table.contains("SWITCHED") && table.contains("plateau évacué"),
        "{table}"
    );
    // The next trunk call lands at the backup centre, with no seat and no wait.
    let caller = trunk_caller(router.sip, "caller.xml", "15", 2_000);
    assert!(
        finish(caller, Duration::from_secs(30)).await,
        "forwarded caller"
    );
    assert!(
        finish(centre, Duration::from_secs(10)).await,
        "the centre answered"
    );
    // Audited: who, what, why.
    let audit = cli(&["audit", "list"], &router.config_path);
    assert!(
        audit.contains("line.switch")
            && audit.contains("admin")
            && audit.contains("plateau évacué"),
        "{audit}"
    );
    // Restored through the CLI: the next call waits in the queue (then hangs up).
    let out = cli(
        &["lines", "restore", "samu", "--reason", "retour"],
        &router.config_path,
    );
    assert!(out.contains("line samu restored"), "{out}");
    assert_eq!(lines(&router).await["lines"][0]["switched"], false);
    let caller = trunk_caller(router.sip, "caller_cancel.xml", "15", 2_000);
    assert!(
        finish(caller, Duration::from_secs(30)).await,
        "queued caller"
    );
    let records = wait_records(&router, 2).await;
    let (queued, forwarded) = (&records[0], &records[1]);
    assert_eq!(
        forwarded.outcome,
        Some(Outcome::Forwarded),
        "{forwarded:#?}"
    );
    assert!(
        forwarded
            .route
            .iter()
            .any(|l| l.contains("line switched to backup: samu/secours")),
        "{:?}",
        forwarded.route
    );
    assert_ne!(queued.outcome, Some(Outcome::Forwarded), "{queued:#?}");
    assert_eq!(queued.queue.as_deref(), Some("arm"));
    let audit = cli(&["audit", "list"], &router.config_path);
    assert!(audit.contains("line.restore"), "{audit}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_line_switch_survives_a_restart() {
    let (mut process, router) = start("line-switch-restart", plan(""), 9);
    let out = cli(
        &["lines", "switch", "samu", "--reason", "panne du plateau"],
        &router.config_path,
    );
    assert!(out.contains("line samu switched"), "{out}");
    process.crash();
    let restarted = Process::start(&router.config_path).drain_log();
    let router = restarted.as_router(&router.data, &router.config_path);
    let listed = lines(&router).await;
    assert_eq!(listed["lines"][0]["switched"], true, "{listed}");
    assert_eq!(
        restarted.metric("sas_line_switched{line=\"samu\"}").await,
        1.0
    );
    assert_eq!(listed["lines"][0]["reason"], "panne du plateau");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_no_arm_logged_in_a_call_goes_to_the_backup_centre_at_once() {
    let (centre, port) = answering_sipp("127.0.0.1:9".parse().unwrap(), 1, 200);
    let (_process, router) = start("line-no-seat", plan("backup_when = [\"no_seat\"]\n"), port);
    let caller = trunk_caller(router.sip, "caller.xml", "15", 2_000);
    assert!(
        finish(caller, Duration::from_secs(30)).await,
        "forwarded caller"
    );
    assert!(
        finish(centre, Duration::from_secs(10)).await,
        "the centre answered"
    );
    let records = wait_records(&router, 1).await;
    assert_eq!(
        records[0].outcome,
        Some(Outcome::Forwarded),
        "{:#?}",
        records[0]
    );
    assert!(
        records[0]
            .route
            .iter()
            .any(|l| l.contains("no arm seat logged in and unpaused → backup secours")),
        "{:?}",
        records[0].route
    );
    assert!(
        records[0].wait_ms.unwrap_or(0) < 5_000,
        "{:?}",
        records[0].wait_ms
    );
}

/// The supervisor's board shows a switched line in red, and restores it with one button.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_board_shows_a_switched_line_in_red_and_restores_it() {
    use common::browser::with_browser;
    let dir = temp_dir("console-line-switch");
    with_browser(&dir, |browser| async move {
        let opts = Options {
            plans: Some(plan("")),
            ..Options::default()
        };
        let mut router = common::start(opts).await;
        let path = "/api/supervisor/lines/samu/switch";
        let body = r#"{"reason":"plateau évacué"}"#;
        let (status, answer) =
            http_send(router.http, "POST", path, Some(&router.token()), body).await;
        assert_eq!(status, 200, "{answer}");
        let password = SEATS.iter().find(|(u, _)| *u == "sup1").unwrap().1;
        browser.goto(&format!("http://{}/", router.http)).await;
        browser.type_into("#login-seat", "sup1").await;
        browser.type_into("#login-password", password).await;
        browser.click("#login-submit").await;
        browser.wait_text("#board-lines", "BASCULÉE").await;
        assert!(browser.shown("#board-lines tr.switched").await, "in red");
        browser.click("#board-lines button").await;
        browser.wait_text("#board-lines", "normale").await;
        assert_eq!(lines(&router).await["lines"][0]["switched"], false);
        let (_, audit) = http_get(router.http, "/api/audit", Some(&router.token())).await;
        assert!(
            audit.contains("line.restore") && audit.contains("sup1"),
            "{audit}"
        );
        router.stop().await;
    })
    .await;
}

/// `move_waiting`: a caller already waiting in the queue is sent to the backup centre by
/// the switch; a second switch is refused (409).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn switching_with_move_waiting_sends_the_waiting_caller_to_the_backup_centre() {
    let (centre, port) = answering_sipp("127.0.0.1:9".parse().unwrap(), 1, 200);
    let (process, router) = start("line-move-waiting", plan(""), port);
    let caller = trunk_caller(router.sip, "caller.xml", "15", 2_000);
    process
        .await_metric("sas_queue_depth{queue=\"arm\"}", 1.0)
        .await;
    let out = cli(
        &[
            "lines",
            "switch",
            "samu",
            "--reason",
            "saturation",
            "--move-waiting",
        ],
        &router.config_path,
    );
    assert!(out.contains("(1 waiting calls moved)"), "{out}");
    assert!(
        finish(caller, Duration::from_secs(30)).await,
        "moved caller"
    );
    assert!(
        finish(centre, Duration::from_secs(10)).await,
        "the centre answered"
    );
    let records = wait_records(&router, 1).await;
    assert_eq!(
        records[0].outcome,
        Some(Outcome::Forwarded),
        "{:#?}",
        records[0]
    );
    assert!(
        records[0]
            .route
            .iter()
            .any(|l| l.contains("line switched → backup secours")),
        "{:?}",
        records[0].route
    );
    let path = "/api/supervisor/lines/samu/switch";
    let body = r#"{"reason":"encore"}"#;
    let (status, answer) = http_send(router.http, "POST", path, Some(&router.token()), body).await;
    assert_eq!(status, 409, "{answer}");
}

/// Waits until `router` lists the 15 as `switched` (or not): how long it took.
async fn line_becomes(router: &Router, switched: bool) -> Duration {
    let begin = std::time::Instant::now();
    while begin.elapsed() < Duration::from_secs(10) {
        if lines(router).await["lines"][0]["switched"] == switched {
            return begin.elapsed();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "the line never became switched = {switched}: {}",
        lines(router).await
    );
}

/// Two nodes sharing one PostgreSQL: the 15 switched on A (CLI) is switched on B within
/// about 2 s, and B forwards its next trunk call to the backup centre; restored on B, it is
/// restored on A, which queues its next call again. Each audit entry stays on its node.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_switch_on_one_node_holds_on_the_other_through_the_shared_store() {
    let pg = common::postgres::Postgres::start();
    let (centre, port) = answering_sipp("127.0.0.1:9".parse().unwrap(), 1, 200);
    let (_a, a) = start_with("shared-switch-a", plan(""), port, pg.config("a"));
    let (_b, b) = start_with("shared-switch-b", plan(""), port, pg.config("b"));
    let out = cli(
        &["lines", "switch", "samu", "--reason", "plateau A évacué"],
        &a.config_path,
    );
    assert!(out.contains("line samu switched"), "{out}");
    let took = line_becomes(&b, true).await;
    eprintln!(
        "shared line switch: on B {} ms after the switch on A",
        took.as_millis()
    );
    assert!(took <= Duration::from_millis(2_500), "{took:?}");
    let listed = lines(&b).await;
    assert_eq!(listed["lines"][0]["by"], "admin", "{listed}");
    assert_eq!(listed["lines"][0]["reason"], "plateau A évacué", "{listed}");
    let caller = trunk_caller(b.sip, "caller.xml", "15", 1_000);
    assert!(
        finish(caller, Duration::from_secs(30)).await,
        "forwarded caller"
    );
    assert!(
        finish(centre, Duration::from_secs(10)).await,
        "the centre answered"
    );
    assert_eq!(
        wait_records(&b, 1).await[0].outcome,
        Some(Outcome::Forwarded)
    );

    let out = cli(
        &["lines", "restore", "samu", "--reason", "retour"],
        &b.config_path,
    );
    assert!(out.contains("line samu restored"), "{out}");
    let took = line_becomes(&a, false).await;
    eprintln!(
        "shared line restore: on A {} ms after the restore on B",
        took.as_millis()
    );
    assert!(took <= Duration::from_millis(2_500), "{took:?}");
    let caller = trunk_caller(a.sip, "caller_cancel.xml", "15", 1_500);
    assert!(
        finish(caller, Duration::from_secs(30)).await,
        "queued caller"
    );
    let queued = &wait_records(&a, 1).await[0];
    assert_ne!(queued.outcome, Some(Outcome::Forwarded), "{queued:#?}");
    assert_eq!(queued.queue.as_deref(), Some("arm"));
    // B does not switch A's line back (nor A B's): both stay restored.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    assert_eq!(lines(&b).await["lines"][0]["switched"], false);
    assert_eq!(lines(&a).await["lines"][0]["switched"], false);
    let rows = pg.count("SELECT count(*) FROM sas_line_switches WHERE NOT switched AND node = 'b'");
    assert_eq!(rows.await, 1);
}

/// Two nodes sharing one PostgreSQL: a caller waits on B; the 15 switched on A with
/// `--move-waiting` moves B's waiting caller to the backup centre too (not only A's), and
/// both nodes list the switch as made on A (`node`), through the API and the CLI.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_switch_moving_the_waiting_calls_moves_those_waiting_on_the_other_node() {
    let pg = common::postgres::Postgres::start();
    let (centre, port) = answering_sipp("127.0.0.1:9".parse().unwrap(), 1, 200);
    let (_a, a) = start_with("shared-move-a", plan(""), port, pg.config("node-a"));
    let (b_process, b) = start_with("shared-move-b", plan(""), port, pg.config("node-b"));
    let caller = trunk_caller(b.sip, "caller.xml", "15", 1_000);
    b_process
        .await_metric("sas_queue_depth{queue=\"arm\"}", 1.0)
        .await;
    let switch = [
        "lines",
        "switch",
        "samu",
        "--reason",
        "plateau évacué",
        "--move-waiting",
    ];
    let out = cli(&switch, &a.config_path);
    assert!(out.contains("(0 waiting calls moved)"), "none on A: {out}");
    line_becomes(&b, true).await;
    assert!(
        finish(caller, Duration::from_secs(30)).await,
        "B's waiting caller, moved"
    );
    assert!(
        finish(centre, Duration::from_secs(10)).await,
        "the centre answered B's caller"
    );
    let moved = &wait_records(&b, 1).await[0];
    assert_eq!(moved.outcome, Some(Outcome::Forwarded), "{moved:#?}");
    assert!(
        moved
            .route
            .iter()
            .any(|l| l.contains("line switched → backup secours")),
        "{:?}",
        moved.route
    );
    for node in [&a, &b] {
        let listed = lines(node).await;
        assert_eq!(listed["lines"][0]["node"], "node-a", "{listed}");
        let table = cli(&["lines", "list"], &node.config_path);
        assert!(
            table.contains("NODE") && table.contains("node-a"),
            "{table}"
        );
    }
}

/// PostgreSQL down: a switch on A answers at once and holds on A (nothing waits on the
/// shared store), B keeps its own state; A restarts meanwhile, and keeps its switch (the
/// older "restored" row, read first once PostgreSQL is back, does not undo it); once
/// PostgreSQL is back, B follows within seconds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_switch_made_while_postgres_is_down_is_shared_when_it_is_back() {
    let pg = common::postgres::Postgres::start();
    let (a_process, a) = start_with("shared-switch-down-a", plan(""), 9, pg.config("a"));
    let (_b, b) = start_with("shared-switch-down-b", plan(""), 9, pg.config("b"));
    // The table has the line, restored (an older state than what follows).
    let switch = ["lines", "switch", "samu", "--reason", "essai"];
    cli(&switch, &a.config_path);
    line_becomes(&b, true).await;
    cli(&["lines", "restore", "samu"], &a.config_path);
    line_becomes(&b, false).await;
    pg.stop();
    let begin = std::time::Instant::now();
    let out = cli(
        &["lines", "switch", "samu", "--reason", "panne"],
        &a.config_path,
    );
    assert!(out.contains("line samu switched"), "{out}");
    assert!(
        begin.elapsed() < Duration::from_secs(2),
        "{:?}",
        begin.elapsed()
    );
    assert_eq!(lines(&a).await["lines"][0]["switched"], true);
    // A restarts before PostgreSQL is back.
    let mut a_process = a_process;
    a_process.crash();
    let a_process = Process::start(&a.config_path).drain_log();
    let a = a_process.as_router(&a.data, &a.config_path);
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    assert_eq!(lines(&b).await["lines"][0]["switched"], false);
    pg.restart();
    let took = line_becomes(&b, true).await;
    eprintln!(
        "shared line switch after the outage: on B {} ms after PostgreSQL came back",
        took.as_millis()
    );
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let listed = lines(&a).await;
    assert_eq!(listed["lines"][0]["switched"], true, "{listed}");
    assert_eq!(lines(&b).await["lines"][0]["reason"], "panne");
}
