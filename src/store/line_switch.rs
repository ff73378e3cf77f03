//! Lines switched to the backup centre, kept across restarts (read once at start, put back
//! in the Router). Written and flushed when a supervisor switches or restores a line: a
//! switch a crash could forget would send the next calls to an evacuated plateau.

use super::{Store, StoreError};
use crate::call::router::LineSwitch;

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
        };
        {
            let store = Store::open(dir.path()).unwrap();
            store.put_line_switch("samu", Some(&switch)).unwrap();
            store.put_line_switch("sas", Some(&switch)).unwrap();
            store.put_line_switch("sas", None).unwrap();
        }
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.line_switches().unwrap(), [("samu".into(), switch)]);
    }
}
