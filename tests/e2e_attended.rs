//! Seats' phones calling through the router, with SIPp phones: a seat dials the internal
//! number 2001 (digest-authenticated) and an AMU regulator answers; an ARM hands its
//! caller to the doctor it consulted that way, by REFER with Replaces (RFC 3891).

mod common;

use common::*;
use sas_router::store::record::Outcome;
use std::time::Duration;

/// `seat`'s phone dials `number` (seat_dials.xml), then waits for the router's BYE.
fn seat_phone(router: &Router, seat: &str, number: &str, extra: &[&str]) -> tokio::process::Child {
    let password = SEATS.iter().find(|(u, _)| *u == seat).unwrap().1;
    let (port, media) = (free_udp_port().to_string(), free_udp_port().to_string());
    let mut args = vec![
        "-s", number, "-au", seat, "-ap", password, "-p", &port, "-mp", &media, "-m", "1",
        "-timeout", "30s",
    ];
    args.extend_from_slice(extra);
    sipp_keyed(router.sip, "seat_dials.xml", &[("seat", seat)], &args)
        .spawn()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_seat_dials_2001_and_an_amu_regulator_answers() {
    let mut router = start(Options::default()).await;
    let doctor_port = free_udp_port();
    let doctor = sipp(
        router.sip,
        "seat_hangs_up.xml",
        &[
            "-p",
            &doctor_port.to_string(),
            "-mp",
            &free_udp_port().to_string(),
            "-rtp_echo",
            "-m",
            "1",
            "-d",
            "200",
            "-timeout",
            "30s",
        ],
    )
    .spawn()
    .unwrap();
    register(router.sip, "amu1", doctor_port).await;
    // arm1 is not registered: dialling needs its password, not a registration.
    let phone = seat_phone(&router, "arm1", "2001", &[]);
    assert!(finish(doctor, Duration::from_secs(20)).await, "doctor");
    assert!(finish(phone, Duration::from_secs(20)).await, "ARM phone");
    let r = wait_records(&router, 1).await.remove(0);
    assert_eq!(r.outcome, Some(Outcome::Answered));
    assert_eq!(r.line, "escalade");
    assert_eq!(r.seat.as_deref(), Some("amu1"));
    assert_eq!(r.caller.reveal(), "arm1");
    assert_eq!(r.tags.get("from_seat").map(String::as_str), Some("arm1"));
    let rtp = r.rtp.expect("RTP counters");
    assert!(rtp.caller.rx_packets > 20, "{rtp:?}");
    assert!(rtp.seat.rx_packets > 20, "the doctor echoed: {rtp:?}");
    assert!(rtp.seat.tx_packets > 20, "{rtp:?}");
    router.stop().await;
}
