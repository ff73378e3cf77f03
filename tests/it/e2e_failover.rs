//! Two routers behind Kamailio (deploy/kamailio/kamailio.cfg), through the real binaries: a
//! `kill -9` of the active node under a steady stream of trunk calls (the standby takes the
//! new calls within a measured time, the seats registered once through Kamailio take them,
//! the calls in flight on the dead node are recorded interrupted when it comes back), and a
//! planned switchover (SIGTERM: the node drains, no call is lost).

use crate::common::kamailio::{Kamailio, Node, await_arms, cluster, trunk_caller};
use crate::common::*;
use sas_router::store::record::{CallRecord, Outcome};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// Talk time of each streamed call.
const TALK_MS: u64 = 600;
/// One new trunk call every…
const EVERY: Duration = Duration::from_millis(400);

/// One streamed trunk call: when it was placed, when its SIPp finished, whether it
/// completed (answered, talked, hung up).
struct Placed {
    start: Instant,
    end: Instant,
    ok: bool,
}

impl Placed {
    /// When it was answered, about: its end less the talk time.
    fn answered(&self) -> Instant {
        self.end - Duration::from_millis(TALK_MS)
    }
}

/// Places a 15 call through `edge` every [`EVERY`] for `length`; `at` runs once, `at_after`
/// into the stream. Returns every call once all have finished.
async fn stream(
    edge: SocketAddr,
    length: Duration,
    at_after: Duration,
    at: impl FnOnce() -> Instant,
) -> (Vec<Placed>, Instant) {
    let begin = Instant::now();
    let mut at = Some(at);
    let mut event = None;
    let mut calls = Vec::new();
    while begin.elapsed() < length {
        if begin.elapsed() >= at_after
            && let Some(f) = at.take()
        {
            event = Some(f());
        }
        let child = trunk_caller(edge, "caller.xml", "15", TALK_MS);
        let start = Instant::now();
        calls.push(tokio::spawn(async move {
            let out = child.wait_with_output().await.unwrap();
            Placed {
                start,
                end: Instant::now(),
                ok: out.status.success(),
            }
        }));
        tokio::time::sleep(EVERY).await;
    }
    let mut placed = Vec::new();
    for call in calls {
        placed.push(call.await.unwrap());
    }
    (placed, event.expect("the event ran"))
}

/// Three ARM seats (SIPp answering after 100 ms), each registered once through Kamailio;
/// both nodes see all three.
async fn seats(kamailio: &Kamailio, nodes: [&Node; 2]) -> Vec<tokio::process::Child> {
    let mut phones = Vec::new();
    for user in ["arm1", "arm2", "arm3"] {
        let (phone, port) = answering_sipp(kamailio.sip, 200, 100);
        register(kamailio.sip, user, port).await;
        phones.push(phone);
    }
    for node in nodes {
        await_arms(node, 3.0).await;
    }
    phones
}

fn records(node: &Node) -> Vec<CallRecord> {
    serde_json::from_str(&cli(
        &["calls", "list", "--json", "--limit", "1000"],
        &node.config,
    ))
    .unwrap()
}

fn count(node: &Node, outcome: Outcome) -> usize {
    records(node)
        .iter()
        .filter(|r| r.outcome == Some(outcome))
        .count()
}

/// `count`, once it reaches `n` (a record is written just after its call ends) or after 5 s.
async fn count_reaching(node: &Node, outcome: Outcome, n: usize) -> usize {
    for _ in 0..50 {
        let c = count(node, outcome);
        if c >= n {
            return c;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    count(node, outcome)
}

fn ms(d: Duration) -> u128 {
    d.as_millis()
}

/// `kill -9` of the primary under a call every 400 ms: every call placed after the kill is
/// answered (by the standby, whose seats registered only once, through Kamailio) within the
/// failover time; the call talking on the primary when it died is recorded interrupted when
/// it comes back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_of_the_primary_fails_over_to_the_standby() {
    let (kamailio, [mut primary, standby]) = cluster("failover", &Options::default()).await;
    let phones = seats(&kamailio, [&primary, &standby]).await;
    // A call talking on the primary when it dies.
    let talking = trunk_caller(kamailio.sip, "caller.xml", "15", 60_000);
    let busy = "sas_seats{role=\"arm\",state=\"busy\"}";
    primary.process().await_metric(busy, 1.0).await;

    let length = Duration::from_secs(12);
    let (calls, killed) = stream(kamailio.sip, length, Duration::from_secs(3), || {
        primary.process.as_mut().unwrap().crash();
        Instant::now()
    })
    .await;
    let after: Vec<&Placed> = calls.iter().filter(|c| c.start >= killed).collect();
    let refused: Vec<u128> = after
        .iter()
        .filter(|c| !c.ok)
        .map(|c| ms(c.start - killed))
        .collect();
    assert!(
        refused.is_empty(),
        "calls placed after the kill failed (ms after it): {refused:?}\n{}",
        kamailio.warnings()
    );
    let first = after.iter().map(|c| c.answered()).min().unwrap();
    let slowest = after.iter().map(|c| c.answered() - c.start).max().unwrap();
    eprintln!(
        "failover: {} calls after the kill, first answered {} ms after it, slowest setup {} ms",
        after.len(),
        ms(first - killed),
        ms(slowest)
    );
    assert!(
        first - killed <= Duration::from_secs(5),
        "failover took too long"
    );
    let on_standby = count_reaching(&standby, Outcome::Answered, after.len()).await;
    assert!(
        on_standby >= after.len(),
        "{on_standby} answered on the standby: {:?}",
        records(&standby)
            .iter()
            .map(|r| r.outcome)
            .collect::<Vec<_>>()
    );

    // Back up: the call that was talking on it is recorded interrupted.
    drop(talking);
    primary.start();
    let interrupted = count(&primary, Outcome::Interrupted);
    assert!(interrupted >= 1, "{:#?}", records(&primary));
    // Every call a seat completed, through Kamailio, passed its checks.
    for phone in phones {
        assert!(stop_sipp(phone).await, "a seat's SIPp failed a call");
    }
}

/// Planned switchover: SIGTERM the primary under the same stream: it answers Kamailio's
/// probes and new INVITEs with 503, Kamailio sends them to the standby, the calls in
/// progress on the primary finish there, and not one call is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_of_the_primary_switches_over_without_losing_a_call() {
    let (kamailio, [mut primary, standby]) = cluster("switchover", &Options::default()).await;
    let phones = seats(&kamailio, [&primary, &standby]).await;
    let length = Duration::from_secs(10);
    let (calls, drained) = stream(kamailio.sip, length, Duration::from_secs(3), || {
        primary.process().terminate();
        Instant::now()
    })
    .await;
    let lost: Vec<i128> = calls
        .iter()
        .filter(|c| !c.ok)
        .map(|c| c.start.duration_since(drained).as_millis() as i128)
        .collect();
    assert!(
        lost.is_empty(),
        "calls lost (ms after the SIGTERM): {lost:?}\n{}",
        kamailio.warnings()
    );
    let after: Vec<&Placed> = calls.iter().filter(|c| c.start >= drained).collect();
    let slowest = after.iter().map(|c| c.answered() - c.start).max().unwrap();
    eprintln!(
        "switchover: {} calls, {} after the SIGTERM, slowest setup after it {} ms",
        calls.len(),
        after.len(),
        ms(slowest)
    );
    let status = primary
        .process
        .take()
        .unwrap()
        .exited(Duration::from_secs(20))
        .await;
    assert!(status.success(), "{status:?}");
    let on_primary = count(&primary, Outcome::Answered);
    let on_standby = count_reaching(&standby, Outcome::Answered, after.len()).await;
    assert!(
        on_standby >= after.len(),
        "{on_standby} answered on the standby"
    );
    assert_eq!(on_primary + on_standby, calls.len());
    for phone in phones {
        assert!(stop_sipp(phone).await, "a seat's SIPp failed a call");
    }
}

/// A seat registered through a proxy that adds a Path (RFC 3327) is called through that
/// proxy: the INVITE goes to the first Path hop (not to the REGISTER's source, nor to the
/// Contact) and carries the Path as its Route; the 200 to the REGISTER echoes the Path.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_seat_registered_with_a_path_is_called_through_its_first_hop() {
    use crate::common::sip::{challenges, exchange, register_with, status};
    let router = start(Options::default()).await;
    let source = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let hop = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let (local, hop_addr) = (source.local_addr().unwrap(), hop.local_addr().unwrap());
    let path = format!("Path: <sip:{hop_addr};lr;received=sip:127.0.0.9:5999>\r\n");
    let with_path = |text: String| {
        text.replace("Contact: <sip:arm1@", &format!("{path}Contact: <sip:arm1@"))
            .replacen(&format!("sip:arm1@{local}>"), "sip:arm1@127.0.0.9:5999>", 1)
    };
    let wait = Duration::from_secs(5);
    let first = with_path(register_with(
        (router.sip, local),
        "arm1",
        "pw-arm1",
        None,
        "p1",
        1,
        300,
    ));
    let answer = exchange(&source, router.sip, first.as_bytes(), wait)
        .await
        .unwrap();
    let challenge = challenges(&answer).remove(0);
    let second = with_path(register_with(
        (router.sip, local),
        "arm1",
        "pw-arm1",
        Some(&challenge),
        "p1",
        2,
        300,
    ));
    let ok = exchange(&source, router.sip, second.as_bytes(), wait)
        .await
        .unwrap();
    assert_eq!(status(&ok), 200, "{ok}");
    assert!(
        ok.contains(&path.trim_end().replacen("Path", "", 1)),
        "Path echoed: {ok}"
    );

    let _caller = crate::common::trunk_caller(router.sip, "caller.xml", "15", 1_000);
    let mut buf = vec![0u8; 65536];
    let (n, _) = tokio::time::timeout(Duration::from_secs(10), hop.recv_from(&mut buf))
        .await
        .expect("the INVITE reaches the Path's first hop")
        .unwrap();
    let invite = String::from_utf8_lossy(&buf[..n]).to_string();
    assert!(
        invite.starts_with("INVITE sip:arm1@127.0.0.9:5999"),
        "{invite}"
    );
    let route = format!("Route: <sip:{hop_addr};lr;received=sip:127.0.0.9:5999>");
    assert!(invite.contains(&route), "{invite}");
}
