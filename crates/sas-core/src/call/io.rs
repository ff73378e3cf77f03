//! What goes in and out of the [`Switchboard`](super::Switchboard): the driver's
//! [`CallInput`]s (what happened on the wire, to a seat, in the dial plan) and the
//! [`CallOutput`]s it carries out.

use super::{CallId, Party, SeatId};
use crate::acd::PauseReason;
use crate::media::dtmf::DigitEvent;
use crate::pii::CallerNumber;
use crate::record::{CallRecord, EventKind};
use crate::time::EpochMillis;

/// Something that happened to a call or a seat.
#[derive(Debug, Clone)]
pub enum CallInput {
    /// A trunk INVITE was admitted for an entry line.
    Arrived {
        /// Router call id (the driver makes it unique).
        call: CallId,
        /// SIP Call-ID of the trunk leg.
        sip_call_id: String,
        /// Line label (from the dial plan entry).
        line: String,
        /// Normalised called number.
        called: String,
        /// Caller.
        caller: CallerNumber,
    },
    /// The router answered the caller (a prompt is about to play).
    CallerAnswered {
        /// The call.
        call: CallId,
    },
    /// The dial plan queues the call.
    Enqueue {
        /// The call.
        call: CallId,
        /// Queue name (for the record).
        queue: String,
        /// Role of the seats that answer it.
        role: String,
        /// Lower is served first.
        priority: u8,
    },
    /// No seat answered within the queue's limit: the call leaves the queue and the dial
    /// plan goes on (overflow).
    Overflow {
        /// The call.
        call: CallId,
    },
    /// Something worth a line on the call's timeline.
    Note {
        /// The call.
        call: CallId,
        /// Event kind.
        kind: EventKind,
        /// Detail.
        detail: String,
    },
    /// The dial plan forwards the call through the trunk to an allowed external number.
    Forward {
        /// The call.
        call: CallId,
        /// The number dialled.
        number: String,
    },
    /// A full queue refused the call and its dial plan step has no overflow: the caller
    /// is refused busy (486, or BYE if answered), the record says `queue_full`.
    QueueFull {
        /// The call.
        call: CallId,
    },
    /// The dial plan ended the call (closed service).
    Released {
        /// The call.
        call: CallId,
        /// Why, for the record.
        reason: String,
    },
    /// The caller pressed a key (RFC 4733, SIP INFO or in-band).
    Digit {
        /// The call.
        call: CallId,
        /// The key, when and how.
        digit: DigitEvent,
    },
    /// The caller sent CANCEL (before answer) or BYE (after).
    CallerGone {
        /// The call.
        call: CallId,
    },
    /// The caller vanished without BYE: silent, and its dialog no longer answers (see
    /// [`liveness`]). The call ends `caller_lost`.
    CallerLost {
        /// The call.
        call: CallId,
        /// What was seen, for the record.
        detail: String,
    },
    /// The seat being offered the call answered 180.
    SeatRinging {
        /// The call.
        call: CallId,
        /// The seat.
        seat: SeatId,
    },
    /// The seat answered 200.
    SeatAnswered {
        /// The call.
        call: CallId,
        /// The seat.
        seat: SeatId,
    },
    /// The offer failed: a final error response, or no response / transport failure.
    SeatFailed {
        /// The call.
        call: CallId,
        /// The seat.
        seat: SeatId,
        /// The SIP status, `None` when the seat could not be reached.
        status: Option<u16>,
    },
    /// The external party of a forwarded call hung up.
    ExternalGone {
        /// The call.
        call: CallId,
    },
    /// The external number dialled for the call ([`CallOutput::Dial`]) answered.
    ExternalAnswered {
        /// The call.
        call: CallId,
    },
    /// Dialling the external number failed (`status` `None`: no answer at all).
    ExternalFailed {
        /// The call.
        call: CallId,
        /// The SIP status.
        status: Option<u16>,
    },
    /// The offer never left the router (no contact to send it to, local transport
    /// error): the call goes back in line and the seat is not blamed.
    OfferNotSent {
        /// The call.
        call: CallId,
        /// The seat.
        seat: SeatId,
    },
    /// The seat sent BYE on a bridged call.
    SeatGone {
        /// The call.
        call: CallId,
        /// The seat.
        seat: SeatId,
    },
    /// The seat's media died mid-call (its browser's WebRTC connection failed): it did not
    /// hang up, so the caller is not hung up either but waits again.
    SeatLost {
        /// The call.
        call: CallId,
        /// The seat.
        seat: SeatId,
    },
    /// The router could not go on with the call (media failure, SIP error).
    Failed {
        /// The call.
        call: CallId,
        /// Why, for the record.
        reason: String,
    },
    /// A seat registered.
    SeatOnline {
        /// The seat.
        seat: SeatId,
    },
    /// A seat's last registration expired or was removed.
    SeatOffline {
        /// The seat.
        seat: SeatId,
    },
}

/// What the driver must do.
#[derive(Debug, Clone, PartialEq)]
pub enum CallOutput {
    /// Send an INVITE for the call to the seat.
    RingSeat {
        /// The call.
        call: CallId,
        /// The seat.
        seat: SeatId,
    },
    /// Dial the external number through the trunk, on the seat leg; its outcome comes
    /// back as [`CallInput::ExternalAnswered`] or [`CallInput::ExternalFailed`].
    Dial {
        /// The call.
        call: CallId,
        /// The number.
        number: String,
    },
    /// Withdraw the offer (CANCEL the seat's INVITE).
    CancelSeat {
        /// The call.
        call: CallId,
        /// The seat, or the external number being dialled.
        seat: Party,
    },
    /// Connect the caller to the seat that answered (answering the trunk leg if not yet).
    Bridge {
        /// The call.
        call: CallId,
        /// The seat, or the external number that answered.
        seat: Party,
    },
    /// Send BYE to the caller.
    HangUpCaller {
        /// The call.
        call: CallId,
    },
    /// Send BYE to the seat.
    HangUpSeat {
        /// The call.
        call: CallId,
        /// The seat, or the external party.
        seat: Party,
    },
    /// Reject the caller's INVITE (not answered yet) with this status.
    RejectCaller {
        /// The call.
        call: CallId,
        /// SIP status.
        status: u16,
    },
    /// The call is over: persist its record.
    Finished(Box<CallRecord>),
    /// Caller, the seat that transferred and the one that answered talk together (the
    /// accompanied transfer's three-way call).
    Conference {
        /// The call.
        call: CallId,
    },
    /// The caller is waiting again (the seat left an accompanied transfer before the
    /// target answered): play the queue's hold audio.
    Hold {
        /// The call.
        call: CallId,
    },
    /// The seat talking with the caller was lost ([`CallInput::SeatLost`]): queue the call
    /// again where it last waited, with its hold audio.
    Requeue {
        /// The call.
        call: CallId,
    },
    /// The seat that put the caller on hold ([`Switchboard::hold`]) takes it back: the
    /// caller hears the seat again instead of the hold audio (a [`CallOutput::Hold`]).
    Resume {
        /// The call.
        call: CallId,
        /// The seat.
        seat: SeatId,
    },
    /// A seat left a call that goes on without it (three-way, accompanied transfer). For
    /// the consoles and the seat's history; its leg is already being hung up.
    SeatLeft {
        /// The call.
        call: CallId,
        /// The seat (or the external party of a three-way call).
        seat: Party,
    },
    /// A P0 caller lost the seat accompanying it before the target answered (the seat
    /// hung up, or its leg dropped): it waits on hold, and the supervisors must know. With
    /// `reachable` false no seat of the target queue is logged in and in distribution: the
    /// driver applies the dial plan's overflow at once instead of waiting for nobody.
    Unaccompanied {
        /// The call.
        call: CallId,
        /// The seat that left.
        seat: SeatId,
        /// Some seat of the queue could still answer.
        reachable: bool,
    },
    /// A seat changed state.
    SeatChanged {
        /// The seat.
        seat: SeatId,
        /// Old state label.
        from: &'static str,
        /// New state label.
        to: &'static str,
    },
    /// The ACD paused a seat that missed an offer (supervisors are alerted).
    SeatAutopaused {
        /// The seat.
        seat: SeatId,
        /// Why (`ring_no_answer`, `rejected`, `unreachable`).
        reason: PauseReason,
        /// When it is back by itself, if it is (wall time, for display).
        until: Option<EpochMillis>,
    },
    /// Several seats missed offers at once: none was paused for it (supervisors are
    /// alerted: overload or network trouble).
    MissBurst {
        /// The seats.
        seats: Vec<SeatId>,
    },
}
