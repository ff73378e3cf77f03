//! What the ACD refuses, and why: each variant names the thing at fault.

use super::strategy::QueueKey;
use thiserror::Error;

/// A refused ACD request. None of these change the ACD's state.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum AcdError {
    /// No seat with this id was declared.
    #[error("unknown seat {0}")]
    UnknownSeat(String),
    /// The call is already queued or being offered.
    #[error("call {0} is already in a queue")]
    AlreadyQueued(String),
    /// The queue holds its maximum of waiting calls: route the call elsewhere.
    #[error("queue {queue} is full ({max} waiting)")]
    QueueFull {
        /// The queue.
        queue: QueueKey,
        /// Its limit.
        max: usize,
    },
}
