//! Live entries of the router's per-call tables and of its tasks, published as
//! `sas_live_entries{table}`: every table keyed by call or leg goes back to its idle value
//! once calls end, so a table that keeps growing with the calls handled shows here (and in
//! `tests/it/e2e_memory.rs`) before it shows in the process's memory; the wallboard's last
//! hour (`wallboard_last_hour`) holds one sum per second, at most 3,600.
//!
//! The call driver samples its own tables and the Router's every second
//! ([`CallDriver::publish_tables`]); [`watch`] samples rsipstack's dialogs and transactions
//! and tokio's live tasks every second.

use super::calls::CallDriver;
use crate::metrics::Metrics;
use rsipstack::dialog::dialog_layer::DialogLayer;
use rsipstack::transaction::endpoint::EndpointInnerRef;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

impl CallDriver {
    /// Publishes the sizes of the driver's call tables (`calls`: router call id → legs;
    /// `legs`: SIP Call-ID → router call id) and of the Router's.
    pub(super) fn publish_tables(&self, calls: usize, legs: usize) {
        let gauge = &self.metrics.live_entries;
        gauge.with_label_values(&["driver_calls"]).set(calls as i64);
        gauge.with_label_values(&["driver_legs"]).set(legs as i64);
        let waits = self.tracking.waits.len();
        gauge.with_label_values(&["metric_waits"]).set(waits as i64);
        let slots = self.wallboard.last_hour_slots();
        gauge
            .with_label_values(&["wallboard_last_hour"])
            .set(slots as i64);
        for (table, n) in self.router.table_sizes() {
            gauge.with_label_values(&[table]).set(n as i64);
        }
    }
}

/// Samples rsipstack's tables and tokio's live tasks into `metrics` every second until
/// `shutdown`.
pub async fn watch(
    metrics: Metrics,
    endpoint: EndpointInnerRef,
    dialogs: Arc<DialogLayer>,
    shutdown: CancellationToken,
) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let gauge = &metrics.live_entries;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        let stats = endpoint.get_stats();
        let tasks = tokio::runtime::Handle::current()
            .metrics()
            .num_alive_tasks();
        for (table, n) in [
            ("sip_dialogs", dialogs.len()),
            ("sip_transactions", stats.running_transactions),
            ("sip_finished_transactions", stats.finished_transactions),
            ("sip_waiting_ack", stats.waiting_ack),
            ("tokio_tasks", tasks),
        ] {
            gauge.with_label_values(&[table]).set(n as i64);
        }
    }
}
