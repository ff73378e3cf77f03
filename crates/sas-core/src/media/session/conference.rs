//! The mix of a three-way call (accompanied transfer, a supervisor barging in): each leg
//! hears the sum of the others; a supervisor listening or whispering is heard by fewer legs
//! ([`Hearing`]).
//!
//! Received G.711 is decoded into a short buffer per leg; every 20 ms the session takes
//! the next frame of each buffer (silence where a leg sent nothing) and sends each leg the
//! sum of the other legs' frames. A buffer keeps at most [`MAX_BUFFERED`] samples, oldest
//! dropped first, so a leg whose clock runs fast or whose packets come in a burst adds no
//! lasting delay.

use std::collections::VecDeque;

use crate::media::g711::G711Law;
use crate::media::leg::Leg;
use crate::media::prompts::FRAME_BYTES;

/// 60 ms: room for network jitter, not enough to be heard as lag.
const MAX_BUFFERED: usize = 3 * FRAME_BYTES;

/// One 20 ms frame of linear samples.
pub(super) type Frame = [i16; FRAME_BYTES];

/// Who hears whom: `[listener][speaker]`. A leg never hears itself.
pub(super) type Hearing = [[bool; 3]; 3];

/// Everyone hears everyone (conference, barge).
pub(super) const EVERYONE: Hearing = [[true; 3]; 3];

/// What each leg said and nobody has heard yet.
#[derive(Debug, Default)]
pub(super) struct Mixer {
    said: [VecDeque<i16>; 3],
}

impl Mixer {
    /// Audio received on `leg`.
    pub(super) fn push(&mut self, leg: Leg, payload: &[u8], law: G711Law) {
        let said = &mut self.said[leg.idx()];
        said.extend(payload.iter().map(|&byte| law.decode(byte)));
        let stale = said.len().saturating_sub(MAX_BUFFERED);
        said.drain(..stale);
    }

    /// Takes the next frame of every leg; returns, by leg, the sum of the frames of the
    /// others it hears (summed in 32 bits, clipped to 16).
    pub(super) fn mix(&mut self, hearing: &Hearing) -> [Frame; 3] {
        let said: [Frame; 3] = self.said.each_mut().map(|buffer| {
            let mut frame = [0; FRAME_BYTES];
            let n = buffer.len().min(FRAME_BYTES);
            for (sample, x) in frame.iter_mut().zip(buffer.drain(..n)) {
                *sample = x;
            }
            frame
        });
        let mut heard = [[0; FRAME_BYTES]; 3];
        for (listener, (out, hears)) in heard.iter_mut().zip(hearing).enumerate() {
            let speakers = || (0..3).filter(move |&s| s != listener && hears[s]);
            for (i, sample) in out.iter_mut().enumerate() {
                let sum: i32 = speakers().map(|s| i32::from(said[s][i])).sum();
                *sample = sum.clamp(i32::from(i16::MIN), i32::from(i16::MAX)) as i16;
            }
        }
        heard
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_leg_hears_only_whom_it_hears_and_sums_clip() {
        let mut mixer = Mixer::default();
        let law = G711Law::Ulaw;
        // Loud enough that two of them overflow 16 bits.
        let loud = law.encode(30_000);
        let quiet = law.encode(1_000);
        mixer.push(Leg::A, &[loud; FRAME_BYTES], law);
        mixer.push(Leg::B, &[loud; FRAME_BYTES], law);
        mixer.push(Leg::C, &[quiet; FRAME_BYTES], law);
        let (a, b, c) = (law.decode(loud), law.decode(loud), law.decode(quiet));
        // C listens: it hears A and B (clipped), A and B hear each other only.
        let mut hearing = [[false; 3]; 3];
        hearing[0][1] = true;
        hearing[1][0] = true;
        hearing[2] = [true, true, false];
        let heard = mixer.mix(&hearing);
        assert!(heard[0].iter().all(|&x| x == b));
        assert!(heard[1].iter().all(|&x| x == a));
        assert!(heard[2].iter().all(|&x| x == i16::MAX), "A + B clipped");
        assert!(i32::from(a) + i32::from(b) > i32::from(i16::MAX));
        // Nothing buffered any more: silence, whoever hears whom.
        assert!(mixer.mix(&EVERYONE).iter().flatten().all(|&x| x == 0));
        mixer.push(Leg::C, &[quiet; FRAME_BYTES], law);
        let heard = mixer.mix(&EVERYONE);
        assert!(heard[0].iter().all(|&x| x == c));
        assert!(heard[2].iter().all(|&x| x == 0), "never oneself");
    }
}
