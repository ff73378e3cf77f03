//! Personal data wrappers: a caller's number is health data and must not reach the logs.
//!
//! [`CallerNumber`] prints masked through `Display` and `Debug`; the clear value is only
//! reachable through [`CallerNumber::reveal`], used by the store and the CLI.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A caller's number (or SIP user part). Masked when displayed: `06******78`.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(transparent)]
pub struct CallerNumber(String);

impl CallerNumber {
    /// Wraps a number.
    pub fn new(number: impl Into<String>) -> Self {
        Self(number.into())
    }

    /// The clear number, for the call record and the admin CLI only.
    pub fn reveal(&self) -> &str {
        &self.0
    }

    /// The masked form: the first two and last two characters kept when long enough.
    pub fn masked(&self) -> String {
        let chars: Vec<char> = self.0.chars().collect();
        if chars.len() <= 4 {
            return "*".repeat(chars.len().max(1));
        }
        let mut out: String = chars[..2].iter().collect();
        out.push_str(&"*".repeat(chars.len() - 4));
        out.extend(&chars[chars.len() - 2..]);
        out
    }
}

impl fmt::Display for CallerNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.masked())
    }
}

impl fmt::Debug for CallerNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CallerNumber({})", self.masked())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_and_debug_never_show_the_number() {
        let n = CallerNumber::new("0612345678");
        assert_eq!(n.to_string(), "06******78");
        assert!(!format!("{n:?}").contains("12345"));
        assert_eq!(n.reveal(), "0612345678");
        assert_eq!(CallerNumber::new("15").to_string(), "**");
    }
}
