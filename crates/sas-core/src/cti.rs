//! The CTI vocabulary the core decides with. Requests, events and their channels are the
//! app's `cti` module.

use serde::{Deserialize, Serialize};

/// How a transfer hands the call over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum TransferMode {
    /// The seat leaves at once; the caller hears hold audio until the target answers.
    #[default]
    Blind,
    /// "Transfert accompagné": the seat stays with the caller until the target answers,
    /// then the three talk together until the seat hangs up.
    Accompanied,
}

/// What a supervisor on a call hears and who hears them (the supervisor's leg is a third
/// party of the call's media: see `media::session`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum MonitorMode {
    /// Silent monitor: the supervisor hears the caller and the seat; nobody hears them.
    #[default]
    Listen,
    /// The supervisor hears both and is heard by the seat only, never by the caller.
    Whisper,
    /// Three-way: everyone hears everyone.
    Barge,
}

impl MonitorMode {
    /// The mode's name, as the API spells it.
    pub fn label(self) -> &'static str {
        match self {
            MonitorMode::Listen => "listen",
            MonitorMode::Whisper => "whisper",
            MonitorMode::Barge => "barge",
        }
    }
}
