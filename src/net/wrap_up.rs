//! Wrap-up: a seat's call-file writes. Which call
//! is written to is the Router's decision (`call/router/wrap_up.rs`); here an entry for a
//! call already over is stored, and the console answered once it is on disk.

use super::calls::CallDriver;
use crate::call::router::Qualified;
use crate::cti::{CtiError, Reply};
use crate::store::record::{EventKind, Qualification};
use crate::time::Now;

impl CallDriver {
    /// The console writes the call file. A call over is completed in the store; the answer
    /// waits for the disk.
    pub(super) fn cti_qualify(&mut self, now: Now, seat: &str, data: Qualification, reply: Reply) {
        let detail = serde_json::to_string(&data).unwrap_or_default();
        let (call, entry) = match self.router.qualify(now, seat, data) {
            Ok(Qualified::Live { call }) => (call, None),
            Ok(Qualified::Stored { call, entry }) => (call, Some(entry)),
            Err(_) => {
                reply.send(Err(CtiError::NoCall)).ok();
                return;
            }
        };
        self.seat_log(now, seat, EventKind::Qualify, Some(&call), Some(&detail));
        let status = self.seat_status(seat);
        let Some(entry) = entry else {
            reply.send(Ok(status)).ok();
            return;
        };
        // Through the store writer: after the call's record, flushed with its batch.
        let written = self.writer.file_entry(call.clone(), entry);
        tokio::spawn(async move {
            let answer = match written.await {
                Ok(Ok(())) => Ok(status),
                Ok(Err(e)) => {
                    tracing::error!(%call, error = %e, "wrap-up call file NOT stored");
                    Err(CtiError::Storage(e))
                }
                Err(_) => Err(CtiError::Storage("store writer gone".into())),
            };
            reply.send(answer).ok();
        });
    }
}
