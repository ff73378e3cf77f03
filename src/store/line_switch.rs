//! Lines switched to the backup centre, kept across restarts (read once at start, put back
//! in the Router). Written and flushed when a supervisor switches or restores a line: a
//! switch a crash could forget would send the next calls to an evacuated plateau. With a
//! shared store, the change is also kept here until it is written there, so that a restart
//! meanwhile sends it again rather than take the older shared state for newer.

use super::{Store, StoreError};
use crate::call::router::LineSwitch;
use crate::shared_store::lines::SharedLine;

impl Store {
    /// Stores `line`'s switch (`None`: restored, the key goes), on disk before it returns.
    pub fn put_line_switch(
        &self,
        line: &str,
        switch: Option<&LineSwitch>,
    ) -> Result<(), StoreError> {
        match switch {
            Some(switch) => {
                let value = serde_json::to_vec(switch)?;
                self.line_switch.insert(line.as_bytes(), value)?;
            }
            None => {
                self.line_switch.remove(line.as_bytes())?;
            }
        }
        self.line_switch.flush()?;
        Ok(())
    }

    /// Every switched line, as stored.
    pub fn line_switches(&self) -> Result<Vec<(String, LineSwitch)>, StoreError> {
        self.line_switch
            .iter()
            .map(|item| {
                let (key, value) = item?;
                let line = String::from_utf8_lossy(&key).into_owned();
                Ok((line, serde_json::from_slice(&value)?))
            })
            .collect()
    }
}

impl Store {
    /// Keeps `change` (the latest of its line) until the shared store has it.
    pub fn put_unshared_line(&self, change: &SharedLine) -> Result<(), StoreError> {
        let value = serde_json::to_vec(change)?;
        self.line_unshared.insert(change.line.as_bytes(), value)?;
        self.line_unshared.flush()?;
        Ok(())
    }

    /// The shared store has `written`: forgotten here unless a later change replaced it.
    pub fn line_shared(&self, written: &SharedLine) -> Result<(), StoreError> {
        let key = written.line.as_bytes();
        let Some(value) = self.line_unshared.get(key)? else {
            return Ok(());
        };
        let kept: SharedLine = serde_json::from_slice(&value)?;
        if kept.same_change(written) {
            self.line_unshared
                .compare_and_swap(key, Some(value), None::<&[u8]>)?
                .ok();
            self.line_unshared.flush()?;
        }
        Ok(())
    }

    /// The changes not yet in the shared store.
    pub fn unshared_lines(&self) -> Result<Vec<SharedLine>, StoreError> {
        self.line_unshared
            .iter()
            .map(|item| Ok(serde_json::from_slice(&item?.1)?))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn switches_round_trip_and_clear_across_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let switch = LineSwitch {
            by: "sup1".into(),
            reason: "évacuation".into(),
            since: 1_000,
            node: Some("a".into()),
        };
        {
            let store = Store::open(dir.path()).unwrap();
            store.put_line_switch("samu", Some(&switch)).unwrap();
            store.put_line_switch("sas", Some(&switch)).unwrap();
            store.put_line_switch("sas", None).unwrap();
        }
        let store = Store::open_retrying(dir.path(), std::time::Duration::from_secs(2)).unwrap();
        assert_eq!(store.line_switches().unwrap(), [("samu".into(), switch)]);
    }

    /// Kept by an older version, before `node` and `move_waiting`: still read.
    #[test]
    fn switches_and_changes_stored_before_node_and_move_waiting_still_decode() {
        let switch = r#"{"by":"sup1","reason":"panne","since":1000}"#;
        let switch: LineSwitch = serde_json::from_str(switch).unwrap();
        assert_eq!(switch.node, None);
        let change = r#"{"line":"samu","switched":true,"node":"a","by":"sup1",
            "reason":"panne","at":1,"rev":0}"#;
        let change: SharedLine = serde_json::from_str(change).unwrap();
        assert!(change.switched && !change.move_waiting);
    }

    #[test]
    fn an_unshared_change_is_kept_until_that_very_change_is_written() {
        let dir = tempfile::tempdir().unwrap();
        let change = |switched, at| SharedLine {
            line: "samu".into(),
            switched,
            node: "a".into(),
            by: "sup1".into(),
            reason: "panne".into(),
            at,
            rev: 0,
            move_waiting: false,
        };
        {
            let store = Store::open(dir.path()).unwrap();
            store.put_unshared_line(&change(true, 1)).unwrap();
            store.put_unshared_line(&change(false, 2)).unwrap();
            // The write of the earlier change does not clear the later one.
            store.line_shared(&change(true, 1)).unwrap();
        }
        let store = Store::open_retrying(dir.path(), std::time::Duration::from_secs(2)).unwrap();
        assert_eq!(store.unshared_lines().unwrap(), [change(false, 2)]);
        let mut written = change(false, 2);
        written.rev = 7;
        store.line_shared(&written).unwrap();
        assert!(store.unshared_lines().unwrap().is_empty());
    }
}
