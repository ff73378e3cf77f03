//! Seat presence that must survive a restart: each seat's registrations (contact, packet
//! source, transport, expiry as wall-clock epoch ms, the REGISTER's Call-ID and CSeq) and
//! its standing pause (logged out, on a break… as the seat or a supervisor set it).
//!
//! Written when they change (a REGISTER, a pause; through the store writer and its commit log,
//! no fsync of their own), read once at start: restored bindings
//! not yet expired put their seat back online at once, so the first call after a restart
//! rings it without waiting for the phone to register again. Digest nonces are not kept:
//! a seat's next REGISTER is simply challenged afresh. Autopauses (a missed offer) are not
//! kept either: they end by themselves.

use super::{Store, StoreError};
use crate::acd::PauseReason;
use crate::sip::registrar::Binding;
use crate::time::EpochMillis;
use rsipstack::sip::{Transport, Uri};
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;

/// A [`Binding`] as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredBinding {
    /// Contact URI, as registered.
    pub contact: String,
    /// Where the REGISTER came from (NAT: requests go there).
    pub source: SocketAddr,
    /// `UDP`, `TCP`, `TLS`, `WS`, `WSS`.
    pub transport: String,
    /// Wall-clock epoch ms the binding expires at.
    pub expires_at: EpochMillis,
    /// The REGISTER's Call-ID and CSeq (RFC 3261 §10.3 ordering).
    pub call_id: String,
    pub cseq: u32,
    /// When it was last (re)registered.
    pub registered_at: EpochMillis,
    /// Its Path (RFC 3327), when it registered through a proxy.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub path: Vec<String>,
}

impl From<&Binding> for StoredBinding {
    fn from(b: &Binding) -> Self {
        Self {
            contact: b.contact.to_string(),
            source: b.source,
            transport: b.transport.to_string(),
            expires_at: b.expires_at,
            call_id: b.call_id.clone(),
            cseq: b.cseq,
            registered_at: b.registered_at,
            path: b.path.clone(),
        }
    }
}

impl StoredBinding {
    /// The binding, unless it no longer parses (then it is dropped: the phone registers
    /// again).
    pub fn binding(&self) -> Option<Binding> {
        Some(Binding {
            contact: Uri::try_from(self.contact.as_str()).ok()?,
            source: self.source,
            transport: self.transport.parse::<Transport>().ok()?,
            expires_at: self.expires_at,
            call_id: self.call_id.clone(),
            cseq: self.cseq,
            registered_at: self.registered_at,
            path: self.path.clone(),
        })
    }
}

/// A seat's pause kept across restarts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct Standing {
    paused: PauseReason,
}

impl Store {
    /// Replaces `user`'s stored bindings (none: the key goes).
    pub fn put_bindings(&self, user: &str, bindings: &[Binding]) -> Result<(), StoreError> {
        let stored: Vec<StoredBinding> = bindings.iter().map(StoredBinding::from).collect();
        self.put_stored_bindings(user, &stored)
    }

    /// [`Store::put_bindings`], as stored (the writer logs them so).
    pub(super) fn put_stored_bindings(
        &self,
        user: &str,
        stored: &[StoredBinding],
    ) -> Result<(), StoreError> {
        if stored.is_empty() {
            self.registrations.remove(user.as_bytes())?;
        } else {
            let value = serde_json::to_vec(stored)?;
            self.registrations.insert(user.as_bytes(), value)?;
        }
        Ok(())
    }

    /// Every user's stored bindings.
    pub fn bindings(&self) -> Result<Vec<(String, Vec<StoredBinding>)>, StoreError> {
        self.registrations
            .iter()
            .map(|item| {
                let (key, value) = item?;
                let user = String::from_utf8_lossy(&key).into_owned();
                Ok((user, serde_json::from_slice(&value)?))
            })
            .collect()
    }

    /// Stores a seat's standing pause (`None`: not paused, the key goes).
    pub fn put_seat_standing(
        &self,
        seat: &str,
        paused: Option<PauseReason>,
    ) -> Result<(), StoreError> {
        match paused {
            Some(paused) => {
                let value = serde_json::to_vec(&Standing { paused })?;
                self.seat_standing.insert(seat.as_bytes(), value)?;
            }
            None => {
                self.seat_standing.remove(seat.as_bytes())?;
            }
        }
        Ok(())
    }

    /// Every seat's stored standing pause.
    pub fn seat_standings(&self) -> Result<Vec<(String, PauseReason)>, StoreError> {
        self.seat_standing
            .iter()
            .map(|item| {
                let (key, value) = item?;
                let standing: Standing = serde_json::from_slice(&value)?;
                Ok((String::from_utf8_lossy(&key).into_owned(), standing.paused))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn binding(expires_at: EpochMillis) -> Binding {
        Binding {
            contact: Uri::try_from("sip:arm1@10.0.0.5:5062;transport=tcp").unwrap(),
            source: "192.0.2.7:40000".parse().unwrap(),
            transport: Transport::Tcp,
            expires_at,
            call_id: "reg-1".into(),
            cseq: 7,
            registered_at: 1_000,
            path: vec!["sip:127.0.0.1;lr;received=sip:10.0.0.5:5062".into()],
        }
    }

    #[test]
    fn bindings_and_pauses_round_trip_and_clear() {
        let dir = std::env::temp_dir().join(format!("sas-presence-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let store = Store::open(&dir).unwrap();
        store.put_bindings("arm1", &[binding(5_000)]).unwrap();
        let all = store.bindings().unwrap();
        assert_eq!(all.len(), 1);
        assert_eq!(all[0].0, "arm1");
        assert_eq!(all[0].1[0].binding(), Some(binding(5_000)));
        store.put_bindings("arm1", &[]).unwrap();
        assert!(store.bindings().unwrap().is_empty());

        store
            .put_seat_standing("arm2", Some(PauseReason::Break))
            .unwrap();
        store
            .put_seat_standing("arm3", Some(PauseReason::LoggedOut))
            .unwrap();
        store.put_seat_standing("arm3", None).unwrap();
        assert_eq!(
            store.seat_standings().unwrap(),
            [("arm2".to_string(), PauseReason::Break)]
        );
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn a_stored_binding_that_no_longer_parses_is_dropped() {
        let mut stored = StoredBinding::from(&binding(5_000));
        stored.transport = "carrier-pigeon".into();
        assert_eq!(stored.binding(), None);
    }
}
