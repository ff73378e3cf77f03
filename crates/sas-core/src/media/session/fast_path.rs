//! What a relay may do without the session: while a call is a plain bridge that needs
//! nothing of the session per packet, each direction's packets can be renumbered by fixed
//! offsets and forwarded by someone else (the kernel path of the app's `media::kernel`),
//! which hands the stream back with [`MediaSession::fast_path_sent`].
//!
//! A call qualifies only while the caller is bridged to one seat, nobody is supervising,
//! nothing is recorded unless the fast path hands every packet back
//! ([`MediaSession::fast_path_tapped`]: the recording and the quality statistics), both
//! legs speak the same codec under the same payload type (no conversion), neither has put
//! us on hold, the caller has telephone-event (otherwise its digits are detected in the
//! audio, which only the session sees), and a packet of each side has already been relayed
//! here (the offsets come from the stream it started). Without the tap, the quality
//! statistics (RTCP) of the legs miss the packets the fast path relayed.

use super::*;

/// How packets of one direction are relayed without the session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FastPath {
    pub from: Leg,
    pub to: Leg,
    /// The voice payload type, the only one relayed (RFC 4733 events, comfort noise and the
    /// other law stay the session's).
    pub payload_type: u8,
    /// The SSRC of the peer on `from`: another one is a switch, the session's.
    pub ssrc_in: u32,
    /// Our SSRC towards `to`.
    pub ssrc_out: u32,
    /// Added to the sequence number and timestamp (wrapping).
    pub seq_offset: u16,
    pub ts_offset: u32,
}

impl MediaSession {
    /// Both directions of the call (caller to seat, seat to caller) when it qualifies (see
    /// the module doc), else `None`. `tapped`: the fast path hands its packets back for the
    /// recording.
    pub fn fast_paths(&self, tapped: bool) -> Option<[FastPath; 2]> {
        let Mode::Bridge(seat) = self.mode else {
            return None;
        };
        if self.monitor.is_some() || (self.recorder.is_some() && !tapped) {
            return None;
        }
        let (caller, agent) = (&self.legs[Leg::A.idx()], &self.legs[seat.idx()]);
        let (a, s) = (caller.codecs?, agent.codecs?);
        if a.law != s.law || a.audio_pt != s.audio_pt || caller.on_hold || agent.on_hold {
            return None;
        }
        a.dtmf_pt?;
        Some([
            self.fast_path(Leg::A, seat, a.audio_pt)?,
            self.fast_path(seat, Leg::A, a.audio_pt)?,
        ])
    }

    fn fast_path(&self, from: Leg, to: Leg, payload_type: u8) -> Option<FastPath> {
        let out = &self.legs[to.idx()].out;
        let (ssrc_in, seq_offset, ts_offset) = out.mapping(self.legs[from.idx()].peer)?;
        Some(FastPath {
            from,
            to,
            payload_type,
            ssrc_in,
            ssrc_out: out.ssrc(),
            seq_offset,
            ts_offset,
        })
    }

    /// Whether the call is being recorded (its fast path must tap it).
    pub fn is_recording(&self) -> bool {
        self.recorder.is_some()
    }

    /// `packet` went out by `path` at `at`, as sent: the session sees it as if it had
    /// relayed it, the quality statistics of both legs (RTCP) and the recording (the
    /// caller's audio with the caller's own header, what the caller hears with ours).
    pub fn fast_path_tapped(&mut self, path: &FastPath, packet: &[u8], at: EpochMillis) {
        let Some(view) = parse_rtp(packet) else {
            return;
        };
        let (seq, ts) = (view.sequence, view.timestamp);
        let payload = view.payload_offset..view.payload_offset + view.payload.len();
        let (seq_in, ts_in) = (
            seq.wrapping_sub(path.seq_offset),
            ts.wrapping_sub(path.ts_offset),
        );
        let arrival = self.samples(at);
        self.legs[path.from.idx()]
            .rtcp
            .on_rtp_received(path.ssrc_in, seq_in, ts_in, arrival, at);
        self.legs[path.to.idx()]
            .rtcp
            .on_rtp_sent(ts, payload.len(), at);
        let Some(law) = self.law(path.from) else {
            return;
        };
        let payload = &packet[payload];
        let (rtp, caller) = match (path.from, path.to) {
            (Leg::A, _) => (
                RtpMeta {
                    ssrc: path.ssrc_in,
                    timestamp: ts_in,
                },
                true,
            ),
            (_, Leg::A) => (
                RtpMeta {
                    ssrc: path.ssrc_out,
                    timestamp: ts,
                },
                false,
            ),
            _ => return,
        };
        self.record(at, |sink, at| {
            let tap = Tap {
                at,
                rtp,
                payload,
                law,
            };
            match caller {
                true => sink.caller_audio(tap),
                false => sink.plateau_audio(tap),
            }
        });
    }

    /// `packets` relayed by a fast path never reached the recording: counted as lost, a
    /// packet taken for 20 ms.
    pub fn fast_path_lost(&mut self, packets: u64) {
        if let Some((_, sink)) = &mut self.recorder {
            sink.lost(packets * u64::from(FRAME_MS) * SAMPLES_PER_MS);
        }
    }

    /// Packets to `to` went out by a fast path, the furthest numbered `last_seq` and
    /// `last_ts`, the last at `at`: the stream to `to` goes on from there.
    pub fn fast_path_sent(&mut self, to: Leg, last_seq: u16, last_ts: u32, at: EpochMillis) {
        let clock = self.samples(at);
        self.legs[to.idx()]
            .out
            .sent_elsewhere(last_seq, last_ts, clock);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cti::MonitorMode;
    use crate::media::dtmf::testutil::rtp;
    use crate::media::recording::RecordingError;

    use crate::media::session::tests::{PCMA, T0};

    /// A bridged call (caller A, seat B, PCMA both) with one packet relayed each way.
    fn bridged() -> MediaSession {
        let mut s = MediaSession::new(T0, [1, 2, 3], [100, 200, 300]);
        s.set_codecs(Leg::A, PCMA);
        s.set_codecs(Leg::B, PCMA);
        s.bridge(Leg::B);
        assert_eq!(
            s.fast_paths(false),
            None,
            "no offsets before a packet each way"
        );
        let mut p = rtp(8, false, 5000, 80_000, 0xAAAA, &[0xD5; 160]);
        assert_eq!(s.on_rtp(Leg::A, &mut p, T0), Delivery::Relay(Leg::B));
        assert_eq!(s.fast_paths(false), None, "one way only");
        let mut p = rtp(8, false, 9000, 1_000_000, 0xBBBB, &[0xD5; 160]);
        assert_eq!(s.on_rtp(Leg::B, &mut p, T0), Delivery::Relay(Leg::A));
        s
    }

    fn seq_ts(p: &[u8]) -> (u16, u32) {
        (
            u16::from_be_bytes([p[2], p[3]]),
            u32::from_be_bytes([p[4], p[5], p[6], p[7]]),
        )
    }

    #[test]
    fn a_plain_bridge_qualifies_with_the_offsets_the_session_uses() {
        let mut s = bridged();
        let [up, down] = s.fast_paths(false).expect("qualifies");
        assert_eq!(
            (up.from, up.to, down.from, down.to),
            (Leg::A, Leg::B, Leg::B, Leg::A)
        );
        assert_eq!((up.payload_type, up.ssrc_in, up.ssrc_out), (8, 0xAAAA, 2));
        assert_eq!((down.ssrc_in, down.ssrc_out), (0xBBBB, 1));
        // The fast path's numbering is what the session would have done.
        let mut p = rtp(8, false, 5001, 80_160, 0xAAAA, &[0xD5; 160]);
        s.on_rtp(Leg::A, &mut p, T0 + 20);
        assert_eq!(
            seq_ts(&p),
            (
                5001u16.wrapping_add(up.seq_offset),
                80_160u32.wrapping_add(up.ts_offset)
            )
        );
    }

    #[test]
    fn the_stream_goes_on_after_the_fast_path() {
        let mut s = bridged();
        let [up, _] = s.fast_paths(false).unwrap();
        // 50 packets went by the kernel; then the seat leg gets a prompt (a switch).
        let (last_seq, last_ts) = (
            5050u16.wrapping_add(up.seq_offset),
            (80_000u32 + 50 * 160).wrapping_add(up.ts_offset),
        );
        s.fast_path_sent(Leg::B, last_seq, last_ts, T0 + 1000);
        let mut p = rtp(8, false, 7, 7, 0xCCCC, &[0xD5; 160]);
        s.set_codecs(Leg::A, PCMA);
        assert_eq!(s.on_rtp(Leg::A, &mut p, T0 + 1020), Delivery::Relay(Leg::B));
        let (seq, ts) = seq_ts(&p);
        assert_eq!(seq, last_seq.wrapping_add(1), "no sequence jump back");
        assert_eq!(ts, last_ts.wrapping_add(160), "one packet later");
        // A sequence number behind the stream never moves it back.
        s.fast_path_sent(Leg::B, last_seq.wrapping_sub(10), 0, T0 + 1040);
        let mut p = rtp(8, false, 8, 167, 0xCCCC, &[0xD5; 160]);
        s.on_rtp(Leg::A, &mut p, T0 + 1040);
        assert_eq!(seq_ts(&p).0, last_seq.wrapping_add(2));
    }

    struct NoSink;
    impl RecordSink for NoSink {
        fn caller_audio(&mut self, _: Tap<'_>) {}
        fn plateau_audio(&mut self, _: Tap<'_>) {}
        fn tick(&mut self, _: u64) {}
        fn end(&mut self, _: u64) {}
        fn lost(&mut self, _: u64) {}
        fn finish(self: Box<Self>) -> Result<FinishedRecording, RecordingError> {
            Err(RecordingError::UnsafePath(String::new()))
        }
    }

    #[test]
    fn what_the_session_must_see_keeps_the_call_out() {
        type Change = fn(&mut MediaSession);
        let cases: [(&str, Change); 8] = [
            ("recorded", |s| s.start_recording(Box::new(NoSink), T0)),
            ("supervised", |s| {
                s.monitor(Some(Monitor {
                    supervisor: Leg::C,
                    mode: MonitorMode::Listen,
                }))
            }),
            ("conference", |s| s.conference(T0)),
            ("playing", |s| s.play(Announcement::default(), T0)),
            ("seat on hold", |s| s.set_receiving(Leg::B, false)),
            ("a new seat peer", |s| s.set_codecs(Leg::B, PCMA)),
            ("transcoding", |s| {
                s.set_codecs(
                    Leg::B,
                    LegCodecs {
                        audio_pt: 0,
                        law: G711Law::Ulaw,
                        ..PCMA
                    },
                )
            }),
            ("in-band digits", |s| {
                s.set_codecs(
                    Leg::A,
                    LegCodecs {
                        dtmf_pt: None,
                        ..PCMA
                    },
                )
            }),
        ];
        for (what, change) in cases {
            let mut s = bridged();
            change(&mut s);
            assert_eq!(s.fast_paths(false), None, "{what}");
        }
    }
}
