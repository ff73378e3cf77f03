//! The shared store: every node's call records and audit entries in one PostgreSQL
//! database, so a supervisor sees the calls of every node and a node's records outlive it.
//!
//! sled stays each node's store of record. Writes reach PostgreSQL through sled's
//! [`outbox`](crate::store::outbox) (same transaction as the record): the [`shipper`]
//! sends it in batches and deletes what PostgreSQL acknowledged, so the call path never
//! waits on PostgreSQL, an outage only grows the outbox, and a replay writes nothing
//! twice. [`pg`] owns the SQL: the versioned schema under `migrations/postgres/`, applied
//! on connect, the idempotent upserts, and the reads of `calls list --shared` and
//! `/api/calls?source=shared`.

pub mod lines;
pub mod pg;
pub mod shipper;

use crate::config::ConfigError;
use crate::store::record::CallRecord;
use serde::{Deserialize, Serialize};
use std::time::Duration;
use thiserror::Error;

/// Shared-store failures: all of them are worth retrying later (PostgreSQL down, a
/// network cut, a timeout) except a schema this router cannot use.
#[derive(Debug, Error)]
pub enum SharedError {
    /// PostgreSQL refused or failed (connection, SQL, authentication).
    #[error("PostgreSQL: {0}")]
    Postgres(#[from] tokio_postgres::Error),
    /// PostgreSQL did not answer in time.
    #[error("PostgreSQL did not answer within {0:?}")]
    Timeout(Duration),
    /// A stored record does not decode as a call record.
    #[error("a stored record does not decode: {0}")]
    Decode(#[from] serde_json::Error),
    /// The outbox could not be read or cleared.
    #[error("outbox: {0}")]
    Outbox(#[from] crate::store::StoreError),
    /// The blocking pool refused a task (the runtime is shutting down).
    #[error("blocking task: {0}")]
    Task(#[from] tokio::task::JoinError),
}

/// `[shared_store]`: off unless this section is present.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SharedStoreConfig {
    /// `postgres://user:password@host:port/database` (libpq URL or key=value form).
    pub url: String,
    /// Rows per PostgreSQL transaction.
    #[serde(default = "default_batch")]
    pub batch: u32,
    /// Longest wait between two attempts while PostgreSQL is unreachable, seconds (the
    /// wait doubles from half a second up to this).
    #[serde(default = "default_retry_max_s")]
    pub retry_max_s: u32,
    /// Time allowed to connect, and to each batch or read, seconds.
    #[serde(default = "default_timeout_s")]
    pub timeout_s: u32,
}

fn default_batch() -> u32 {
    200
}
fn default_retry_max_s() -> u32 {
    30
}
fn default_timeout_s() -> u32 {
    10
}

impl SharedStoreConfig {
    /// Errors name the key at fault; the URL is never echoed (it may hold a password).
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |key: &str, reason: &str| ConfigError::Invalid {
            key: format!("shared_store.{key}"),
            reason: reason.into(),
        };
        if let Err(e) = self.url.parse::<tokio_postgres::Config>() {
            return Err(invalid("url", &format!("not a PostgreSQL URL ({e})")));
        }
        if !(1..=10_000).contains(&self.batch) {
            return Err(invalid("batch", "must be between 1 and 10000"));
        }
        if self.retry_max_s == 0 {
            return Err(invalid("retry_max_s", "must be at least 1"));
        }
        if !(1..=600).contains(&self.timeout_s) {
            return Err(invalid("timeout_s", "must be between 1 and 600"));
        }
        Ok(())
    }

    /// The connect, batch and read timeout.
    pub fn timeout(&self) -> Duration {
        Duration::from_secs(self.timeout_s.into())
    }
}

/// `[node]`: who this router is among the nodes writing to one shared store.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeConfig {
    /// The node's name in every shared row; default: the host name.
    #[serde(default = "host_name")]
    pub name: String,
}

impl Default for NodeConfig {
    fn default() -> Self {
        Self { name: host_name() }
    }
}

impl NodeConfig {
    /// A name of 1 to 63 letters, digits, `.`, `-` or `_`.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let ok = (1..=63).contains(&self.name.len())
            && self
                .name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'));
        if ok {
            return Ok(());
        }
        Err(ConfigError::Invalid {
            key: "node.name".into(),
            reason: "1 to 63 letters, digits, '.', '-' or '_'".into(),
        })
    }
}

/// The kernel's host name (Linux), else `HOSTNAME`, else `sas-router`.
fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|n| n.trim().to_string())
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| "sas-router".into())
}

/// A record read from the shared store: the record as the node stored it, with the node's
/// name added (the JSON is the record's, plus `"node"`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeRecord {
    /// The node that wrote it.
    pub node: String,
    /// The record.
    #[serde(flatten)]
    pub record: CallRecord,
}

/// An audit entry read from the shared store, with the node that wrote it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeAudit {
    /// The node that wrote it.
    pub node: String,
    /// The entry.
    #[serde(flatten)]
    pub entry: crate::store::audit::AuditEntry,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(text: &str) -> SharedStoreConfig {
        toml::from_str(text).unwrap()
    }

    #[test]
    fn a_bad_url_or_bound_is_refused_naming_the_key_and_not_the_password() {
        let ok = config("url = \"postgres://sas:secret@127.0.0.1:5432/sas\"");
        assert!(ok.validate().is_ok());
        assert_eq!((ok.batch, ok.retry_max_s, ok.timeout_s), (200, 30, 10));
        let bad = config("url = \"mysql://sas:secret@host/db\"");
        let e = bad.validate().unwrap_err().to_string();
        assert!(e.contains("shared_store.url"), "{e}");
        assert!(!e.contains("secret"), "{e}");
        let zero = config("url = \"postgres://h/db\"\nbatch = 0");
        assert!(zero.validate().unwrap_err().to_string().contains("batch"));
        let unknown = toml::from_str::<SharedStoreConfig>("url = \"postgres://h\"\nurll = 1");
        assert!(unknown.is_err());
    }

    #[test]
    fn node_names_are_checked_and_default_to_the_host() {
        assert!(!NodeConfig::default().name.is_empty());
        assert!(NodeConfig::default().validate().is_ok());
        for bad in ["", "a b", "nœud", &"x".repeat(64)] {
            let node = NodeConfig { name: bad.into() };
            assert!(node.validate().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_node_record_is_the_record_plus_its_node() {
        let caller = crate::pii::CallerNumber::new("0612345678");
        let record = CallRecord::new(
            "c1".into(),
            "x".into(),
            "samu".into(),
            "15".into(),
            caller,
            1,
        );
        let shared = NodeRecord {
            node: "a".into(),
            record: record.clone(),
        };
        let mut json = serde_json::to_value(&shared).unwrap();
        assert_eq!(json["node"], "a");
        json.as_object_mut().unwrap().remove("node");
        assert_eq!(json, serde_json::to_value(&record).unwrap());
        let back: NodeRecord =
            serde_json::from_value(serde_json::to_value(&shared).unwrap()).unwrap();
        assert_eq!(back, shared);
    }
}
