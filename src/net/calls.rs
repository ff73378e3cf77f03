//! The call driver: one tokio task owning the [`Router`], the SIP dialogs of every leg and
//! the media relays. It feeds the Router what happens on the wire, carries out what it
//! decides, and sleeps until its next deadline on the monotonic [`Clock`].

use crate::acd::Urgency;
use crate::call::router::{Dialled, ReofferError, Router, RouterInput, RouterOutput};
use crate::call::{CallId, CallInput, CallOutput, Party, SeatId};
use crate::cti::{CtiChannels, CtiCommand, CtiError, TransferMode};
use crate::media::dtmf::info::parse_info;
use crate::media::dtmf::{DigitEvent, DtmfError, DtmfSource};
use crate::media::prompts::PromptSet;
use crate::media::recording::{CallRecorder, Recorder, resolve};
use crate::media::relay::{Leg, MediaNotice, MediaRelay, RelayStats};
use crate::media::sdp::LegCodecs;
use crate::media::sdp::SessionDescription;
use crate::media::session::RecordSink;
use crate::media::webrtc::{WebRtcConfig, WebRtcLeg};
use crate::metrics::Metrics;
use crate::net::reload::Routing;
use crate::sip::replaces::Replaces;
use crate::store::Store;
use crate::store::record::{CallQuality, CallRecord, LegCounters, Outcome, RtpCounters};
use crate::store::recordings::Recordings;
use crate::store::writer::FinishRecording;
use crate::time::{Clock, Now};
use rsipstack::dialog::dialog::TransactionHandle;
use rsipstack::dialog::dialog::{DialogState, DialogStateSender};
use rsipstack::dialog::dialog_layer::DialogLayer;
use rsipstack::dialog::invite_dialog::InviteDialog;
use rsipstack::sip::{Header, HeadersExt, StatusCode, Uri};
use rsipstack::transport::SipAddr;
use std::collections::HashMap;
use std::sync::Arc;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

mod attended;
mod caller_watch;
mod console;
mod monitor;
mod seat_legs;
mod webrtc_phone;
pub use attended::Handover;
pub use console::ConsoleEvent;
use console::ConsoleLeg;
use seat_legs::{SeatLeg, SeatOffer, release_seat_leg};
pub use webrtc_phone::PhoneEvent;

/// Where a seat can be reached (from its most recent registration).
#[derive(Debug, Clone)]
pub struct SeatContact {
    /// Contact URI.
    pub uri: Uri,
    /// Where its REGISTER came from (NAT: we send there), or its Path's first hop.
    pub destination: SipAddr,
    /// Its registration's Path (RFC 3327): the Route set of requests to it.
    pub route: Vec<String>,
}

impl SeatContact {
    /// A phone registered over SIP over TLS (reached over that connection only).
    fn over_tls(&self) -> bool {
        self.destination.r#type == Some(rsipstack::sip::Transport::Tls)
    }

    /// A phone on a SIP WebSocket is a browser: it takes WebRTC media only.
    fn is_websocket(&self) -> bool {
        matches!(
            self.destination.r#type,
            Some(rsipstack::sip::Transport::Ws | rsipstack::sip::Transport::Wss)
        )
    }
}

/// Finds a seat's contact; implemented over the registrar.
pub trait SeatDirectory: Send + Sync {
    /// The contact to ring, if the seat is registered.
    fn contact(&self, seat: &str) -> Option<SeatContact>;
    /// The Router found the seat's registration to `contact` expired: forget it.
    fn remove_binding(&self, seat: &str, contact: &str);
}

/// An admitted trunk call, handed over by the request dispatcher.
pub struct TrunkCall {
    /// Router call id.
    pub call: String,
    /// The trunk leg's server dialog (100 and 180 already sent).
    pub dialog: InviteDialog,
    /// The caller's SDP offer, restricted to our codecs.
    pub offer: SessionDescription,
    /// The caller's codecs (from the offer).
    pub codecs: LegCodecs,
    /// The caller's SRTP keys, when its offer was taken with SRTP.
    pub srtp: Option<crate::media::sdp::SrtpKeys>,
    /// A WebSocket phone calling: the WebRTC leg answering it (attached as leg A).
    pub webrtc: Option<CallerWebRtc>,
    /// The call's media relay (started; leg A's remote and codecs set).
    pub relay: MediaRelay,
    /// The dial plan entry that answers the number.
    pub entry: String,
    /// A seat dialled an internal number: where the call starts instead of the entry's
    /// start.
    pub dialled_by: Option<SeatDial>,
    /// The dial plans and prompts in force when the call arrived (kept to its end).
    pub routing: Routing,
    /// Max-Forwards for the INVITEs to seats (the trunk's, less one).
    /// Admitted by overload control only to go to its entry's `on_overload` step.
    pub overloaded: bool,
    pub max_forwards: u32,
    /// What the switchboard needs.
    pub arrived: CallInput,
}

/// The WebRTC leg answering a WebSocket phone that calls, and its answer SDP.
pub struct CallerWebRtc {
    pub leg: Arc<WebRtcLeg>,
    pub answer: String,
}

/// A call a seat's phone placed to an internal number (2001…): the seat is the caller.
/// Its own ACD state does not change: an ARM on hold with its caller stays busy on that
/// call, and a free seat dialling stays available (the phone is busy, the seat is not
/// taken from distribution by its own outgoing call).
#[derive(Debug, Clone)]
pub struct SeatDial {
    /// The authenticated seat.
    pub seat: String,
    /// The internal number's step.
    pub step: String,
}

/// Events into the call driver.
pub enum CallEvent {
    /// A trunk call was admitted.
    Trunk(Box<TrunkCall>),
    /// An overload probe sent at this instant (`net::overload`): its time in the queue is
    /// the driver's input-queue delay.
    Probe(crate::time::Mono),
    /// A call could not be admitted: store its record.
    Rejected(Box<CallRecord>),
    /// A seat's registered contacts and their time left (ms), after a REGISTER.
    Registration {
        /// The seat.
        seat: String,
        /// Contact URIs and time left.
        contacts: Vec<(String, u64)>,
    },
    /// The outcome of an INVITE to a seat.
    SeatResult {
        /// Router call id.
        call: String,
        /// Seat.
        seat: String,
        /// SIP Call-ID of the seat leg.
        leg: String,
        /// Final status (`None`: no response or transport error).
        status: Option<u16>,
        /// Answer SDP of a 2xx.
        answer: Option<Vec<u8>>,
    },
    /// The doctor answered (or not) the re-INVITE of an attended transfer.
    Handover(Box<Handover>),
    /// The WebRTC work of a console seat finished (offer, answer) or its browser left.
    Console(Box<ConsoleEvent>),
    /// The same for a phone on a SIP WebSocket.
    Phone(Box<PhoneEvent>),
    /// The media of a call reports a key or the end of a prompt.
    Media {
        /// Router call id.
        call: String,
        /// What happened.
        notice: MediaNotice,
    },
    /// The in-dialog probe of a silent caller's leg answered (or not).
    CallerProbe {
        /// Router call id.
        call: String,
        /// The dialog answered (anything but 408/481).
        answered: bool,
    },
    /// The shared store's line switches, as read (every second).
    SharedLines(Vec<crate::shared_store::lines::SharedLine>),
    /// A line switch or restore made here is in the shared store (its `rev` set).
    SharedLineWritten(crate::shared_store::lines::SharedLine),
}

/// The relay's plateau sides: the seat talking with the caller, and the one joining in an
/// accompanied transfer.
const PLATEAU: [Leg; 2] = [Leg::B, Leg::C];

/// The live calls' legs by call id (the router's own ids: a fast hasher, see
/// `sas_core::id_map`). `by_leg`, keyed by SIP Call-IDs, keeps SipHash.
pub(super) type LegMap = sas_core::id_map::IdMap<String, Legs>;

/// Why the caller's leg could not be answered.
pub(super) enum AnswerError {
    /// The caller cancelled first: its dialog has ended, and that end, queued for the
    /// driver, ends the call.
    CallerGone,
    /// Anything else: the call fails for this reason.
    Failed(String),
}

/// The legs and the media of one call.
pub(super) struct Legs {
    trunk: InviteDialog,
    trunk_leg: String,
    offer: SessionDescription,
    /// The WebRTC leg answering a WebSocket phone that called, and our answer.
    caller_webrtc: Option<CallerWebRtc>,
    codecs: LegCodecs,
    /// The caller's SRTP keys (our answer carries ours).
    srtp: Option<crate::media::sdp::SrtpKeys>,
    pub(super) relay: MediaRelay,
    /// The prompts of the routing set the call started with (the Router names them).
    pub(super) prompts: Arc<PromptSet>,
    /// The trunk leg got our 200 OK.
    answered: bool,
    max_forwards: u32,
    /// Seat legs being offered or answered (several: ring-all, accompanied transfer).
    pub(super) seats: Vec<SeatLeg>,
    /// The same for seats answering in the browser console (WebRTC).
    pub(super) consoles: Vec<ConsoleLeg>,
    /// WebSocket phones whose WebRTC offer is being made: seat, offer id.
    phone_offers: Vec<(String, u64)>,
}

impl Legs {
    fn seat_leg(&self, sip: &str) -> Option<&SeatLeg> {
        self.seats.iter().find(|s| s.sip == sip)
    }

    /// Removes the leg of `seat` (the most recent one), if any.
    fn take_seat(&mut self, seat: &str, by_leg: &mut HashMap<String, String>) -> Option<SeatLeg> {
        let i = self.seats.iter().rposition(|s| s.seat == seat)?;
        Some(self.remove_seat(i, by_leg))
    }

    /// The relay side for a new offer: one no answered seat is using.
    fn free_media(&self) -> Leg {
        let busy = |m: Leg| {
            self.seats.iter().any(|s| s.answered && s.media == m)
                || self.consoles.iter().any(|c| c.answered && c.media == m)
        };
        PLATEAU.into_iter().find(|m| !busy(*m)).unwrap_or(Leg::B)
    }

    /// The relay side of `seat`'s leg.
    pub(super) fn media_of(&self, seat: &str) -> Option<Leg> {
        let console = self.consoles.iter().find(|c| c.seat == seat);
        self.seats
            .iter()
            .rev()
            .find(|s| s.seat == seat)
            .map(|s| s.media)
            .or(console.map(|c| c.media))
    }
}

/// What the driver needs to reach the outside.
pub struct CallDriver {
    /// The decisions.
    pub router: Router,
    /// The clocks fed to the switchboard: monotonic for deadlines, wall for records.
    pub clock: Clock,
    /// rsipstack's dialogs.
    pub dialogs: Arc<DialogLayer>,
    /// Dialog state events go here.
    pub state_sender: DialogStateSender,
    /// Registered seats.
    pub seats: Arc<dyn SeatDirectory>,
    /// Call records (read, and wrap-up entries).
    pub store: Store,
    /// Every other write: journal, seat history and standings, final records, in order and
    /// off this loop.
    pub writer: crate::store::writer::StoreWriter,
    /// Metrics.
    pub metrics: Metrics,
    /// Our Contact URI for dialogs we create.
    pub contact: Uri,
    /// Address written into SDP for the relays.
    pub sdp_ip: std::net::IpAddr,
    /// Events back into this driver (from spawned tasks).
    pub events: mpsc::UnboundedSender<CallEvent>,
    /// The trunk's address and transport for calls out (dial plan forwards).
    pub trunk_out: Option<SipAddr>,
    /// Our Contact on TLS connections (`sip.tls`), for legs sent over TLS.
    pub tls_contact: Option<Uri>,
    /// The outbound trunk's TLS connection (`[trunk] outbound_transport = "tls"`).
    pub trunk_link: crate::net::sip_tls_out::LinkState,
    /// Where call recordings go (`None`: recording disabled).
    pub recordings: Option<std::path::PathBuf>,
    /// Record writes in flight, each holding a token (awaited before the driver returns).
    pub writes: tokio_util::task::TaskTracker,
    /// Where seat and call events go for consoles and supervisors.
    pub cti: CtiChannels,
    /// Waiting calls last told to supervisors.
    pub last_waiting: Option<usize>,
    /// How the router's WebRTC legs gather their ICE candidates.
    pub webrtc: WebRtcConfig,
    /// SRTP policies of the trunk and the seats (which offers are SRTP).
    pub srtp: Arc<crate::media::srtp::SrtpPolicies>,
    /// WebRTC offers made to consoles and phones (tells one from the next).
    pub webrtc_offers: u64,
    /// A SIP seat's phone silent this long is taken for dead (0: never).
    pub seat_rtp_timeout_ms: u64,
    /// A trunk caller silent this long has its dialog probed (0: never).
    pub caller_rtp_timeout_ms: u64,
    /// What the metrics keep to update them one seat, queue or call at a time.
    pub tracking: crate::metrics::Tracking,
    /// Keeps live calls and seat pauses in the store as they change.
    pub journal: crate::store::journal::Journal,
    /// Told the calls held and each probe's return (overload control).
    pub overload: crate::net::overload::Overload,
    /// Today's figures and the board drawn every second for wall displays.
    pub wallboard: crate::net::wallboard::Wallboard,
    /// Line switches shared with the other nodes (`[shared_store]`; `None`: local only).
    pub shared_lines: Option<crate::shared_store::lines::LineSync>,
    /// Supervisors' actions done, by action.
    pub supervisor_actions: crate::net::supervise::metrics::SupervisorActions,
    /// This node's name (`[node] name`), in the line switches made here.
    pub node: String,
}

impl CallDriver {
    /// Runs until `shutdown`; then ends every live call with a record.
    pub async fn run(
        mut self,
        mut events: mpsc::UnboundedReceiver<CallEvent>,
        mut dialog_states: mpsc::UnboundedReceiver<DialogState>,
        mut cti: mpsc::UnboundedReceiver<CtiCommand>,
        shutdown: CancellationToken,
    ) {
        let mut legs = LegMap::default();
        // SIP Call-ID of any leg → router call id.
        let mut by_leg: HashMap<String, String> = HashMap::new();
        let mut watchdog = tokio::time::interval(std::time::Duration::from_secs(1));
        // Once a second: the queue gauges (calls waiting, longest wait), the wallboard and
        // the tables' sizes are samples, not per-event work (nine labelled gauges looked
        // up per event cost more than the event itself).
        let mut samples = tokio::time::interval(std::time::Duration::from_secs(1));
        samples.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            let deadline = self.router.poll_timeout();
            let sleep = async {
                match deadline {
                    Some(t) => tokio::time::sleep(self.clock.until(t)).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = sleep => self.router.handle_timeout(self.clock.now()),
                event = events.recv() => match event {
                    Some(event) => self.on_event(event, &mut legs, &mut by_leg),
                    None => break,
                },
                // Straight from rsipstack, not through a task of their own: a hop less
                // (a task wake-up, often another worker's) for each of a call's ~9 states.
                Some(state) = dialog_states.recv() => {
                    self.take_queued(&mut events, &mut legs, &mut by_leg);
                    // rsipstack keeps every dialog until told: without this, each call's
                    // dialogs stayed in memory for good (~35 kB per call, loadtest/README.md).
                    if let DialogState::Terminated(id, _) = &state {
                        self.dialogs.remove_dialog(id);
                    }
                    self.on_dialog_state(self.clock.now(), state, &mut legs, &mut by_leg);
                }
                Some(command) = cti.recv() => self.on_cti(command, &mut legs),
                _ = watchdog.tick(), if self.seat_rtp_timeout_ms > 0
                    || self.caller_rtp_timeout_ms > 0 => {
                    self.sample_media(self.clock.now(), &mut legs);
                }
                _ = samples.tick() => {
                    self.sample_queues();
                    self.draw_wallboard();
                    self.publish_tables(legs.len(), by_leg.len());
                    continue;
                }
            }
            self.execute(&mut legs, &mut by_leg);
            self.overload.driver_calls(legs.len());
        }
        // Shutting down: calls in progress end as failed, with a record.
        let live: Vec<String> = legs.keys().cloned().collect();
        for call in live {
            self.router.handle_call(
                self.clock.now(),
                CallInput::Failed {
                    call: call.into(),
                    reason: "router_shutdown".into(),
                },
            );
        }
        self.execute(&mut legs, &mut by_leg);
        self.writes.close();
        self.writes.wait().await;
    }

    /// Handles the events queued before a dialog state. A call's admission is queued
    /// before its dialog can change state (a CANCEL right behind the INVITE), but `select!`
    /// polls the two queues in random order: a dialog's end read first found no call, and
    /// the call admitted after it stayed queued for good, with no record. Only the events
    /// already queued: dialog states are never starved.
    fn take_queued(
        &mut self,
        events: &mut mpsc::UnboundedReceiver<CallEvent>,
        legs: &mut LegMap,
        by_leg: &mut HashMap<String, String>,
    ) {
        for _ in 0..events.len() {
            let Ok(event) = events.try_recv() else { break };
            self.on_event(event, legs, by_leg);
            self.execute(legs, by_leg);
        }
    }

    fn on_event(
        &mut self,
        event: CallEvent,
        legs: &mut LegMap,
        by_leg: &mut HashMap<String, String>,
    ) {
        let now = self.clock.now();
        match event {
            CallEvent::Trunk(t) => {
                let trunk_leg = t.dialog.id().call_id.clone();
                self.overload.settled(&trunk_leg);
                let caller_peer = t.offer.audio_endpoint().map(|a| (a, t.codecs));
                by_leg.insert(trunk_leg.clone(), t.call.clone());
                legs.insert(
                    t.call.clone(),
                    Legs {
                        trunk: t.dialog,
                        trunk_leg,
                        offer: t.offer,
                        caller_webrtc: t.webrtc,
                        codecs: t.codecs,
                        srtp: t.srtp,
                        relay: t.relay,
                        prompts: Arc::clone(&t.routing.prompts),
                        answered: false,
                        max_forwards: t.max_forwards,
                        seats: Vec::new(),
                        consoles: Vec::new(),
                        phone_offers: Vec::new(),
                    },
                );
                let origin = rand::random::<u32>() as u64;
                self.router.sdp_open(&t.call, origin, caller_peer);
                let admitted = RouterInput::Admitted {
                    arrived: t.arrived,
                    plans: t.routing.plans,
                    entry: t.entry,
                    dialled: t.dialled_by.map(|d| Dialled {
                        seat: d.seat,
                        step: d.step,
                    }),
                    overloaded: t.overloaded,
                };
                self.router.handle(now, admitted);
            }
            CallEvent::Media { call, notice } => self.on_media(&call, notice),
            CallEvent::SharedLines(table) => self.apply_shared_lines(now, table),
            CallEvent::SharedLineWritten(written) => self.shared_line_written(&written),
            CallEvent::CallerProbe { call, answered } => {
                self.router.handle(
                    now,
                    RouterInput::CallerProbed {
                        call: call.into(),
                        answered,
                    },
                );
            }
            CallEvent::Probe(sent) => self.overload.probe_returned(sent),
            CallEvent::Rejected(record) => self.persist(*record, None),
            CallEvent::Registration { seat, contacts } => {
                let input = RouterInput::Registration { seat, contacts };
                self.router.handle(now, input);
            }
            CallEvent::SeatResult {
                call,
                seat,
                leg,
                status,
                answer,
            } => self.on_seat_result(now, call, seat, leg, status, answer, legs, by_leg),
            CallEvent::Handover(h) => self.on_handover(*h, legs, by_leg),
            CallEvent::Console(c) => self.on_console(*c, legs),
            CallEvent::Phone(p) => self.on_phone(*p, legs, by_leg),
        }
    }

    fn on_dialog_state(
        &mut self,
        now: Now,
        state: DialogState,
        legs: &mut LegMap,
        by_leg: &mut HashMap<String, String>,
    ) {
        let (id, terminated) = match &state {
            DialogState::Early(id, _) => (id, false),
            DialogState::Terminated(id, _) => (id, true),
            DialogState::Info(id, request, handle) => {
                let call = by_leg
                    .get(&id.call_id)
                    .filter(|call| legs.get(*call).is_some_and(|l| l.trunk_leg == id.call_id));
                let status = match call.cloned() {
                    Some(call) => self.caller_info(now, &call, request),
                    // From a seat: its keys do not drive the call.
                    None => StatusCode::OK,
                };
                let handle = handle.clone();
                tokio::spawn(async move { handle.reply(status).await.ok() });
                return;
            }
            DialogState::Updated(id, request, handle) => {
                if self.phone_reoffer(&id.call_id, request.body(), handle, legs) {
                    return;
                }
                let reply = self.reoffer(now, &id.call_id, request, legs);
                let handle = handle.clone();
                tokio::spawn(async move {
                    match reply {
                        Ok(sdp) => {
                            let content_type = Header::ContentType("application/sdp".into());
                            handle
                                .respond(StatusCode::OK, Some(vec![content_type]), Some(sdp))
                                .await
                        }
                        Err(status) => handle.reply(status).await,
                    }
                    .ok()
                });
                return;
            }
            DialogState::Refer(id, request, handle) => {
                if let Err(status) = self.on_refer(now, &id.call_id, request, handle, legs, by_leg)
                {
                    let handle = handle.clone();
                    tokio::spawn(async move { handle.reply(status).await.ok() });
                }
                return;
            }
            DialogState::Options(_, _, handle) => {
                let handle = handle.clone();
                tokio::spawn(async move { handle.reply(StatusCode::OK).await.ok() });
                return;
            }
            _ => return,
        };
        let Some(call) = by_leg.get(&id.call_id).cloned() else {
            return;
        };
        let Some(l) = legs.get(&call) else { return };
        if l.trunk_leg == id.call_id {
            if terminated {
                self.router.handle_call(
                    now,
                    CallInput::CallerGone {
                        call: CallId::from(call.clone()),
                    },
                );
            }
            return;
        }
        let Some(s) = l.seat_leg(&id.call_id) else {
            return; // an earlier, finished offer
        };
        if s.monitor {
            // Its ringing is nobody's business; its BYE ends the monitor.
            if terminated && s.answered {
                let leg = id.call_id.clone();
                self.monitor_failed(&call, &leg, legs, by_leg);
            }
            return;
        }
        let seat = &s.seat;
        let input = match (terminated, s.answered) {
            (false, _) => CallInput::SeatRinging {
                call: CallId::from(call.clone()),
                seat: SeatId::from(seat.clone()),
            },
            (true, true) => match seat_legs::party_of(seat) {
                Party::External => CallInput::ExternalGone {
                    call: CallId::from(call.clone()),
                },
                Party::Seat(seat) => CallInput::SeatGone {
                    call: CallId::from(call.clone()),
                    seat,
                },
            },
            (true, false) => return, // the INVITE's own result reports this
        };
        self.router.handle_call(now, input);
    }

    /// A REFER from a seat on its call: a blind transfer to the internal number (or name)
    /// of `Refer-To`, with the urgency of an `X-Sas-Priority` header if any. Accepted, the
    /// REFER is answered 202 and NOTIFY 200 when the router releases the seat's leg.
    fn on_refer(
        &mut self,
        now: Now,
        sip_leg: &str,
        request: &rsipstack::sip::Request,
        handle: &TransactionHandle,
        legs: &mut LegMap,
        by_leg: &HashMap<String, String>,
    ) -> Result<(), StatusCode> {
        let call = by_leg
            .get(sip_leg)
            .cloned()
            .ok_or(StatusCode::CallTransactionDoesNotExist)?;
        let seat = legs
            .get(&call)
            .and_then(|l| l.seat_leg(sip_leg))
            .filter(|s| s.answered)
            .map(|s| s.seat.clone())
            .ok_or(StatusCode::CallTransactionDoesNotExist)?;
        let refer_to = request
            .header_value("Refer-To")
            .ok_or(StatusCode::BadRequest)?;
        // Attended transfer: the Replaces names the target's dialog; the URI's user is moot.
        if let Some(replaces) =
            Replaces::from_refer_to(&refer_to).map_err(|_| StatusCode::BadRequest)?
        {
            return self.refer_replaces(&call, &seat, &replaces, handle, legs, by_leg);
        }
        let target = refer_target(&refer_to).ok_or(StatusCode::BadRequest)?;
        let urgency = request
            .header_value("X-Sas-Priority")
            .and_then(|p| Urgency::from_label(p.trim()));
        if let Some(s) = legs
            .get_mut(&call)
            .and_then(|l| l.seats.iter_mut().find(|s| s.sip == sip_leg))
        {
            s.referred = Some(handle.clone());
        }
        match self.transfer(now, &call, &seat, &target, TransferMode::Blind, urgency) {
            Ok(TransferMode::Blind) => Ok(()),
            Ok(TransferMode::Accompanied) => {
                // P0: the seat stays with the caller. 202 now; NOTIFY 200 when the target
                // answers, and the phone then usually hangs up by itself (it may also stay
                // in the three-way call).
                if let Some(s) = legs
                    .get_mut(&call)
                    .and_then(|l| l.seats.iter_mut().find(|s| s.sip == sip_leg))
                    && let Some(refer) = s.referred.take()
                {
                    s.notify_on_answer = true;
                    tokio::spawn(async move { refer.reply(StatusCode::Accepted).await.ok() });
                }
                Ok(())
            }
            Err(e) => {
                tracing::info!(%call, %seat, error = %e, "REFER refused");
                if let Some(s) = legs
                    .get_mut(&call)
                    .and_then(|l| l.seats.iter_mut().find(|s| s.sip == sip_leg))
                {
                    s.referred = None;
                }
                Err(match e {
                    CtiError::UnknownTarget(_) => StatusCode::NotFound,
                    _ => StatusCode::Forbidden,
                })
            }
        }
    }

    /// A re-INVITE or UPDATE on a leg (session refresh, hold, new address): the Router
    /// answers it (`call/router/sdp.rs`); the relay follows the peer's address, codecs and
    /// direction.
    fn reoffer(
        &mut self,
        now: Now,
        call_id: &str,
        request: &rsipstack::sip::Request,
        legs: &mut LegMap,
    ) -> Result<Vec<u8>, StatusCode> {
        let (call, l) = legs
            .iter_mut()
            .find(|(_, l)| l.trunk_leg == call_id || l.seat_leg(call_id).is_some())
            .ok_or(StatusCode::CallTransactionDoesNotExist)?;
        let seat = l.seat_leg(call_id).map(|s| (s.seat.clone(), s.media));
        let leg = seat.as_ref().map_or(Leg::A, |s| s.1);
        let ours = (self.sdp_ip, l.relay.local_addr(leg).port());
        let side = (leg.idx(), seat.as_ref().map(|s| s.0.as_str()));
        // The Router answers, holds or takes back the caller; the relay follows.
        let re = (self.router)
            .sdp_reoffer(now, call, side, request.body(), ours)
            .map_err(|e| match e {
                ReofferError::Pending => StatusCode::RequestPending,
                ReofferError::Malformed => StatusCode::BadRequest,
                ReofferError::NotAcceptable => StatusCode::NotAcceptableHere,
            })?;
        if let Some(remote) = re.remote {
            l.relay.set_remote(leg, remote);
        }
        if let Some(codecs) = re.codecs {
            l.relay.set_codecs(leg, codecs);
        }
        if let Some(keys) = re.srtp {
            l.relay.set_srtp(leg, Some(keys));
        }
        l.relay.set_receiving(leg, re.receiving);
        if let Some(s) = l.seats.iter_mut().find(|s| s.sip == call_id) {
            s.talking = re.receiving && re.sending;
            s.restarted = true;
        }
        Ok(re.answer.to_string().into_bytes())
    }

    /// An INFO from the caller: a key press (`application/dtmf-relay`, `application/dtmf`)
    /// becomes a digit for the call. Returns the status to answer.
    fn caller_info(
        &mut self,
        now: Now,
        call: &str,
        request: &rsipstack::sip::Request,
    ) -> StatusCode {
        let content_type = request.header_value("Content-Type").unwrap_or_default();
        match parse_info(&content_type, request.body()) {
            Ok((digit, duration_ms)) => {
                let digit = DigitEvent {
                    digit,
                    at: now.wall,
                    duration_ms: duration_ms.unwrap_or(0),
                    source: DtmfSource::SipInfo,
                };
                self.on_media(call, MediaNotice::Digit(digit));
                StatusCode::OK
            }
            // An empty INFO is a keep-alive some trunks send.
            Err(_) if request.body().is_empty() => StatusCode::OK,
            Err(DtmfError::UnsupportedContentType) => StatusCode::UnsupportedMediaType,
            Err(_) => StatusCode::BadRequest,
        }
    }

    fn execute(&mut self, legs: &mut LegMap, by_leg: &mut HashMap<String, String>) {
        while let Some(out) = self.router.poll_output() {
            let out = match out {
                RouterOutput::Call(out) => out,
                RouterOutput::ProbeCaller { call } => {
                    self.probe_caller(String::from(call), legs);
                    continue;
                }
                RouterOutput::BindingExpired { seat, contact } => {
                    self.seats.remove_binding(&seat, &contact);
                    continue;
                }
                RouterOutput::HangUpDeadSeat { call, seat } => {
                    self.hang_up_dead_seat(&call, &seat, legs);
                    continue;
                }
                RouterOutput::RingMonitor { call, seat } => {
                    // Rung where its calls ring; the leg knows it is the monitor's.
                    self.ring_seat(String::from(call), seat, legs, by_leg);
                    continue;
                }
                RouterOutput::MonitorMedia { call, mode } => {
                    self.monitor_media(&call, mode, legs);
                    continue;
                }
                RouterOutput::HangUpMonitor { call, seat } => {
                    self.hang_up_monitor(&call, &seat, legs, by_leg);
                    continue;
                }
                RouterOutput::TakenOver { call, seat } => {
                    self.monitor_taken_over(&call, &seat, legs);
                    continue;
                }
                play @ RouterOutput::Play { .. } => {
                    self.play(play, legs);
                    continue;
                }
            };
            self.publish_output(&out);
            self.count_output(&out);
            match out {
                CallOutput::RingSeat { call, seat } => {
                    self.ring_seat(String::from(call), String::from(seat), legs, by_leg)
                }
                CallOutput::Dial { call, number } => {
                    self.dial_out(String::from(call), number, legs, by_leg)
                }
                CallOutput::CancelSeat { call, seat }
                | CallOutput::HangUpSeat { call, seat }
                | CallOutput::SeatLeft { call, seat }
                    if legs
                        .get(call.as_str())
                        .is_some_and(|l| l.consoles.iter().any(|c| c.seat == seat.name())) =>
                {
                    if let Some(l) = legs.get_mut(call.as_str())
                        && let Some(c) = l.take_console(seat.name())
                    {
                        self.release_console(&call, c, l);
                    }
                }
                // A seat that left a call going on (three-way) frees its side of the relay.
                CallOutput::CancelSeat { call, seat }
                | CallOutput::HangUpSeat { call, seat }
                | CallOutput::SeatLeft { call, seat } => {
                    let Some(l) = legs.get_mut(call.as_str()) else {
                        continue;
                    };
                    l.phone_offers.retain(|(s, _)| *s != seat.name());
                    if let Some(leg) = l.take_seat(seat.name(), by_leg) {
                        tokio::spawn(release_seat_leg(leg));
                    }
                }
                CallOutput::Bridge { call, seat } => {
                    if let Some(l) = legs.get_mut(call.as_str()) {
                        let side = l.media_of(seat.name()).unwrap_or(Leg::B);
                        match self.answer_caller(&call, l) {
                            Ok(()) => l.relay.bridge(side),
                            Err(AnswerError::CallerGone) => {}
                            Err(AnswerError::Failed(reason)) => self
                                .router
                                .handle_call(self.clock.now(), CallInput::Failed { call, reason }),
                        }
                    }
                }
                CallOutput::Conference { call } => {
                    if let Some(l) = legs.get_mut(call.as_str()) {
                        l.relay.conference();
                        for s in l.seats.iter_mut().filter(|s| s.notify_on_answer) {
                            s.notify_on_answer = false;
                            let dialog = s.dialog.clone();
                            tokio::spawn(async move {
                                dialog
                                    .notify_refer(StatusCode::OK, "terminated;reason=noresource")
                                    .await
                                    .ok()
                            });
                        }
                    }
                }
                CallOutput::Resume { call, seat } => {
                    if let Some(l) = legs.get(call.as_str())
                        && let Some(side) = l.media_of(&seat)
                    {
                        l.relay.bridge(side);
                    }
                }
                CallOutput::HangUpCaller { call } => {
                    if let Some(l) = legs.get(call.as_str()) {
                        let dialog = l.trunk.clone();
                        tokio::spawn(async move { dialog.bye().await.ok() });
                    }
                }
                CallOutput::RejectCaller { call, status } => {
                    if let Some(l) = legs.get(call.as_str()) {
                        l.trunk.reject(Some(StatusCode::from(status)), None).ok();
                    }
                }
                CallOutput::Finished(record) => {
                    let media = legs.remove(&record.id).map(|l| {
                        by_leg.remove(&l.trunk_leg);
                        for s in &l.seats {
                            by_leg.remove(&s.sip);
                        }
                        (l.relay, l.answered)
                    });
                    self.persist(*record, media);
                }
                // The Router saw to these (hold audio, requeue, overflow).
                CallOutput::Hold { .. }
                | CallOutput::Requeue { .. }
                | CallOutput::Unaccompanied { .. }
                | CallOutput::SeatChanged { .. }
                | CallOutput::SeatAutopaused { .. }
                | CallOutput::MissBurst { .. } => {}
            }
        }
        self.metrics
            .active_calls
            .set(self.router.board().active_calls() as i64);
        self.publish_queue();
        let changed = self.router.take_changed();
        (self.journal).step(
            self.clock.now().wall,
            changed,
            self.router.board(),
            &self.writer,
        );
    }

    /// Answers the trunk leg (once) with our SDP answer for the caller's codecs, and starts
    /// recording.
    pub(super) fn answer_caller(&mut self, call: &str, l: &mut Legs) -> Result<(), AnswerError> {
        if l.answered {
            return Ok(());
        }
        let answer = match &l.caller_webrtc {
            Some(CallerWebRtc { leg, answer }) => {
                let lost = PhoneEvent::CallerLost { call: call.into() };
                self.watch_webrtc(leg, CallEvent::Phone(Box::new(lost)));
                answer.clone()
            }
            None => {
                let ours = (self.sdp_ip, l.relay.local_addr(Leg::A).port());
                let answer = (self.router)
                    .sdp_answer_caller(call, &l.offer, l.codecs, ours, l.srtp)
                    .map_err(|e| AnswerError::Failed(format!("caller_sdp: {e}")))?;
                answer.to_string()
            }
        };
        let accepted = l.trunk.accept(
            Some(vec![Header::ContentType("application/sdp".into())]),
            Some(answer.into_bytes()),
        );
        // A caller who cancelled first (its 487 sent, or going: rsipstack ends the dialog
        // before) is no failure, and was never answered: its dialog's end, already queued
        // for the driver, ends the call as the caller's cancel.
        if l.trunk.state().is_terminated() {
            return Err(AnswerError::CallerGone);
        }
        accepted.map_err(|e| AnswerError::Failed(format!("answer_failed: {e}")))?;
        l.answered = true;
        if let Some(root) = &self.recordings {
            let relative = Recordings::relative_path(call, self.clock.now().wall);
            match Recorder::create(root, &relative) {
                Ok(recorder) => l.relay.record(Box::new(CallRecorder::new(recorder))),
                // The call matters more than its recording: go on, and say so loudly.
                Err(e) => {
                    tracing::error!(%call, error = %e, "call NOT recorded");
                    self.metrics
                        .recording_failures
                        .with_label_values(&["start"])
                        .inc();
                }
            }
        }
        Ok(())
    }

    /// Stores a finished call's record, once its media (if any) has ended and reported.
    /// It is counted in `sas_calls_total` once the writer confirms it is on disk. No task
    /// waits: the media's report comes on its relay thread, which hands the record to the
    /// store writer, whose confirmation counts it on the writer's thread.
    fn persist(&mut self, mut record: CallRecord, media: Option<(MediaRelay, bool)>) {
        self.wallboard.finished(self.clock.now().wall, &record);
        let outcome = record.outcome.unwrap_or(Outcome::Failed);
        self.tracking.waits.finished(&self.metrics, &record);
        tracing::info!(
            call = %record.id,
            line = %record.line,
            caller = %record.caller,
            outcome = outcome.label(),
            "call ended"
        );
        let writer = self.writer.clone();
        let counted = self.metrics.clone();
        let in_flight = self.writes.token();
        let store = move |record: CallRecord, finish: Option<FinishRecording>| {
            let (id, line) = (record.id.clone(), record.line.clone());
            let done = move |stored: Result<(), String>| {
                match stored {
                    Ok(()) => counted
                        .calls
                        .with_label_values(&[line.as_str(), outcome.label()])
                        .inc(),
                    Err(why) => tracing::error!(call = %id, error = %why, "call record NOT stored"),
                }
                drop(in_flight);
            };
            writer.record_then(record, finish, Box::new(done));
        };
        let Some((relay, answered)) = media else {
            return store(record, None);
        };
        let metrics = self.metrics.clone();
        let root = self.recordings.clone();
        relay.finish_then(Box::new(move |report| {
            if answered {
                record.rtp = Some(rtp_counters(&report.stats));
                let [caller, seat, second] = report.quality;
                let second_seat = (second.packets_received > 0).then_some(second);
                let legs = [("caller", caller), ("seat", seat)]
                    .into_iter()
                    .chain(second_seat.map(|q| ("second_seat", q)));
                for (leg, q) in legs {
                    metrics
                        .rtp_packets_lost
                        .with_label_values(&[leg])
                        .inc_by(q.packets_lost);
                    if q.packets_received > 0 {
                        metrics
                            .rtp_jitter
                            .with_label_values(&[leg])
                            .observe(q.jitter_ms / 1000.0);
                    }
                }
                record.quality = Some(CallQuality {
                    caller,
                    seat,
                    second_seat,
                });
            }
            let finish = report
                .recorder
                .map(|sink| finish_recording(sink, root, metrics));
            store(record, finish);
        }));
    }

    /// The gauges at start: every seat as it is (restored registrations and pauses
    /// included), the queues, the calls. Called before the driver runs, so `/metrics` never
    /// shows a centre without its seats.
    pub fn publish_start(&mut self) {
        let now = self.clock.now().wall;
        let acd = self.router.board().acd();
        self.tracking
            .seats
            .show_all(&self.metrics, acd.seats(), now);
        self.sample_queues();
        self.metrics
            .active_calls
            .set(self.router.board().active_calls() as i64);
    }

    /// Samples the calls in queues into their gauges.
    fn sample_queues(&mut self) {
        let now = self.clock.now().wall;
        let queued = self.router.board().queued();
        self.tracking.queues.sample(&self.metrics, queued, now);
    }

    /// What an output changes in the metrics: the one seat that changed state; the waits
    /// a seat's answer ended.
    fn count_output(&mut self, out: &CallOutput) {
        let board = self.router.board();
        match out {
            CallOutput::SeatChanged { seat, .. } => {
                if let Some(seat) = board.acd().seat(seat.as_str()) {
                    let now = self.clock.now().wall;
                    self.tracking.seats.show(&self.metrics, seat, now);
                }
            }
            CallOutput::Bridge { call, .. } | CallOutput::Conference { call } => {
                if let Some(record) = board.record(call.as_str()) {
                    let urgency = board.urgency(call.as_str()).unwrap_or(Urgency::Nr);
                    self.tracking.waits.answered(&self.metrics, record, urgency);
                }
            }
            _ => {}
        }
    }
}

/// A recording that could not be completed is an error for the record, not just the log.
/// What the store writer runs to finish a call's recording into its record: the file's
/// last writes happen there, not on an async worker.
fn finish_recording(
    sink: Box<dyn RecordSink>,
    root: Option<std::path::PathBuf>,
    metrics: Metrics,
) -> FinishRecording {
    Box::new(move |record| match sink.finish() {
        // Written to the page cache, hashed as written: the store writer syncs it with
        // the record's group commit.
        Ok(finished) => {
            let info = finished.info;
            metrics
                .recording_unplaced
                .inc_by(info.unplaced_ms as f64 / 1000.0);
            let path = root.as_deref().and_then(|r| resolve(r, &info.path).ok());
            record.recording = Some(info);
            path.zip(finished.file.map(std::fs::File::from))
        }
        Err(why) => {
            metrics
                .recording_failures
                .with_label_values(&["finish"])
                .inc();
            recording_failed(record, &why.to_string());
            None
        }
    })
}

fn recording_failed(record: &mut CallRecord, why: &str) {
    tracing::error!(call = %record.id, error = %why, "recording NOT completed");
    record.recording_failed(why);
}

fn rtp_counters(stats: &RelayStats) -> RtpCounters {
    let leg = |s: crate::media::relay::LegStats| LegCounters {
        rx_packets: s.rx_packets,
        rx_bytes: s.rx_bytes,
        tx_packets: s.tx_packets,
        tx_bytes: s.tx_bytes,
    };
    // The plateau side: the seats on B and, after an accompanied transfer, C.
    let plateau = crate::media::relay::LegStats {
        rx_packets: stats.b.rx_packets + stats.c.rx_packets,
        rx_bytes: stats.b.rx_bytes + stats.c.rx_bytes,
        tx_packets: stats.b.tx_packets + stats.c.tx_packets,
        tx_bytes: stats.b.tx_bytes + stats.c.tx_bytes,
        dropped: stats.b.dropped + stats.c.dropped,
        rx_rtcp: stats.b.rx_rtcp + stats.c.rx_rtcp,
        srtp_rejected: stats.b.srtp_rejected + stats.c.srtp_rejected,
    };
    RtpCounters {
        caller: leg(stats.a),
        seat: leg(plateau),
    }
}

/// The user part of a `Refer-To` URI (`<sip:2001@host;transport=udp?Replaces=…>`).
fn refer_target(refer_to: &str) -> Option<String> {
    let uri = refer_to.trim().trim_start_matches('<');
    let rest = uri
        .strip_prefix("sip:")
        .or_else(|| uri.strip_prefix("sips:"))
        .or_else(|| uri.strip_prefix("tel:"))?;
    let user: String = rest
        .chars()
        .take_while(|c| !matches!(c, '@' | ';' | '?' | '>'))
        .collect();
    (!user.is_empty()).then_some(user)
}
