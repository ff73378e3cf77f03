//! The media logic of one call, sans-IO: what each leg hears, DTMF detection, PCMU ↔ PCMA
//! conversion, three-way mixing, the recording taps.
//!
//! Leg A is the caller, legs B and C the plateau side (seats; C joins during an accompanied
//! transfer). The caller hears the router's [`Player`] (greeting, hold, reassurance), one
//! seat (bridged: packets relayed one by one), or, in conference, every leg hears the mix
//! of the others (decoded, summed and re-encoded every 20 ms). Every packet sent to a leg
//! goes through that leg's [`OutboundStream`], so a switch of source never shows as a new
//! SSRC or a sequence jump.
//!
//! A supervisor on the call ([`MediaSession::monitor`]) is on the seat leg the call does
//! not use. While the caller is bridged to a seat, the three are then mixed like a
//! conference, each hearing whom the [`MonitorMode`] says: listen, the supervisor hears
//! both and nobody hears the supervisor; whisper, the seat hears the supervisor too;
//! barge, everyone hears everyone. The mix (decode, sum, clip, encode every 20 ms) costs
//! only monitored calls; the others stay packet relays.
//!
//! Digits pressed by the caller are detected from RFC 4733 packets when the trunk
//! negotiated `telephone-event`, otherwise in the audio (Goertzel). SIP INFO digits arrive
//! through signalling, not here.
//!
//! The IO task ([`super::relay`]) feeds received packets to [`MediaSession::on_rtp`] and
//! calls [`MediaSession::on_timeout`] at [`MediaSession::poll_timeout`]; time is passed in
//! as milliseconds on a monotonic clock that reads like epoch time.

use std::collections::VecDeque;

use audio_codec_algorithms::{convert_alaw_to_ulaw, convert_ulaw_to_alaw};

use super::dtmf::DigitEvent;
use super::dtmf::goertzel::InBandDetector;
use super::dtmf::rfc4733::{TelephoneEventDecoder, parse_rtp};
use super::g711::G711Law;
use super::leg::Leg;
use super::playback::{Announcement, Player};
use super::prompts::{FRAME_BYTES, FRAME_MS};
use super::recording::{RecordingError, RecordingInfo, RtpMeta};
use super::rtcp::{LegQuality, RtcpSession};
use super::sdp::LegCodecs;
use super::stream::{OutboundStream, SourceId};
use crate::cti::MonitorMode;
use crate::time::EpochMillis;
use conference::{EVERYONE, Hearing, Mixer};

mod conference;
mod fast_path;
#[cfg(test)]
mod tests;

pub use fast_path::FastPath;

/// Fixed RTP header length (what relayed packets carry; payload is the rest).
const RTP_HEADER_LEN: usize = 12;

/// 8 kHz: RTP clock samples per millisecond.
const SAMPLES_PER_MS: u64 = 8;

/// If the task was late by more than this, playback and mixing skip ahead rather than
/// bursting frames at the phones.
const MAX_PLAYBACK_CATCH_UP_MS: u64 = 100;

/// How often a recording hears that time passes when no packet does (a quiet line).
const RECORD_TICK_MS: u64 = 500;

/// One packet for the recording: `at` counts 8 kHz samples since the recording started
/// (arrival, or sending, time: both channels share one clock), `rtp` places it.
#[derive(Debug, Clone, Copy)]
pub struct Tap<'a> {
    pub at: u64,
    pub rtp: RtpMeta,
    pub payload: &'a [u8],
    pub law: G711Law,
}

/// Receives the recording taps of a call.
pub trait RecordSink: Send {
    /// A packet from the caller.
    fn caller_audio(&mut self, tap: Tap<'_>);
    /// A packet sent to the caller (prompts, hold, the seat), with the header it went
    /// out with.
    fn plateau_audio(&mut self, tap: Tap<'_>);
    /// Time passes (sample position `at`), packets or not.
    fn tick(&mut self, at: u64);
    /// The call ended at sample position `at`: the recording stops there.
    fn end(&mut self, at: u64);
    /// `samples` of audio reached the router but will never reach the recording (the
    /// kernel path's tap could not keep them): the recording is incomplete by that much.
    fn lost(&mut self, samples: u64);
    /// Closes the recording; blocking IO, so off the event loop.
    fn finish(self: Box<Self>) -> Result<FinishedRecording, RecordingError>;
}

/// A closed recording: what the call record keeps of it, and its file's descriptor still
/// open (the file not yet synced) for whoever makes it durable with the record, so it need
/// not be opened again. The core only carries it.
#[derive(Debug)]
pub struct FinishedRecording {
    pub info: RecordingInfo,
    /// `None`: a sink that writes no file.
    pub file: Option<std::os::fd::OwnedFd>,
}

impl From<RecordingInfo> for FinishedRecording {
    fn from(info: RecordingInfo) -> Self {
        Self { info, file: None }
    }
}

/// Who hears whom.
#[derive(Debug)]
enum Mode {
    /// Nobody hears anything (before the first announcement).
    Nothing,
    /// The caller hears the player, the seats nothing.
    Player(Box<Player>),
    /// The caller and this seat leg hear each other; the other seat leg is left out.
    Bridge(Leg),
    /// Every leg hears the others.
    Conference(Mixer),
    /// Bridged to `seat`, with a supervisor on the third leg: mixed as `hearing` says.
    Monitored {
        mixer: Mixer,
        seat: Leg,
        hearing: Hearing,
    },
}

/// A supervisor on the call: its leg and what it hears and says to whom.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Monitor {
    /// The supervisor's leg (B or C: the one the bridged seat does not use).
    pub supervisor: Leg,
    /// Listen, whisper or barge.
    pub mode: MonitorMode,
}

impl Monitor {
    /// Who hears whom with the caller bridged to `seat`.
    fn hearing(self, seat: Leg) -> Hearing {
        let (a, s, v) = (Leg::A.idx(), seat.idx(), self.supervisor.idx());
        if self.mode == MonitorMode::Barge {
            return EVERYONE;
        }
        let mut hearing = [[false; 3]; 3];
        hearing[a][s] = true;
        hearing[s][a] = true;
        hearing[v][a] = true;
        hearing[v][s] = true;
        // Whisper: to the seat only, never to the caller.
        hearing[s][v] = self.mode == MonitorMode::Whisper;
        hearing
    }
}

#[derive(Debug)]
struct LegMedia {
    codecs: Option<LegCodecs>,
    /// The stream this leg receives.
    out: OutboundStream,
    /// Source id of the leg's current peer (a new one for each seat on the leg).
    peer: SourceId,
    /// The peer put us on hold (`sendonly`/`inactive`): send it nothing (RFC 3264 §5.1).
    on_hold: bool,
    /// Reports about the stream we send this leg and the one it sends us.
    rtcp: RtcpSession,
}

/// What became of a received RTP packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// Rewritten in place: send it to this leg.
    Relay(Leg),
    /// Taken into the conference mix.
    Mixed,
    /// Heard by nobody: no one listening, or not negotiated.
    Dropped,
}

/// A packet to send to a leg.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    pub leg: Leg,
    pub packet: Vec<u8>,
    /// An RTCP report (to the leg's RTCP address) rather than RTP.
    pub rtcp: bool,
}

/// RTCP CNAME of the router's streams (RFC 3550 §6.5.1: stable per endpoint).
const CNAME: &str = "sas-router";

/// The media state of one call.
pub struct MediaSession {
    /// Time zero of the streams' sample clock.
    start: EpochMillis,
    legs: [LegMedia; 3],
    mode: Mode,
    /// A supervisor on the call, mixed in whenever the caller is bridged to a seat.
    monitor: Option<Monitor>,
    /// When the next player or conference frame is due.
    next_frame_at: Option<EpochMillis>,
    /// Sources so far: each peer, play and conference is the next one, in the high bits of
    /// its [`SourceId`] (the low bits number the player's segments).
    sources: u64,
    /// Source of the frames the router makes (the current play or conference).
    own_source: SourceId,
    recorder: Option<(EpochMillis, Box<dyn RecordSink>)>,
    /// When the recording next hears the time.
    record_tick_at: Option<EpochMillis>,
    telephone_events: TelephoneEventDecoder,
    in_band: InBandDetector,
    digits: VecDeque<DigitEvent>,
    /// The player's greeting (a prompt played once) went out entirely.
    prompt_ended: bool,
}

impl std::fmt::Debug for MediaSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MediaSession")
            .field("legs", &self.legs)
            .field("mode", &self.mode)
            .field("recording", &self.recorder.is_some())
            .finish_non_exhaustive()
    }
}

impl MediaSession {
    /// A session whose streams start at `start`, with our SSRC and first sequence number
    /// towards each leg (random in production).
    pub fn new(start: EpochMillis, ssrc: [u32; 3], first_seq: [u16; 3]) -> MediaSession {
        MediaSession {
            start,
            legs: Leg::ALL.map(|leg| LegMedia {
                codecs: None,
                out: OutboundStream::new(ssrc[leg.idx()], first_seq[leg.idx()]),
                peer: 0,
                on_hold: false,
                rtcp: RtcpSession::new(ssrc[leg.idx()], CNAME.into()),
            }),
            mode: Mode::Nothing,
            monitor: None,
            next_frame_at: None,
            sources: 0,
            own_source: 0,
            recorder: None,
            record_tick_at: None,
            telephone_events: TelephoneEventDecoder::default(),
            in_band: InBandDetector::new(),
            digits: VecDeque::new(),
            prompt_ended: false,
        }
    }

    /// The codecs negotiated with a (new) peer on `leg`.
    pub fn set_codecs(&mut self, leg: Leg, codecs: LegCodecs) {
        let peer = self.new_source();
        let l = &mut self.legs[leg.idx()];
        l.codecs = Some(codecs);
        l.peer = peer;
        if leg == Leg::A {
            self.telephone_events.reset();
        }
    }

    /// Whether `leg`'s peer wants our audio (its SDP is not `sendonly`/`inactive`).
    pub fn set_receiving(&mut self, leg: Leg, receiving: bool) {
        self.legs[leg.idx()].on_hold = !receiving;
    }

    /// The caller hears `announcement` from now on (and the seats nothing).
    pub fn play(&mut self, announcement: Announcement, now: EpochMillis) {
        let law = self.law(Leg::A).unwrap_or(G711Law::Alaw);
        self.mode = Mode::Player(Box::new(Player::new(announcement, law)));
        self.start_frames(now);
        self.prompt_ended = false;
    }

    /// The caller and the seat on `seat` (B or C) hear each other; the other seat leg
    /// hears nothing and is not heard. Bridging the caller to itself is ignored.
    /// With a supervisor on the call, the three are mixed from the next packet.
    pub fn bridge(&mut self, seat: Leg) {
        if seat == Leg::A {
            return;
        }
        self.next_frame_at = None;
        self.mode = match self.monitor.filter(|m| m.supervisor != seat) {
            Some(m) => Mode::Monitored {
                mixer: Mixer::default(),
                seat,
                hearing: m.hearing(seat),
            },
            None => Mode::Bridge(seat),
        };
    }

    /// A supervisor joins (or changes mode), or leaves (`None`): a call bridged to a seat
    /// is mixed (or relayed again) at once; otherwise (prompts, conference) from its next
    /// bridge. The supervisor's leg must have its codecs.
    pub fn monitor(&mut self, monitor: Option<Monitor>) {
        self.monitor = monitor;
        let seat = match &self.mode {
            Mode::Bridge(seat) | Mode::Monitored { seat, .. } => *seat,
            _ => return,
        };
        match (&mut self.mode, monitor) {
            // A new mode only: the mix goes on, buffers and stream kept.
            (Mode::Monitored { hearing, .. }, Some(m)) if m.supervisor != seat => {
                *hearing = m.hearing(seat);
            }
            _ => self.bridge(seat),
        }
    }

    /// Every leg with codecs hears the mix of the others, from the frame due at `now`.
    pub fn conference(&mut self, now: EpochMillis) {
        self.mode = Mode::Conference(Mixer::default());
        self.start_frames(now);
    }

    /// Records the call from now on.
    pub fn start_recording(&mut self, sink: Box<dyn RecordSink>, now: EpochMillis) {
        self.recorder = Some((now, sink));
        self.record_tick_at = Some(now + RECORD_TICK_MS);
    }

    /// Stops recording and hands the sink back (to finish the file).
    pub fn take_recorder(&mut self) -> Option<Box<dyn RecordSink>> {
        self.record_tick_at = None;
        self.recorder.take().map(|(_, sink)| sink)
    }

    /// A packet received on `leg`, from the latched peer. Rewrites it in place when it is
    /// to be relayed, and says what became of it.
    pub fn on_rtp(&mut self, leg: Leg, packet: &mut [u8], now: EpochMillis) -> Delivery {
        self.deliver(leg, packet, now).unwrap_or(Delivery::Dropped)
    }

    /// [`Self::on_rtp`], `None` meaning dropped.
    fn deliver(&mut self, leg: Leg, packet: &mut [u8], now: EpochMillis) -> Option<Delivery> {
        let view = parse_rtp(packet)?;
        let (pt, ts, marker, offset) = (
            view.payload_type,
            view.timestamp,
            view.marker,
            view.payload_offset,
        );
        let payload_len = view.payload.len();
        let (ssrc, seq) = (view.ssrc, view.sequence);
        let arrival = self.samples(now);
        self.legs[leg.idx()]
            .rtcp
            .on_rtp_received(ssrc, seq, ts, arrival, now);
        let from = self.legs[leg.idx()].codecs?;
        // The leg this packet is relayed to, when bridged.
        let to = match self.mode {
            Mode::Bridge(seat) if leg == Leg::A => Some(seat),
            Mode::Bridge(seat) if leg == seat => Some(Leg::A),
            _ => None,
        }
        .filter(|to| !self.legs[to.idx()].on_hold);
        let payload = offset..offset + payload_len;
        if Some(pt) == from.dtmf_pt {
            if leg == Leg::A {
                let digits = self
                    .telephone_events
                    .push(ts, marker, &packet[payload], now);
                self.digits.extend(digits);
            }
            // Relayed only to a leg that negotiated telephone-event too (never mixed).
            let to = to?;
            let target_pt = self.legs[to.idx()].codecs?.dtmf_pt?;
            return self.relay(leg, to, packet, target_pt, now);
        }
        // Not negotiated (comfort noise, a stray codec): dropped.
        let law = from.law_of(pt)?;
        if leg == Leg::A {
            if from.dtmf_pt.is_none() {
                let digits = self.in_band.push_g711(&packet[payload.clone()], law, now);
                self.digits.extend(digits);
            }
            let rtp = RtpMeta {
                ssrc,
                timestamp: ts,
            };
            self.record(now, |sink, at| {
                sink.caller_audio(Tap {
                    at,
                    rtp,
                    payload: &packet[payload.clone()],
                    law,
                })
            });
        }
        match &mut self.mode {
            Mode::Conference(mixer) => {
                mixer.push(leg, &packet[payload], law);
                return Some(Delivery::Mixed);
            }
            Mode::Monitored { mixer, .. } => {
                mixer.push(leg, &packet[payload], law);
                // Bridged without a clock: the mix starts with its first packet.
                if self.next_frame_at.is_none() {
                    self.start_frames(now);
                }
                return Some(Delivery::Mixed);
            }
            _ => {}
        }
        let to = to?;
        let target = self.legs[to.idx()].codecs?;
        convert(&mut packet[payload.clone()], law, target.law);
        let delivery = self.relay(leg, to, packet, target.audio_pt, now)?;
        if to == Leg::A {
            // As the caller got it: our stream's timestamps place it.
            let rtp = meta_of(packet);
            self.record(now, |sink, at| {
                sink.plateau_audio(Tap {
                    at,
                    rtp,
                    payload: &packet[payload],
                    law: target.law,
                })
            });
        }
        Some(delivery)
    }

    /// When [`Self::on_timeout`] must next run.
    pub fn poll_timeout(&self) -> Option<EpochMillis> {
        let reports = self.legs.iter().map(|l| l.rtcp.poll_timeout());
        [
            self.next_frame_at,
            self.telephone_events.poll_timeout(),
            self.record_tick_at,
        ]
        .into_iter()
        .chain(reports)
        .flatten()
        .min()
    }

    /// Sends the player or conference frames due by `now` and the RTCP reports due, and
    /// reports RFC 4733 digits whose end was lost.
    pub fn on_timeout(&mut self, now: EpochMillis, out: &mut Vec<Outgoing>) {
        if let Some(digit) = self.telephone_events.flush(now) {
            self.digits.push_back(digit);
        }
        if self.record_tick_at.is_some_and(|t| t <= now) {
            self.record_tick_at = Some(now + RECORD_TICK_MS);
            self.record(now, |sink, at| sink.tick(at));
        }
        for leg in Leg::ALL {
            let rtcp = &mut self.legs[leg.idx()].rtcp;
            if rtcp.poll_timeout().is_some_and(|t| t <= now) {
                out.push(Outgoing {
                    leg,
                    packet: rtcp.report(now),
                    rtcp: true,
                });
            }
        }
        let Some(mut due) = self.next_frame_at else {
            return;
        };
        if now.saturating_sub(due) > MAX_PLAYBACK_CATCH_UP_MS {
            due = now;
        }
        let frame_ms = u64::from(FRAME_MS);
        while due <= now {
            // One frame per leg (`None`: the leg hears nothing this time).
            let (frames, segment) = match &mut self.mode {
                Mode::Player(player) if self.legs[Leg::A.idx()].codecs.is_some() => {
                    let (frame, segment) = player.next_frame();
                    if player.greeting_ended() {
                        self.prompt_ended = true;
                    }
                    ([Some(frame), None, None], segment)
                }
                Mode::Conference(mixer) => (encode(&self.legs, mixer.mix(&EVERYONE)), 0),
                Mode::Monitored { mixer, hearing, .. } => {
                    (encode(&self.legs, mixer.mix(hearing)), 0)
                }
                _ => break,
            };
            let source = self.own_source + segment;
            for (leg, frame) in Leg::ALL.into_iter().zip(frames) {
                if let Some(frame) = frame {
                    self.send_frame(leg, &frame, source, due, out);
                }
            }
            due += frame_ms;
        }
        self.next_frame_at = Some(due);
    }

    /// Sends `leg` a frame the router made (player or mix), due `at`, unless the leg put
    /// us on hold: the audio goes on, unheard.
    fn send_frame(
        &mut self,
        leg: Leg,
        frame: &[u8],
        source: SourceId,
        at: EpochMillis,
        out: &mut Vec<Outgoing>,
    ) {
        let clock = self.samples(at);
        let l = &mut self.legs[leg.idx()];
        let Some(codecs) = l.codecs.filter(|_| !l.on_hold) else {
            return;
        };
        let packet = l.out.play(codecs.audio_pt, frame, source, clock);
        l.rtcp.on_rtp_sent(timestamp_of(&packet), frame.len(), at);
        if leg == Leg::A {
            let rtp = meta_of(&packet);
            self.record(at, |sink, at| {
                sink.plateau_audio(Tap {
                    at,
                    rtp,
                    payload: frame,
                    law: codecs.law,
                })
            });
        }
        out.push(Outgoing {
            leg,
            packet,
            rtcp: false,
        });
    }

    /// True once after the greeting of the current [`Self::play`] was sent out entirely.
    pub fn take_prompt_ended(&mut self) -> bool {
        std::mem::take(&mut self.prompt_ended)
    }

    /// The next digit the caller pressed.
    pub fn poll_digit(&mut self) -> Option<DigitEvent> {
        self.digits.pop_front()
    }

    /// The call is over at `now`: ends the recording there, reports a digit still
    /// sounding in the audio.
    pub fn finish(&mut self, now: EpochMillis) {
        self.record(now, |sink, at| sink.end(at));
        if let Some(digit) = self.in_band.finish() {
            self.digits.push_back(digit);
        }
        if let Some(digit) = self.telephone_events.flush(u64::MAX) {
            self.digits.push_back(digit);
        }
    }

    /// An RTCP packet from `leg`'s peer (malformed ones are ignored).
    pub fn on_rtcp(&mut self, leg: Leg, datagram: &[u8], now: EpochMillis) {
        self.legs[leg.idx()].rtcp.on_rtcp(datagram, now).ok();
    }

    /// Loss, jitter and round trip of `leg`, so far.
    pub fn quality(&self, leg: Leg) -> LegQuality {
        self.legs[leg.idx()].rtcp.quality()
    }

    /// Law of `leg`, once negotiated.
    fn law(&self, leg: Leg) -> Option<G711Law> {
        self.legs[leg.idx()].codecs.map(|c| c.law)
    }

    /// Rewrites the header for `to`'s stream (payload type, SSRC, sequence, timestamp).
    fn relay(
        &mut self,
        from: Leg,
        to: Leg,
        packet: &mut [u8],
        payload_type: u8,
        now: EpochMillis,
    ) -> Option<Delivery> {
        packet[1] = (packet[1] & 0x80) | (payload_type & 0x7f);
        let source = self.legs[from.idx()].peer;
        let clock = self.samples(now);
        let target = &mut self.legs[to.idx()];
        if !target.out.relay(packet, source, clock) {
            return None;
        }
        let payload_len = packet.len().saturating_sub(RTP_HEADER_LEN);
        target
            .rtcp
            .on_rtp_sent(timestamp_of(packet), payload_len, now);
        Some(Delivery::Relay(to))
    }

    /// A new source for the legs' streams (see [`Self::sources`]).
    fn new_source(&mut self) -> SourceId {
        self.sources += 1;
        self.sources << 32
    }

    /// Frames (player or mix) start at `now`, as a new source.
    fn start_frames(&mut self, now: EpochMillis) {
        self.own_source = self.new_source();
        self.next_frame_at = Some(now);
    }

    fn record(&mut self, now: EpochMillis, tap: impl FnOnce(&mut dyn RecordSink, u64)) {
        if let Some((since, sink)) = &mut self.recorder {
            let at = now.saturating_sub(*since) * SAMPLES_PER_MS;
            tap(sink.as_mut(), at);
        }
    }

    fn samples(&self, now: EpochMillis) -> u64 {
        now.saturating_sub(self.start) * SAMPLES_PER_MS
    }
}

/// Timestamp field of an RTP packet we built or rewrote (header known to be there).
fn timestamp_of(packet: &[u8]) -> u32 {
    u32::from_be_bytes([packet[4], packet[5], packet[6], packet[7]])
}

/// What places an RTP packet we built or rewrote in the recording.
fn meta_of(packet: &[u8]) -> RtpMeta {
    RtpMeta {
        ssrc: u32::from_be_bytes([packet[8], packet[9], packet[10], packet[11]]),
        timestamp: timestamp_of(packet),
    }
}

/// Each leg's mix in its law (`None`: the leg has no codecs yet).
fn encode(legs: &[LegMedia; 3], mixes: [conference::Frame; 3]) -> [Option<[u8; FRAME_BYTES]>; 3] {
    Leg::ALL.map(|leg| {
        let law = legs[leg.idx()].codecs?.law;
        Some(mixes[leg.idx()].map(|x| law.encode(x)))
    })
}

/// Converts a G.711 payload from one law to the other, in place.
fn convert(payload: &mut [u8], from: G711Law, to: G711Law) {
    let table: fn(u8) -> u8 = match (from, to) {
        (G711Law::Ulaw, G711Law::Alaw) => convert_ulaw_to_alaw,
        (G711Law::Alaw, G711Law::Ulaw) => convert_alaw_to_ulaw,
        _ => return,
    };
    for byte in payload {
        *byte = table(*byte);
    }
}
