//! What the router plays to a caller who is not talking to anyone: a greeting once, then
//! hold audio in a loop, interrupted every few seconds by a reassurance message, as
//! consecutive 20 ms G.711 frames.
//!
//! Sans-IO: [`Player::next_frame`] is called once per frame period by the media session,
//! which owns the timing. Each prompt played is a new segment number, which the session
//! uses as the stream's source id so the caller's phone sees a marker bit at each change.

use std::sync::Arc;

use super::g711::G711Law;
use super::prompts::{FRAME_BYTES, FRAME_MS, Looping, Prompt, silence_frame};

/// The audio plan for a waiting caller. Missing prompts are skipped; with no hold audio
/// the caller gets silence frames (the stream never stalls).
#[derive(Debug, Clone, Default)]
pub struct Announcement {
    /// Played once, first ("Vous êtes bien au SAMU…").
    pub greeting: Option<Arc<Prompt>>,
    /// Looped after the greeting (music on hold).
    pub hold: Option<Arc<Prompt>>,
    /// Played every `reassurance_every_ms` of hold ("Ne quittez pas…").
    pub reassurance: Option<Arc<Prompt>>,
    /// Hold time between two reassurance messages; 0 disables them.
    pub reassurance_every_ms: u64,
}

#[derive(Debug, Clone)]
enum Segment {
    /// Playing a prompt once, at frame `next`.
    Once { prompt: Arc<Prompt>, next: usize },
    /// Hold audio, for `elapsed_ms` since the last message.
    Hold { elapsed_ms: u64 },
}

/// Frames of an [`Announcement`] in one law.
#[derive(Debug, Clone)]
pub struct Player {
    announcement: Announcement,
    law: G711Law,
    segment: Segment,
    /// Hold audio keeps its position across reassurance messages.
    hold: Option<Looping>,
    /// Number of the current segment (greeting, hold, message, hold…).
    segment_no: u64,
    /// The greeting has been played through (reported once by [`Player::greeting_ended`]).
    greeting_ended: bool,
}

impl Player {
    pub fn new(announcement: Announcement, law: G711Law) -> Player {
        let hold = announcement
            .hold
            .clone()
            .map(|prompt| Looping::new(prompt, law));
        let segment = match &announcement.greeting {
            Some(prompt) => Segment::Once {
                prompt: Arc::clone(prompt),
                next: 0,
            },
            None => Segment::Hold { elapsed_ms: 0 },
        };
        Player {
            announcement,
            law,
            segment,
            hold,
            segment_no: 0,
            greeting_ended: false,
        }
    }

    /// True once, right after the greeting's last frame was taken: a menu starts waiting
    /// for its key, a closing message hangs up.
    pub fn greeting_ended(&mut self) -> bool {
        std::mem::take(&mut self.greeting_ended)
    }

    /// The next 20 ms frame and the number of the segment it belongs to.
    pub fn next_frame(&mut self) -> ([u8; FRAME_BYTES], u64) {
        loop {
            match &mut self.segment {
                Segment::Once { prompt, next } => {
                    if let Some(bytes) = prompt.frames(self.law).nth(*next) {
                        let mut frame = silence_frame(self.law);
                        frame[..bytes.len()].copy_from_slice(bytes);
                        *next += 1;
                        return (frame, self.segment_no);
                    }
                    if self.segment_no == 0 && self.announcement.greeting.is_some() {
                        self.greeting_ended = true;
                    }
                    self.switch(Segment::Hold { elapsed_ms: 0 });
                }
                Segment::Hold { elapsed_ms } => {
                    let every = self.announcement.reassurance_every_ms;
                    if every > 0
                        && *elapsed_ms >= every
                        && let Some(prompt) = self.announcement.reassurance.clone()
                    {
                        self.switch(Segment::Once { prompt, next: 0 });
                        continue;
                    }
                    *elapsed_ms += u64::from(FRAME_MS);
                    let frame = match &mut self.hold {
                        Some(hold) => hold.next().unwrap_or_else(|| silence_frame(self.law)),
                        None => silence_frame(self.law),
                    };
                    return (frame, self.segment_no);
                }
            }
        }
    }

    fn switch(&mut self, segment: Segment) {
        self.segment = segment;
        self.segment_no += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prompt(name: &str, byte: u8, frames: usize) -> Arc<Prompt> {
        Arc::new(Prompt::from_ulaw(name, vec![byte; frames * FRAME_BYTES]))
    }

    #[test]
    fn greeting_then_hold_with_periodic_reassurance() {
        let mut player = Player::new(
            Announcement {
                greeting: Some(prompt("accueil", 0x10, 3)),
                hold: Some(prompt("musique", 0x20, 4)),
                reassurance: Some(prompt("attente", 0x30, 2)),
                reassurance_every_ms: 100, // 5 frames
            },
            G711Law::Ulaw,
        );
        let mut ended_at = Vec::new();
        let played: Vec<(u8, u64)> = (0..20)
            .map(|i| {
                let (frame, seg) = player.next_frame();
                if player.greeting_ended() {
                    ended_at.push(i);
                }
                (frame[0], seg)
            })
            .collect();
        assert_eq!(
            ended_at,
            [3],
            "the greeting's end is reported once, not the messages'"
        );
        let bytes: Vec<u8> = played.iter().map(|p| p.0).collect();
        assert_eq!(
            bytes,
            [
                [0x10; 3].as_slice(),
                &[0x20; 5],
                &[0x30; 2],
                &[0x20; 5],
                &[0x30; 2],
                &[0x20; 3]
            ]
            .concat()
        );
        let segments: Vec<u64> = played.iter().map(|p| p.1).collect();
        assert_eq!(segments[..4], [0, 0, 0, 1]);
        assert_eq!(segments[8], 2, "a message is a new segment");
        assert_eq!(segments[10], 3, "so is hold after it");
    }

    #[test]
    fn hold_music_resumes_where_it_was_and_alaw_is_served() {
        let music = Arc::new(Prompt::from_pcm16(
            "musique",
            &(0..FRAME_BYTES * 3)
                .map(|i| (i as i16) * 10)
                .collect::<Vec<_>>(),
        ));
        let mut player = Player::new(
            Announcement {
                hold: Some(Arc::clone(&music)),
                reassurance: Some(prompt("attente", 0xff, 1)),
                reassurance_every_ms: 40,
                ..Announcement::default()
            },
            G711Law::Alaw,
        );
        let frames: Vec<[u8; FRAME_BYTES]> = (0..4).map(|_| player.next_frame().0).collect();
        let music_frames: Vec<&[u8]> = music.frames(G711Law::Alaw).collect();
        assert_eq!(frames[0].as_slice(), music_frames[0]);
        assert_eq!(frames[1].as_slice(), music_frames[1]);
        assert_eq!(
            frames[3].as_slice(),
            music_frames[2],
            "music resumes after the message"
        );
    }

    #[test]
    fn nothing_to_play_is_silence_not_a_stall() {
        let mut player = Player::new(Announcement::default(), G711Law::Alaw);
        for _ in 0..3 {
            assert_eq!(player.next_frame().0, silence_frame(G711Law::Alaw));
        }
    }
}
