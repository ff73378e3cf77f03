//! Media test tooling: known audio and digits in, assertions on what arrives out.
//!
//! **Making media.** [`tone_g711`] and [`inband_dtmf_g711`] make G.711 audio;
//! [`RtpStream`] packs audio and RFC 4733 digits into an RTP stream (20 ms frames, one SSRC,
//! consecutive sequence numbers and timestamps); [`write_pcap`] writes it as a classic
//! libpcap file for SIPp's `<exec play_pcap_audio="..."/>`. [`caller_pcap`],
//! [`inband_pcap`] and [`seat_pcap`] do all three for the usual cases, and [`media_caller`]
//! and [`media_seat`] run the SIPp scenarios that play them (`tests/sipp/caller_media.xml`,
//! `caller_inband.xml`, `seat_media.xml`).
//!
//! **Observing media.** [`RtpSink`] is a UDP socket on loopback that records every RTP
//! packet it gets (and can send from the same port, for symmetric RTP: [`RtpSink::play`]).
//! [`audio_of`], [`rfc4733_digits`], [`inband_digits`], [`tone_share`] and
//! [`read_wav_channels`] turn packets and recordings into things to assert on.
//!
//! **How SIPp 3.6 plays a pcap** (read in its `prepare_pcap.c` / `send_packets.c`, checked by
//! `tests/it/media_tooling.rs`):
//! - link types Ethernet, Linux cooked (SLL) and 802.11 only (3.7 adds raw IP): we write
//!   Ethernet / IPv4 / UDP; IP and UDP checksums are ignored (SIPp recomputes the UDP one);
//! - it keeps each packet from the UDP header on, and rewrites only the UDP ports: the
//!   destination becomes the peer's SDP `m=` port, the source the port that the `[media_port]`
//!   keyword rendered on an SDP line mentioning `audio` (hence the `i=audio ...` line in our
//!   scenarios) — plus, for both, the packet's offset from the lowest destination port in the
//!   file (RTCP at +1 would keep its +1; all our packets use one port). The **RTP header and
//!   payload go out byte for byte: sequence numbers, timestamps, SSRC, payload type and marker
//!   are not rewritten** (so two calls playing the same pcap share an SSRC);
//! - it paces packets by the pcap timestamps (relative to the first packet) in a thread of
//!   its own per call, sending from a raw socket (root or CAP_NET_RAW needed);
//! - the pcap is read once, when the scenario is loaded: `play_pcap_audio="[pcap]"` takes the
//!   value of `-key pcap PATH`, which must come before `-sf` on the command line;
//! - every raw UDP socket bound to 127.0.0.1 receives (and, unread, drops) a copy of every
//!   UDP datagram to 127.0.0.1, so the kernel work of N playing calls grows as N²: harmless
//!   for a few calls, dominant past ~200 (`loadtest/media.sh` has a `MEDIA=stream` mode).
//!
//! **Sinks and the router's symmetric RTP.** The router latches each leg to the source of
//! the first RTP packet it receives there. SIPp plays from its own media port, so a SIPp
//! peer whose SDP points at an [`RtpSink`] (`rtp_port`) must play [`empty_pcap`]: otherwise
//! the router follows SIPp's packets and the sink hears nothing more (seen: the sink got
//! one packet before the latch). To hear *and* talk on such a leg, the sink talks itself:
//! [`RtpSink::play_to_sender`]. The other leg's peer can be a SIPp playing its pcap from its
//! own port as usual. Through the current router (relay only) a caller playing
//! `caller_pcap(.., "42", Alaw)` reached such a seat sink whole: 120 of 120 packets, the
//! router's SSRC, "42" decoded from the relayed events, 1000 Hz share 0.9997.
//!
//! **INFO.** `caller_media.xml` expects `200` to its INFO. The router of this writing
//! answers in-dialog INFO with `501` (its call driver drops rsipstack's `DialogState::Info`
//! without replying), and SIPp then aborts the call.
//!
//! **RFC 4733 digits as phones send them**: while a key is down the phone sends
//! telephone-event packets *instead of* audio (audio pauses; the tone or silence resumes
//! after), one per 20 ms: the first with the marker bit, durations growing by 160, the last
//! (E bit) sent three times; all with the timestamp of the key press, each with its own
//! sequence number. Sequence numbers and the timestamp clock run on through audio and
//! events alike, so the stream has no gaps.

use std::io::{self, Write};
use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use sas_router::media::dtmf::goertzel::InBandDetector;
use sas_router::media::dtmf::rfc4733::{TelephoneEventDecoder, parse_rtp};
pub use sas_router::media::g711::G711Law;
use sas_router::media::recording::{WavFormat, header};

use super::{free_udp_port, ports, sipp_keyed};

/// G.711's sample rate, also the RTP clock rate of audio and telephone-event.
pub const SAMPLE_RATE: u32 = 8_000;
/// Packetisation time of every stream we make.
pub const FRAME_MS: u32 = 20;
/// Samples (and G.711 bytes) per 20 ms frame.
pub const FRAME_SAMPLES: usize = 160;
/// Default payload type of `telephone-event/8000` (what our scenarios offer).
pub const TELEPHONE_EVENT_PT: u8 = 101;
/// Level of every tone we make, per tone (a DTMF digit is two of them): -10 dBm0.
pub const TONE_DBM0: f32 = -10.0;
/// How long a key is held, in-band and RFC 4733 alike.
pub const DIGIT_MS: u32 = 80;
/// Pause between two keys.
pub const DIGIT_GAP_MS: u32 = 80;
/// SSRC of streams from [`caller_stream`] / [`inband_stream`].
pub const CALLER_SSRC: u32 = 0xCA11_E201;
/// SSRC of streams from [`seat_stream`].
pub const SEAT_SSRC: u32 = 0x5EA7_0001;

/// Peak amplitude (16-bit linear) of a 0 dBm0 sine: G.711's full-scale sine is +3.17 dBm0.
const DBM0_AMPLITUDE: f32 = 22_700.0;

/// The RTP payload type of a law: PCMU 0, PCMA 8.
pub fn payload_type(law: G711Law) -> u8 {
    match law {
        G711Law::Ulaw => 0,
        G711Law::Alaw => 8,
    }
}

/// The law of an audio payload type, `None` for anything but 0 and 8.
pub fn law_of(payload_type: u8) -> Option<G711Law> {
    match payload_type {
        0 => Some(G711Law::Ulaw),
        8 => Some(G711Law::Alaw),
        _ => None,
    }
}

/// Peak amplitude of a sine at `dbm0`.
pub fn amplitude(dbm0: f32) -> f32 {
    DBM0_AMPLITUDE * 10f32.powf(dbm0 / 20.0)
}

fn samples_in(ms: u32) -> usize {
    (ms * SAMPLE_RATE / 1000) as usize
}

/// Sum of sines, sample `n` counted from `start` (so a tone cut in pieces stays in phase).
fn sines(freqs: &[f32], dbm0: f32, start: u64, len: usize) -> Vec<i16> {
    let amp = amplitude(dbm0);
    (0..len as u64)
        .map(|i| {
            let t = (start + i) as f64 / f64::from(SAMPLE_RATE);
            let v: f64 = freqs
                .iter()
                .map(|&f| (2.0 * std::f64::consts::PI * f64::from(f) * t).sin())
                .sum();
            (v * f64::from(amp)).round().clamp(-32768.0, 32767.0) as i16
        })
        .collect()
}

/// `ms` of a sine at `freq_hz` and `dbm0`, 8 kHz linear PCM.
pub fn tone_pcm(freq_hz: f32, ms: u32, dbm0: f32) -> Vec<i16> {
    sines(&[freq_hz], dbm0, 0, samples_in(ms))
}

/// `ms` of a sine at `freq_hz` ([`TONE_DBM0`]), G.711-encoded.
pub fn tone_g711(freq_hz: f32, ms: u32, law: G711Law) -> Vec<u8> {
    encode(&tone_pcm(freq_hz, ms, TONE_DBM0), law)
}

/// G.711-encodes linear samples.
pub fn encode(samples: &[i16], law: G711Law) -> Vec<u8> {
    samples.iter().map(|&s| law.encode(s)).collect()
}

/// Decodes G.711 bytes to linear samples.
pub fn decode(bytes: &[u8], law: G711Law) -> Vec<i16> {
    bytes.iter().map(|&b| law.decode(b)).collect()
}

/// Row and column frequencies of a DTMF key (`0-9`, `*`, `#`, `A-D`).
pub fn dtmf_freqs(digit: char) -> (f32, f32) {
    const ROWS: [f32; 4] = [697.0, 770.0, 852.0, 941.0];
    const COLS: [f32; 4] = [1209.0, 1336.0, 1477.0, 1633.0];
    const KEYS: [&str; 4] = ["123A", "456B", "789C", "*0#D"];
    let digit = digit.to_ascii_uppercase();
    for (r, keys) in KEYS.iter().enumerate() {
        if let Some(c) = keys.find(digit) {
            return (ROWS[r], COLS[c]);
        }
    }
    panic!("{digit:?} is not a DTMF key");
}

/// The RFC 4733 event code of a key (0-9, `*` 10, `#` 11, A-D 12-15).
pub fn event_code(digit: char) -> u8 {
    "0123456789*#ABCD"
        .find(digit.to_ascii_uppercase())
        .unwrap_or_else(|| panic!("{digit:?} is not a DTMF key")) as u8
}

/// In-band DTMF as linear PCM: each key `tone_ms` of its two tones ([`TONE_DBM0`] each),
/// then `gap_ms` of silence.
pub fn dtmf_pcm(digits: &str, tone_ms: u32, gap_ms: u32) -> Vec<i16> {
    let mut out = Vec::new();
    for d in digits.chars() {
        let (row, col) = dtmf_freqs(d);
        out.extend(sines(&[row, col], TONE_DBM0, 0, samples_in(tone_ms)));
        out.extend(std::iter::repeat_n(0, samples_in(gap_ms)));
    }
    out
}

/// In-band DTMF for `digits` ([`DIGIT_MS`] tone / [`DIGIT_GAP_MS`] gap), G.711-encoded.
pub fn inband_dtmf_g711(digits: &str, law: G711Law) -> Vec<u8> {
    encode(&dtmf_pcm(digits, DIGIT_MS, DIGIT_GAP_MS), law)
}

/// An RTP packet (12-byte header, no CSRC, no extension).
pub fn rtp_packet(marker: bool, pt: u8, seq: u16, ts: u32, ssrc: u32, payload: &[u8]) -> Vec<u8> {
    let mut p = Vec::with_capacity(12 + payload.len());
    p.push(0x80);
    p.push(pt & 0x7F | if marker { 0x80 } else { 0 });
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&ts.to_be_bytes());
    p.extend_from_slice(&ssrc.to_be_bytes());
    p.extend_from_slice(payload);
    p
}

/// Builds one RTP stream as a phone would send it, 20 ms per packet; see the module doc for
/// how digits sit in it. Packets are `(µs from the stream start, RTP bytes)`.
#[derive(Debug, Clone)]
pub struct RtpStream {
    law: G711Law,
    event_pt: u8,
    ssrc: u32,
    first_seq: u16,
    first_ts: u32,
    /// 20 ms slots used so far: the clock of everything (time, timestamp, tone phase).
    slots: u64,
    packets: Vec<(u64, Vec<u8>)>,
}

impl RtpStream {
    /// An empty stream of `law` audio (PT 0 or 8), events on PT 101, SSRC [`CALLER_SSRC`],
    /// first sequence number 1000 and timestamp 160000.
    pub fn new(law: G711Law) -> Self {
        Self {
            law,
            event_pt: TELEPHONE_EVENT_PT,
            ssrc: CALLER_SSRC,
            first_seq: 1000,
            first_ts: 160_000,
            slots: 0,
            packets: Vec::new(),
        }
    }

    pub fn with_ssrc(mut self, ssrc: u32) -> Self {
        self.ssrc = ssrc;
        self
    }

    /// First sequence number and timestamp (e.g. near the 16/32-bit wrap).
    pub fn with_start(mut self, seq: u16, ts: u32) -> Self {
        self.first_seq = seq;
        self.first_ts = ts;
        self
    }

    /// RTP timestamp of the next slot.
    fn ts(&self) -> u32 {
        self.first_ts
            .wrapping_add((self.slots * FRAME_SAMPLES as u64) as u32)
    }

    fn push(&mut self, marker: bool, pt: u8, ts: u32, payload: &[u8]) {
        let seq = self.first_seq.wrapping_add(self.packets.len() as u16);
        let at = self.slots * u64::from(FRAME_MS) * 1000;
        self.packets
            .push((at, rtp_packet(marker, pt, seq, ts, self.ssrc, payload)));
        self.slots += 1;
    }

    /// G.711 bytes, one packet per 160 (the last padded with silence). The stream's very
    /// first packet carries the marker bit.
    pub fn audio(&mut self, g711: &[u8]) -> &mut Self {
        let pt = payload_type(self.law);
        for chunk in g711.chunks(FRAME_SAMPLES) {
            let mut frame = chunk.to_vec();
            frame.resize(FRAME_SAMPLES, self.law.silence_byte());
            let marker = self.packets.is_empty();
            let ts = self.ts();
            self.push(marker, pt, ts, &frame);
        }
        self
    }

    /// Linear samples, encoded in the stream's law.
    pub fn pcm(&mut self, samples: &[i16]) -> &mut Self {
        let bytes = encode(samples, self.law);
        self.audio(&bytes)
    }

    /// `ms` (rounded up to 20 ms) of a sine at [`TONE_DBM0`], in phase with the stream's
    /// clock: a tone interrupted by digits resumes as if it had gone on underneath.
    pub fn tone(&mut self, freq_hz: f32, ms: u32) -> &mut Self {
        let frames = ms.div_ceil(FRAME_MS) as usize;
        let samples = sines(
            &[freq_hz],
            TONE_DBM0,
            self.slots * FRAME_SAMPLES as u64,
            frames * FRAME_SAMPLES,
        );
        self.pcm(&samples)
    }

    /// `ms` (rounded up to 20 ms) of digital silence.
    pub fn silence(&mut self, ms: u32) -> &mut Self {
        let frames = ms.div_ceil(FRAME_MS) as usize;
        let bytes = vec![self.law.silence_byte(); frames * FRAME_SAMPLES];
        self.audio(&bytes)
    }

    /// One key held `ms` (rounded up to 20 ms, at least one packet), as RFC 4733 packets:
    /// `ms / 20` packets 20 ms apart (marker on the first, durations 160, 320, ...; the last
    /// one with the E bit), then that end packet twice more, 20 ms apart. All share the
    /// timestamp of the key press. Takes `ms + 40` ms of the stream.
    pub fn digit(&mut self, digit: char, ms: u32) -> &mut Self {
        let code = event_code(digit);
        let frames = ms.div_ceil(FRAME_MS).max(1) as u64;
        let ts = self.ts();
        let volume = (-TONE_DBM0) as u8 & 0x3F;
        for k in 0..frames + 2 {
            let end = k + 1 >= frames;
            let duration = ((k + 1).min(frames) * FRAME_SAMPLES as u64).min(0xFFFF) as u16;
            let mut payload = vec![code, volume | if end { 0x80 } else { 0 }];
            payload.extend_from_slice(&duration.to_be_bytes());
            let pt = self.event_pt;
            self.push(k == 0, pt, ts, &payload);
        }
        self
    }

    /// Keys as RFC 4733 events ([`DIGIT_MS`] each), separated by [`DIGIT_GAP_MS`] of audio:
    /// the tone at `gap_tone_hz`, or silence.
    pub fn digits(&mut self, digits: &str, gap_tone_hz: Option<f32>) -> &mut Self {
        for d in digits.chars() {
            self.digit(d, DIGIT_MS);
            match gap_tone_hz {
                Some(f) => self.tone(f, DIGIT_GAP_MS),
                None => self.silence(DIGIT_GAP_MS),
            };
        }
        self
    }

    /// Length of the stream so far.
    pub fn duration_ms(&self) -> u64 {
        self.slots * u64::from(FRAME_MS)
    }

    pub fn packets(&self) -> &[(u64, Vec<u8>)] {
        &self.packets
    }

    pub fn into_packets(self) -> Vec<(u64, Vec<u8>)> {
        self.packets
    }
}

/// Removes about `percent` % of the packets, chosen at random from `seed` (reproducible).
pub fn drop_packets(packets: &[(u64, Vec<u8>)], percent: f64, seed: u64) -> Vec<(u64, Vec<u8>)> {
    use rand::{Rng, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    packets
        .iter()
        .filter(|_| rng.gen_range(0.0..100.0) >= percent)
        .cloned()
        .collect()
}

/// Where the packets of a pcap pretend to come from and go to. SIPp replaces both ports and
/// ignores the addresses.
pub const PCAP_SRC: ([u8; 4], u16) = ([192, 0, 2, 1], 40_000);
pub const PCAP_DST: ([u8; 4], u16) = ([192, 0, 2, 2], 6_000);
/// Capture time of the first packet (any fixed date: SIPp uses only the differences).
const PCAP_EPOCH_S: u64 = 1_767_225_600;

/// Writes `packets` (µs offset from the first, RTP bytes) as a classic libpcap file
/// (microsecond timestamps, link type Ethernet) of Ethernet / IPv4 / UDP frames from
/// [`PCAP_SRC`] to [`PCAP_DST`], checksums computed.
pub fn write_pcap(path: &Path, packets: &[(u64, Vec<u8>)]) -> io::Result<()> {
    let mut out = Vec::with_capacity(24 + packets.len() * 230);
    out.extend_from_slice(&0xA1B2_C3D4u32.to_le_bytes()); // magic: µs timestamps, LE
    out.extend_from_slice(&2u16.to_le_bytes()); // version 2.4
    out.extend_from_slice(&4u16.to_le_bytes());
    out.extend_from_slice(&0i32.to_le_bytes()); // thiszone
    out.extend_from_slice(&0u32.to_le_bytes()); // sigfigs
    out.extend_from_slice(&65_535u32.to_le_bytes()); // snaplen
    out.extend_from_slice(&1u32.to_le_bytes()); // LINKTYPE_ETHERNET
    for (at_us, rtp) in packets {
        let builder =
            etherparse::PacketBuilder::ethernet2([0x02, 0, 0, 0, 0, 1], [0x02, 0, 0, 0, 0, 2])
                .ipv4(PCAP_SRC.0, PCAP_DST.0, 64)
                .udp(PCAP_SRC.1, PCAP_DST.1);
        let mut frame = Vec::with_capacity(builder.size(rtp.len()));
        builder
            .write(&mut frame, rtp)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e.to_string()))?;
        let secs = PCAP_EPOCH_S + at_us / 1_000_000;
        out.extend_from_slice(&(secs as u32).to_le_bytes());
        out.extend_from_slice(&((at_us % 1_000_000) as u32).to_le_bytes());
        out.extend_from_slice(&(frame.len() as u32).to_le_bytes()); // captured
        out.extend_from_slice(&(frame.len() as u32).to_le_bytes()); // on the wire
        out.extend_from_slice(&frame);
    }
    let mut file = std::fs::File::create(path)?;
    file.write_all(&out)?;
    file.sync_all()
}

/// Reads back a pcap written by [`write_pcap`]: (µs offset from the first packet, UDP
/// destination port, UDP payload).
pub fn read_pcap(path: &Path) -> io::Result<Vec<(u64, u16, Vec<u8>)>> {
    let data = std::fs::read(path)?;
    let bad = |what: &str| io::Error::new(io::ErrorKind::InvalidData, what.to_string());
    if data.len() < 24 || data[..4] != 0xA1B2_C3D4u32.to_le_bytes() {
        return Err(bad("not a little-endian µs pcap"));
    }
    if u32::from_le_bytes(data[20..24].try_into().unwrap()) != 1 {
        return Err(bad("link type is not Ethernet"));
    }
    let mut out = Vec::new();
    let mut at = 24;
    let mut first = None;
    while at < data.len() {
        let h = data
            .get(at..at + 16)
            .ok_or_else(|| bad("truncated record"))?;
        let word = |i: usize| u64::from(u32::from_le_bytes(h[i..i + 4].try_into().unwrap()));
        let (us, len) = (word(0) * 1_000_000 + word(4), word(8) as usize);
        if word(8) != word(12) {
            return Err(bad("truncated capture"));
        }
        let frame = data
            .get(at + 16..at + 16 + len)
            .ok_or_else(|| bad("truncated frame"))?;
        let sliced = etherparse::SlicedPacket::from_ethernet(frame)
            .map_err(|e| bad(&format!("bad frame: {e}")))?;
        let Some(etherparse::TransportSlice::Udp(udp)) = sliced.transport else {
            return Err(bad("not UDP"));
        };
        let base = *first.get_or_insert(us);
        out.push((us - base, udp.destination_port(), udp.payload().to_vec()));
        at += 16 + len;
    }
    Ok(out)
}

/// A file name part for digits (`*` and `#` spelt out).
fn digits_tag(digits: &str) -> String {
    digits
        .chars()
        .map(|c| match c {
            '*' => "star".to_string(),
            '#' => "pound".to_string(),
            c => c.to_string(),
        })
        .collect()
}

fn law_tag(law: G711Law) -> &'static str {
    match law {
        G711Law::Ulaw => "pcmu",
        G711Law::Alaw => "pcma",
    }
}

/// A trunk caller: 1 s of tone, `digits` as RFC 4733 events (tone between them), 1 s more.
pub fn caller_stream(tone_hz: f32, digits: &str, law: G711Law) -> RtpStream {
    let mut s = RtpStream::new(law).with_ssrc(CALLER_SSRC);
    s.tone(tone_hz, 1000)
        .digits(digits, Some(tone_hz))
        .tone(tone_hz, 1000);
    s
}

/// A caller keying in-band: 500 ms of silence, the DTMF tones of `digits`
/// ([`inband_dtmf_g711`]), 500 ms of silence.
pub fn inband_stream(digits: &str, law: G711Law) -> RtpStream {
    let mut s = RtpStream::new(law).with_ssrc(CALLER_SSRC);
    s.silence(500)
        .audio(&inband_dtmf_g711(digits, law))
        .silence(500);
    s
}

/// A seat: `ms` of tone, SSRC [`SEAT_SSRC`].
pub fn seat_stream(tone_hz: f32, ms: u32, law: G711Law) -> RtpStream {
    let mut s = RtpStream::new(law)
        .with_ssrc(SEAT_SSRC)
        .with_start(20_000, 8_000_000);
    s.tone(tone_hz, ms);
    s
}

fn write_stream(dir: &Path, name: String, stream: &RtpStream) -> PathBuf {
    let path = dir.join(name);
    write_pcap(&path, stream.packets()).unwrap();
    path
}

/// [`caller_stream`] written to `dir`; returns the pcap's path.
pub fn caller_pcap(dir: &Path, tone_hz: f32, digits: &str, law: G711Law) -> PathBuf {
    let name = format!(
        "caller-{tone_hz}hz-{}-{}.pcap",
        digits_tag(digits),
        law_tag(law)
    );
    write_stream(dir, name, &caller_stream(tone_hz, digits, law))
}

/// [`inband_stream`] written to `dir`.
pub fn inband_pcap(dir: &Path, digits: &str, law: G711Law) -> PathBuf {
    let name = format!("inband-{}-{}.pcap", digits_tag(digits), law_tag(law));
    write_stream(dir, name, &inband_stream(digits, law))
}

/// [`seat_stream`] written to `dir`.
pub fn seat_pcap(dir: &Path, tone_hz: f32, ms: u32, law: G711Law) -> PathBuf {
    let name = format!("seat-{tone_hz}hz-{ms}ms-{}.pcap", law_tag(law));
    write_stream(dir, name, &seat_stream(tone_hz, ms, law))
}

/// A pcap with no packet: for a SIPp peer whose media an [`RtpSink`] handles.
pub fn empty_pcap(dir: &Path) -> PathBuf {
    let path = dir.join("empty.pcap");
    write_pcap(&path, &[]).unwrap();
    path
}

/// One RTP packet as an [`RtpSink`] got it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtpPacket {
    /// Since the sink was bound.
    pub arrival: Duration,
    pub from: SocketAddr,
    pub marker: bool,
    pub pt: u8,
    pub seq: u16,
    pub ts: u32,
    pub ssrc: u32,
    /// Without CSRCs, extension or padding.
    pub payload: Vec<u8>,
    /// The whole datagram.
    pub raw: Vec<u8>,
}

/// A UDP socket on 127.0.0.1 recording the RTP it receives, from a thread of its own, until
/// stopped or dropped. Datagrams that are not RTP version 2, and RTCP (packet types
/// 200-204), are only counted ([`RtpSink::non_rtp`]).
pub struct RtpSink {
    socket: Arc<UdpSocket>,
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    got: Arc<Mutex<Vec<RtpPacket>>>,
    non_rtp: Arc<AtomicUsize>,
    thread: Option<JoinHandle<()>>,
}

impl RtpSink {
    /// Binds 127.0.0.1:0 and starts recording.
    pub fn bind() -> Self {
        let socket = Arc::new(UdpSocket::bind("127.0.0.1:0").unwrap());
        socket
            .set_read_timeout(Some(Duration::from_millis(20)))
            .unwrap();
        let addr = socket.local_addr().unwrap();
        let started = Instant::now();
        let stop = Arc::new(AtomicBool::new(false));
        let got = Arc::new(Mutex::new(Vec::new()));
        let non_rtp = Arc::new(AtomicUsize::new(0));
        let thread = {
            let (socket, stop, got, non_rtp) =
                (socket.clone(), stop.clone(), got.clone(), non_rtp.clone());
            std::thread::spawn(move || {
                let mut buf = [0u8; 2048];
                while !stop.load(Ordering::Relaxed) {
                    let Ok((n, from)) = socket.recv_from(&mut buf) else {
                        continue;
                    };
                    let arrival = started.elapsed();
                    let datagram = &buf[..n];
                    match parse_rtp(datagram) {
                        Some(v) if !(72..=76).contains(&v.payload_type) => {
                            got.lock().unwrap().push(RtpPacket {
                                arrival,
                                from,
                                marker: v.marker,
                                pt: v.payload_type,
                                seq: v.sequence,
                                ts: v.timestamp,
                                ssrc: v.ssrc,
                                payload: v.payload.to_vec(),
                                raw: datagram.to_vec(),
                            })
                        }
                        _ => {
                            non_rtp.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            })
        };
        Self {
            socket,
            addr,
            stop,
            got,
            non_rtp,
            thread: Some(thread),
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// What arrived so far, in arrival order.
    pub fn packets(&self) -> Vec<RtpPacket> {
        self.got.lock().unwrap().clone()
    }

    pub fn len(&self) -> usize {
        self.got.lock().unwrap().len()
    }

    /// Datagrams that were not RTP (RTCP included).
    pub fn non_rtp(&self) -> usize {
        self.non_rtp.load(Ordering::Relaxed)
    }

    /// The source of the first packet: with symmetric RTP, where to send to reach the peer.
    pub fn first_source(&self) -> Option<SocketAddr> {
        self.got.lock().unwrap().first().map(|p| p.from)
    }

    /// Waits (polling every 10 ms) until at least `n` packets arrived.
    pub async fn wait_for(&self, n: usize, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if self.len() >= n {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        self.len() >= n
    }

    /// Sends `packets` (µs offset, RTP bytes) to `to` from this sink's own socket, paced by
    /// their offsets, from a thread; the handle returns how many were sent. Symmetric RTP:
    /// the peer sees one address for our receiving and sending.
    pub fn play(&self, to: SocketAddr, packets: Vec<(u64, Vec<u8>)>) -> JoinHandle<usize> {
        let socket = self.socket.clone();
        std::thread::spawn(move || {
            let start = Instant::now();
            let mut sent = 0;
            for (at_us, rtp) in packets {
                let due = start + Duration::from_micros(at_us);
                if let Some(wait) = due.checked_duration_since(Instant::now()) {
                    std::thread::sleep(wait);
                }
                if socket.send_to(&rtp, to).is_ok() {
                    sent += 1;
                }
            }
            sent
        })
    }

    /// Waits for the first packet, then [`RtpSink::play`]s `packets` back to its source:
    /// the way to both hear and talk on a leg whose SIPp peer plays [`empty_pcap`] (the
    /// router sends first once the other side talks). Panics if nothing came `within`.
    pub async fn play_to_sender(
        &self,
        packets: Vec<(u64, Vec<u8>)>,
        within: Duration,
    ) -> JoinHandle<usize> {
        assert!(
            self.wait_for(1, within).await,
            "no RTP reached {} within {within:?}",
            self.addr
        );
        self.play(self.first_source().unwrap(), packets)
    }

    /// Stops recording and returns everything received.
    pub fn stop(mut self) -> Vec<RtpPacket> {
        self.halt();
        self.packets()
    }

    fn halt(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for RtpSink {
    fn drop(&mut self) {
        self.halt();
    }
}

/// Audio of the packets that arrived between `from` and `to` seconds (the sink's clock).
pub fn heard(packets: &[RtpPacket], from: f32, to: f32) -> Vec<i16> {
    let window: Vec<RtpPacket> = packets
        .iter()
        .filter(|p| (from..to).contains(&p.arrival.as_secs_f32()))
        .cloned()
        .collect();
    audio_of(&window)
}

/// The audio of the packets with payload type 0 or 8, decoded and concatenated in arrival
/// order (other payload types, e.g. telephone-event, are skipped).
pub fn audio_of(packets: &[RtpPacket]) -> Vec<i16> {
    packets
        .iter()
        .filter_map(|p| law_of(p.pt).map(|law| decode(&p.payload, law)))
        .flatten()
        .collect()
}

/// One telephone-event packet: (sequence number, timestamp, marker, event code, E bit,
/// duration).
pub type EventPacket = (u16, u32, bool, u8, bool, u16);

/// The telephone-event packets among `packets` (payload type `event_pt`), in arrival order.
pub fn event_packets(packets: &[RtpPacket], event_pt: u8) -> Vec<EventPacket> {
    packets
        .iter()
        .filter(|p| p.pt == event_pt && p.payload.len() >= 4)
        .map(|p| {
            let b = &p.payload;
            let duration = u16::from_be_bytes([b[2], b[3]]);
            (p.seq, p.ts, p.marker, b[0], b[1] & 0x80 != 0, duration)
        })
        .collect()
}

/// The digits carried by RFC 4733 packets of payload type `event_pt`, decoded by the
/// router's own [`TelephoneEventDecoder`].
pub fn rfc4733_digits(packets: &[RtpPacket], event_pt: u8) -> String {
    let mut decoder = TelephoneEventDecoder::new(SAMPLE_RATE);
    let mut out = String::new();
    let mut last_ms = 0;
    for p in packets.iter().filter(|p| p.pt == event_pt) {
        last_ms = p.arrival.as_millis() as u64;
        for d in decoder.push(p.ts, p.marker, &p.payload, last_ms) {
            out.push(d.digit);
        }
    }
    if let Some(d) = decoder.flush(last_ms + 10_000) {
        out.push(d.digit);
    }
    out
}

/// The in-band DTMF digits in 8 kHz linear audio, found by the router's own
/// [`InBandDetector`].
pub fn inband_digits(samples: &[i16]) -> String {
    let mut detector = InBandDetector::new();
    let mut out: String = detector.push(samples, 0).iter().map(|d| d.digit).collect();
    if let Some(d) = detector.finish() {
        out.push(d.digit);
    }
    out
}

/// Power of the `freq_hz` component of `samples` (8 kHz), Goertzel over the whole slice:
/// A²/2 for a sine of amplitude A at exactly that frequency, comparable to [`mean_power`].
pub fn goertzel_power(samples: &[i16], freq_hz: f32) -> f32 {
    if samples.is_empty() {
        return 0.0;
    }
    let w = 2.0 * std::f64::consts::PI * f64::from(freq_hz) / f64::from(SAMPLE_RATE);
    let coeff = 2.0 * w.cos();
    let (mut s1, mut s2) = (0.0f64, 0.0f64);
    for &x in samples {
        let s0 = f64::from(x) + coeff * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    let n = samples.len() as f64;
    let power = s1 * s1 + s2 * s2 - coeff * s1 * s2;
    (2.0 * power / (n * n)) as f32
}

/// Mean power (mean of x²) of `samples`.
pub fn mean_power(samples: &[i16]) -> f32 {
    if samples.is_empty() {
        return 0.0;
    }
    let sum: f64 = samples.iter().map(|&x| f64::from(x) * f64::from(x)).sum();
    (sum / samples.len() as f64) as f32
}

/// Share (0..=1) of the audio's energy at `freq_hz`, measured in 40 ms blocks (two
/// packets) so that lost packets and digit pauses (phase jumps) barely matter. A clean tone
/// at that frequency gives > 0.95 (G.711 noise takes the rest), a tone 100 Hz or more away
/// < 0.01, silence 0. Two tones of equal level give about 0.5 each.
pub fn tone_share(samples: &[i16], freq_hz: f32) -> f32 {
    let (mut tone, mut total) = (0.0f64, 0.0f64);
    for block in samples.chunks_exact(2 * FRAME_SAMPLES) {
        tone += f64::from(goertzel_power(block, freq_hz));
        total += f64::from(mean_power(block));
    }
    if total == 0.0 {
        0.0
    } else {
        (tone / total) as f32
    }
}

/// A WAV file's sample rate and its samples per channel (de-interleaved), scaled to 16 bits
/// whatever the file's integer or float depth. G.711 WAV (format tags 6 and 7: what the
/// router records), which hound refuses, must have the router's canonical header and is
/// decoded; the rest is hound's.
pub fn read_wav_channels(path: &Path) -> Result<(u32, Vec<Vec<i16>>), hound::Error> {
    let bytes = std::fs::read(path)?;
    if let Some(WavFormat::G711(law)) = WavFormat::of_header(&bytes) {
        let (head, audio) = bytes.split_at(58.min(bytes.len()));
        if head != header(WavFormat::G711(law), audio.len() as u32) {
            return Err(hound::Error::FormatError("not the canonical G.711 header"));
        }
        let channel = |c: usize| audio.iter().skip(c).step_by(2).map(|&b| law.decode(b));
        return Ok((8000, vec![channel(0).collect(), channel(1).collect()]));
    }
    let mut reader = hound::WavReader::open(path)?;
    let spec = reader.spec();
    let channels = usize::from(spec.channels);
    let interleaved: Vec<i16> = match spec.sample_format {
        hound::SampleFormat::Int => {
            let shift = i32::from(spec.bits_per_sample) - 16;
            reader
                .samples::<i32>()
                .map(|s| {
                    s.map(|v| {
                        if shift >= 0 {
                            (v >> shift) as i16
                        } else {
                            (v << -shift) as i16
                        }
                    })
                })
                .collect::<Result<_, _>>()?
        }
        hound::SampleFormat::Float => reader
            .samples::<f32>()
            .map(|s| s.map(|v| (v * 32767.0).clamp(-32768.0, 32767.0) as i16))
            .collect::<Result<_, _>>()?,
    };
    let mut out = vec![Vec::with_capacity(interleaved.len() / channels.max(1)); channels];
    for frame in interleaved.chunks_exact(channels) {
        for (c, &s) in frame.iter().enumerate() {
            out[c].push(s);
        }
    }
    Ok((spec.sample_rate, out))
}

/// A call placed by [`media_caller`].
#[derive(Debug, Clone)]
pub struct MediaCall<'a> {
    /// `caller_media.xml` (PCMU, PCMA, telephone-event; sends an INFO) or
    /// `caller_inband.xml` (PCMA only, no INFO).
    pub scenario: &'a str,
    /// The number dialled: `15`, `116117`...
    pub number: &'a str,
    /// Played once answered.
    pub pcap: &'a Path,
    /// The SDP `m=` port; `None` for SIPp's own media port (see caller_media.xml about
    /// pointing it at an [`RtpSink`]).
    pub rtp_port: Option<u16>,
    /// From the start of the playback to the INFO (caller_media.xml) — SIPp's `-d`.
    pub info_at_ms: u64,
    /// From the INFO (or, in caller_inband.xml, from `info_at_ms`) to the BYE.
    pub tail_ms: u64,
    /// caller_media.xml's payload types in preference order: `0 8 101` (PCMU first) or
    /// `8 0 101`.
    pub offer: &'a str,
}

impl<'a> MediaCall<'a> {
    /// `caller_media.xml` dialling `number`, INFO at 2 s, BYE 1 s later, own media port.
    pub fn new(number: &'a str, pcap: &'a Path) -> Self {
        Self {
            scenario: "caller_media.xml",
            number,
            pcap,
            rtp_port: None,
            info_at_ms: 2_000,
            tail_ms: 1_000,
            offer: "0 8 101",
        }
    }
}

/// A 15 caller (`caller_media.xml`, playing `pcap`) whose audio from the router arrives
/// on a sink of ours: INFO after `info_at_ms`, BYE `tail_ms` later.
pub fn listening_caller(
    router: SocketAddr,
    pcap: &Path,
    info_at_ms: u64,
    tail_ms: u64,
) -> (tokio::process::Child, RtpSink) {
    let sink = RtpSink::bind();
    let call = MediaCall {
        rtp_port: Some(sink.port()),
        info_at_ms,
        tail_ms,
        ..MediaCall::new("15", pcap)
    };
    (media_caller(router, &call), sink)
}

/// Places one call from a SIPp trunk caller (own SIP and media ports, 60 s timeout).
pub fn media_caller(router: SocketAddr, call: &MediaCall) -> tokio::process::Child {
    let port = free_udp_port().to_string();
    let media = ports::media_port();
    let rtp_port = call.rtp_port.unwrap_or(media).to_string();
    let pcap = call.pcap.to_str().expect("UTF-8 pcap path");
    let (media, d, tail) = (
        media.to_string(),
        call.info_at_ms.to_string(),
        call.tail_ms.to_string(),
    );
    sipp_keyed(
        router,
        call.scenario,
        &[
            ("pcap", pcap),
            ("rtp_port", &rtp_port),
            ("offer", call.offer),
        ],
        &[
            "-set",
            "tail_ms",
            &tail,
            "-s",
            call.number,
            "-p",
            &port,
            "-mp",
            &media,
            "-m",
            "1",
            "-d",
            &d,
            "-timeout",
            "60s",
        ],
    )
    .spawn()
    .unwrap()
}

/// A SIPp seat (`seat_media.xml`) that answers `calls` calls after `ring_ms`, plays `pcap`
/// in each and waits for BYE; its SDP `m=` port is `rtp_port` or, if `None`, its own media
/// port. Returns the child and its SIP port: register it with
/// `register(router, user, port)`.
pub fn media_seat(
    router: SocketAddr,
    pcap: &Path,
    rtp_port: Option<u16>,
    calls: usize,
    ring_ms: u64,
) -> (tokio::process::Child, u16) {
    let port = free_udp_port();
    let media = ports::media_port();
    let rtp_port = rtp_port.unwrap_or(media).to_string();
    let pcap = pcap.to_str().expect("UTF-8 pcap path");
    let child = sipp_keyed(
        router,
        "seat_media.xml",
        &[("pcap", pcap), ("rtp_port", &rtp_port)],
        &[
            "-p",
            &port.to_string(),
            "-mp",
            &media.to_string(),
            "-m",
            &calls.to_string(),
            "-d",
            &ring_ms.to_string(),
            "-timeout",
            "60s",
        ],
    )
    .spawn()
    .unwrap();
    (child, port)
}

/// Writes prompts `(name, tone Hz, ms)` as 8 kHz WAV files under `dir`, so what a caller
/// hears can be told apart by frequency.
/// The hold prompt's tone in [`short_tone_prompts`].
pub const HOLD_HZ: f32 = 660.0;

/// `dir/prompts` with a short greeting (440 Hz, 300 ms), a hold tone ([`HOLD_HZ`], 3 s) and a
/// reassurance (880 Hz): quick calls whose every phase can be told apart. Returns the dir.
pub fn short_tone_prompts(dir: &Path) -> PathBuf {
    let prompts = dir.join("prompts");
    let tones = [
        ("greeting", 440.0, 300),
        ("hold", HOLD_HZ, 3000),
        ("reassurance", 880.0, 100),
    ];
    write_tone_prompts(&prompts, &tones);
    prompts
}

pub fn write_tone_prompts(dir: &Path, prompts: &[(&str, f32, u32)]) {
    std::fs::create_dir_all(dir).unwrap();
    for (name, hz, ms) in prompts {
        let spec = hound::WavSpec {
            channels: 1,
            sample_rate: 8000,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let mut w = hound::WavWriter::create(dir.join(format!("{name}.wav")), spec).unwrap();
        for s in tone_pcm(*hz, *ms, -10.0) {
            w.write_sample(s).unwrap();
        }
        w.finalize().unwrap();
    }
}

/// A trunk caller dialling `number` whose media is a sink of ours: it hears what the router
/// sends, talks a `hz` tone (A-law) for `ms` from the first packet it hears, and hangs up
/// 0.5 s after. Returns the SIPp process, the sink and the talking thread.
pub async fn talking_caller(
    router: SocketAddr,
    number: &str,
    empty: &Path,
    hz: f32,
    ms: u32,
) -> (tokio::process::Child, RtpSink, JoinHandle<usize>) {
    let sink = RtpSink::bind();
    let caller = media_caller(
        router,
        &MediaCall {
            rtp_port: Some(sink.port()),
            info_at_ms: u64::from(ms),
            tail_ms: 500,
            ..MediaCall::new(number, empty)
        },
    );
    let mut voice = RtpStream::new(G711Law::Alaw);
    voice.tone(hz, ms);
    let talking = sink
        .play_to_sender(voice.into_packets(), Duration::from_secs(20))
        .await;
    (caller, sink, talking)
}

/// The caller heard mostly `hz` (the hold prompt) from `from` to `to` (seconds since its
/// sink was bound).
pub fn assert_hears(got: &[RtpPacket], from: f32, to: f32, hz: f32) {
    let share = tone_share(&heard(got, from, to), hz);
    assert!(
        share > 0.5,
        "{hz} Hz from {from:.1} s to {to:.1} s: {share:.2}"
    );
}

/// The caller got a browser's (fake microphone) audio through its WebRTC leg.
pub fn assert_hears_browser_microphone(got: &[RtpPacket]) {
    let from_browser: Vec<RtpPacket> = got.iter().skip(100).cloned().collect();
    assert!(from_browser.len() > 100, "{} packets", from_browser.len());
    assert!(
        mean_power(&audio_of(&from_browser)) > 1000.0,
        "the browser's microphone reaches the caller"
    );
}
