//! `[wallboard]`: the read-only token of wall displays and the thresholds that turn the
//! board's cells amber and red, for every line and queue or per line (`[wallboard.lines.<line>]`)
//! and per queue (`[wallboard.queues.<queue>]`).

use sas_core::wallboard::{Limits, Thresholds};
use serde::Deserialize;
use std::collections::BTreeMap;

/// A wall display's token is a secret in a URL: long enough not to be guessed.
const TOKEN_MIN: usize = 32;

/// Thresholds as written: what is not given comes from the level above.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitKeys {
    pub answered_60s_target: Option<f64>,
    pub answered_60s_red: Option<f64>,
    pub wait_amber_s: Option<u64>,
    pub wait_red_s: Option<u64>,
}

impl LimitKeys {
    fn over(self, base: Limits) -> Limits {
        Limits {
            answered_60s_target: self.answered_60s_target.unwrap_or(base.answered_60s_target),
            answered_60s_red: self.answered_60s_red.unwrap_or(base.answered_60s_red),
            wait_amber_s: self.wait_amber_s.unwrap_or(base.wait_amber_s),
            wait_red_s: self.wait_red_s.unwrap_or(base.wait_red_s),
        }
    }
}

/// `[wallboard]`
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WallboardConfig {
    /// Opens `/wallboard?token=…` read-only (a wall display has no supervisor session);
    /// `None`: supervisors' sessions only.
    pub token: Option<String>,
    pub answered_60s_target: Option<f64>,
    pub answered_60s_red: Option<f64>,
    pub wait_amber_s: Option<u64>,
    pub wait_red_s: Option<u64>,
    /// Per line (`samu`, `sas`…).
    #[serde(default)]
    pub lines: BTreeMap<String, LimitKeys>,
    /// Per queue (`arm`, `amu`…).
    #[serde(default)]
    pub queues: BTreeMap<String, LimitKeys>,
}

impl WallboardConfig {
    /// Every line's and queue's thresholds, resolved.
    pub fn thresholds(&self) -> Thresholds {
        let default = LimitKeys {
            answered_60s_target: self.answered_60s_target,
            answered_60s_red: self.answered_60s_red,
            wait_amber_s: self.wait_amber_s,
            wait_red_s: self.wait_red_s,
        }
        .over(Limits::default());
        let resolve = |map: &BTreeMap<String, LimitKeys>| {
            map.iter()
                .map(|(name, keys)| (name.clone(), keys.over(default)))
                .collect()
        };
        Thresholds {
            default,
            lines: resolve(&self.lines),
            queues: resolve(&self.queues),
        }
    }

    /// The key at fault and why.
    pub fn check(&self) -> Result<(), (String, String)> {
        if let Some(token) = &self.token
            && (token.len() < TOKEN_MIN || !token.bytes().all(|b| b.is_ascii_alphanumeric()))
        {
            return Err((
                "wallboard.token".into(),
                format!("at least {TOKEN_MIN} letters and digits (it goes in a URL)"),
            ));
        }
        let t = self.thresholds();
        let named = |kind: &str, map: &BTreeMap<String, Limits>| {
            map.iter()
                .map(|(name, l)| (format!("wallboard.{kind}.{name}"), *l))
                .collect::<Vec<_>>()
        };
        let all = std::iter::once(("wallboard".to_string(), t.default))
            .chain(named("lines", &t.lines))
            .chain(named("queues", &t.queues));
        for (key, limits) in all {
            limits.check().map_err(|e| (key, e.to_string()))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> WallboardConfig {
        toml::from_str(text).unwrap()
    }

    #[test]
    fn lines_override_the_defaults_which_override_the_built_in_ones() {
        let c = parse("wait_amber_s = 20\nwait_red_s = 40\n[lines.sas]\nwait_red_s = 90\n");
        let t = c.thresholds();
        assert_eq!((t.default.wait_amber_s, t.default.wait_red_s), (20, 40));
        assert_eq!(t.default.answered_60s_target, 99.0);
        let sas = t.line("sas");
        assert_eq!((sas.wait_amber_s, sas.wait_red_s), (20, 90));
        assert_eq!(t.line("samu"), t.default);
        assert!(c.check().is_ok());
    }

    #[test]
    fn bad_thresholds_and_short_tokens_name_their_key() {
        let c = parse("[queues.amu]\nwait_amber_s = 60\nwait_red_s = 30\n");
        assert_eq!(c.check().unwrap_err().0, "wallboard.queues.amu");
        let c = parse("answered_60s_target = 120\n");
        assert_eq!(c.check().unwrap_err().0, "wallboard");
        let c = parse("token = \"short\"\n");
        assert_eq!(c.check().unwrap_err().0, "wallboard.token");
        assert!(toml::from_str::<WallboardConfig>("colour = 1\n").is_err());
    }
}
