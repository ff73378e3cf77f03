//! Seats behind Kamailio place their own calls: the nodes know Kamailio as their proxy
//! (`[edge] addresses`), Kamailio marks what it relays from the trunk (`X-SAS-Origin:
//! trunk`) and strips that header from everything else. A seat's INVITE through Kamailio is
//! then a seat's (digest-challenged, internal numbers), not a trunk call, and a marker a
//! seat forges is not honoured. Also the node alone, with raw SIP from proxy, trunk and
//! other addresses, and overload control judging only what the proxy marked as the trunk's.

use crate::common::kamailio::{Node, TRUNK_IP, cluster, trunk_caller};
use crate::common::sip::{challenges, exchange, seat_invite, status};
use crate::common::*;
use sas_router::store::record::Outcome;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::UdpSocket;

const SDP: &str = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 40000 RTP/AVP 8\r\na=rtpmap:8 PCMA/8000\r\n";

/// The first answer to `message` (provisional ones included): its status.
async fn first_answer(socket: &UdpSocket, to: SocketAddr, message: &str) -> u16 {
    socket.send_to(message.as_bytes(), to).await.unwrap();
    let mut buf = vec![0u8; 65536];
    loop {
        let (n, _) = tokio::time::timeout(Duration::from_secs(5), socket.recv_from(&mut buf))
            .await
            .expect("an answer")
            .unwrap();
        let text = String::from_utf8_lossy(&buf[..n]).to_string();
        // A 100 Trying says nothing about who the INVITE was taken for.
        if !text.starts_with("SIP/2.0 100") {
            return status(&text);
        }
    }
}

/// An INVITE to `number` from `socket` with a caller's From, carrying the trunk marker when
/// `marked`.
fn invite(to: SocketAddr, socket: &UdpSocket, number: &str, marked: bool, id: &str) -> String {
    let text = seat_invite(
        (to, socket.local_addr().unwrap()),
        ("0612345678", ""),
        number,
        None,
        (id, SDP),
    );
    match marked {
        true => text.replacen(
            "Max-Forwards: 70\r\n",
            "Max-Forwards: 70\r\nX-SAS-Origin: trunk\r\n",
            1,
        ),
        false => text,
    }
}

async fn bound(ip: &str) -> UdpSocket {
    UdpSocket::bind((ip, 0)).await.unwrap()
}

/// The node alone, its proxy on 127.0.0.5 and its trunk on 127.0.0.1: from the proxy a
/// marked INVITE is a trunk call (ringing), an unmarked one a seat's (401); the marker from
/// any other address means nothing; the trunk is still the trunk without it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_node_takes_the_trunk_marker_from_its_proxy_only() {
    let router = start(Options {
        extra: "[edge]\naddresses = [\"127.0.0.5\"]\n".into(),
        ..Options::default()
    })
    .await;
    let proxy = bound("127.0.0.5").await;
    let stranger = bound("127.0.0.6").await;
    let trunk = bound("127.0.0.1").await;
    let cases = [
        (
            &proxy,
            true,
            180,
            "a marked INVITE from the proxy is a trunk call",
        ),
        (
            &proxy,
            false,
            401,
            "an unmarked INVITE from the proxy is a seat's",
        ),
        (
            &stranger,
            true,
            401,
            "a marker from elsewhere is not honoured",
        ),
        (&trunk, false, 180, "the trunk needs no marker"),
    ];
    for (n, (socket, marked, expected, what)) in cases.into_iter().enumerate() {
        let message = invite(router.sip, socket, "15", marked, &format!("edge-{n}"));
        let got = first_answer(socket, router.sip, &message).await;
        assert_eq!(got, expected, "{what}");
    }
}

/// Behind Kamailio: seat arm1, registered through it, dials the AMU regulators' number 2001
/// through it (challenged, then answered by amu1, also registered through it), talks, hangs
/// up along the Record-Route; the active node records a seat call on the escalation line.
/// Then arm2 dials 2002 and the libéral regulator hangs up: the node's BYE reaches arm2
/// through Kamailio. Then a seat forging `X-SAS-Origin: trunk` to dial the 15 is challenged like any seat.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_seat_behind_kamailio_calls_a_regulator_and_cannot_forge_the_trunk_marker() {
    let (kamailio, [primary, standby]) = cluster("edge-seats", &Options::default()).await;
    let (amu_phone, port) = answering_sipp(kamailio.sip, 1, 100);
    register(kamailio.sip, "amu1", port).await;
    let amu = "sas_seats{role=\"regulateur_amu\",state=\"available\"}";
    for node in [&primary, &standby] {
        node.process().await_metric(amu, 1.0).await;
    }

    let (port, media) = (free_udp_port().to_string(), ports::media_port().to_string());
    let args = [
        "-s", "2001", "-au", "arm1", "-ap", "pw-arm1", "-p", &port, "-mp", &media, "-m", "1", "-d",
        "1000", "-timeout", "30s",
    ];
    let phone = sipp_keyed(kamailio.sip, "seat_calls.xml", &[("seat", "arm1")], &args)
        .spawn()
        .unwrap();
    assert!(
        finish(phone, Duration::from_secs(30)).await,
        "the seat's call through Kamailio failed\n{}",
        kamailio.warnings()
    );
    assert!(
        finish(amu_phone, Duration::from_secs(10)).await,
        "amu1's SIPp, called through Kamailio, failed\n{}",
        kamailio.warnings()
    );
    let calls = seat_calls(&primary, 1).await;
    assert_eq!(calls.len(), 1, "{calls:#?}");
    let call = &calls[0];
    assert_eq!(call.line, "escalade");
    assert_eq!(call.outcome, Some(Outcome::Answered), "{call:#?}");
    assert_eq!(call.seat.as_deref(), Some("amu1"));

    // The other way: the regulator (lib1, 2002) hangs up; the node's BYE reaches the
    // calling seat along the Record-Route of its INVITE, through Kamailio.
    let (lib, port) = seat_sipp(kamailio.sip, "seat_hangs_up.xml", &[], 1, 100, true);
    register(kamailio.sip, "lib1", port).await;
    let lib_available = "sas_seats{role=\"regulateur_liberal\",state=\"available\"}";
    primary.process().await_metric(lib_available, 1.0).await;
    let trace = temp_dir("edge-trace").join("arm2.log");
    let trace_arg = trace.to_str().unwrap();
    let phone = seat_phone(
        kamailio.sip,
        "arm2",
        "2002",
        &["-trace_msg", "-message_file", trace_arg],
    );
    assert!(
        finish(phone, Duration::from_secs(30)).await,
        "the seat got the node's BYE\n{}",
        kamailio.warnings()
    );
    // Relayed by Kamailio: its Via on top of the node's.
    let log = std::fs::read_to_string(&trace).unwrap();
    let bye = &log[log.find("BYE sip:").expect("a BYE in the trace")..];
    let bye = &bye[..bye.find("\n\n").unwrap_or(bye.len())];
    let vias: Vec<&str> = bye.lines().filter(|l| l.starts_with("Via:")).collect();
    assert_eq!(vias.len(), 2, "{bye}");
    assert!(vias[0].contains(&kamailio.sip.to_string()), "{bye}");
    // lib1's SIPp, which got the call through Kamailio (Max-Forwards 67) and hung up.
    assert!(
        finish(lib, Duration::from_secs(10)).await,
        "lib1's SIPp failed"
    );
    let by_lib = seat_calls(&primary, 2).await;
    let by_lib: Vec<_> = by_lib
        .iter()
        .filter(|r| r.seat.as_deref() == Some("lib1"))
        .collect();
    assert_eq!(by_lib.len(), 1, "{by_lib:#?}");
    assert_eq!(by_lib[0].outcome, Some(Outcome::Answered));

    // A forged marker from a seat's address, in either case: stripped by Kamailio, the
    // node challenges.
    let seat = bound("127.0.0.1").await;
    for (n, spelling) in ["X-SAS-Origin: trunk", "x-sas-origin: TRUNK"]
        .iter()
        .enumerate()
    {
        let forged = invite(kamailio.sip, &seat, "15", true, &format!("forged-{n}"))
            .replace("X-SAS-Origin: trunk", spelling);
        let wait = Duration::from_secs(5);
        let answer = exchange(&seat, kamailio.sip, forged.as_bytes(), wait)
            .await
            .expect("an answer");
        assert_eq!(status(&answer), 401, "{spelling}: {answer}");
        assert!(!challenges(&answer).is_empty(), "{answer}");
    }
    // The trunk's calls are still the trunk's (marked by Kamailio from TRUNK_IP).
    let caller = trunk_caller(kamailio.sip, "caller_cancel.xml", "15", 500);
    assert!(
        finish(caller, Duration::from_secs(20)).await,
        "trunk call from {TRUNK_IP}"
    );
    let trunk_calls = line_calls(&primary, "samu", 1).await;
    assert_eq!(trunk_calls.len(), 1, "{:#?}", records_of(&primary));
}

/// Behind Kamailio, a switched line's call goes out to the backup centre through Kamailio:
/// the nodes' `[trunk] outbound` is Kamailio, which relays their calls out to the operator's
/// trunk (`TRUNK_OUT`: here a SIPp backup centre on the trunk's address). The centre
/// answers, the caller talks and hangs up, the BYE reaches the centre along the
/// Record-Route, and the active node records the call forwarded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_switched_lines_call_goes_to_the_backup_centre_through_kamailio() {
    let nowhere = "127.0.0.1:9".parse().unwrap();
    let more = ["-i", TRUNK_IP];
    let (centre, port) = seat_sipp_with(nowhere, ("seat_answer.xml", &[]), 1, 200, true, &more);
    let opts = Options {
        plans: Some(switchable_plan("")),
        outbound: Some(SocketAddr::new(TRUNK_IP.parse().unwrap(), port)),
        ..Options::default()
    };
    let (kamailio, [primary, _standby]) = cluster("edge-backup", &opts).await;
    let switch = ["lines", "switch", "samu", "--reason", "plateau évacué"];
    let out = cli(&switch, &primary.config);
    assert!(out.contains("line samu switched"), "{out}");
    let caller = trunk_caller(kamailio.sip, "caller.xml", "15", 1_000);
    assert!(
        finish(caller, Duration::from_secs(30)).await,
        "the caller's forwarded call failed\n{}",
        kamailio.warnings()
    );
    assert!(
        finish(centre, Duration::from_secs(10)).await,
        "the backup centre, reached through Kamailio, failed the call\n{}",
        kamailio.warnings()
    );
    // Its record is written just after its end.
    let forwarded = || -> Vec<_> {
        (records_of(&primary).into_iter())
            .filter(|r| r.outcome == Some(Outcome::Forwarded))
            .collect()
    };
    for _ in 0..50 {
        if !forwarded().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let forwarded = forwarded();
    assert_eq!(forwarded.len(), 1, "{forwarded:#?}");
    let route = &forwarded[0].route;
    assert!(
        route.iter().any(|l| l.contains("line switched to backup")),
        "{route:?}"
    );
}

fn records_of(node: &Node) -> Vec<sas_router::store::record::CallRecord> {
    serde_json::from_str(&cli(&["calls", "list", "--json"], &node.config)).unwrap()
}

/// The node's records of the escalation line, once `n` are written (just after their end)
/// or after 5 s.
async fn seat_calls(node: &Node, n: usize) -> Vec<sas_router::store::record::CallRecord> {
    line_calls(node, "escalade", n).await
}

/// The node's records of `line`, once `n` are written or after 5 s.
async fn line_calls(
    node: &Node,
    line: &str,
    n: usize,
) -> Vec<sas_router::store::record::CallRecord> {
    let of_line = || -> Vec<_> {
        (records_of(node).into_iter())
            .filter(|r| r.line == line)
            .collect()
    };
    for _ in 0..50 {
        let calls = of_line();
        if calls.len() >= n {
            return calls;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    of_line()
}

/// Overload control judges the trunk's calls through the proxy (marked), not the seats'
/// (unmarked, challenged as usual even while the trunk's are shed).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overload_control_sheds_the_trunks_calls_through_the_proxy_not_the_seats() {
    let router = start(Options {
        extra: "[edge]\naddresses = [\"127.0.0.5\"]\n".into(),
        overload: "max_queue_delay_ms = 0\nmax_call_rate = 1\n".into(),
        ..Options::default()
    })
    .await;
    let proxy = bound("127.0.0.5").await;
    let mut shed = false;
    for n in 0..3 {
        let message = invite(router.sip, &proxy, "15", true, &format!("flood-{n}"));
        shed |= first_answer(&proxy, router.sip, &message).await == 503;
    }
    assert!(shed, "a marked INVITE past the rate is shed");
    let seat = invite(router.sip, &proxy, "15", false, "seat-while-shedding");
    assert_eq!(first_answer(&proxy, router.sip, &seat).await, 401);
}
