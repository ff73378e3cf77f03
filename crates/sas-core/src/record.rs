//! The call record: one per call, with its offers and event timeline.

use crate::acd::Urgency;
use crate::media::dtmf::DigitEvent;
use crate::media::recording::RecordingInfo;
use crate::media::rtcp::LegQuality;
use crate::pii::CallerNumber;
use crate::time::EpochMillis;
use serde::{Deserialize, Serialize};

mod waits;
pub use waits::{EscalationTarget, QueueWait, WaitEnd, escalations};

/// How a call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// A seat answered.
    Answered,
    /// The caller hung up while waiting, after the misdial threshold.
    Abandoned,
    /// The caller hung up while waiting, before the misdial threshold.
    Misdial,
    /// The router could not serve the call (unknown number, media or SIP failure).
    Failed,
    /// The dial plan ended it (closed service: message, then hang-up).
    Closed,
    /// Forwarded through the trunk (backup centre, 3114) and answered there.
    Forwarded,
    /// Refused by a full queue (`max_waiting`) whose dial plan step has no overflow: the
    /// caller got 486 Busy Here (or a BYE if already answered).
    QueueFull,
    /// The caller's leg went silent (no RTP, no RTCP) and its dialog stopped answering:
    /// the caller vanished without BYE. The router hung up.
    CallerLost,
    /// The router stopped (crash, `kill -9`, power loss) while the call was in progress:
    /// the record was rebuilt at the next start from the call's journal (see
    /// the app's `store::journal`).
    Interrupted,
}

impl Outcome {
    /// Label for metrics and listings.
    pub fn label(self) -> &'static str {
        match self {
            Outcome::Answered => "answered",
            Outcome::Abandoned => "abandoned",
            Outcome::Misdial => "misdial",
            Outcome::Failed => "failed",
            Outcome::Closed => "closed",
            Outcome::Forwarded => "forwarded",
            Outcome::QueueFull => "queue_full",
            Outcome::CallerLost => "caller_lost",
            Outcome::Interrupted => "interrupted",
        }
    }

    /// All outcomes.
    pub const ALL: [Outcome; 9] = [
        Outcome::Answered,
        Outcome::Abandoned,
        Outcome::Misdial,
        Outcome::Failed,
        Outcome::Closed,
        Outcome::Forwarded,
        Outcome::QueueFull,
        Outcome::CallerLost,
        Outcome::Interrupted,
    ];
}

/// An enum stored as strings: named variants for the strings this version writes, and
/// `Other` keeping any other string as written, so stored data always reads back unchanged.
macro_rules! stored_strings {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident = $text:literal,)* }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vdoc])* $variant,)*
            /// Any other string, as written.
            Other(String),
        }

        impl $name {
            /// Every named variant and its stored string.
            pub const NAMED: &'static [($name, &'static str)] = &[$(($name::$variant, $text),)*];

            /// The stored string.
            pub fn as_str(&self) -> &str {
                match self {
                    $($name::$variant => $text,)*
                    $name::Other(text) => text,
                }
            }
        }

        impl From<&str> for $name {
            fn from(text: &str) -> Self {
                match text {
                    $($text => $name::$variant,)*
                    other => $name::Other(other.to_string()),
                }
            }
        }

        impl From<String> for $name {
            fn from(text: String) -> Self {
                $name::from(text.as_str())
            }
        }

        impl std::ops::Deref for $name {
            type Target = str;
            fn deref(&self) -> &str {
                self.as_str()
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.as_str() == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.as_str() == *other
            }
        }

        impl Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                String::deserialize(deserializer).map($name::from)
            }
        }
    };
}

stored_strings!(
    /// Who or what ended a call, stored as today's strings (`caller_bye`, `forward_failed`…).
    /// A failure's detail (`caller_sdp: …`, `dial_plan_entry_missing: …`) is kept as
    /// written ([`EndReason::Other`]).
    EndReason {
    /// The caller hung up (after the router or a seat answered it).
    CallerBye = "caller_bye",
    /// The caller hung up before anyone answered it.
    CallerCancel = "caller_cancel",
    /// The caller vanished (silent, its dialog dead).
    CallerLost = "caller_lost",
    /// The seat hung up.
    SeatBye = "seat_bye",
    /// The seat's console hung up (CTI).
    SeatHangup = "seat_hangup",
    /// A supervisor reset the seat, or its phone was lost.
    SeatReset = "seat_reset",
    /// The far end of a forward through the trunk hung up.
    ExternalBye = "external_bye",
    /// An attended transfer replaced this (consultation) call.
    Replaced = "replaced",
    /// The queue was full and the plan had no overflow.
    QueueFull = "queue_full",
    /// A forward through the trunk failed and nothing else was left.
    ForwardFailed = "forward_failed",
    /// The dial plan hung up (closed service, after its message).
    DialPlanHangup = "dial_plan_hangup",
    /// The router stopped (crash, `kill -9`) while the call was live: closed at restart.
    RouterStopped = "router_stopped",
    /// The router shut down with the call still live (drain time over).
    RouterShutdown = "router_shutdown",
    /// Refused at admission: the router is draining (SIGTERM).
    ShuttingDown = "shutting_down",
    /// Refused at admission: no dial plan entry for the number.
    UnknownNumber = "unknown_number",
    /// Refused at admission: the offer had no codec we relay.
    NoUsableSdp = "no_usable_sdp",
    /// Refused at admission: no RTP port left.
    NoMediaPort = "no_media_port",
    /// Refused at admission: the SIP dialog could not be set up.
    DialogError = "dialog_error",
    }
);

stored_strings!(
    /// What a line of a call's timeline or of a seat's history says, stored as today's
    /// strings (`ENTERQUEUE`, `CONNECT`, `PAUSE`…).
    EventKind {
    /// The call arrived (trunk INVITE).
    Arrived = "ARRIVED",
    /// The call entered a queue (`queue` names it).
    EnterQueue = "ENTERQUEUE",
    /// A full queue refused the call.
    QueueRefused = "QUEUE_REFUSED",
    /// The call was offered to a seat.
    Offer = "OFFER",
    /// A P0 caller lost the seat accompanying it before the target answered.
    P0Unaccompanied = "P0_UNACCOMPANIED",
    /// The seat's phone rings.
    Ringing = "RINGING",
    /// The seat let the offer ring out.
    RingNoAnswer = "RINGNOANSWER",
    /// The seat refused the offer, or admission refused the call.
    Rejected = "REJECTED",
    /// The seat could not be reached.
    Unreachable = "UNREACHABLE",
    /// The router answered the caller (greeting, hold audio).
    Answer = "ANSWER",
    /// A seat answered: bridged.
    Connect = "CONNECT",
    /// The caller hung up while waiting.
    Abandon = "ABANDON",
    /// The call ended (detail: the end reason).
    End = "END",
    /// The router could not go on with the call.
    Failed = "FAILED",
    /// Forwarded through the trunk.
    Forward = "FORWARD",
    /// A forward through the trunk failed.
    ForwardFailed = "FORWARD_FAILED",
    /// No seat answered within the queue's limit.
    Overflow = "OVERFLOW",
    /// A seat transferred the call.
    Transfer = "TRANSFER",
    /// An accompanied transfer's target joined (three-way).
    Accompanied = "ACCOMPANIED",
    /// A seat left the call.
    Left = "LEFT",
    /// The caller was put on hold.
    Hold = "HOLD",
    /// The caller was taken back from hold.
    Resume = "RESUME",
    /// The caller pressed a key.
    Dtmf = "DTMF",
    /// A seat wrote the call file.
    Qualify = "QUALIFY",
    /// The caller vanished (silent, its dialog dead).
    CallerLost = "CALLER_LOST",
    /// The seat's phone was lost (silent, or its leg failed).
    SeatLost = "SEAT_LOST",
    /// A supervisor reset the seat.
    SeatReset = "SEAT_RESET",
    /// A supervisor listens, whispers or barges in (detail: the mode), or stopped.
    Monitor = "MONITOR",
    /// A supervisor took the call over from the seat (detail: the seat replaced).
    Takeover = "TAKEOVER",
    /// An attended transfer replaced this call.
    Replaced = "REPLACED",
    /// The recording could not be written.
    RecordingFailed = "RECORDING_FAILED",
    /// The router stopped with the call live (closed at restart).
    RouterStopped = "ROUTER_STOPPED",
    /// Seat log: the seat changed state (`from`, `to`).
    State = "STATE",
    /// Seat log: the console logged in.
    Login = "LOGIN",
    /// Seat log: the console logged out.
    Logout = "LOGOUT",
    /// Seat log: paused (detail: the reason).
    Pause = "PAUSE",
    /// Seat log: back in distribution.
    Unpause = "UNPAUSE",
    /// Seat log: the ACD paused the seat after a missed offer.
    Autopause = "AUTOPAUSE",
    /// Seat log: a supervisor reset the seat (detail: who).
    Reset = "RESET",
    /// Seat log: calls go to the browser or the phone.
    Audio = "AUDIO",
    /// Seat log: the seat's call ended.
    CallEnd = "CALL_END",
    }
);

/// What became of one offer to a seat.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OfferResult {
    /// Still ringing (only seen while the call is live).
    Ringing,
    /// The seat answered.
    Answered,
    /// The seat let it ring out.
    NoAnswer,
    /// The seat refused (4xx/5xx/6xx).
    Rejected,
    /// The seat could not be reached.
    Unreachable,
    /// Withdrawn because the caller hung up.
    Withdrawn,
}

/// One offer of the call to a seat.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OfferRecord {
    /// The seat offered.
    pub seat: String,
    /// When the seat was rung.
    pub at: EpochMillis,
    /// When the offer ended.
    pub ended_at: Option<EpochMillis>,
    /// How it ended.
    pub result: OfferResult,
    /// SIP status of a refusal.
    pub status: Option<u16>,
}

/// A moment in the call's life, queue-log style.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallEvent {
    /// When.
    pub at: EpochMillis,
    /// What (`ARRIVED`, `ENTERQUEUE`, `OFFER`, `RINGNOANSWER`, `CONNECT`, `ABANDON`…).
    pub kind: EventKind,
    /// The seat concerned, if any.
    pub seat: Option<String>,
    /// Free detail (SIP status, who hung up).
    pub detail: Option<String>,
    /// The queue entered, for `ENTERQUEUE` (absent in records written before: read from
    /// the detail then).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue: Option<String>,
}

/// What the regulation decided for the caller (the SAS/SAMU decision list).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    /// Conseil médical: advice, no further step.
    ConseilMedical,
    /// Téléconsultation.
    Teleconsultation,
    /// Rendez-vous de soins non programmés within 48 h.
    RdvSnp48h,
    /// Orientation to an emergency department.
    OrientationUrgences,
    /// SMUR (mobile emergency unit) sent.
    Smur,
    /// Transport sanitaire (ambulance).
    TransportSanitaire,
    /// Visite à domicile.
    VisiteDomicile,
    /// Maison médicale de garde.
    MaisonMedicaleGarde,
    /// Handed to the national suicide prevention line.
    #[serde(rename = "3114")]
    Ligne3114,
}

/// Qualification data a seat writes on a call (every field optional: a seat fills in
/// what it knows; later writes complete or correct earlier ones).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Qualification {
    /// Hub Santé priority (`P0`…`P3`, `NR`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<Urgency>,
    /// Motif de recours.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commune: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub postcode: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decision: Option<Decision>,
    /// Free note.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// One write to the call file: who, when, what.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEntry {
    pub at: EpochMillis,
    /// The seat that wrote it.
    pub seat: String,
    #[serde(flatten)]
    pub data: Qualification,
}

/// One seat's part in a call: who handled it, from when to when, how it left them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Handler {
    pub seat: String,
    pub role: String,
    pub from: EpochMillis,
    pub until: Option<EpochMillis>,
    /// `transfer`, `accompanied`, `hangup`, `caller_bye`…
    pub left: Option<String>,
}

/// Packet and byte counts of one leg, as seen by the router.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LegCounters {
    /// Packets received from this leg.
    pub rx_packets: u64,
    /// Bytes received from this leg.
    pub rx_bytes: u64,
    /// Packets sent to this leg.
    pub tx_packets: u64,
    /// Bytes sent to this leg.
    pub tx_bytes: u64,
}

/// RTP figures of a bridged call.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RtpCounters {
    /// Trunk (caller) leg.
    pub caller: LegCounters,
    /// Seat leg.
    pub seat: LegCounters,
}

/// Loss, jitter and round trip of both legs (from our RTP statistics and the peers' RTCP).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct CallQuality {
    /// Trunk (caller) leg.
    pub caller: LegQuality,
    /// Seat leg.
    pub seat: LegQuality,
    /// The second plateau leg (the seat that joined an accompanied transfer, and the
    /// seats after it), when it carried audio.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub second_seat: Option<LegQuality>,
}

/// Everything kept about one call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallRecord {
    /// Router call id, time-sortable (`20261123T071502.123Z-0001`).
    pub id: String,
    /// SIP Call-ID of the trunk leg.
    pub sip_call_id: String,
    /// Entry line (`samu`, `sas`).
    pub line: String,
    /// Number dialled, normalised.
    pub called: String,
    /// Caller number (masked wherever displayed).
    pub caller: CallerNumber,
    /// INVITE received.
    pub arrived_at: EpochMillis,
    /// Entered the queue.
    pub queued_at: Option<EpochMillis>,
    /// The queue the call last waited in (dial plan name).
    #[serde(default)]
    pub queue: Option<String>,
    /// The router answered the caller (greeting; recording starts), if before a seat did.
    #[serde(default)]
    pub caller_answered_at: Option<EpochMillis>,
    /// A seat answered.
    pub answered_at: Option<EpochMillis>,
    /// Ended.
    pub ended_at: Option<EpochMillis>,
    /// The seat that answered the caller (the first; the seats after it, transfers and
    /// requeues, are in `handlers`).
    pub seat: Option<String>,
    /// Every offer to a seat.
    pub offers: Vec<OfferRecord>,
    /// How the call ended (`None` while live).
    pub outcome: Option<Outcome>,
    /// Who or what ended it (`caller_bye`, `seat_bye`, `caller_cancel`, …).
    pub end_reason: Option<EndReason>,
    /// Time waiting before an answer or abandon, ms.
    pub wait_ms: Option<u64>,
    /// Time bridged, ms.
    pub talk_ms: Option<u64>,
    /// RTP counters (bridged calls).
    pub rtp: Option<RtpCounters>,
    /// Media quality (answered calls).
    #[serde(default)]
    pub quality: Option<CallQuality>,
    /// Version of the dial plans the call followed.
    #[serde(default)]
    pub plan_version: Option<String>,
    /// The dial plan steps the call went through, a line per decision.
    #[serde(default)]
    pub route: Vec<String>,
    /// Tags set by the dial plan (`regulation`, `motif`…).
    #[serde(default)]
    pub tags: std::collections::BTreeMap<String, String>,
    /// Keys the caller pressed, in order.
    #[serde(default)]
    pub dtmf: Vec<DigitEvent>,
    /// The call's recording (absent in records written before recordings existed).
    #[serde(default)]
    pub recording: Option<RecordingInfo>,
    /// Hub Santé priority the call was last given (transfer or call file); absent: not rated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub urgency: Option<Urgency>,
    /// Every seat that handled the call, in order (ARM, then regulators).
    #[serde(default)]
    pub handlers: Vec<Handler>,
    /// Qualification written by the seats, oldest first.
    #[serde(default)]
    pub file: Vec<FileEntry>,
    /// Timeline.
    pub events: Vec<CallEvent>,
}

impl CallRecord {
    /// A record for a call that just arrived.
    pub fn new(
        id: String,
        sip_call_id: String,
        line: String,
        called: String,
        caller: CallerNumber,
        arrived_at: EpochMillis,
    ) -> Self {
        let mut record = Self {
            id,
            sip_call_id,
            line,
            called,
            caller,
            arrived_at,
            queued_at: None,
            queue: None,
            caller_answered_at: None,
            answered_at: None,
            ended_at: None,
            seat: None,
            offers: Vec::new(),
            outcome: None,
            end_reason: None,
            wait_ms: None,
            talk_ms: None,
            rtp: None,
            quality: None,
            plan_version: None,
            route: Vec::new(),
            tags: Default::default(),
            dtmf: Vec::new(),
            recording: None,
            urgency: None,
            handlers: Vec::new(),
            file: Vec::new(),
            events: Vec::new(),
        };
        record.event(arrived_at, EventKind::Arrived, None, None);
        record
    }

    /// Writes an entry in the call file, with its line on the timeline.
    pub fn add_file(&mut self, entry: FileEntry) {
        let detail = serde_json::to_string(&entry.data).unwrap_or_default();
        self.event(
            entry.at,
            EventKind::Qualify,
            Some(&entry.seat),
            Some(detail),
        );
        self.file.push(entry);
    }

    /// Says on the timeline, at the call's end, that its recording is not complete (`why`).
    pub fn recording_failed(&mut self, why: &str) {
        let at = self.ended_at.unwrap_or(self.arrived_at);
        self.event(at, EventKind::RecordingFailed, None, Some(why.into()));
    }

    /// Appends a timeline event.
    pub fn event(
        &mut self,
        at: EpochMillis,
        kind: EventKind,
        seat: Option<&str>,
        detail: Option<String>,
    ) {
        self.events.push(CallEvent {
            at,
            kind,
            seat: seat.map(str::to_string),
            detail,
            queue: None,
        });
    }

    /// Appends an `ENTERQUEUE` line: the call waits in `queue` from `at`.
    pub fn enter_queue(&mut self, at: EpochMillis, queue: &str, detail: String) {
        self.event(at, EventKind::EnterQueue, None, Some(detail));
        if let Some(e) = self.events.last_mut() {
            e.queue = Some(queue.to_string());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_without_a_recording_field_still_load() {
        let mut old = serde_json::to_value(CallRecord::new(
            "20261123T071502.123Z-0001".into(),
            "x".into(),
            "samu".into(),
            "15".into(),
            CallerNumber::new("0612345678"),
            1,
        ))
        .unwrap();
        old.as_object_mut().unwrap().remove("recording");
        let record: CallRecord = serde_json::from_value(old).unwrap();
        assert_eq!(record.recording, None);
        assert_eq!(record.id, "20261123T071502.123Z-0001");
    }

    #[test]
    fn end_reasons_and_event_kinds_are_stored_as_their_strings_and_unknown_ones_kept() {
        for (reason, text) in EndReason::NAMED {
            let json = serde_json::to_string(reason).unwrap();
            assert_eq!(json, format!("\"{text}\""));
            assert_eq!(&serde_json::from_str::<EndReason>(&json).unwrap(), reason);
        }
        for (kind, text) in EventKind::NAMED {
            let json = serde_json::to_string(kind).unwrap();
            assert_eq!(json, format!("\"{text}\""));
            assert_eq!(&serde_json::from_str::<EventKind>(&json).unwrap(), kind);
        }
        let detail: EndReason = serde_json::from_str("\"caller_sdp: no audio\"").unwrap();
        assert_eq!(detail, EndReason::Other("caller_sdp: no audio".into()));
        assert_eq!(&*detail, "caller_sdp: no audio");
    }

    /// Records written before ids, parties, event kinds and end reasons were typed (JSON
    /// as the store keeps it, from the call simulations and a hand-filled interrupted call
    /// with a recording and a call file): they still read, and write back the same JSON,
    /// so the store, the CLI and the HTTP API keep today's strings.
    #[test]
    fn records_stored_before_typed_ids_read_and_write_back_unchanged() {
        let stored: Vec<serde_json::Value> = serde_json::from_str(include_str!(
            "record/fixtures/records_before_typed_ids.json"
        ))
        .unwrap();
        assert!(stored.len() >= 10);
        let mut waits = String::new();
        for value in stored {
            let record: CallRecord =
                serde_json::from_value(value.clone()).unwrap_or_else(|e| panic!("{e}: {value}"));
            assert_eq!(serde_json::to_value(&record).unwrap(), value);
            // Every reason today's code writes has its variant.
            assert!(
                !matches!(record.end_reason, Some(EndReason::Other(_))),
                "{:?}",
                record.end_reason
            );
            for e in &record.events {
                assert!(!matches!(e.kind, EventKind::Other(_)), "{:?}", e.kind);
            }
            // The waits are read from the timeline; every call that queued has one.
            let refused = [Some(Outcome::Failed), Some(Outcome::QueueFull)];
            if record.queued_at.is_some() && !refused.contains(&record.outcome) {
                assert!(!record.queue_waits().is_empty(), "{}", record.id);
            }
            for w in record.queue_waits() {
                let end = w.end.label();
                waits += &format!("{} {} {} {end}\n", record.id, w.queue, w.wait_ms);
            }
        }
        // The per-queue waits today's code read from these timelines.
        assert_eq!(
            waits,
            include_str!("record/fixtures/waits_before_typed_ids.txt")
        );
    }
}
