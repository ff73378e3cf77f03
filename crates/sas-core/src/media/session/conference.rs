//! The mix of a three-way call (accompanied transfer): each leg hears the sum of the others.
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

    /// Takes the next frame of every leg; returns, by leg, the sum of the others' frames.
    pub(super) fn mix(&mut self) -> [Frame; 3] {
        let said: [Frame; 3] = self.said.each_mut().map(|buffer| {
            let mut frame = [0; FRAME_BYTES];
            let n = buffer.len().min(FRAME_BYTES);
            for (sample, x) in frame.iter_mut().zip(buffer.drain(..n)) {
                *sample = x;
            }
            frame
        });
        let mut heard = [[0; FRAME_BYTES]; 3];
        for i in 0..FRAME_BYTES {
            let all: i32 = said.iter().map(|frame| i32::from(frame[i])).sum();
            for (leg, own) in heard.iter_mut().zip(&said) {
                let others = all - i32::from(own[i]);
                leg[i] = others.clamp(i32::from(i16::MIN), i32::from(i16::MAX)) as i16;
            }
        }
        heard
    }
}
