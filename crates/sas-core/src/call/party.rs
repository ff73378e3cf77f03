//! Who is on the plateau side of a call: a seat, or the far end of a forward through the
//! trunk ([`Party`]), instead of a seat with a magic name.

use crate::ids::SeatId;

/// Who is on the plateau side of a call: a seat, or the external number the call was
/// forwarded to through the trunk (it rides a seat leg but is no ACD seat).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Party {
    /// A seat of the plateau.
    Seat(SeatId),
    /// The far end of a forward through the trunk (backup centre, 3114).
    External,
}

impl Party {
    /// How records, logs and the driver's leg table name the external party.
    pub const EXTERNAL_NAME: &'static str = "external";

    /// The seat's user name, or [`Party::EXTERNAL_NAME`].
    pub fn name(&self) -> &str {
        match self {
            Party::Seat(seat) => seat,
            Party::External => Party::EXTERNAL_NAME,
        }
    }

    /// The seat, if it is one.
    pub fn seat(&self) -> Option<&SeatId> {
        match self {
            Party::Seat(seat) => Some(seat),
            Party::External => None,
        }
    }

    /// The far end of a forward.
    pub fn is_external(&self) -> bool {
        *self == Party::External
    }
}

impl From<SeatId> for Party {
    fn from(seat: SeatId) -> Self {
        Party::Seat(seat)
    }
}

/// A seat's user name names a seat (the external party has no name to parse).
impl From<&str> for Party {
    fn from(seat: &str) -> Self {
        Party::Seat(seat.into())
    }
}

impl From<&SeatId> for Party {
    fn from(seat: &SeatId) -> Self {
        Party::Seat(seat.clone())
    }
}

/// A seat compares equal to its user name; the external party to no name.
impl PartialEq<str> for Party {
    fn eq(&self, other: &str) -> bool {
        self.seat().is_some_and(|s| s == other)
    }
}

impl PartialEq<SeatId> for Party {
    fn eq(&self, other: &SeatId) -> bool {
        self.seat() == Some(other)
    }
}

impl PartialEq<&str> for Party {
    fn eq(&self, other: &&str) -> bool {
        self == *other
    }
}

/// Stored and shown by its name, as seats were before parties were typed.
impl serde::Serialize for Party {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.name())
    }
}

impl std::fmt::Display for Party {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}
