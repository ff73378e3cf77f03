//! The legs of a call's media: A faces the caller (SIP trunk), B the seat, C a second seat
//! joining during an accompanied transfer.

use serde::Serialize;

/// One side of the call's media.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum Leg {
    /// The caller, behind the SIP trunk.
    A,
    /// The seat's softphone.
    B,
    /// Second plateau leg: the seat joining during an accompanied transfer.
    C,
}

impl Leg {
    /// Every leg, in index order.
    pub const ALL: [Leg; 3] = [Leg::A, Leg::B, Leg::C];

    /// Index into per-leg arrays.
    pub fn idx(self) -> usize {
        self as usize
    }

    /// `direction` label of packets received on this leg (A and B keep the labels of the
    /// two-leg relay, for the dashboards).
    pub fn direction(self) -> &'static str {
        match self {
            Leg::A => "caller_to_seat",
            Leg::B => "seat_to_caller",
            Leg::C => "second_seat_to_caller",
        }
    }
}
