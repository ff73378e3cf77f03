//! Typed identifiers: a call's id ([`CallId`]) and a seat's user name ([`SeatId`]).
//!
//! Both are strings underneath and serialise as plain strings (`#[serde(transparent)]`),
//! so records and the journal keep today's format. They deref to `str` and borrow as
//! `str`, so a map keyed by them is searched with a `&str` and a `&CallId` goes wherever
//! a `&str` is taken; what they add is that a seat is never passed where a call is meant.

use serde::{Deserialize, Serialize};
use std::borrow::Borrow;
use std::fmt;
use std::ops::Deref;

macro_rules! string_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// The id as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// The id's text, owned.
            pub fn into_string(self) -> String {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Debug::fmt(&self.0, f)
            }
        }

        impl Deref for $name {
            type Target = str;
            fn deref(&self) -> &str {
                &self.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }

        impl From<&str> for $name {
            fn from(s: &str) -> Self {
                $name(s.to_string())
            }
        }

        impl From<String> for $name {
            fn from(s: String) -> Self {
                $name(s)
            }
        }

        impl From<&String> for $name {
            fn from(s: &String) -> Self {
                $name(s.clone())
            }
        }

        impl From<&$name> for $name {
            fn from(id: &$name) -> Self {
                id.clone()
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.0 == *other
            }
        }

        impl PartialEq<String> for $name {
            fn eq(&self, other: &String) -> bool {
                &self.0 == other
            }
        }

        impl PartialEq<$name> for str {
            fn eq(&self, other: &$name) -> bool {
                self == other.0
            }
        }

        impl PartialEq<$name> for &str {
            fn eq(&self, other: &$name) -> bool {
                *self == other.0
            }
        }

        impl PartialEq<$name> for String {
            fn eq(&self, other: &$name) -> bool {
                *self == other.0
            }
        }
    };
}

string_id!(
    /// A call's router id, time-sortable (`20261123T071502.123Z-0001`).
    CallId
);

impl CallId {
    /// The time part of the ids of calls that arrived at `at` (`20261123T071502.123Z`):
    /// ids sort by it, so the calls of a period are one range of keys.
    pub fn stamp(at: crate::time::EpochMillis) -> String {
        crate::time::rfc3339(at).replace(['-', ':'], "")
    }
}

string_id!(
    /// A seat's user name, as registered (`arm1`).
    SeatId
);

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn ids_are_looked_up_by_str_and_serialise_as_plain_strings() {
        let mut seats: HashMap<SeatId, u8> = HashMap::new();
        seats.insert("arm1".into(), 1);
        assert_eq!(seats.get("arm1"), Some(&1));
        let call = CallId::from("20261123T071502.123Z-0001");
        assert_eq!(
            serde_json::to_string(&call).unwrap(),
            "\"20261123T071502.123Z-0001\""
        );
        let back: CallId = serde_json::from_str("\"c1\"").unwrap();
        assert_eq!(back, "c1");
        assert_eq!(format!("{back} {back:?}"), "c1 \"c1\"");
        fn takes_str(s: &str) -> usize {
            s.len()
        }
        assert_eq!(takes_str(&back), 2);
    }
}
