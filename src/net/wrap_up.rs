//! Wrap-up: the file of a seat's last call stays editable after the seat left it (the caller
//! hung up, the call went on to a regulator), until the seat is offered its next call.
//! Qualifying a call once it is over is normal ARM work; the entry goes to that call's
//! record, live or stored, with who and when.

use serde_json::{Value, json};

use super::calls::CallDriver;
use crate::call::{CallOutput, Party};
use crate::cti::{CtiError, Reply};
use crate::store::record::{CallRecord, EventKind, FileEntry, Qualification};
use crate::time::{EpochMillis, Now};

/// The last call a seat talked on.
#[derive(Debug, Clone)]
pub struct LastCall {
    /// The call.
    pub call: String,
    /// What the console shows of it once it is over (live calls are read from the
    /// switchboard).
    ended: Option<Ended>,
}

/// The part of a finished call's record its wrap-up needs.
#[derive(Debug, Clone)]
struct Ended {
    line: String,
    called: String,
    ended_at: Option<EpochMillis>,
    file: Vec<FileEntry>,
}

impl CallDriver {
    /// Follows which call each seat talked on last, from the switchboard's decisions.
    pub(super) fn follow_last_calls(&mut self, out: &CallOutput) {
        match out {
            CallOutput::RingSeat { call, seat } => self.offered(seat, call),
            CallOutput::Bridge {
                call,
                seat: Party::Seat(seat),
            } => self.talking_on(seat, call),
            CallOutput::Conference { call } => {
                for seat in self.open_handlers(call) {
                    self.talking_on(&seat, call);
                }
            }
            CallOutput::Finished(record) => self.call_over(record),
            _ => {}
        }
    }

    /// `seat` now talks on `call`: its previous call's wrap-up is over.
    fn talking_on(&mut self, seat: &str, call: &str) {
        if seat != Party::EXTERNAL_NAME {
            let last = LastCall {
                call: call.into(),
                ended: None,
            };
            self.last_calls.insert(seat.into(), last);
        }
    }

    /// `seat` is offered a call: the wrap-up of the previous one ends.
    fn offered(&mut self, seat: &str, call: &str) {
        if self.last_calls.get(seat).is_some_and(|l| l.call != call) {
            self.last_calls.remove(seat);
        }
    }

    /// A call ended: the seats still in its wrap-up keep what they need of its record.
    fn call_over(&mut self, record: &CallRecord) {
        for last in self.last_calls.values_mut() {
            if last.call == record.id {
                last.ended = Some(Ended {
                    line: record.line.clone(),
                    called: record.called.clone(),
                    ended_at: record.ended_at,
                    file: record.file.clone(),
                });
            }
        }
    }

    /// The wrap-up call of the console's status: the seat's last call, when it is on none.
    pub(super) fn wrap_up_status(&self, seat: &str) -> Value {
        if self.current_call(seat).is_some() {
            return Value::Null;
        }
        let Some(last) = self.last_calls.get(seat) else {
            return Value::Null;
        };
        match (&last.ended, self.router.board().record(&last.call)) {
            (_, Some(r)) => json!({
                "id": r.id, "line": r.line, "called": r.called, "ended_at": null, "file": r.file,
            }),
            (Some(e), None) => json!({
                "id": last.call, "line": e.line, "called": e.called, "ended_at": e.ended_at,
                "file": e.file,
            }),
            (None, None) => Value::Null,
        }
    }

    /// The console writes the call file: its current call's, else (wrap-up) its last
    /// call's. A call over is completed in the store; the answer waits for the disk.
    pub(super) fn cti_qualify(&mut self, now: Now, seat: &str, data: Qualification, reply: Reply) {
        let live = self
            .current_call(seat)
            .or_else(|| self.last_calls.get(seat).map(|l| l.call.clone()))
            .filter(|call| self.router.board().record(call).is_some());
        if let Some(call) = live {
            let detail = serde_json::to_string(&data).unwrap_or_default();
            self.router.board_mut(now).qualify(now, &call, seat, data);
            self.seat_log(now, seat, EventKind::Qualify, Some(&call), Some(&detail));
            reply.send(Ok(self.seat_status(seat))).ok();
            return;
        }
        let Some(last) = self.last_calls.get_mut(seat) else {
            reply.send(Err(CtiError::NoCall)).ok();
            return;
        };
        let (call, ended) = match &mut last.ended {
            Some(ended) => (last.call.clone(), ended),
            None => {
                reply.send(Err(CtiError::NoCall)).ok();
                return;
            }
        };
        let detail = serde_json::to_string(&data).unwrap_or_default();
        let entry = FileEntry {
            at: now.wall,
            seat: seat.into(),
            data,
        };
        ended.file.push(entry.clone());
        self.seat_log(now, seat, EventKind::Qualify, Some(&call), Some(&detail));
        let status = self.seat_status(seat);
        let store = self.store.clone();
        tokio::spawn(async move {
            let id = call.clone();
            let written = tokio::task::spawn_blocking(move || store.append_file(&id, &entry)).await;
            let answer = match written {
                Ok(Ok(())) => Ok(status),
                Ok(Err(e)) => {
                    tracing::error!(%call, error = %e, "wrap-up call file NOT stored");
                    Err(CtiError::Storage(e.to_string()))
                }
                Err(e) => Err(CtiError::Storage(e.to_string())),
            };
            reply.send(answer).ok();
        });
    }
}
