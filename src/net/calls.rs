//! The call driver: one tokio task owning the [`Switchboard`], the SIP dialogs of every
//! leg and the media relays. It feeds the switchboard what happens on the wire and carries
//! out what the switchboard decides.

use crate::call::{CallInput, CallOutput, EXTERNAL, Switchboard};
use crate::media::dtmf::info::parse_info;
use crate::media::dtmf::{DigitEvent, DtmfError, DtmfSource};
use crate::media::recording::{CallRecorder, Recorder};
use crate::media::relay::{Leg, MediaNotice, MediaRelay, RelayStats};
use crate::media::sdp::LegCodecs;
use crate::media::sdp::SessionDescription;
use crate::metrics::Metrics;
use crate::net::flows::{Route, Timer};
use crate::net::reload::Routing;
use crate::store::Store;
use crate::store::record::{CallQuality, CallRecord, LegCounters, Outcome, RtpCounters};
use crate::store::recordings::Recordings;
use crate::time::{EpochMillis, wall_clock_now};
use rsipstack::dialog::dialog::{DialogState, DialogStateSender};
use rsipstack::dialog::dialog_layer::DialogLayer;
use rsipstack::dialog::invitation::InviteOption;
use rsipstack::dialog::invite_dialog::InviteDialog;
use rsipstack::sip::{Header, HeadersExt, StatusCode, Uri};
use rsipstack::transport::SipAddr;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Where a seat can be reached (from its most recent registration).
#[derive(Debug, Clone)]
pub struct SeatContact {
    /// Contact URI.
    pub uri: Uri,
    /// Where its REGISTER came from (NAT: we send there).
    pub destination: SipAddr,
}

/// Finds a seat's contact; implemented over the registrar.
pub trait SeatDirectory: Send + Sync {
    /// The contact to ring, if the seat is registered.
    fn contact(&self, seat: &str) -> Option<SeatContact>;
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
    /// The call's media relay (started; leg A's remote and codecs set).
    pub relay: MediaRelay,
    /// The dial plan entry that answers the number.
    pub entry: String,
    /// The dial plans and prompts in force when the call arrived (kept to its end).
    pub routing: Routing,
    /// Max-Forwards for the INVITEs to seats (the trunk's, less one).
    pub max_forwards: u32,
    /// What the switchboard needs.
    pub arrived: CallInput,
}

/// Events into the call driver.
pub enum CallEvent {
    /// A trunk call was admitted.
    Trunk(Box<TrunkCall>),
    /// A call could not be admitted: store its record.
    Rejected(Box<CallRecord>),
    /// Something for the switchboard as is.
    Input(CallInput),
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
    /// A dialog changed state (from rsipstack's dialog state channel).
    Dialog(DialogState),
    /// The media of a call reports a key or the end of a prompt.
    Media {
        /// Router call id.
        call: String,
        /// What happened.
        notice: MediaNotice,
    },
    /// A dial plan timer fired (menu key wait, queue limit).
    Timer {
        /// Router call id.
        call: String,
        /// Which, and which arming of it.
        timer: Timer,
    },
}

/// The two legs and the media of one call.
pub(super) struct Legs {
    trunk: InviteDialog,
    trunk_leg: String,
    offer: SessionDescription,
    codecs: LegCodecs,
    pub(super) relay: MediaRelay,
    /// Where the call is in its dial plan.
    pub(super) route: Route,
    /// The trunk leg got our 200 OK.
    answered: bool,
    max_forwards: u32,
    /// The seat leg being offered or bridged: (seat, SIP Call-ID, dialog).
    seat: Option<(String, String, InviteDialog)>,
    bridged: bool,
    /// SDP session id of our side (`o=` line), and how many offers went to seats.
    origin: u64,
    seat_offers: u64,
    /// Per leg: the last SDP we sent and its version, and the peer's address and codecs.
    sent: [Option<(SessionDescription, u64)>; 2],
    peer: [Option<(SocketAddr, LegCodecs)>; 2],
}

/// What the driver needs to reach the outside.
pub struct CallDriver {
    /// The decisions.
    pub switchboard: Switchboard,
    /// rsipstack's dialogs.
    pub dialogs: Arc<DialogLayer>,
    /// Dialog state events go here.
    pub state_sender: DialogStateSender,
    /// Registered seats.
    pub seats: Arc<dyn SeatDirectory>,
    /// Call records.
    pub store: Store,
    /// Metrics.
    pub metrics: Metrics,
    /// Our Contact URI for dialogs we create.
    pub contact: Uri,
    /// Address written into SDP for the relays.
    pub sdp_ip: std::net::IpAddr,
    /// Events back into this driver (from spawned tasks).
    pub events: mpsc::UnboundedSender<CallEvent>,
    /// The trunk's address for calls out (dial plan forwards).
    pub trunk_out: Option<SocketAddr>,
    /// Where call recordings go (`None`: recording disabled).
    pub recordings: Option<std::path::PathBuf>,
    /// Record writes in flight (awaited before the driver returns).
    pub writes: Vec<tokio::task::JoinHandle<()>>,
}

impl CallDriver {
    /// Runs until `shutdown`; then ends every live call with a record.
    pub async fn run(
        mut self,
        mut events: mpsc::UnboundedReceiver<CallEvent>,
        shutdown: CancellationToken,
    ) {
        let mut legs: HashMap<String, Legs> = HashMap::new();
        // SIP Call-ID of any leg → router call id.
        let mut by_leg: HashMap<String, String> = HashMap::new();
        self.publish_gauges();
        loop {
            let deadline = self.switchboard.poll_timeout();
            let sleep = async {
                match deadline {
                    Some(t) => {
                        let wait = t.saturating_sub(wall_clock_now());
                        tokio::time::sleep(std::time::Duration::from_millis(wait)).await
                    }
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = sleep => self.switchboard.handle_timeout(wall_clock_now()),
                event = events.recv() => match event {
                    Some(event) => self.on_event(event, &mut legs, &mut by_leg),
                    None => break,
                },
            }
            self.execute(&mut legs, &mut by_leg);
        }
        // Shutting down: calls in progress end as failed, with a record.
        let live: Vec<String> = legs.keys().cloned().collect();
        for call in live {
            self.switchboard.handle(
                wall_clock_now(),
                CallInput::Failed {
                    call,
                    reason: "router_shutdown".into(),
                },
            );
        }
        self.execute(&mut legs, &mut by_leg);
        for write in self.writes.drain(..) {
            write.await.ok();
        }
    }

    fn on_event(
        &mut self,
        event: CallEvent,
        legs: &mut HashMap<String, Legs>,
        by_leg: &mut HashMap<String, String>,
    ) {
        let now = wall_clock_now();
        match event {
            CallEvent::Trunk(t) => {
                let trunk_leg = t.dialog.id().call_id.clone();
                let caller_peer = t.offer.audio_endpoint().map(|a| (a, t.codecs));
                by_leg.insert(trunk_leg.clone(), t.call.clone());
                legs.insert(
                    t.call.clone(),
                    Legs {
                        trunk: t.dialog,
                        trunk_leg,
                        offer: t.offer,
                        codecs: t.codecs,
                        relay: t.relay,
                        route: Route::new(t.routing, &t.entry),
                        answered: false,
                        max_forwards: t.max_forwards,
                        seat: None,
                        bridged: false,
                        origin: rand::random::<u32>() as u64,
                        seat_offers: 0,
                        sent: [None, None],
                        peer: [caller_peer, None],
                    },
                );
                let call = t.call.clone();
                self.switchboard.handle(now, t.arrived);
                self.start_route(&call, legs);
            }
            CallEvent::Media { call, notice } => self.on_media(&call, notice, legs),
            CallEvent::Timer { call, timer } => self.on_timer(&call, timer, legs),
            CallEvent::Rejected(record) => self.persist(*record, None),
            CallEvent::Input(input) => self.switchboard.handle(now, input),
            CallEvent::SeatResult {
                call,
                seat,
                leg,
                status,
                answer,
            } => {
                let current = legs
                    .get(&call)
                    .and_then(|l| l.seat.as_ref())
                    .is_some_and(|(_, l, _)| *l == leg);
                match status {
                    Some(code) if (200..300).contains(&code) => {
                        if let (true, Some(answer), Some(l)) =
                            (current, answer, legs.get_mut(&call))
                        {
                            let media =
                                SessionDescription::parse_bytes(&answer)
                                    .ok()
                                    .and_then(|sdp| {
                                        Some((
                                            sdp.audio_endpoint()?,
                                            sdp.leg_codecs()?,
                                            sdp.receives_audio(),
                                        ))
                                    });
                            match media {
                                Some((remote, codecs, receiving)) => {
                                    l.relay.set_remote(Leg::B, remote);
                                    l.relay.set_codecs(Leg::B, codecs);
                                    l.relay.set_receiving(Leg::B, receiving);
                                    l.peer[Leg::B.idx()] = Some((remote, codecs));
                                    self.switchboard
                                        .handle(now, CallInput::SeatAnswered { call, seat });
                                }
                                None => {
                                    // An answer we cannot bridge: treat the seat as failed.
                                    self.hang_up_leg(&leg, legs.get(&call));
                                    self.seat_leg_failed(call, seat, Some(488), legs);
                                }
                            }
                        }
                        // Not current: a 2xx racing our CANCEL; rsipstack BYEs it.
                    }
                    _ if current => self.seat_leg_failed(call, seat, status, legs),
                    _ => {}
                }
            }
            CallEvent::Dialog(state) => self.on_dialog_state(now, state, legs, by_leg),
        }
    }

    fn on_dialog_state(
        &mut self,
        now: EpochMillis,
        state: DialogState,
        legs: &mut HashMap<String, Legs>,
        by_leg: &HashMap<String, String>,
    ) {
        let (id, terminated) = match &state {
            DialogState::Early(id, _) => (id, false),
            DialogState::Terminated(id, _) => (id, true),
            DialogState::Info(id, request, handle) => {
                let call = by_leg
                    .get(&id.call_id)
                    .filter(|call| legs.get(*call).is_some_and(|l| l.trunk_leg == id.call_id));
                let status = match call.cloned() {
                    Some(call) => self.caller_info(now, &call, request, legs),
                    // From a seat: its keys do not drive the call.
                    None => StatusCode::OK,
                };
                let handle = handle.clone();
                tokio::spawn(async move { handle.reply(status).await.ok() });
                return;
            }
            DialogState::Updated(id, request, handle) => {
                let reply = self.reoffer(&id.call_id, request, legs);
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
            DialogState::Options(_, _, handle) => {
                let handle = handle.clone();
                tokio::spawn(async move { handle.reply(StatusCode::OK).await.ok() });
                return;
            }
            _ => return,
        };
        let Some(call) = by_leg.get(&id.call_id) else {
            return;
        };
        let Some(l) = legs.get(call) else { return };
        if l.trunk_leg == id.call_id {
            if terminated {
                self.switchboard
                    .handle(now, CallInput::CallerGone { call: call.clone() });
            }
            return;
        }
        let Some((seat, leg, _)) = &l.seat else {
            return;
        };
        if *leg != id.call_id {
            return; // an earlier, finished offer
        }
        let input = match (terminated, l.bridged) {
            (false, _) => CallInput::SeatRinging {
                call: call.clone(),
                seat: seat.clone(),
            },
            (true, true) => CallInput::SeatGone {
                call: call.clone(),
                seat: seat.clone(),
            },
            (true, false) => return, // the INVITE's own result reports this
        };
        self.switchboard.handle(now, input);
    }

    /// A re-INVITE or UPDATE on a leg (session refresh, hold, new address): follows the
    /// peer's new address and codecs and answers with our SDP, version bumped. Without a
    /// body, our current SDP is the offer (RFC 3261 §14.2).
    fn reoffer(
        &self,
        call_id: &str,
        request: &rsipstack::sip::Request,
        legs: &mut HashMap<String, Legs>,
    ) -> Result<Vec<u8>, StatusCode> {
        let l = legs
            .values_mut()
            .find(|l| {
                l.trunk_leg == call_id || l.seat.as_ref().is_some_and(|(_, leg, _)| leg == call_id)
            })
            .ok_or(StatusCode::CallTransactionDoesNotExist)?;
        let leg = if l.trunk_leg == call_id {
            Leg::A
        } else {
            Leg::B
        };
        let (ours, version) = l.sent[leg.idx()]
            .clone()
            .ok_or(StatusCode::RequestPending)?;
        if request.body().is_empty() {
            // The answer comes in the ACK, which rsipstack does not hand us: assume the
            // usual case (a refresh, or resuming), so a held leg never stays silent.
            l.relay.set_receiving(leg, true);
            return Ok(ours.to_string().into_bytes());
        }
        let offer =
            SessionDescription::parse_bytes(request.body()).map_err(|_| StatusCode::BadRequest)?;
        let (remote, codecs) = offer
            .audio_endpoint()
            .zip(offer.leg_codecs())
            .ok_or(StatusCode::NotAcceptableHere)?;
        let before = l.peer[leg.idx()];
        if before.map(|p| p.0) != Some(remote) {
            l.relay.set_remote(leg, remote);
        }
        if before.map(|p| p.1) != Some(codecs) {
            l.relay.set_codecs(leg, codecs);
        }
        l.peer[leg.idx()] = Some((remote, codecs));
        l.relay.set_receiving(leg, offer.receives_audio());
        let port = l.relay.local_addr(leg).port();
        let answer = offer
            .answer(codecs, self.sdp_ip, port, (l.origin, version + 1))
            .map_err(|_| StatusCode::NotAcceptableHere)?;
        l.sent[leg.idx()] = Some((answer.clone(), version + 1));
        Ok(answer.to_string().into_bytes())
    }

    /// An INFO from the caller: a key press (`application/dtmf-relay`, `application/dtmf`)
    /// becomes a digit for the call. Returns the status to answer.
    fn caller_info(
        &mut self,
        now: EpochMillis,
        call: &str,
        request: &rsipstack::sip::Request,
        legs: &mut HashMap<String, Legs>,
    ) -> StatusCode {
        let content_type = request.header_value("Content-Type").unwrap_or_default();
        match parse_info(&content_type, request.body()) {
            Ok((digit, duration_ms)) => {
                let digit = DigitEvent {
                    digit,
                    at: now,
                    duration_ms: duration_ms.unwrap_or(0),
                    source: DtmfSource::SipInfo,
                };
                self.on_media(call, MediaNotice::Digit(digit), legs);
                StatusCode::OK
            }
            // An empty INFO is a keep-alive some trunks send.
            Err(_) if request.body().is_empty() => StatusCode::OK,
            Err(DtmfError::UnsupportedContentType) => StatusCode::UnsupportedMediaType,
            Err(_) => StatusCode::BadRequest,
        }
    }

    fn execute(&mut self, legs: &mut HashMap<String, Legs>, by_leg: &mut HashMap<String, String>) {
        while let Some(out) = self.switchboard.poll_output() {
            match out {
                CallOutput::RingSeat { call, seat } => self.ring_seat(call, seat, legs, by_leg),
                CallOutput::Dial { call, number } => self.dial_out(call, number, legs, by_leg),
                CallOutput::CancelSeat { call, .. } => {
                    if let Some((_, leg, dialog)) = legs.get_mut(&call).and_then(|l| l.seat.take())
                    {
                        by_leg.remove(&leg);
                        tokio::spawn(async move { dialog.hangup().await.ok() });
                    }
                }
                CallOutput::Bridge { call, .. } => {
                    if let Some(l) = legs.get_mut(&call) {
                        l.bridged = true;
                        // Seat found: the dial plan has nothing more to do for this call.
                        l.route.settled();
                        match self.answer_caller(&call, l) {
                            Ok(()) => l.relay.bridge(Leg::B),
                            Err(reason) => self
                                .switchboard
                                .handle(wall_clock_now(), CallInput::Failed { call, reason }),
                        }
                    }
                }
                CallOutput::HangUpCaller { call } => {
                    if let Some(l) = legs.get(&call) {
                        let dialog = l.trunk.clone();
                        tokio::spawn(async move { dialog.bye().await.ok() });
                    }
                }
                CallOutput::HangUpSeat { call, .. } => {
                    if let Some((_, leg, dialog)) = legs.get_mut(&call).and_then(|l| l.seat.take())
                    {
                        by_leg.remove(&leg);
                        tokio::spawn(async move { dialog.hangup().await.ok() });
                    }
                }
                CallOutput::RejectCaller { call, status } => {
                    if let Some(l) = legs.get(&call) {
                        l.trunk.reject(Some(StatusCode::from(status)), None).ok();
                    }
                }
                CallOutput::Finished(mut record) => {
                    let media = legs.remove(&record.id).map(|l| {
                        l.route.describe(&mut record);
                        by_leg.remove(&l.trunk_leg);
                        if let Some((_, leg, _)) = &l.seat {
                            by_leg.remove(leg);
                        }
                        (l.relay, l.answered)
                    });
                    self.persist(*record, media);
                }
                CallOutput::SeatChanged { .. } => {}
            }
        }
        self.publish_gauges();
    }

    fn ring_seat(
        &mut self,
        call: String,
        seat: String,
        legs: &mut HashMap<String, Legs>,
        by_leg: &mut HashMap<String, String>,
    ) {
        match self.seats.contact(&seat) {
            Some(contact) => {
                let target = (contact.uri, contact.destination);
                self.invite_b(call, seat, target, legs, by_leg);
            }
            None => {
                let now = wall_clock_now();
                self.switchboard.handle(now, unreachable(call, seat));
            }
        }
    }

    /// Dials an external number through the trunk, on the seat leg.
    fn dial_out(
        &mut self,
        call: String,
        number: String,
        legs: &mut HashMap<String, Legs>,
        by_leg: &mut HashMap<String, String>,
    ) {
        let seat = EXTERNAL.to_string();
        let target = self.trunk_out.and_then(|addr| {
            let uri = Uri::try_from(format!("sip:{}@{addr}", sip_user(&number))).ok()?;
            let destination = SipAddr {
                r#type: Some(rsipstack::sip::Transport::Udp),
                addr: addr.into(),
            };
            Some((uri, destination))
        });
        match target {
            Some(target) => self.invite_b(call, seat, target, legs, by_leg),
            None => {
                tracing::error!(%call, "forward: no [trunk] outbound address configured");
                self.seat_leg_failed(call, seat, None, legs);
            }
        }
    }

    /// The seat leg could not be set up: the switchboard hears it, and a forward that
    /// failed sends the call back to its queue.
    fn seat_leg_failed(
        &mut self,
        call: String,
        seat: String,
        status: Option<u16>,
        legs: &mut HashMap<String, Legs>,
    ) {
        let now = wall_clock_now();
        let external = seat == EXTERNAL;
        let input = CallInput::SeatFailed {
            call: call.clone(),
            seat,
            status,
        };
        self.switchboard.handle(now, input);
        if external {
            self.forward_failed(&call, legs);
        }
    }

    /// Sends the INVITE of the seat leg to `target` (URI, where to send it).
    fn invite_b(
        &mut self,
        call: String,
        seat: String,
        target: (Uri, SipAddr),
        legs: &mut HashMap<String, Legs>,
        by_leg: &mut HashMap<String, String>,
    ) {
        let Some(l) = legs.get_mut(&call) else {
            return;
        };
        let (callee, destination) = target;
        // Each offer to a seat is a new session towards that seat: a fresh origin version.
        l.seat_offers += 1;
        let offer = SessionDescription::router_offer(
            self.sdp_ip,
            l.relay.local_addr(Leg::B).port(),
            l.codecs.law,
            (l.origin, l.seat_offers),
        );
        l.sent[Leg::B.idx()] = Some((offer.clone(), l.seat_offers));
        l.peer[Leg::B.idx()] = None;
        let caller = self
            .switchboard
            .record(&call)
            .map(|r| r.caller.reveal().to_string())
            .unwrap_or_default();
        let caller_uri = Uri::try_from(format!(
            "sip:{}@{}",
            sip_user(&caller),
            self.contact.host_with_port
        ))
        .unwrap_or_else(|_| self.contact.clone());
        let option = InviteOption {
            caller: caller_uri,
            callee,
            destination: Some(destination),
            contact: self.contact.clone(),
            content_type: Some("application/sdp".into()),
            offer: Some(offer.to_string().into_bytes()),
            headers: Some(vec![
                Header::Other("X-Sas-Call".into(), call.clone()),
                Header::MaxForwards(l.max_forwards.to_string().into()),
            ]),
            ..Default::default()
        };
        match self
            .dialogs
            .do_invite_async(option, self.state_sender.clone())
        {
            Ok((dialog, result)) => {
                let leg = dialog.id().call_id.clone();
                by_leg.insert(leg.clone(), call.clone());
                l.seat = Some((seat.clone(), leg.clone(), dialog));
                let events = self.events.clone();
                tokio::spawn(async move {
                    let (status, answer) = match result.await {
                        Ok(Ok((_, Some(resp)))) => {
                            (Some(resp.status_code.code()), Some(resp.body().clone()))
                        }
                        _ => (None, None),
                    };
                    events
                        .send(CallEvent::SeatResult {
                            call,
                            seat,
                            leg,
                            status,
                            answer,
                        })
                        .ok();
                });
            }
            Err(e) => {
                tracing::warn!(%seat, error = %e, "could not send INVITE on the seat leg");
                self.seat_leg_failed(call, seat, None, legs);
            }
        }
    }

    /// Answers the trunk leg (once) with our SDP answer for the caller's codecs, and starts
    /// recording.
    pub(super) fn answer_caller(&self, call: &str, l: &mut Legs) -> Result<(), String> {
        if l.answered {
            return Ok(());
        }
        let answer = l
            .offer
            .answer(
                l.codecs,
                self.sdp_ip,
                l.relay.local_addr(Leg::A).port(),
                (l.origin, 1),
            )
            .map_err(|e| format!("caller_sdp: {e}"))?;
        l.trunk
            .accept(
                Some(vec![Header::ContentType("application/sdp".into())]),
                Some(answer.to_string().into_bytes()),
            )
            .map_err(|e| format!("answer_failed: {e}"))?;
        l.sent[Leg::A.idx()] = Some((answer, 1));
        l.answered = true;
        if let Some(root) = &self.recordings {
            let relative = Recordings::relative_path(call, wall_clock_now());
            match Recorder::create(root, &relative) {
                Ok(recorder) => l.relay.record(Box::new(CallRecorder::new(recorder))),
                // The call matters more than its recording: go on, and say so loudly.
                Err(e) => tracing::error!(%call, error = %e, "call NOT recorded"),
            }
        }
        Ok(())
    }

    fn hang_up_leg(&self, leg: &str, l: Option<&Legs>) {
        if let Some((_, seat_leg, dialog)) = l.and_then(|l| l.seat.as_ref())
            && seat_leg == leg
        {
            let dialog = dialog.clone();
            tokio::spawn(async move { dialog.hangup().await.ok() });
        }
    }

    /// Stores a finished call's record, once its media (if any) has ended and reported.
    fn persist(&mut self, mut record: CallRecord, media: Option<(MediaRelay, bool)>) {
        let outcome = record.outcome.unwrap_or(Outcome::Failed);
        self.metrics
            .calls
            .with_label_values(&[record.line.as_str(), outcome.label()])
            .inc();
        if outcome != Outcome::Failed
            && let Some(wait) = record.wait_ms
        {
            let queue = record.queue.as_deref().unwrap_or("none");
            self.metrics
                .queue_wait
                .with_label_values(&[queue])
                .observe(wait as f64 / 1000.0);
        }
        tracing::info!(
            call = %record.id,
            line = %record.line,
            caller = %record.caller,
            outcome = outcome.label(),
            "call ended"
        );
        let store = self.store.clone();
        let metrics = self.metrics.clone();
        self.writes.retain(|w| !w.is_finished());
        self.writes.push(tokio::spawn(async move {
            if let Some((relay, answered)) = media {
                let report = relay.finish().await;
                if answered {
                    record.rtp = Some(rtp_counters(&report.stats));
                    let [caller, seat, _] = report.quality;
                    for (leg, q) in [("caller", caller), ("seat", seat)] {
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
                    record.quality = Some(CallQuality { caller, seat });
                }
                if let Some(sink) = report.recorder {
                    match blocking(move || sink.finish()).await {
                        Ok(info) => record.recording = Some(info),
                        Err(why) => recording_failed(&mut record, &why),
                    }
                }
            }
            // The flush blocks on disk IO: keep it off the event loop.
            let id = record.id.clone();
            if let Err(why) = blocking(move || store.put_call(&record)).await {
                tracing::error!(call = %id, error = %why, "call record NOT stored");
            }
        }));
    }

    fn publish_gauges(&self) {
        let acd = self.switchboard.acd();
        self.metrics.queue_depth.set(acd.waiting() as i64);
        self.metrics
            .active_calls
            .set(self.switchboard.active_calls() as i64);
        let mut counts: HashMap<(&str, &str), i64> = HashMap::new();
        for seat in acd.seats() {
            for label in crate::acd::SeatState::LABELS {
                counts.entry((seat.role.as_str(), label)).or_insert(0);
            }
            *counts
                .entry((seat.role.as_str(), seat.state.label()))
                .or_insert(0) += 1;
        }
        for ((role, state), n) in counts {
            self.metrics.seats.with_label_values(&[role, state]).set(n);
        }
    }
}

/// Runs blocking disk work off the event loop; its error, or the task's, as a sentence.
async fn blocking<T, E>(work: impl FnOnce() -> Result<T, E> + Send + 'static) -> Result<T, String>
where
    T: Send + 'static,
    E: std::fmt::Display + Send + 'static,
{
    match tokio::task::spawn_blocking(work).await {
        Ok(result) => result.map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    }
}

/// A recording that could not be completed is an error for the record, not just the log.
fn recording_failed(record: &mut CallRecord, why: &str) {
    tracing::error!(call = %record.id, error = %why, "recording NOT completed");
    let at = record.ended_at.unwrap_or(record.arrived_at);
    record.event(at, "RECORDING_FAILED", None, Some(why.into()));
}

/// The offer could not reach the seat (no registration left, or the INVITE failed to go).
fn unreachable(call: String, seat: String) -> CallInput {
    CallInput::SeatFailed {
        call,
        seat,
        status: None,
    }
}

fn rtp_counters(stats: &RelayStats) -> RtpCounters {
    let leg = |s: crate::media::relay::LegStats| LegCounters {
        rx_packets: s.rx_packets,
        rx_bytes: s.rx_bytes,
        tx_packets: s.tx_packets,
        tx_bytes: s.tx_bytes,
    };
    RtpCounters {
        caller: leg(stats.a),
        seat: leg(stats.b),
    }
}

/// A caller number usable as a SIP user part (digits, `+`; anything else dropped).
fn sip_user(number: &str) -> String {
    let user: String = number
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '+')
        .collect();
    if user.is_empty() {
        "anonymous".into()
    } else {
        user
    }
}
