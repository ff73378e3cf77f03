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
