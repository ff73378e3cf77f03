//! SDES-SRTP (RFC 4568 keys, RFC 3711 packets) on SIP legs, the app's side: the policy of
//! each peer from the configuration, fresh master keys from the OS random source, and the
//! SRTP/SRTCP contexts (`rtc-srtp`) the relay protects and unprotects a leg's packets with.
//! What is offered and answered is decided in the core (`sas_core::media::sdp`).

use std::collections::HashMap;
use std::sync::OnceLock;

use bytes::BytesMut;
use rand::RngCore;
use rtc::shared::marshal::{MarshalSize, Unmarshal};
use rtc_srtp::context::Context;
use rtc_srtp::crypto::RTCCryptoProvider;
use rtc_srtp::option::{srtcp_replay_protection, srtp_replay_protection};
use rtc_srtp::protection_profile::ProtectionProfile;
use thiserror::Error;

pub use sas_core::media::sdp::{KEY_MATERIAL_LEN, MasterKey, SrtpKeys, SrtpPolicy, SrtpSuite};

use crate::config::Config;

/// Packets a peer may reorder before a late one is taken for a replay (RFC 3711 §3.3.2's
/// minimum is 64).
const REPLAY_WINDOW: usize = 128;

/// The SRTP policy of the trunk and of each seat (`srtp` in `[trunk]` and `[[seats]]`).
#[derive(Debug, Clone, Default)]
pub struct SrtpPolicies {
    trunk: SrtpPolicy,
    seats: HashMap<String, SrtpPolicy>,
}

impl SrtpPolicies {
    /// The policies a configuration sets.
    pub fn from_config(config: &Config) -> SrtpPolicies {
        SrtpPolicies {
            trunk: config.trunk.srtp,
            seats: (config.seats.iter())
                .map(|s| (s.username.clone(), s.srtp))
                .collect(),
        }
    }

    /// The trunk's: its calls in, forwards out.
    pub fn trunk(&self) -> SrtpPolicy {
        self.trunk
    }

    /// A seat's (its phone's calls in and the calls offered to it).
    pub fn seat(&self, seat: &str) -> SrtpPolicy {
        self.seats.get(seat).copied().unwrap_or_default()
    }
}

/// A fresh master key and salt from the OS random source, for one leg.
pub fn fresh_key() -> MasterKey {
    let mut material = [0u8; KEY_MATERIAL_LEN];
    rand::rngs::OsRng.fill_bytes(&mut material);
    MasterKey::new(material)
}

/// Why an SRTP operation failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum SrtpError {
    /// No AES-CM/HMAC-SHA1 implementation, or keys it refuses (not expected at run time).
    #[error("SRTP context could not be created")]
    Context,
    /// The packet failed authentication, was replayed, or is not SRTP: drop it.
    #[error("SRTP packet rejected (authentication, replay or format)")]
    Rejected,
    /// Our own packet could not be protected (not RTP/RTCP, or the key is exhausted).
    #[error("packet could not be protected")]
    Protect,
}

fn crypto() -> Result<&'static dyn RTCCryptoProvider, SrtpError> {
    static PROVIDER: OnceLock<Option<std::sync::Arc<dyn RTCCryptoProvider>>> = OnceLock::new();
    PROVIDER
        .get_or_init(|| rtc_srtp::crypto::default_provider().ok())
        .as_deref()
        .ok_or(SrtpError::Context)
}

/// A one-way context for `key`; what we receive is replay-checked.
fn context(suite: SrtpSuite, key: &MasterKey, replay: bool) -> Result<Context, SrtpError> {
    let (rtp, rtcp) = match replay {
        true => (
            Some(srtp_replay_protection(REPLAY_WINDOW)),
            Some(srtcp_replay_protection(REPLAY_WINDOW)),
        ),
        false => (None, None),
    };
    let crypto = crypto()?.crypto();
    Context::new(key.key(), key.salt(), profile(suite), rtp, rtcp, crypto)
        .map_err(|_| SrtpError::Context)
}

fn profile(suite: SrtpSuite) -> ProtectionProfile {
    match suite {
        SrtpSuite::AesCm128HmacSha1_80 => ProtectionProfile::Aes128CmHmacSha1_80,
        SrtpSuite::AesCm128HmacSha1_32 => ProtectionProfile::Aes128CmHmacSha1_32,
    }
}

/// The contexts of one SRTP leg: one for what the peer sends us (replay-checked), one
/// for what we send it (each context works one way only).
pub struct SrtpLeg {
    inbound: Context,
    outbound: Context,
    /// What `outbound` protects with.
    sending: (SrtpSuite, MasterKey),
}

impl std::fmt::Debug for SrtpLeg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SrtpLeg(..)")
    }
}

impl SrtpLeg {
    /// The contexts for negotiated `keys`.
    pub fn new(keys: &SrtpKeys) -> Result<SrtpLeg, SrtpError> {
        Ok(SrtpLeg {
            inbound: context(keys.suite, &keys.remote, true)?,
            outbound: context(keys.suite, &keys.local, false)?,
            sending: (keys.suite, keys.local),
        })
    }

    /// New `keys` for the leg (a re-INVITE): when we send with the same suite and key, only
    /// the peer's side is replaced, so our packet index goes on (restarting it under the
    /// same key would reuse keystream); otherwise both sides start afresh.
    pub fn rekey(&mut self, keys: &SrtpKeys) -> Result<(), SrtpError> {
        if self.sending != (keys.suite, keys.local) {
            *self = SrtpLeg::new(keys)?;
        } else {
            self.inbound = context(keys.suite, &keys.remote, true)?;
        }
        Ok(())
    }

    /// The plain RTP packet inside the peer's SRTP one.
    pub fn unprotect_rtp(&mut self, packet: &[u8]) -> Result<BytesMut, SrtpError> {
        if !rtp_header_fits(packet, MAX_TAG_LEN) {
            return Err(SrtpError::Rejected);
        }
        (self.inbound.decrypt_rtp(packet)).map_err(|_| SrtpError::Rejected)
    }

    /// The plain RTCP compound inside the peer's SRTCP packet.
    pub fn unprotect_rtcp(&mut self, packet: &[u8]) -> Result<BytesMut, SrtpError> {
        (self.inbound.decrypt_rtcp(packet)).map_err(|_| SrtpError::Rejected)
    }

    /// Our RTP packet, protected for the peer.
    pub fn protect_rtp(&mut self, packet: &[u8]) -> Result<BytesMut, SrtpError> {
        if !rtp_header_fits(packet, 0) {
            return Err(SrtpError::Protect);
        }
        (self.outbound.encrypt_rtp(packet)).map_err(|_| SrtpError::Protect)
    }

    /// Our RTCP compound, protected for the peer.
    pub fn protect_rtcp(&mut self, packet: &[u8]) -> Result<BytesMut, SrtpError> {
        (self.outbound.encrypt_rtcp(packet)).map_err(|_| SrtpError::Protect)
    }
}

/// The longest authentication tag of our suites (HMAC-SHA1-80).
const MAX_TAG_LEN: usize = 10;

/// Whether `packet`'s RTP header, as rtc's own parser reads and re-sizes it, and `trailer`
/// bytes fit in it: rtc-srtp slices the packet at the header's `marshal_size()` without
/// checking, and a header extension can be re-sized larger than it was on the wire (a fuzzed
/// 43-byte packet panicked it). A header whose re-sized form differs from the wire form is
/// refused too: its payload would be ciphered at the wrong offset.
fn rtp_header_fits(packet: &[u8], trailer: usize) -> bool {
    let mut rest = packet;
    let Ok(header) = rtc::rtp::Header::unmarshal(&mut rest) else {
        return false;
    };
    let wire_len = packet.len() - rest.len();
    header.marshal_size() == wire_len && wire_len + trailer <= packet.len()
}

#[cfg(test)]
mod tests;
