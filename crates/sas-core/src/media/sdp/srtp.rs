//! SDES-SRTP keys in SDP (RFC 4568): reading `a=crypto` attributes, choosing one by the
//! peer's [`SrtpPolicy`], and writing ours into answers and offers.
//!
//! Only what the relay can use is accepted: `AES_CM_128_HMAC_SHA1_80` and `_32`, one
//! `inline:` key of exactly 16 + 14 bytes, an optional lifetime, no MKI and no session
//! parameters but `WSH=` (a window-size hint). Any other line is skipped, never an error:
//! an offer with nothing usable is answered in plain RTP, or refused (488) when the policy
//! or the offer's `RTP/SAVP` profile requires SRTP. Keys are given by the caller (the app's
//! random source); this module never draws them.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::Deserialize;
use thiserror::Error;

use super::{Line, SessionDescription};

/// Length of an AES-128 master key.
pub const MASTER_KEY_LEN: usize = 16;
/// Length of a master salt.
pub const MASTER_SALT_LEN: usize = 14;
/// Length of the `inline:` key material: key then salt.
pub const KEY_MATERIAL_LEN: usize = MASTER_KEY_LEN + MASTER_SALT_LEN;

/// The tag of the one `a=crypto` line the router offers.
const OFFER_TAG: u32 = 1;

/// A master key and salt. Its `Debug` never shows the bytes.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct MasterKey([u8; KEY_MATERIAL_LEN]);

impl MasterKey {
    /// Key then salt, as drawn by the app's random source.
    pub fn new(material: [u8; KEY_MATERIAL_LEN]) -> MasterKey {
        MasterKey(material)
    }

    /// The AES master key.
    pub fn key(&self) -> &[u8] {
        &self.0[..MASTER_KEY_LEN]
    }

    /// The master salt.
    pub fn salt(&self) -> &[u8] {
        &self.0[MASTER_KEY_LEN..]
    }

    fn inline(&self) -> String {
        BASE64.encode(self.0)
    }
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MasterKey(..)")
    }
}

/// A crypto suite the relay implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SrtpSuite {
    /// AES-128 counter mode, 80-bit HMAC-SHA1 tag (what we offer).
    AesCm128HmacSha1_80,
    /// The same with a 32-bit tag.
    AesCm128HmacSha1_32,
}

impl SrtpSuite {
    /// Its name in `a=crypto`.
    pub fn name(self) -> &'static str {
        match self {
            SrtpSuite::AesCm128HmacSha1_80 => "AES_CM_128_HMAC_SHA1_80",
            SrtpSuite::AesCm128HmacSha1_32 => "AES_CM_128_HMAC_SHA1_32",
        }
    }

    fn from_name(name: &str) -> Option<SrtpSuite> {
        [
            SrtpSuite::AesCm128HmacSha1_80,
            SrtpSuite::AesCm128HmacSha1_32,
        ]
        .into_iter()
        .find(|s| s.name() == name)
    }
}

/// Whether a peer (the trunk, a seat's phone) gets SRTP, from the configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SrtpPolicy {
    /// Plain RTP only: an `RTP/SAVP` offer is refused, `a=crypto` in `RTP/AVP` ignored.
    Off,
    /// SRTP when the peer offers it (`RTP/SAVP`, or `RTP/AVP` with `a=crypto`); the
    /// router's own offers are plain RTP.
    #[default]
    Optional,
    /// SRTP only: an offer without usable `a=crypto` is refused (488), the router's own
    /// offers are `RTP/SAVP` with `a=crypto`, and an answer without it fails the leg.
    Required,
}

/// One `a=crypto` line the relay can use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CryptoAttr {
    /// Its tag, echoed in the answer.
    pub tag: u32,
    pub suite: SrtpSuite,
    /// The key its writer sends with.
    pub key: MasterKey,
}

/// Why an `a=crypto` line is not used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum CryptoAttrError {
    #[error("not `<tag> <suite> <key-params>`")]
    Syntax,
    #[error("unknown crypto suite")]
    UnknownSuite,
    #[error("key method is not `inline:`")]
    KeyMethod,
    #[error("key is not valid base64")]
    BadBase64,
    #[error("key and salt are not {KEY_MATERIAL_LEN} bytes")]
    KeyLength,
    #[error("bad key lifetime")]
    BadLifetime,
    #[error("MKI or several keys (not supported)")]
    Mki,
    #[error("session parameter not supported")]
    SessionParam,
}

impl CryptoAttr {
    /// Parses the value of an `a=crypto:` attribute.
    pub fn parse(value: &str) -> Result<CryptoAttr, CryptoAttrError> {
        let mut fields = value.split_ascii_whitespace();
        let (tag, suite, key_params) = match (fields.next(), fields.next(), fields.next()) {
            (Some(t), Some(s), Some(k)) => (t, s, k),
            _ => return Err(CryptoAttrError::Syntax),
        };
        let tag = (tag.len() <= 9 && tag.bytes().all(|b| b.is_ascii_digit()))
            .then(|| tag.parse().ok())
            .flatten()
            .ok_or(CryptoAttrError::Syntax)?;
        let suite = SrtpSuite::from_name(suite).ok_or(CryptoAttrError::UnknownSuite)?;
        // Session parameters: only a window-size hint is harmless to ignore.
        if fields.any(|p| !p.starts_with("WSH=")) {
            return Err(CryptoAttrError::SessionParam);
        }
        if key_params.contains(';') {
            return Err(CryptoAttrError::Mki);
        }
        let inline = key_params
            .strip_prefix("inline:")
            .ok_or(CryptoAttrError::KeyMethod)?;
        let mut parts = inline.split('|');
        let material = parts.next().unwrap_or_default();
        match (parts.next(), parts.next()) {
            (None, _) => {}
            (Some(mki), None) if mki.contains(':') => return Err(CryptoAttrError::Mki),
            (Some(lifetime), None) => check_lifetime(lifetime)?,
            (Some(_), Some(_)) => return Err(CryptoAttrError::Mki),
        }
        let bytes = BASE64
            .decode(material)
            .map_err(|_| CryptoAttrError::BadBase64)?;
        let key = <[u8; KEY_MATERIAL_LEN]>::try_from(bytes.as_slice())
            .map_err(|_| CryptoAttrError::KeyLength)?;
        Ok(CryptoAttr {
            tag,
            suite,
            key: MasterKey(key),
        })
    }

    /// The attribute's value (after `a=crypto:`).
    fn value(&self) -> String {
        format!(
            "{} {} inline:{}",
            self.tag,
            self.suite.name(),
            self.key.inline()
        )
    }
}

/// A lifetime is `2^n` or a decimal count of packets; we never rekey, and a call does not
/// come near 2^31 packets, so any well-formed one is accepted.
fn check_lifetime(text: &str) -> Result<(), CryptoAttrError> {
    let digits = text.strip_prefix("2^").unwrap_or(text);
    let ok = !digits.is_empty() && digits.len() <= 20 && digits.bytes().all(|b| b.is_ascii_digit());
    ok.then_some(()).ok_or(CryptoAttrError::BadLifetime)
}

/// The keys of an SRTP leg: what we send with, what the peer sends with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SrtpKeys {
    /// The tag of the chosen `a=crypto` line.
    pub tag: u32,
    pub suite: SrtpSuite,
    /// Ours: the relay protects what it sends to the peer with it.
    pub local: MasterKey,
    /// The peer's: the relay unprotects what it receives with it.
    pub remote: MasterKey,
}

/// Why an offer or answer cannot be taken (488 Not Acceptable Here for an offer).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum SrtpRefusal {
    /// SRTP is required for this peer and its SDP has no usable `a=crypto`.
    #[error("SRTP required and no usable a=crypto")]
    Required,
    /// A secure profile (`RTP/SAVP`) from a peer whose SRTP is off.
    #[error("RTP/SAVP but SRTP is off for this peer")]
    Off,
    /// A secure profile without any usable `a=crypto`.
    #[error("RTP/SAVP without a usable a=crypto")]
    NoUsableCrypto,
}

impl SessionDescription {
    /// Whether the audio stream's profile is secure (`RTP/SAVP`, `RTP/SAVPF`).
    pub fn audio_is_savp(&self) -> bool {
        self.audio().is_some_and(|m| {
            m.proto.eq_ignore_ascii_case("RTP/SAVP") || m.proto.eq_ignore_ascii_case("RTP/SAVPF")
        })
    }

    /// The usable `a=crypto` lines of the audio stream, in the writer's order
    /// (its preference); the others are skipped.
    pub fn audio_crypto(&self) -> Vec<CryptoAttr> {
        self.audio()
            .map(|m| {
                (m.lines.iter())
                    .filter_map(|l| l.attr("crypto"))
                    .filter_map(|v| CryptoAttr::parse(v).ok())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Whether an offer from a peer under `policy` is taken with SRTP (`Some`: its first
    /// usable line, answered with a key from `local`), in plain RTP (`None`), or refused.
    /// `local` is called only for SRTP (a key costs the OS random source a syscall).
    pub fn srtp_for_offer(
        &self,
        policy: SrtpPolicy,
        local: impl FnOnce() -> MasterKey,
    ) -> Result<Option<SrtpKeys>, SrtpRefusal> {
        let savp = self.audio_is_savp();
        if policy == SrtpPolicy::Off {
            return if savp {
                Err(SrtpRefusal::Off)
            } else {
                Ok(None)
            };
        }
        match self.audio_crypto().first() {
            Some(c) => Ok(Some(SrtpKeys {
                tag: c.tag,
                suite: c.suite,
                local: local(),
                remote: c.key,
            })),
            None if policy == SrtpPolicy::Required => Err(SrtpRefusal::Required),
            None if savp => Err(SrtpRefusal::NoUsableCrypto),
            None => Ok(None),
        }
    }

    /// The keys of an answer to our SRTP offer of `local` (see
    /// [`offer_srtp`](Self::offer_srtp)): its line with our tag and suite.
    pub fn srtp_in_answer(&self, local: MasterKey) -> Result<SrtpKeys, SrtpRefusal> {
        let suite = SrtpSuite::AesCm128HmacSha1_80;
        self.audio_crypto()
            .into_iter()
            .find(|c| c.tag == OFFER_TAG && c.suite == suite)
            .map(|c| SrtpKeys {
                tag: c.tag,
                suite,
                local,
                remote: c.key,
            })
            .ok_or(SrtpRefusal::Required)
    }

    /// The keys of this answer to our `offer`: SRTP if the offer was (refused without a
    /// matching line), plain otherwise.
    pub fn srtp_answering(
        &self,
        offer: &SessionDescription,
    ) -> Result<Option<SrtpKeys>, SrtpRefusal> {
        match offer.audio_crypto().first() {
            Some(ours) => self.srtp_in_answer(ours.key).map(Some),
            None => Ok(None),
        }
    }

    /// Replaces the audio stream's `a=crypto` lines by ours for `keys` (the answer to the
    /// line the peer chose), or removes them all for plain RTP. The profile is kept: the
    /// answer's must be the offer's (RFC 3264 §6).
    pub fn set_answer_crypto(&mut self, keys: Option<&SrtpKeys>) {
        let ours = keys.map(|k| CryptoAttr {
            tag: k.tag,
            suite: k.suite,
            key: k.local,
        });
        self.replace_crypto(ours);
    }

    /// Makes this (our own) offer SRTP: `RTP/SAVP` with one `a=crypto` line
    /// (`AES_CM_128_HMAC_SHA1_80`, the suite every SDES phone has) keyed with `local`.
    pub fn offer_srtp(&mut self, local: MasterKey) {
        if let Some(idx) = self.audio_index() {
            self.media[idx].proto = "RTP/SAVP".into();
        }
        self.replace_crypto(Some(CryptoAttr {
            tag: OFFER_TAG,
            suite: SrtpSuite::AesCm128HmacSha1_80,
            key: local,
        }));
    }

    /// Removes the audio `a=crypto` lines and adds `line` if given.
    pub(super) fn replace_crypto(&mut self, line: Option<CryptoAttr>) {
        let Some(idx) = self.audio_index() else {
            return;
        };
        let m = &mut self.media[idx];
        m.lines.retain(|l| l.attr("crypto").is_none());
        if let Some(c) = line {
            m.lines
                .push(Line::new('a', format!("crypto:{}", c.value())));
        }
    }
}
