//! PostgreSQL: the connection, the schema (versioned files under `migrations/postgres/`,
//! applied on connect), the idempotent writes of outbox rows and the reads across nodes.
//!
//! No TLS: the shared store is expected on the plateau's own network or the node itself
//! (see the README); the URL's password authenticates (SCRAM).

use super::{NodeAudit, NodeRecord, SharedError, SharedStoreConfig};
use crate::store::audit::AuditEntry;
use crate::store::outbox::{OutboxItem, OutboxRow};
use crate::store::record::CallRecord;
use std::borrow::Cow;
use std::future::Future;
use std::time::Duration;
use tokio_postgres::{Client, NoTls, Statement};

/// The schema versions, in order: (version, SQL).
const MIGRATIONS: &[(i32, &str)] = &[
    (1, include_str!("../../migrations/postgres/0001_init.sql")),
    (
        2,
        include_str!("../../migrations/postgres/0002_line_switches.sql"),
    ),
    (
        3,
        include_str!("../../migrations/postgres/0003_line_switch_move_waiting.sql"),
    ),
];

/// Key of the advisory lock that serialises schema changes between nodes.
const MIGRATION_LOCK: i64 = 0x5a5_5e0c;

/// An EpochMillis column as a timestamp (NULL stays NULL).
macro_rules! ts {
    ($n:literal) => {
        concat!("to_timestamp($", $n, "::bigint / 1000.0)")
    };
}

const UPSERT_CALL: &str = concat!(
    "INSERT INTO sas_calls (node, id, rev, line, called, arrived_at, answered_at, ended_at, \
     outcome, seat, wait_ms, talk_ms, record) VALUES ($1, $2, $3, $4, $5, ",
    ts!(6),
    ", ",
    ts!(7),
    ", ",
    ts!(8),
    ", $9, $10, $11, $12, $13::text::jsonb) \
     ON CONFLICT (node, id) DO UPDATE SET rev = EXCLUDED.rev, line = EXCLUDED.line, \
     called = EXCLUDED.called, arrived_at = EXCLUDED.arrived_at, \
     answered_at = EXCLUDED.answered_at, ended_at = EXCLUDED.ended_at, \
     outcome = EXCLUDED.outcome, seat = EXCLUDED.seat, wait_ms = EXCLUDED.wait_ms, \
     talk_ms = EXCLUDED.talk_ms, record = EXCLUDED.record, stored_at = now() \
     WHERE sas_calls.rev < EXCLUDED.rev"
);

const INSERT_AUDIT: &str = concat!(
    "INSERT INTO sas_audit (node, id, at, actor, action, target, detail) VALUES ($1, $2, ",
    ts!(3),
    ", $4, $5, $6, $7) ON CONFLICT (node, id) DO NOTHING"
);

/// Runs `work` within `limit`.
pub(super) async fn within<T>(
    limit: Duration,
    work: impl Future<Output = Result<T, SharedError>>,
) -> Result<T, SharedError> {
    tokio::time::timeout(limit, work)
        .await
        .map_err(|_| SharedError::Timeout(limit))?
}

/// Opens a connection (its IO runs on a task of its own until the client is dropped).
pub(super) async fn connect(config: &SharedStoreConfig) -> Result<Client, SharedError> {
    let mut pg: tokio_postgres::Config = config.url.parse()?;
    pg.connect_timeout(config.timeout());
    pg.application_name("sas-router");
    let (client, connection) =
        within(config.timeout(), async { Ok(pg.connect(NoTls).await?) }).await?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!(error = %e, "shared store connection closed");
        }
    });
    Ok(client)
}

/// A writer: one node's connection with its statements prepared.
pub struct Writer {
    client: Client,
    node: String,
    call: Statement,
    audit: Statement,
    timeout: Duration,
}

impl Writer {
    /// Connects, brings the schema up to date and prepares the writes.
    pub async fn connect(config: &SharedStoreConfig, node: &str) -> Result<Self, SharedError> {
        let mut client = connect(config).await?;
        within(config.timeout(), migrate(&mut client)).await?;
        let (call, audit) = within(config.timeout(), async {
            Ok((
                client.prepare(UPSERT_CALL).await?,
                client.prepare(INSERT_AUDIT).await?,
            ))
        })
        .await?;
        Ok(Self {
            client,
            node: node.to_string(),
            call,
            audit,
            timeout: config.timeout(),
        })
    }

    /// The connection is gone (server restarted, network cut seen).
    pub fn is_closed(&self) -> bool {
        self.client.is_closed()
    }

    /// Writes `rows` in one transaction: all of them or none. A row already there (a
    /// replay) or older than the stored version changes nothing.
    pub async fn write(&mut self, rows: &[OutboxRow]) -> Result<(), SharedError> {
        let (node, call, audit) = (&self.node, &self.call, &self.audit);
        let client = &mut self.client;
        within(self.timeout, async move {
            let tx = client.transaction().await?;
            for (key, item) in rows {
                match item {
                    OutboxItem::Call { record } => {
                        let rev = *key as i64;
                        write_call(&tx, call, node, rev, record).await?;
                    }
                    OutboxItem::Audit { id, entry } => {
                        write_audit(&tx, audit, node, *id as i64, entry).await?;
                    }
                }
            }
            tx.commit().await?;
            Ok(())
        })
        .await
    }
}

/// PostgreSQL's `text` and `jsonb` refuse the NUL character: a record carrying one (from
/// a SIP header) would be refused, and would hold up the outbox behind it forever. It is
/// written as U+FFFD instead (sled keeps the original).
fn scrub(text: &str) -> Cow<'_, str> {
    if text.contains('\0') {
        Cow::Owned(text.replace('\0', "\u{FFFD}"))
    } else {
        Cow::Borrowed(text)
    }
}

/// [`scrub`] on every string of a JSON value, keys included.
fn scrub_json(value: serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match value {
        Value::String(s) => Value::String(scrub(&s).into_owned()),
        Value::Array(items) => Value::Array(items.into_iter().map(scrub_json).collect()),
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| (scrub(&k).into_owned(), scrub_json(v)))
                .collect(),
        ),
        other => other,
    }
}

async fn write_call(
    tx: &tokio_postgres::Transaction<'_>,
    statement: &Statement,
    node: &str,
    rev: i64,
    r: &CallRecord,
) -> Result<(), SharedError> {
    let ms = |v: Option<u64>| v.map(|v| v as i64);
    let json = scrub_json(serde_json::to_value(r)?).to_string();
    let seat = r.seat.as_deref().map(scrub);
    tx.execute(
        statement,
        &[
            &node,
            &scrub(&r.id),
            &rev,
            &scrub(&r.line),
            &scrub(&r.called),
            &(r.arrived_at as i64),
            &ms(r.answered_at),
            &ms(r.ended_at),
            &r.outcome.map(|o| o.label()),
            &seat,
            &ms(r.wait_ms),
            &ms(r.talk_ms),
            &json,
        ],
    )
    .await?;
    Ok(())
}

async fn write_audit(
    tx: &tokio_postgres::Transaction<'_>,
    statement: &Statement,
    node: &str,
    id: i64,
    e: &AuditEntry,
) -> Result<(), SharedError> {
    let at = e.at as i64;
    let (actor, action, target) = (scrub(&e.actor), scrub(&e.action), scrub(&e.target));
    let detail = e.detail.as_deref().map(scrub);
    let row: [&(dyn tokio_postgres::types::ToSql + Sync); 7] =
        [&node, &id, &at, &actor, &action, &target, &detail];
    tx.execute(statement, &row).await?;
    Ok(())
}

/// Applies the migrations this database has not seen, under the advisory lock, in one
/// transaction. A schema newer than this router knows is left alone (a newer node
/// migrated it; changes are additive).
pub(super) async fn migrate(client: &mut Client) -> Result<(), SharedError> {
    let tx = client.transaction().await?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS sas_schema (version integer PRIMARY KEY, \
         applied_at timestamptz NOT NULL DEFAULT now())",
    )
    .await?;
    let current: i32 = tx
        .query_one("SELECT coalesce(max(version), 0) FROM sas_schema", &[])
        .await?
        .get(0);
    for (version, sql) in MIGRATIONS.iter().filter(|(v, _)| *v > current) {
        tx.batch_execute(sql).await?;
        tx.execute("INSERT INTO sas_schema (version) VALUES ($1)", &[version])
            .await?;
        tracing::info!(version, "shared store schema migrated");
    }
    tx.commit().await?;
    Ok(())
}

/// The reads of supervisors (CLI, admin API): a connection per use.
pub struct Reader {
    client: Client,
    timeout: Duration,
}

impl Reader {
    /// Connects (no schema change: a reader may have no right to).
    pub async fn connect(config: &SharedStoreConfig) -> Result<Self, SharedError> {
        Ok(Self {
            client: connect(config).await?,
            timeout: config.timeout(),
        })
    }

    /// The most recent calls of every node, newest first.
    pub async fn recent_calls(&self, limit: usize) -> Result<Vec<NodeRecord>, SharedError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.calls(
            "SELECT node, record::text FROM sas_calls ORDER BY arrived_at DESC, id DESC, node \
             LIMIT $1",
            &[&limit],
        )
        .await
    }

    /// The calls with this id: one per node that has it (ids are unique per node).
    pub async fn calls_by_id(&self, id: &str) -> Result<Vec<NodeRecord>, SharedError> {
        self.calls(
            "SELECT node, record::text FROM sas_calls WHERE id = $1 ORDER BY node",
            &[&id],
        )
        .await
    }

    /// The most recent audit entries of every node, newest first.
    pub async fn audit_entries(&self, limit: usize) -> Result<Vec<NodeAudit>, SharedError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        within(self.timeout, async {
            let rows = self
                .client
                .query(
                    "SELECT node, (extract(epoch FROM at) * 1000)::bigint, actor, action, \
                     target, detail FROM sas_audit ORDER BY at DESC, id DESC, node LIMIT $1",
                    &[&limit],
                )
                .await?;
            Ok(rows
                .iter()
                .map(|row| NodeAudit {
                    node: row.get(0),
                    entry: AuditEntry {
                        at: row.get::<_, i64>(1).max(0) as u64,
                        actor: row.get(2),
                        action: row.get(3),
                        target: row.get(4),
                        detail: row.get(5),
                    },
                })
                .collect())
        })
        .await
    }

    async fn calls(
        &self,
        sql: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<Vec<NodeRecord>, SharedError> {
        within(self.timeout, async {
            let rows = self.client.query(sql, params).await?;
            rows.iter()
                .map(|row| {
                    let record: CallRecord = serde_json::from_str(row.get::<_, &str>(1))?;
                    Ok(NodeRecord {
                        node: row.get(0),
                        record,
                    })
                })
                .collect()
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nul_characters_become_replacement_characters_everywhere_else_nothing_changes() {
        assert!(matches!(scrub("arm1"), Cow::Borrowed("arm1")));
        assert_eq!(scrub("a\0b\0"), "a\u{FFFD}b\u{FFFD}");
        let value = serde_json::json!({
            "caller": "06\u{0}12",
            "events": [{ "detail": "x\u{0}", "at": 5 }],
            "k\u{0}": null,
            "n": 1.5,
        });
        let clean = scrub_json(value).to_string();
        assert!(!clean.contains("\\u0000"), "{clean}");
        let expected = serde_json::json!({
            "caller": "06\u{FFFD}12",
            "events": [{ "detail": "x\u{FFFD}", "at": 5 }],
            "k\u{FFFD}": null,
            "n": 1.5,
        });
        assert_eq!(clean, expected.to_string());
    }
}
