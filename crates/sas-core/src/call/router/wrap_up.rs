//! Wrap-up and the call file, decided by the Router: which call a seat's console writes
//! the file of (its current call, else the last one it talked on until it is offered its
//! next call), and what the console shows of that last call once it is over. The driver
//! stores an entry for a finished call and answers the console.

use super::{Router, SeatRequestError};
use crate::acd::SeatState;
use crate::call::{CallOutput, Party};
use crate::record::{CallRecord, FileEntry, Qualification};
use crate::time::{EpochMillis, Now};

/// The last call a seat talked on, and what is kept of it once it is over.
#[derive(Debug, Clone)]
pub(super) struct LastCall {
    call: String,
    ended: Option<WrapUpCall>,
}

/// The call of a seat's wrap-up, as its console shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct WrapUpCall {
    /// The call.
    pub id: String,
    /// Its line.
    pub line: String,
    /// The number called.
    pub called: String,
    /// When it ended (`None`: still in progress, with another seat).
    pub ended_at: Option<EpochMillis>,
    /// Its file so far.
    pub file: Vec<FileEntry>,
}

/// Where a console's call-file entry went.
#[derive(Debug, Clone, PartialEq)]
pub enum Qualified {
    /// Into a live call's record.
    Live {
        /// The call.
        call: String,
    },
    /// The call is over: the driver appends `entry` to its stored record.
    Stored {
        /// The call.
        call: String,
        /// The entry.
        entry: FileEntry,
    },
}

impl Router {
    /// Follows which call each seat talked on last, from the switchboard's decisions.
    pub(super) fn follow_last_calls(&mut self, out: &CallOutput) {
        match out {
            // Offered a call: the wrap-up of the previous one ends.
            CallOutput::RingSeat { call, seat }
                if self
                    .last_calls
                    .get(seat.as_str())
                    .is_some_and(|l| l.call != call.as_str()) =>
            {
                self.last_calls.remove(seat.as_str());
            }
            CallOutput::Bridge {
                call,
                seat: Party::Seat(seat),
            } => self.talking_on(seat, call),
            CallOutput::Conference { call } => {
                let seats: Vec<String> = self.board.record(call).map_or(vec![], |r| {
                    (r.handlers.iter())
                        .filter(|h| h.until.is_none() && h.seat != Party::EXTERNAL_NAME)
                        .map(|h| h.seat.clone())
                        .collect()
                });
                seats.iter().for_each(|seat| self.talking_on(seat, call));
            }
            CallOutput::Finished(record) => self.call_over(record),
            _ => {}
        }
    }

    fn talking_on(&mut self, seat: &str, call: &str) {
        let last = LastCall {
            call: call.into(),
            ended: None,
        };
        self.last_calls.insert(seat.into(), last);
    }

    /// A call ended: the seats still in its wrap-up keep what they need of its record.
    fn call_over(&mut self, record: &CallRecord) {
        for last in self.last_calls.values_mut() {
            if last.call == record.id {
                last.ended = Some(WrapUpCall {
                    id: record.id.clone(),
                    line: record.line.clone(),
                    called: record.called.clone(),
                    ended_at: record.ended_at,
                    file: record.file.clone(),
                });
            }
        }
    }

    /// The call the seat is ringing for or talking on.
    pub fn current_call(&self, seat: &str) -> Option<&str> {
        match &self.board.acd().seat(seat)?.state {
            SeatState::Ringing { call, .. } | SeatState::Busy { call } => Some(call),
            _ => None,
        }
    }

    /// The call of the seat's wrap-up: its last call, when it is on none.
    pub fn wrap_up(&self, seat: &str) -> Option<WrapUpCall> {
        if self.current_call(seat).is_some() {
            return None;
        }
        let last = self.last_calls.get(seat)?;
        match (self.board.record(&last.call), &last.ended) {
            (Some(r), _) => Some(WrapUpCall {
                id: r.id.clone(),
                line: r.line.clone(),
                called: r.called.clone(),
                ended_at: None,
                file: r.file.clone(),
            }),
            (None, ended) => ended.clone(),
        }
    }

    /// The seat's console writes the call file: of its current call, else (wrap-up) of its
    /// last call. A call over keeps the entry for the console; the driver stores it.
    pub fn qualify(
        &mut self,
        now: Now,
        seat: &str,
        data: Qualification,
    ) -> Result<Qualified, SeatRequestError> {
        self.last = now;
        let live = (self.current_call(seat).map(str::to_string))
            .or_else(|| self.last_calls.get(seat).map(|l| l.call.clone()))
            .filter(|call| self.board.record(call).is_some());
        if let Some(call) = live {
            self.board.qualify(now, &call, seat, data);
            self.settle(now);
            return Ok(Qualified::Live { call });
        }
        let last = self.last_calls.get_mut(seat);
        let Some((call, ended)) = last.and_then(|l| Some((l.call.clone(), l.ended.as_mut()?)))
        else {
            return Err(SeatRequestError::NoCall);
        };
        let entry = FileEntry {
            at: now.wall,
            seat: seat.into(),
            data,
        };
        ended.file.push(entry.clone());
        Ok(Qualified::Stored { call, entry })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::call::CallInput;
    use crate::call::tests_support::{T0, answered_by, arrival, arrive, board, online, queue_for};

    fn note(reason: &str) -> Qualification {
        Qualification {
            reason: Some(reason.into()),
            ..Qualification::default()
        }
    }

    #[test]
    fn the_file_goes_to_the_live_call_then_to_the_last_one_until_the_next_offer() {
        let mut b = board(&["arm1"]);
        online(&mut b, T0, "arm1");
        arrive(&mut b, T0, "c1", "samu", 0);
        let mut r = Router::new(b, Now::at(T0));
        let t = Now::at(T0);
        r.handle_call(t.plus(1_000), answered_by("c1", "arm1"));
        let live = r.qualify(t.plus(2_000), "arm1", note("douleur"));
        assert_eq!(live, Ok(Qualified::Live { call: "c1".into() }));
        assert_eq!(r.wrap_up("arm1"), None, "on the call: no wrap-up");
        r.handle_call(t.plus(3_000), CallInput::CallerGone { call: "c1".into() });
        while r.poll_output().is_some() {}
        let shown = r.wrap_up("arm1").expect("the call of its wrap-up");
        assert_eq!((shown.id.as_str(), shown.file.len()), ("c1", 1));
        assert!(shown.ended_at.is_some());
        let stored = r.qualify(t.plus(4_000), "arm1", note("malaise"));
        assert!(
            matches!(&stored, Ok(Qualified::Stored { call, entry })
                if call == "c1" && entry.seat == "arm1" && entry.at == T0 + 4_000),
            "{stored:?}"
        );
        assert_eq!(r.wrap_up("arm1").unwrap().file.len(), 2);
        // The next offer (once the ACD's wrap-up time is over) ends the wrap-up.
        r.handle_timeout(t.plus(20_000));
        arrive_router(&mut r, t.plus(20_000), "c2");
        assert_eq!(r.wrap_up("arm1"), None);
        let none = r.qualify(t.plus(21_000), "nobody", note("x"));
        assert_eq!(none, Err(SeatRequestError::NoCall));
    }

    fn arrive_router(r: &mut Router, now: Now, call: &str) {
        r.handle_call(now, arrival(call, "samu", "15"));
        r.handle_call(now, queue_for(call, "arm", 0));
        while r.poll_output().is_some() {}
    }
}
