//! The shipper: a tokio task that sends sled's outbox to PostgreSQL, oldest row first, a
//! batch per transaction, and deletes each batch from the outbox once PostgreSQL committed
//! it. Woken by every outbox write; while PostgreSQL is unreachable it retries with a
//! doubling wait ([`Backoff`]), logs one error per `limits.error_log_interval_s`, and the
//! outbox grows (`sas_shared_store_outbox`). At shutdown, after the call driver wrote its
//! last records, it makes one last attempt; what is left ships at the next start.

use super::pg::Writer;
use super::{SharedError, SharedStoreConfig};
use crate::net::limits::LogThrottle;
use crate::store::Store;
use prometheus::{IntCounter, IntGauge, Registry};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// The first wait after a failure; it doubles up to `retry_max_s`.
const FIRST_RETRY: Duration = Duration::from_millis(500);
/// An idle shipper looks at the outbox (and its connection) this often anyway.
const IDLE_LOOK: Duration = Duration::from_secs(5);
/// The most the last attempt at shutdown may delay the exit (rows left wait for the next
/// start).
const LAST_ATTEMPT: Duration = Duration::from_secs(5);

/// Waits between attempts: doubling from `first` up to `max`, back to `first` after a
/// success.
#[derive(Debug, Clone)]
pub struct Backoff {
    first: Duration,
    max: Duration,
    next: Duration,
}

impl Backoff {
    /// Starts at `first`.
    pub fn new(first: Duration, max: Duration) -> Self {
        let first = first.min(max);
        Self {
            first,
            max,
            next: first,
        }
    }

    /// The wait after one more failure.
    pub fn failed(&mut self) -> Duration {
        let wait = self.next;
        self.next = (self.next * 2).min(self.max);
        wait
    }

    /// A success: the next failure waits `first` again.
    pub fn succeeded(&mut self) {
        self.next = self.first;
    }
}

/// The shipper's metrics.
#[derive(Clone)]
pub struct ShipperMetrics {
    /// Rows waiting in the outbox.
    pub pending: IntGauge,
    /// Rows PostgreSQL acknowledged.
    pub shipped: IntCounter,
    /// Attempts that failed (PostgreSQL unreachable, refused, too slow).
    pub failures: IntCounter,
    /// 1 while connected to PostgreSQL.
    pub connected: IntGauge,
}

impl ShipperMetrics {
    /// Creates and registers them (`sas_shared_store_*`).
    pub fn register(registry: &Registry) -> prometheus::Result<Self> {
        let metrics = Self {
            pending: IntGauge::new(
                "shared_store_outbox",
                "Call records and audit entries waiting for the shared store",
            )?,
            shipped: IntCounter::new(
                "shared_store_shipped_total",
                "Rows the shared store acknowledged",
            )?,
            failures: IntCounter::new(
                "shared_store_failures_total",
                "Shipping attempts that failed (PostgreSQL unreachable, refused or slow)",
            )?,
            connected: IntGauge::new(
                "shared_store_connected",
                "1 while connected to the shared store",
            )?,
        };
        registry.register(Box::new(metrics.pending.clone()))?;
        registry.register(Box::new(metrics.shipped.clone()))?;
        registry.register(Box::new(metrics.failures.clone()))?;
        registry.register(Box::new(metrics.connected.clone()))?;
        Ok(metrics)
    }
}

/// Sends the outbox of `store` to the shared store as `node`.
pub struct Shipper {
    store: Store,
    config: SharedStoreConfig,
    node: String,
    metrics: ShipperMetrics,
    errors: LogThrottle,
    writer: Option<Writer>,
    /// Failures since the last success (said when it comes back).
    failing: u64,
}

impl Shipper {
    /// A shipper; errors are logged at most once per `log_every`.
    pub fn new(
        store: Store,
        config: SharedStoreConfig,
        node: String,
        metrics: ShipperMetrics,
        log_every: Duration,
    ) -> Self {
        metrics.pending.set(store.outbox_pending() as i64);
        Self {
            store,
            config,
            node,
            metrics,
            errors: LogThrottle::new(log_every),
            writer: None,
            failing: 0,
        }
    }

    /// Ships until `stop`, then makes a last attempt (at most `timeout_s`, 5 s).
    pub async fn run(mut self, stop: CancellationToken) {
        let retry_max = Duration::from_secs(self.config.retry_max_s.into());
        let mut backoff = Backoff::new(FIRST_RETRY, retry_max);
        loop {
            let wait = match self.ship_all().await {
                Ok(()) => {
                    if self.failing > 0 {
                        tracing::info!(failures = self.failing, "shared store reachable again");
                        self.failing = 0;
                    }
                    backoff.succeeded();
                    IDLE_LOOK
                }
                Err(e) => {
                    self.failed(&e);
                    backoff.failed()
                }
            };
            if !self.wait(wait, &stop).await {
                break;
            }
        }
        if self.store.outbox_pending() > 0 {
            let limit = self.config.timeout().min(LAST_ATTEMPT);
            let last = tokio::time::timeout(limit, self.ship_all()).await;
            let left = self.store.outbox_pending();
            match last {
                Ok(Ok(())) => tracing::info!("shared store: outbox shipped before stopping"),
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, left, "shared store: rows left in the outbox for the next start")
                }
                Err(_) => tracing::warn!(
                    left,
                    "shared store: rows left in the outbox for the next start"
                ),
            }
        }
    }

    /// Waits `wait`, or less after a success when a row is written; false on `stop`.
    /// Writes during a back-off only update the gauge.
    async fn wait(&self, wait: Duration, stop: &CancellationToken) -> bool {
        let until = tokio::time::Instant::now() + wait;
        loop {
            tokio::select! {
                _ = stop.cancelled() => return false,
                _ = tokio::time::sleep_until(until) => return true,
                _ = self.store.outbox_added() => {
                    self.metrics.pending.set(self.store.outbox_pending() as i64);
                    if self.failing == 0 {
                        return true;
                    }
                }
            }
        }
    }

    /// Connects if not connected (at start too, so the schema is there and the gauge
    /// says the truth before any call), then ships batches until the outbox is empty.
    async fn ship_all(&mut self) -> Result<(), SharedError> {
        loop {
            let mut writer = match self.writer.take().filter(|w| !w.is_closed()) {
                Some(writer) => writer,
                None => {
                    self.metrics.connected.set(0);
                    let writer = Writer::connect(&self.config, &self.node).await?;
                    self.metrics.connected.set(1);
                    tracing::info!(node = %self.node, "shared store connected");
                    writer
                }
            };
            let (store, limit) = (self.store.clone(), self.config.batch as usize);
            let rows = tokio::task::spawn_blocking(move || store.outbox_batch(limit)).await??;
            if rows.is_empty() {
                self.writer = Some(writer);
                return Ok(());
            }
            if let Err(e) = writer.write(&rows).await {
                // The connection may be broken: a new one next time.
                self.metrics.connected.set(0);
                return Err(e);
            }
            self.writer = Some(writer);
            let keys: Vec<u64> = rows.iter().map(|(key, _)| *key).collect();
            let store = self.store.clone();
            tokio::task::spawn_blocking(move || store.outbox_ack(&keys)).await??;
            self.metrics.shipped.inc_by(rows.len() as u64);
            self.metrics.pending.set(self.store.outbox_pending() as i64);
        }
    }

    fn failed(&mut self, e: &SharedError) {
        self.failing += 1;
        self.metrics.failures.inc();
        self.metrics.pending.set(self.store.outbox_pending() as i64);
        if let Some(unlogged) = self.errors.hit(Instant::now()) {
            tracing::error!(
                error = %e,
                outbox = self.store.outbox_pending(),
                unlogged,
                "shared store write failed: records wait in the outbox"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wait_doubles_up_to_the_maximum_and_resets_after_a_success() {
        let ms = Duration::from_millis;
        let mut b = Backoff::new(ms(500), ms(3_000));
        let waits: Vec<_> = (0..5).map(|_| b.failed()).collect();
        assert_eq!(waits, [ms(500), ms(1_000), ms(2_000), ms(3_000), ms(3_000)]);
        b.succeeded();
        assert_eq!(b.failed(), ms(500));
        // A maximum below the first wait bounds it too.
        let mut short = Backoff::new(ms(500), ms(200));
        assert_eq!((short.failed(), short.failed()), (ms(200), ms(200)));
    }
}
