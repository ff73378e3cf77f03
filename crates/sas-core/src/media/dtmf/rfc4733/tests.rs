//! Tests: RFC 4733 telephone-event decoding and RTP header parsing.
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::*;

const T0: EpochMillis = 1_700_000_000_000;

fn block(event: u8, end: bool, duration: u16) -> [u8; 4] {
    let d = duration.to_be_bytes();
    // Volume 10 (-10 dBm0), as phones send.
    [event, if end { 0x80 } else { 0 } | 10, d[0], d[1]]
}

/// One packet: (rtp timestamp, marker, payload, arrival time).
type Packet = (u32, bool, Vec<u8>, EpochMillis);

/// A key press as SIPp or a phone sends it: a marked start packet, one update every
/// 20 ms with a growing duration, then the end packet three times.
fn key_press(event: u8, ts: u32, updates: u16, at: EpochMillis) -> Vec<Packet> {
    let mut packets = Vec::new();
    for i in 0..updates {
        let now = at + 20 * u64::from(i);
        packets.push((ts, i == 0, block(event, false, 160 * (i + 1)).to_vec(), now));
    }
    let end = at + 20 * u64::from(updates);
    for _ in 0..3 {
        packets.push((
            ts,
            false,
            block(event, true, 160 * (updates + 1)).to_vec(),
            end,
        ));
    }
    packets
}

fn feed(decoder: &mut TelephoneEventDecoder, packets: &[Packet]) -> Vec<DigitEvent> {
    packets
        .iter()
        .flat_map(|(ts, m, payload, now)| decoder.push(*ts, *m, payload, *now))
        .collect()
}

fn digits(events: &[DigitEvent]) -> String {
    events.iter().map(|e| e.digit).collect()
}

#[test]
fn key_press_gives_one_digit_on_the_first_end_packet() {
    let mut decoder = TelephoneEventDecoder::default();
    let packets = key_press(5, 16_000, 5, T0);
    let (before_end, ends) = packets.split_at(5);
    assert!(feed(&mut decoder, before_end).is_empty());
    let first_end = feed(&mut decoder, &ends[..1]);
    assert_eq!(
        first_end,
        vec![DigitEvent {
            digit: '5',
            // The start packet already covered 20 ms.
            at: T0 - 20,
            duration_ms: 120,
            source: DtmfSource::Rfc4733,
        }]
    );
    assert!(feed(&mut decoder, &ends[1..]).is_empty());
    assert_eq!(decoder.poll_timeout(), None);
    assert_eq!(decoder.flush(T0 + 10_000), None);
}

#[test]
fn every_dtmf_event_code_maps_to_its_key() {
    let mut decoder = TelephoneEventDecoder::default();
    let mut events = Vec::new();
    for code in 0..16u8 {
        let ts = 10_000 * u32::from(code);
        events.extend(feed(
            &mut decoder,
            &key_press(code, ts, 3, T0 + 1000 * u64::from(code)),
        ));
    }
    assert_eq!(digits(&events), "0123456789*#ABCD");
}

#[test]
fn duplicated_packets_give_one_digit() {
    let mut decoder = TelephoneEventDecoder::default();
    let packets: Vec<Packet> = key_press(1, 800, 4, T0)
        .into_iter()
        .flat_map(|p| [p.clone(), p])
        .collect();
    let events = feed(&mut decoder, &packets);
    assert_eq!(digits(&events), "1");
    assert_eq!(events[0].duration_ms, 100);
}

#[test]
fn reordered_packets_give_one_digit_with_the_full_duration() {
    let mut decoder = TelephoneEventDecoder::default();
    let mut packets = key_press(9, 4_000, 6, T0);
    packets.swap(1, 2);
    packets.swap(3, 6); // an end packet overtakes two updates
    let events = feed(&mut decoder, &packets);
    assert_eq!(digits(&events), "9");
    assert_eq!(events[0].duration_ms, 140);
}

#[test]
fn late_packets_of_an_older_event_are_ignored() {
    let mut decoder = TelephoneEventDecoder::default();
    let first = key_press(1, 1_000, 3, T0);
    let second = key_press(2, 5_000, 3, T0 + 500);
    let mut events = feed(&mut decoder, &first);
    events.extend(feed(&mut decoder, &second[..2]));
    events.extend(feed(&mut decoder, &first)); // replayed
    events.extend(feed(&mut decoder, &second[2..]));
    assert_eq!(digits(&events), "12");
}

#[test]
fn lost_end_packets_reported_when_the_next_event_starts() {
    let mut decoder = TelephoneEventDecoder::default();
    let first = key_press(1, 1_000, 4, T0);
    let second = key_press(1, 3_000, 4, T0 + 250);
    assert!(feed(&mut decoder, &first[..4]).is_empty());
    let events = feed(&mut decoder, &second[..1]);
    assert_eq!(digits(&events), "1");
    assert_eq!(events[0].duration_ms, 80, "what was seen of it");
    assert_eq!(digits(&feed(&mut decoder, &second[1..])), "1");
}

#[test]
fn lost_end_packets_reported_by_flush_after_the_timeout() {
    let mut decoder = TelephoneEventDecoder::default().with_end_timeout(300);
    let packets = key_press(11, 1_000, 4, T0);
    assert!(feed(&mut decoder, &packets[..4]).is_empty());
    let last_update = T0 + 60;
    assert_eq!(decoder.poll_timeout(), Some(last_update + 300));
    assert_eq!(decoder.flush(last_update + 299), None);
    let event = decoder.flush(last_update + 300).expect("flushed");
    assert_eq!((event.digit, event.duration_ms), ('#', 80));
    assert_eq!(decoder.poll_timeout(), None);
    // The end packets finally arrive: already reported.
    assert!(feed(&mut decoder, &packets[4..]).is_empty());
}

#[test]
fn start_packets_lost_end_packets_still_give_the_digit() {
    let mut decoder = TelephoneEventDecoder::default();
    let packets = key_press(0, 1_000, 4, T0);
    let events = feed(&mut decoder, &packets[4..]);
    assert_eq!(digits(&events), "0");
    assert_eq!(events[0].duration_ms, 100);
    assert_eq!(events[0].at, T0 + 80 - 100);
}

#[test]
fn packed_events_each_reported_once() {
    let mut decoder = TelephoneEventDecoder::default();
    let mut events = Vec::new();
    // '1' starts, its end is only sent packed in front of '2' (which starts at 1000 + 800).
    events.extend(decoder.push(1_000, true, &block(1, false, 400), T0));
    let mut packed = block(1, true, 800).to_vec();
    packed.extend(block(2, false, 160));
    events.extend(decoder.push(1_000, true, &packed, T0 + 100));
    events.extend(decoder.push(1_800, false, &block(2, false, 320), T0 + 120));
    for _ in 0..3 {
        events.extend(decoder.push(1_800, false, &block(2, true, 480), T0 + 140));
    }
    assert_eq!(digits(&events), "12");
    assert_eq!(events[0].duration_ms, 100);
    assert_eq!(events[1].duration_ms, 60);
}

#[test]
fn timestamps_wrapping_around() {
    let mut decoder = TelephoneEventDecoder::default();
    let mut events = feed(&mut decoder, &key_press(3, u32::MAX - 200, 3, T0));
    events.extend(feed(&mut decoder, &key_press(4, 2_000, 3, T0 + 400)));
    events.extend(feed(&mut decoder, &key_press(3, u32::MAX - 200, 3, T0))); // late replay
    assert_eq!(digits(&events), "34");
}

#[test]
fn long_press_spanning_two_segments_is_one_digit() {
    let mut decoder = TelephoneEventDecoder::default();
    let mut events = decoder.push(0, true, &block(7, false, 160), T0);
    events.extend(decoder.push(0, false, &block(7, false, 0xFFFF), T0 + 8_190));
    events.extend(decoder.push(0xFFFF, false, &block(7, false, 800), T0 + 8_290));
    events.extend(decoder.push(0xFFFF, false, &block(7, true, 1_600), T0 + 8_390));
    assert_eq!(digits(&events), "7");
    assert_eq!(events[0].duration_ms, (0xFFFF + 1_600) / 8);
}

#[test]
fn marked_event_far_behind_means_the_sender_restarted() {
    let mut decoder = TelephoneEventDecoder::default();
    let mut events = feed(&mut decoder, &key_press(1, 10_000_000, 3, T0));
    events.extend(feed(&mut decoder, &key_press(2, 5_000, 3, T0 + 1_000)));
    assert_eq!(digits(&events), "12");
}

#[test]
fn malformed_and_non_dtmf_payloads_are_ignored() {
    let mut decoder = TelephoneEventDecoder::default();
    for payload in [
        &[][..],
        &[1, 0x80, 0],
        &[1, 0x80, 0, 160, 0],
        &[16, 0x80, 0, 160],
    ] {
        assert!(
            decoder.push(100, true, payload, T0).is_empty(),
            "{payload:?}"
        );
    }
    assert_eq!(decoder.poll_timeout(), None);
    // Flash (16) between keys does not disturb them.
    let mut events = feed(&mut decoder, &key_press(16, 1_000, 3, T0));
    events.extend(feed(&mut decoder, &key_press(5, 3_000, 3, T0 + 300)));
    assert_eq!(digits(&events), "5");
}

#[test]
fn random_payloads_never_panic() {
    let mut rng = StdRng::seed_from_u64(4733);
    let mut decoder = TelephoneEventDecoder::new(0);
    for i in 0..5_000u64 {
        let len = rng.gen_range(0..24);
        let payload: Vec<u8> = (0..len).map(|_| rng.r#gen()).collect();
        let _ = decoder.push(rng.r#gen(), rng.r#gen(), &payload, T0 + i);
        let _ = decoder.flush(T0 + i);
        let _ = parse_rtp(&payload);
    }
}

fn rtp(first: u8, marker_pt: u8, tail: &[u8]) -> Vec<u8> {
    let mut p = vec![
        first, marker_pt, 0x12, 0x34, 0, 0, 0x3E, 0x80, 0xDE, 0xAD, 0xBE, 0xEF,
    ];
    p.extend_from_slice(tail);
    p
}

#[test]
fn parse_rtp_plain_packet() {
    let packet = rtp(0x80, 0x80 | 101, &block(5, false, 160));
    let view = parse_rtp(&packet).expect("valid");
    assert_eq!(
        view,
        RtpView {
            version: 2,
            marker: true,
            payload_type: 101,
            sequence: 0x1234,
            timestamp: 16_000,
            ssrc: 0xDEAD_BEEF,
            payload: &block(5, false, 160),
            payload_offset: 12,
        }
    );
}

#[test]
fn parse_rtp_skips_csrcs_extension_and_padding() {
    let mut tail = vec![0; 8]; // two CSRCs
    tail.extend([0xBE, 0xDE, 0, 1, 1, 2, 3, 4]); // extension, one word
    tail.extend(block(11, true, 480));
    tail.extend([0, 0, 3]); // three bytes of padding
    let packet = rtp(0x80 | 0x20 | 0x10 | 2, 101, &tail);
    let view = parse_rtp(&packet).expect("valid");
    assert!(!view.marker);
    assert_eq!(view.payload, &block(11, true, 480));
    assert_eq!(view.payload_offset, 12 + 8 + 8);
}

#[test]
fn parse_rtp_rejects_bad_packets() {
    assert!(parse_rtp(&[0x80; 11]).is_none(), "short");
    assert!(parse_rtp(&rtp(0x40, 0, &[1, 2])).is_none(), "version 1");
    assert!(
        parse_rtp(&rtp(0x83, 0, &[0; 8])).is_none(),
        "CSRCs past the end"
    );
    assert!(
        parse_rtp(&rtp(0x90, 0, &[0xBE, 0xDE, 0, 9])).is_none(),
        "extension past the end"
    );
    assert!(
        parse_rtp(&rtp(0xA0, 0, &[1, 2, 9])).is_none(),
        "padding past the end"
    );
    assert!(
        parse_rtp(&rtp(0xA0, 0, &[1, 2, 0])).is_none(),
        "zero padding"
    );
    assert_eq!(
        parse_rtp(&rtp(0x80, 0, &[])).map(|v| v.payload.len()),
        Some(0)
    );
}
