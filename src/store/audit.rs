//! The audit log: who read or purged which recording, and when. Kept in sled's `audit`
//! tree, keyed by time then a database-wide counter, so entries sort by time and two in the
//! same millisecond never collide; each write is flushed before it returns.

use super::outbox::OutboxItem;
use super::{Store, StoreError};
use crate::time::EpochMillis;
use serde::{Deserialize, Serialize};
use sled::Transactional;

/// One audited action.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    /// When.
    pub at: EpochMillis,
    /// Who (a person's name, or `retention` for the purge task).
    pub actor: String,
    /// What: `recording.read`, `recording.purge`.
    pub action: String,
    /// On what: a call id or a recording path.
    pub target: String,
    /// Why, or details (purpose of a read, age of a purged file).
    pub detail: Option<String>,
}

impl Store {
    /// Appends an entry and waits until it is on disk: an audited action must not proceed on
    /// an entry a crash could lose. It enters the outbox in the same transaction if the
    /// outbox is on ([`super::outbox`]).
    pub fn audit(&self, entry: &AuditEntry) -> Result<(), StoreError> {
        let ship = self.outbox_state.on();
        let bytes = serde_json::to_vec(entry)?;
        (&self.audit_log, &self.outbox)
            .transaction(|(audit_log, outbox)| {
                let id = audit_log.generate_id()?;
                let mut key = [0u8; 16];
                key[..8].copy_from_slice(&entry.at.to_be_bytes());
                key[8..].copy_from_slice(&id.to_be_bytes());
                audit_log.insert(&key[..], bytes.as_slice())?;
                if ship {
                    let item = OutboxItem::Audit {
                        id,
                        entry: entry.clone(),
                    };
                    // The entry's id is unique in the database: its outbox key too.
                    super::outbox::put(outbox, id, &item)?;
                }
                Ok(())
            })
            .map_err(super::unwrap_tx)?;
        self.db.flush()?;
        self.outbox_state.added(u64::from(ship));
        Ok(())
    }

    /// The most recent entries, newest first.
    pub fn audit_entries(&self, limit: usize) -> Result<Vec<AuditEntry>, StoreError> {
        super::newest(self.audit_log.iter(), limit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(at: EpochMillis, actor: &str) -> AuditEntry {
        AuditEntry {
            at,
            actor: actor.into(),
            action: "recording.read".into(),
            target: "20261123T071502.123Z-0001".into(),
            detail: None,
        }
    }

    #[test]
    fn entries_in_one_millisecond_never_collide_and_list_newest_first() {
        // One database throughout: sled may hold its lock a moment after a drop.
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store.audit(&entry(2_000, "b")).unwrap();
        store.audit(&entry(1_000, "a")).unwrap();
        store.audit(&entry(2_000, "c")).unwrap();
        let actors: Vec<String> = store
            .audit_entries(10)
            .unwrap()
            .into_iter()
            .map(|e| e.actor)
            .collect();
        assert_eq!(actors, ["c", "b", "a"]);
        assert_eq!(store.audit_entries(1).unwrap()[0].actor, "c");
    }
}
