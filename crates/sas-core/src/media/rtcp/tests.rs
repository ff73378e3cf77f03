//! Tests: RTCP receiver statistics, wire format, and the per-leg session.
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::*;
use crate::media::dtmf::rfc4733::parse_rtp;
use crate::media::dtmf::testutil::pcma_silence;

/// The leg's SSRC (what we receive) and ours (what we send it).
const PEER: u32 = 0x1234_5678;
const OURS: u32 = 0xCAFE_F00D;
const T0: u64 = 1_700_000_000_000;

/// Feeds a datagram as the media session will: RTP header parsed, then the statistics.
fn feed(stats: &mut ReceiverStats, packet: &[u8], arrival: u64) {
    let p = parse_rtp(packet).expect("RTP");
    stats.on_rtp(p.ssrc, p.sequence, p.timestamp, arrival);
}

/// Packet `i` of a 20 ms stream starting at `first_seq`, arriving on time.
fn send(stats: &mut ReceiverStats, ssrc: u32, first_seq: u16, i: u32) {
    let packet = pcma_silence(first_seq.wrapping_add(i as u16), 160 * i, ssrc);
    feed(stats, &packet, 160 * u64::from(i));
}

fn block(ssrc: u32) -> ReportBlock {
    ReportBlock {
        ssrc,
        fraction_lost: 12,
        cumulative_lost: 50,
        highest_seq: 0x0001_0005,
        jitter: 160,
        lsr: 0xABCD_1234,
        dlsr: 98_304,
    }
}

#[test]
fn every_20th_packet_dropped_is_5_percent_and_50_lost() {
    let mut stats = ReceiverStats::default();
    for i in (0..1000).filter(|i| i % 20 != 10) {
        send(&mut stats, PEER, 1000, i);
    }
    let b = stats.report_block(0, 0).unwrap();
    assert_eq!(b.ssrc, PEER);
    assert_eq!(b.fraction_lost, 12, "(50 << 8) / 1000: just under 5%");
    assert_eq!(b.cumulative_lost, 50);
    assert_eq!(b.highest_seq, 1999);
    let s = stats.summary();
    assert_eq!((s.packets_received, s.packets_lost), (950, 50));
    assert_eq!(s.highest_seq, Some(1999));

    // The fraction is per interval; the cumulative count stays.
    for i in 1000..1100 {
        send(&mut stats, PEER, 1000, i);
    }
    let b = stats.report_block(0, 0).unwrap();
    assert_eq!((b.fraction_lost, b.cumulative_lost), (0, 50));
    for i in (1100..1200).filter(|i| i % 10 != 0) {
        send(&mut stats, PEER, 1000, i);
    }
    send(&mut stats, PEER, 1000, 1200);
    let b = stats.report_block(0, 0).unwrap();
    assert_eq!(b.fraction_lost, 25, "10 of 101 expected");
    assert_eq!(b.cumulative_lost, 60);
    assert_eq!(stats.summary().packets_lost, 60);
}

#[test]
fn reordering_and_duplicates_are_not_loss() {
    let mut stats = ReceiverStats::default();
    for i in [0, 1, 2, 4, 3, 5, 5, 6, 8, 7, 7, 3, 9, 9] {
        send(&mut stats, PEER, 500, i);
    }
    // 51 arrives after 100: late, not lost.
    for i in (10..=100).filter(|&i| i != 51) {
        send(&mut stats, PEER, 500, i);
    }
    send(&mut stats, PEER, 500, 51);
    send(&mut stats, PEER, 500, 51);
    let b = stats.report_block(0, 0).unwrap();
    assert_eq!((b.fraction_lost, b.cumulative_lost), (0, 0));
    let s = stats.summary();
    assert_eq!((s.packets_received, s.packets_lost), (101, 0));
    assert_eq!(s.highest_seq, Some(600));

    // A stray very old packet (beyond MAX_MISORDER) neither counts nor restarts.
    send(&mut stats, PEER, 500, 0);
    send(&mut stats, PEER, 500, 101);
    assert_eq!(stats.summary().packets_received, 102);
    assert_eq!(stats.summary().highest_seq, Some(601));
}

#[test]
fn sequence_wraparound_extends_the_highest_number() {
    let mut stats = ReceiverStats::default();
    for i in 0..20 {
        send(&mut stats, PEER, 65_530, i);
    }
    let b = stats.report_block(0, 0).unwrap();
    assert_eq!(b.highest_seq, (1 << 16) + 13);
    assert_eq!(b.cumulative_lost, 0);

    // Validated right across the wrap, with the two numbers around it lost.
    let mut stats = ReceiverStats::default();
    for i in (0..10).filter(|&i| i != 3 && i != 4) {
        send(&mut stats, PEER, 65_533, i);
    }
    let b = stats.report_block(0, 0).unwrap();
    assert_eq!(b.highest_seq, (1 << 16) + 6);
    assert_eq!(b.cumulative_lost, 2);
    assert_eq!(stats.summary().packets_received, 8);
}

#[test]
fn a_restarted_sequence_resyncs_after_two_packets() {
    let mut stats = ReceiverStats::default();
    for i in (0..100).filter(|i| i % 20 != 5) {
        send(&mut stats, PEER, 0, i);
    }
    // Same SSRC, new sequence and timestamp base: a phone that restarted its stream.
    for i in 0..50u32 {
        let packet = pcma_silence(30_000 + i as u16, 5_000_000 + 160 * i, PEER);
        feed(&mut stats, &packet, 160 * u64::from(100 + i));
    }
    let b = stats.report_block(0, 0).unwrap();
    assert_eq!((b.highest_seq, b.cumulative_lost), (30_049, 0));
    let s = stats.summary();
    assert_eq!((s.packets_received, s.packets_lost), (145, 5));
    assert!(
        s.jitter_ms < 0.5,
        "no jitter spike from the new timestamp base: {s:?}"
    );
}

#[test]
fn a_new_ssrc_starts_fresh_statistics_and_keeps_the_totals() {
    let mut stats = ReceiverStats::default();
    for i in (0..100).filter(|i| i % 20 != 5) {
        send(&mut stats, PEER, 0, i);
    }
    for i in 0..50 {
        send(&mut stats, 0xB, 40_000, i);
    }
    let b = stats.report_block(0, 0).unwrap();
    assert_eq!((b.ssrc, b.cumulative_lost, b.highest_seq), (0xB, 0, 40_049));
    // A lone packet from a third SSRC: in probation, nothing to report, nothing counted.
    send(&mut stats, 0xC, 7, 0);
    assert_eq!(stats.report_block(0, 0), None);
    assert_eq!(stats.ssrc(), Some(0xC));
    for i in 50..60 {
        send(&mut stats, 0xB, 40_000, i);
    }
    let s = stats.summary();
    assert_eq!((s.packets_received, s.packets_lost), (95 + 50 + 10, 5));
    assert_eq!(stats.report_block(0, 0).unwrap().highest_seq, 40_059);
}

#[test]
fn jitter_follows_a8() {
    // Alternating ±80 samples around perfect spacing: |D| = 160 every packet.
    let mut stats = ReceiverStats::default();
    for i in 0..500u32 {
        let offset: i64 = if i % 2 == 0 { 80 } else { -80 };
        let arrival = (1_000_000 + 160 * i64::from(i) + offset) as u64;
        feed(&mut stats, &pcma_silence(i as u16, 160 * i, PEER), arrival);
    }
    let b = stats.report_block(0, 0).unwrap();
    assert!((159..=160).contains(&b.jitter), "jitter {}", b.jitter);
    assert!((stats.summary().jitter_ms - 20.0).abs() < 0.2);

    // Perfect spacing, whatever the constant network delay: none.
    let mut stats = ReceiverStats::default();
    for i in 0..500u32 {
        feed(
            &mut stats,
            &pcma_silence(i as u16, 9_000 + 160 * i, PEER),
            400 + 160 * u64::from(i),
        );
    }
    assert_eq!(stats.report_block(0, 0).unwrap().jitter, 0);
    assert_eq!(stats.summary().jitter_ms, 0.0);
}

#[test]
fn nothing_received_reports_nothing() {
    let mut stats = ReceiverStats::default();
    assert_eq!(stats.report_block(0, 0), None);
    assert_eq!(stats.summary(), ReceivedSummary::default());
}

#[test]
fn sr_layout_and_round_trip() {
    let sender = SenderInfo {
        ntp: ntp_from_unix_ms(T0 + 250),
        rtp_ts: 123_456,
        packets: 1_000,
        octets: 160_000,
    };
    let cname = "sas-router@10.0.0.1";
    let bytes = build_compound(OURS, Some(sender), &[block(PEER)], cname);
    // SR: header, SSRC, 20 bytes of sender info, one 24-byte block = 52 bytes.
    assert_eq!(&bytes[..4], &[0x81, 200, 0, 12]);
    assert_eq!(&bytes[4..8], &OURS.to_be_bytes());
    assert_eq!(&bytes[8..16], &sender.ntp.to_be_bytes());
    assert_eq!(&bytes[16..20], &123_456u32.to_be_bytes());
    assert_eq!(&bytes[20..24], &1_000u32.to_be_bytes());
    assert_eq!(&bytes[24..28], &160_000u32.to_be_bytes(), "octet count");
    assert_eq!(&bytes[28..32], &PEER.to_be_bytes());
    assert_eq!(
        &bytes[32..36],
        &[12, 0, 0, 50],
        "fraction, then 24-bit lost"
    );
    assert_eq!(&bytes[36..40], &[0, 1, 0, 5], "cycles, then highest seq");
    // SDES: SSRC, CNAME item (2 + 19), null, padding to 28 bytes.
    assert_eq!(&bytes[52..56], &[0x81, 202, 0, 7]);
    assert_eq!(&bytes[60..62], &[1, 19]);
    assert_eq!(bytes.len(), 84);
    assert_eq!(bytes[81..], [0, 0, 0]);
    assert_eq!(
        parse_compound(&bytes).unwrap(),
        vec![
            RtcpPacket::SenderReport {
                ssrc: OURS,
                sender,
                blocks: vec![block(PEER)]
            },
            RtcpPacket::SourceDescription {
                chunks: vec![(OURS, Some(cname.into()))]
            },
        ]
    );
}

#[test]
fn rr_round_trip_and_the_24_bit_signed_loss() {
    let bytes = build_compound(OURS, None, &[], "x");
    assert_eq!(&bytes[..8], &[0x80, 201, 0, 1, 0xCA, 0xFE, 0xF0, 0x0D]);
    assert_eq!(
        parse_compound(&bytes).unwrap()[0],
        RtcpPacket::ReceiverReport {
            ssrc: OURS,
            blocks: vec![]
        }
    );
    for (lost, wire, back) in [
        (-5, [0xFF, 0xFF, 0xFB], -5),
        (0x7F_FFFF, [0x7F, 0xFF, 0xFF], 0x7F_FFFF),
        (10_000_000, [0x7F, 0xFF, 0xFF], 0x7F_FFFF),
        (i32::MIN, [0x80, 0, 0], -0x80_0000),
    ] {
        let b = ReportBlock {
            cumulative_lost: lost,
            ..block(PEER)
        };
        let bytes = build_compound(OURS, None, &[b], "x");
        assert_eq!(&bytes[13..16], &wire, "{lost}");
        let RtcpPacket::ReceiverReport { blocks, .. } = &parse_compound(&bytes).unwrap()[0] else {
            panic!("not an RR");
        };
        assert_eq!(blocks[0].cumulative_lost, back);
    }
}

#[test]
fn more_than_31_blocks_continue_in_another_rr_and_long_cnames_are_cut() {
    let blocks: Vec<_> = (0..40).map(block).collect();
    let cname = "é".repeat(300);
    let packets = parse_compound(&build_compound(OURS, None, &blocks, &cname)).unwrap();
    let [
        RtcpPacket::ReceiverReport { blocks: first, .. },
        RtcpPacket::ReceiverReport { blocks: second, .. },
        RtcpPacket::SourceDescription { chunks },
    ] = packets.as_slice()
    else {
        panic!("{packets:?}");
    };
    assert_eq!([first.as_slice(), second.as_slice()].concat(), blocks);
    assert_eq!(first.len(), 31);
    assert_eq!(chunks[0].1.as_deref(), Some("é".repeat(127).as_str()));
}

#[test]
fn real_world_compound_packets() {
    // A phone's SR + SDES (CNAME and TOOL), as captured shapes go.
    let sr_sdes: Vec<u8> = [
        &[0x81, 0xC8, 0x00, 0x0C][..],
        &PEER.to_be_bytes(),
        &[0xE8, 0xD2, 0x2B, 0x10, 0x4A, 0x3D, 0x70, 0xA4], // NTP
        &[0x00, 0x01, 0xF4, 0x00],                         // RTP ts
        &[0x00, 0x00, 0x01, 0x90],                         // 400 packets
        &[0x00, 0x00, 0xFA, 0x00],                         // 64000 octets
        &OURS.to_be_bytes(),
        &[0x05, 0xFF, 0xFF, 0xFF], // 5/256 lost, cumulative -1
        &[0x00, 0x00, 0x12, 0x34],
        &[0x00, 0x00, 0x00, 0x2A],
        &[0x2B, 0x10, 0x00, 0x00],
        &[0x00, 0x00, 0x80, 0x00],
        &[0x81, 0xCA, 0x00, 0x06],
        &PEER.to_be_bytes(),
        &[0x01, 0x07],
        b"alice@h",
        &[0x06, 0x05],
        b"Phone",
        &[0x00, 0x00, 0x00, 0x00],
    ]
    .concat();
    let packets = parse_compound(&sr_sdes).unwrap();
    let RtcpPacket::SenderReport {
        ssrc,
        sender,
        blocks,
    } = &packets[0]
    else {
        panic!("{packets:?}");
    };
    assert_eq!(*ssrc, PEER);
    assert_eq!(sender.ntp, 0xE8D2_2B10_4A3D_70A4);
    assert_eq!((sender.packets, sender.octets), (400, 64_000));
    assert_eq!(blocks[0].cumulative_lost, -1);
    assert_eq!(blocks[0].lsr, 0x2B10_0000);
    assert_eq!(
        packets[1],
        RtcpPacket::SourceDescription {
            chunks: vec![(PEER, Some("alice@h".into()))]
        }
    );

    // RR + SDES + APP + BYE with a reason, padded (the P bit on the last packet only).
    let rr_bye: Vec<u8> = [
        &[0x80, 0xC9, 0x00, 0x01][..],
        &PEER.to_be_bytes(),
        &[0x81, 0xCA, 0x00, 0x03],
        &PEER.to_be_bytes(),
        &[0x01, 0x02, b'h', b'i', 0x00, 0x00, 0x00, 0x00],
        &[0x80, 0xCC, 0x00, 0x02], // APP
        &PEER.to_be_bytes(),
        b"name",
        &[0xA1, 0xCB, 0x00, 0x03], // BYE, P bit
        &PEER.to_be_bytes(),
        &[0x03, b'b', b'y', b'e'],
        &[0x00, 0x00, 0x00, 0x04],
    ]
    .concat();
    assert_eq!(
        parse_compound(&rr_bye).unwrap(),
        vec![
            RtcpPacket::ReceiverReport {
                ssrc: PEER,
                blocks: vec![]
            },
            RtcpPacket::SourceDescription {
                chunks: vec![(PEER, Some("hi".into()))]
            },
            RtcpPacket::Other { packet_type: 204 },
            RtcpPacket::Goodbye {
                ssrcs: vec![PEER],
                reason: Some("bye".into())
            },
        ]
    );

    // A lone XR (RFC 5506 reduced size) and an RR with a profile extension.
    let xr = [0x80, 0xCF, 0x00, 0x02, 0, 0, 0, 1, 4, 0, 0, 1];
    assert_eq!(
        parse_compound(&xr).unwrap(),
        vec![RtcpPacket::Other { packet_type: 207 }]
    );
    let mut rr_ext = build_compound(OURS, None, &[block(PEER)], "x")[..32].to_vec();
    rr_ext.extend_from_slice(&[0xEE; 8]);
    rr_ext[3] = 9;
    assert!(matches!(
        &parse_compound(&rr_ext).unwrap()[0],
        RtcpPacket::ReceiverReport { blocks, .. } if blocks == &[block(PEER)]
    ));
}

#[test]
fn garbage_is_rejected_with_a_reason() {
    let rr = build_compound(OURS, None, &[], "x");
    let with = |f: &dyn Fn(&mut Vec<u8>)| {
        let mut v = rr.clone();
        f(&mut v);
        parse_compound(&v)
    };
    assert_eq!(parse_compound(&[]), Err(RtcpError::Empty));
    assert_eq!(with(&|v| v[0] = 0x40), Err(RtcpError::BadVersion(1)));
    assert_eq!(
        parse_compound(&pcma_silence(1, 2, 3)),
        Err(RtcpError::NotRtcp(8)),
        "RTP on the RTCP port"
    );
    assert_eq!(with(&|v| v[3] = 9), Err(RtcpError::Truncated));
    assert_eq!(with(&|v| v.extend([0x80, 201])), Err(RtcpError::Truncated));
    assert_eq!(with(&|v| v[0] |= 0x20), Err(RtcpError::PaddingNotLast));
    let last = rr.len() - 1;
    assert_eq!(
        with(&|v| {
            v[8] |= 0x20;
            v[last] = 0;
        }),
        Err(RtcpError::BadPadding)
    );
    assert_eq!(
        with(&|v| {
            v[8] |= 0x20;
            v[last] = 200;
        }),
        Err(RtcpError::BadPadding)
    );
    assert_eq!(
        with(&|v| v[0] = 0x82),
        Err(RtcpError::Malformed { packet_type: 201 }),
        "two blocks announced, none there"
    );
    assert_eq!(
        with(&|v| v[17] = 200),
        Err(RtcpError::Malformed { packet_type: 202 }),
        "CNAME longer than the packet"
    );
    let bye = [0x81, 0xCB, 0x00, 0x02, 0, 0, 0, 1, 9, b'a', b'b', b'c'];
    assert_eq!(
        parse_compound(&bye),
        Err(RtcpError::Malformed { packet_type: 203 })
    );
}

#[test]
fn random_and_truncated_datagrams_never_panic() {
    let mut rng = StdRng::seed_from_u64(3550);
    let mut session = RtcpSession::new(OURS, "x".into());
    for _ in 0..20_000 {
        let len = rng.gen_range(0..120);
        let mut bytes: Vec<u8> = (0..len).map(|_| rng.r#gen()).collect();
        // Half of them with a plausible first header, to get past the first checks.
        if len >= 4 && rng.gen_bool(0.5) {
            bytes[0] = 0x80 | (bytes[0] & 0x3F);
            bytes[1] = rng.gen_range(200..=207);
            bytes[2] = 0;
            bytes[3] = rng.gen_range(0..len as u8 / 4);
        }
        let _ = parse_compound(&bytes);
        let _ = session.on_rtcp(&bytes, T0);
        is_rtcp(&bytes);
    }
    let sender = Some(SenderInfo::default());
    let valid = [
        build_compound(OURS, sender, &[block(PEER), block(7)], "caller@sas"),
        build_compound(OURS, None, &[block(PEER)], "x"),
    ];
    for packet in &valid {
        let boundaries = [0, 2 * 24 + 28, 24 + 8];
        for n in 1..packet.len() {
            let result = parse_compound(&packet[..n]);
            assert!(
                result.is_err() || boundaries.contains(&n),
                "{n} bytes: {result:?}"
            );
        }
        for i in 0..packet.len() * 8 {
            let mut flipped = packet.clone();
            flipped[i / 8] ^= 1 << (i % 8);
            let _ = parse_compound(&flipped);
        }
    }
    // Statistics fed garbage stay bounded and panic-free.
    let mut stats = ReceiverStats::default();
    for _ in 0..20_000 {
        let ssrc = rng.gen_range(0..3);
        stats.on_rtp(ssrc, rng.r#gen(), rng.r#gen(), rng.r#gen());
        if rng.gen_bool(0.01) {
            stats.report_block(rng.r#gen(), rng.r#gen());
        }
    }
    stats.summary();
}

#[test]
fn ntp_conversion() {
    assert_eq!(ntp_from_unix_ms(0), 2_208_988_800 << 32);
    let t = ntp_from_unix_ms(1_500);
    assert_eq!(t, (2_208_988_801 << 32) | 0x8000_0000);
    assert_eq!(ntp_middle32(t), ((2_208_988_801 & 0xFFFF) << 16) | 0x8000);
    // 2036-02-07 and later: the next NTP era, no panic.
    assert_eq!(ntp_from_unix_ms(2_085_978_496_000) >> 32, 0);
}

#[test]
fn rtcp_mux_demultiplexing() {
    for rtcp_type in [200u8, 201, 202, 203, 204, 205, 206, 207] {
        assert!(is_rtcp(&[0x80, rtcp_type, 0, 1]), "{rtcp_type}");
    }
    for rtp_type in [0u8, 8, 101, 0x80, 0x88, 0x80 | 101] {
        assert!(!is_rtcp(&[0x80, rtp_type, 0, 1]), "{rtp_type}");
    }
    assert!(!is_rtcp(&pcma_silence(1, 1, 1)));
    assert!(!is_rtcp(&[0x80]));
    assert!(!is_rtcp(&[0x00, 0xC8, 0, 1]), "STUN-like first byte");
}

fn session_receiving() -> RtcpSession {
    let mut s = RtcpSession::new(OURS, "sas@router".into());
    for i in 0..50u32 {
        s.on_rtp_received(
            PEER,
            100 + i as u16,
            160 * i,
            160 * u64::from(i),
            T0 + 20 * u64::from(i),
        );
    }
    s
}

fn report_of(peer_ssrc: u32, blocks: &[ReportBlock], sender: Option<SenderInfo>) -> Vec<u8> {
    build_compound(peer_ssrc, sender, blocks, "peer@phone")
}

#[test]
fn rtt_from_the_peer_echoing_our_sr() {
    let mut s = session_receiving();
    s.on_rtp_sent(1000, 160, T0 - 20);
    let ours = parse_compound(&s.report(T0)).unwrap();
    let RtcpPacket::SenderReport { sender, .. } = &ours[0] else {
        panic!("{ours:?}");
    };
    assert_eq!(sender.ntp, ntp_from_unix_ms(T0));
    // The peer holds our SR 200 ms; the network adds 100 ms both ways together.
    let echo = ReportBlock {
        ssrc: OURS,
        fraction_lost: 64,
        cumulative_lost: 7,
        highest_seq: 500,
        jitter: 80,
        lsr: ntp_middle32(sender.ntp),
        dlsr: 200 * 65_536 / 1_000,
    };
    let other = ReportBlock {
        ssrc: 999,
        fraction_lost: 255,
        ..echo
    };
    s.on_rtcp(&report_of(PEER, &[other, echo], None), T0 + 300)
        .unwrap();
    let q = s.quality();
    assert!((q.rtt_ms.unwrap() - 100.0).abs() < 0.1, "{q:?}");
    assert_eq!(q.remote_fraction_lost, Some(0.25));
    assert_eq!(q.remote_jitter_ms, Some(10.0));
    assert_eq!((q.reports_sent, q.reports_received), (1, 1));

    // No LSR yet (the peer has not seen our SR): no RTT, the rest is still news.
    let mut s = session_receiving();
    let early = ReportBlock { lsr: 0, ..echo };
    s.on_rtcp(&report_of(PEER, &[early], None), T0).unwrap();
    assert_eq!(s.quality().rtt_ms, None);
    assert_eq!(s.quality().remote_fraction_lost, Some(0.25));
    assert!(s.on_rtcp(&[0x80, 0xC9], T0).is_err());
    assert_eq!(s.quality().reports_received, 1);
}

#[test]
fn our_report_echoes_the_peers_sr() {
    let mut s = session_receiving();
    let peer_ntp = ntp_from_unix_ms(T0 - 5_000); // the peer's clock is off: no matter
    let sr = SenderInfo {
        ntp: peer_ntp,
        ..SenderInfo::default()
    };
    s.on_rtcp(&report_of(PEER, &[], Some(sr)), T0).unwrap();
    let ours = parse_compound(&s.report(T0 + 1_500)).unwrap();
    let RtcpPacket::ReceiverReport { ssrc, blocks } = &ours[0] else {
        panic!("nothing sent yet, so an RR: {ours:?}");
    };
    assert_eq!(*ssrc, OURS);
    assert_eq!(blocks[0].ssrc, PEER);
    assert_eq!(blocks[0].highest_seq, 149);
    assert_eq!(blocks[0].lsr, ntp_middle32(peer_ntp));
    assert_eq!(blocks[0].dlsr, 98_304, "1.5 s in 1/65536 s");
    assert_eq!(
        ours[1],
        RtcpPacket::SourceDescription {
            chunks: vec![(OURS, Some("sas@router".into()))]
        }
    );

    // An SR from some other SSRC is not the source we report on.
    let mut s = session_receiving();
    s.on_rtcp(&report_of(42, &[], Some(sr)), T0).unwrap();
    let ours = parse_compound(&s.report(T0 + 1_500)).unwrap();
    let RtcpPacket::ReceiverReport { blocks, .. } = &ours[0] else {
        panic!("{ours:?}");
    };
    assert_eq!((blocks[0].lsr, blocks[0].dlsr), (0, 0));
}

#[test]
fn sr_while_sending_then_rr_after_two_silent_intervals() {
    let mut s = RtcpSession::new(OURS, "x".into());
    for i in 0..50u32 {
        s.on_rtp_sent(7_000 + 160 * i, 160, T0 + 20 * u64::from(i));
    }
    let sender_of = |bytes: &[u8]| match parse_compound(bytes).unwrap()[0] {
        RtcpPacket::SenderReport { sender, .. } => Some(sender),
        _ => None,
    };
    let sr = sender_of(&s.report(T0 + 1_000)).unwrap();
    assert_eq!((sr.packets, sr.octets), (50, 8_000));
    assert_eq!(
        sr.rtp_ts,
        7_000 + 160 * 49 + 160,
        "extrapolated to the SR's instant"
    );
    assert_eq!(sr.ntp, ntp_from_unix_ms(T0 + 1_000));
    assert!(
        sender_of(&s.report(T0 + 6_000)).is_some(),
        "sent in the previous interval"
    );
    assert_eq!(sender_of(&s.report(T0 + 11_000)), None);
    s.on_rtp_sent(99, 160, T0 + 12_000);
    assert_eq!(sender_of(&s.report(T0 + 13_000)).unwrap().packets, 51);
    assert_eq!(s.quality().reports_sent, 4);
}

#[test]
fn reports_are_scheduled_every_5s_randomised() {
    let mut s = RtcpSession::new(OURS, "x".into());
    assert_eq!(s.poll_timeout(), None);
    s.on_rtp_received(PEER, 1, 160, 0, T0);
    let first = s.poll_timeout().unwrap();
    s.on_rtp_sent(0, 160, T0 + 10);
    assert_eq!(s.poll_timeout(), Some(first), "armed once");
    assert!(
        (T0 + 1_250..T0 + 3_750).contains(&first),
        "half an interval first"
    );
    s.on_rtp_sent(160, 160, T0 + 20);
    assert_eq!(s.poll_timeout(), Some(first));

    let schedule = |ssrc| {
        let mut s = RtcpSession::new(ssrc, "x".into());
        s.on_rtcp(&report_of(PEER, &[], None), T0).unwrap();
        let mut gaps = Vec::new();
        for _ in 0..200 {
            let at = s.poll_timeout().unwrap();
            s.report(at);
            gaps.push(s.poll_timeout().unwrap() - at);
        }
        gaps
    };
    let gaps = schedule(OURS);
    assert!(gaps.iter().all(|g| (2_500..7_500).contains(g)), "{gaps:?}");
    let mean = gaps.iter().sum::<u64>() / gaps.len() as u64;
    assert!((4_500..5_500).contains(&mean), "mean {mean}");
    assert!(gaps.iter().any(|&g| g != gaps[0]), "randomised");
    assert_eq!(schedule(OURS), gaps, "deterministic for one SSRC");
    assert_ne!(schedule(OURS + 1), gaps, "legs do not report in lockstep");
}

#[test]
fn quality_for_the_call_record() {
    let mut s = RtcpSession::new(OURS, "x".into());
    for i in (0..200u32).filter(|i| i % 10 != 3) {
        s.on_rtp_received(
            PEER,
            i as u16,
            160 * i,
            160 * u64::from(i),
            T0 + 20 * u64::from(i),
        );
    }
    let q = s.quality();
    assert_eq!((q.packets_received, q.packets_lost), (180, 20));
    assert_eq!(q.jitter_ms, 0.0);
    assert_eq!((q.remote_fraction_lost, q.rtt_ms), (None, None));
    let json = serde_json::to_string(&q).unwrap();
    assert_eq!(serde_json::from_str::<LegQuality>(&json).unwrap(), q);
}
