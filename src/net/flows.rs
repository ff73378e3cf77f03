//! Dial plans on live calls, the driver's side: the [`Router`](crate::call::router::Router)
//! follows each call's plan and says what to play; this carries it out (answer the caller,
//! resolve the prompt names against the call's prompt set, start the relay's playback) and
//! hands keys and prompt ends back to the Router.

use super::calls::{AnswerError, CallDriver, LegMap};
use crate::call::CallInput;
use crate::call::router::{RouterInput, RouterOutput};
use crate::media::playback::Announcement;
use crate::media::relay::MediaNotice;

impl CallDriver {
    /// A key or the end of a prompt, from the call's media (or a SIP INFO).
    pub(super) fn on_media(&mut self, call: &str, notice: MediaNotice) {
        let now = self.clock.now();
        let input = match notice {
            MediaNotice::Digit(digit) => RouterInput::Call(CallInput::Digit {
                call: call.into(),
                digit,
            }),
            MediaNotice::PromptEnded { play } => RouterInput::PromptEnded {
                call: call.into(),
                play,
            },
        };
        self.router.handle(now, input);
    }

    /// Carries out a [`RouterOutput::Play`]: answers the caller if asked (a failure ends
    /// the call), then plays. A greeting the plan waits for that cannot be played (no such
    /// prompt) ends at once.
    pub(super) fn play(&mut self, play: RouterOutput, legs: &mut LegMap) {
        let RouterOutput::Play {
            call,
            play,
            answer,
            ends,
            greeting,
            hold,
            reassurance,
            reassurance_every_ms,
        } = play
        else {
            return;
        };
        let now = self.clock.now();
        let Some(l) = legs.get_mut(call.as_str()) else {
            return;
        };
        if answer {
            match self.answer_caller(&call, l) {
                Ok(()) => {
                    let answered = CallInput::CallerAnswered { call: call.clone() };
                    self.router.handle_call(now, answered);
                }
                Err(AnswerError::CallerGone) => return,
                Err(AnswerError::Failed(reason)) => {
                    self.router
                        .handle_call(now, CallInput::Failed { call, reason });
                    return;
                }
            }
        }
        let find = |name: &Option<String>| name.as_deref().and_then(|n| l.prompts.get(n).cloned());
        let announcement = Announcement {
            greeting: find(&greeting),
            hold: find(&hold),
            reassurance: find(&reassurance),
            reassurance_every_ms,
        };
        let missing = announcement.greeting.is_none();
        l.relay.play(announcement, play);
        if ends && missing {
            self.router
                .handle(now, RouterInput::PromptEnded { call, play });
        }
    }
}
