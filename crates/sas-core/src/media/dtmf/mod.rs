//! DTMF detection: turns key presses into [`DigitEvent`]s, whichever way they travel.
//!
//! Three transports, three sans-IO decoders, one event type:
//! - [`rfc4733`]: RTP `telephone-event` packets ([`rfc4733::TelephoneEventDecoder`]), plus
//!   [`rfc4733::parse_rtp`] so the relay can pick those packets out of the stream;
//! - [`info`]: SIP INFO bodies (`application/dtmf-relay`, `application/dtmf`);
//! - [`goertzel`]: tones inside the G.711 audio itself ([`goertzel::InBandDetector`]).
//!
//! None of them reads a clock or touches a socket: time comes in as [`EpochMillis`].

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::time::EpochMillis;

pub mod goertzel;
pub mod info;
pub mod rfc4733;

#[cfg(any(test, feature = "testutil"))]
pub mod testutil;

/// One key press, reported once, after it ended (so its duration is known).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DigitEvent {
    /// `0`-`9`, `*`, `#` or `A`-`D`.
    pub digit: char,
    /// When the press began, as well as the decoder can tell.
    pub at: EpochMillis,
    /// How long the key was held (0 when the transport did not say).
    pub duration_ms: u32,
    pub source: DtmfSource,
}

/// How the digit reached us.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DtmfSource {
    /// RTP `telephone-event` packets.
    Rfc4733,
    /// SIP INFO request body.
    SipInfo,
    /// Dual tones detected in the audio.
    InBand,
}

impl DtmfSource {
    pub fn label(self) -> &'static str {
        match self {
            DtmfSource::Rfc4733 => "rfc4733",
            DtmfSource::SipInfo => "sip_info",
            DtmfSource::InBand => "in_band",
        }
    }
}

/// Why a DTMF message could not be understood.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum DtmfError {
    #[error("content type is not application/dtmf-relay nor application/dtmf")]
    UnsupportedContentType,
    #[error("body too long for a DTMF message")]
    BodyTooLong,
    #[error("body is not UTF-8")]
    NotUtf8,
    #[error("no Signal in the body")]
    MissingSignal,
    #[error("signal is not a DTMF digit")]
    BadSignal,
    #[error("duration is not a number of milliseconds")]
    BadDuration,
}

/// The 16 DTMF keys in RFC 4733 event-code order (§3.2: 0-9, `*`=10, `#`=11, A-D=12-15).
const EVENT_DIGITS: [char; 16] = [
    '0', '1', '2', '3', '4', '5', '6', '7', '8', '9', '*', '#', 'A', 'B', 'C', 'D',
];

/// The key of an RFC 4733 DTMF event code, `None` for non-DTMF events (flash, tones...).
pub fn digit_of_event(code: u8) -> Option<char> {
    EVENT_DIGITS.get(usize::from(code)).copied()
}
