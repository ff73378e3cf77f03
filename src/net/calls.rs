//! The call driver: one tokio task owning the [`Switchboard`], the SIP dialogs of every
//! leg and the media relays. It feeds the switchboard what happens on the wire and carries
//! out what the switchboard decides.

use crate::call::{CallInput, CallOutput, Switchboard};
use crate::media::relay::{Leg, MediaRelay};
use crate::media::sdp::SessionDescription;
use crate::metrics::Metrics;
use crate::store::Store;
use crate::store::record::{CallRecord, LegCounters, Outcome, RtpCounters};
use crate::time::{EpochMillis, wall_clock_now};
use rsipstack::dialog::dialog::{DialogState, DialogStateSender};
use rsipstack::dialog::dialog_layer::DialogLayer;
use rsipstack::dialog::invitation::InviteOption;
use rsipstack::dialog::invite_dialog::InviteDialog;
use rsipstack::sip::{Header, StatusCode, Uri};
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
    /// The call's media relay.
    pub relay: MediaRelay,
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
}

/// The two legs and the media of one call.
struct Legs {
    trunk: InviteDialog,
    trunk_leg: String,
    offer: SessionDescription,
    relay: MediaRelay,
    max_forwards: u32,
    /// The seat leg being offered or bridged: (seat, SIP Call-ID, dialog).
    seat: Option<(String, String, InviteDialog)>,
    bridged: bool,
    /// SDP session id of our side (`o=` line), and how many offers went to seats.
    origin: u64,
    seat_offers: u64,
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
                by_leg.insert(trunk_leg.clone(), t.call.clone());
                legs.insert(
                    t.call.clone(),
                    Legs {
                        trunk: t.dialog,
                        trunk_leg,
                        offer: t.offer,
                        relay: t.relay,
                        max_forwards: t.max_forwards,
                        seat: None,
                        bridged: false,
                        origin: rand::random::<u32>() as u64,
                        seat_offers: 0,
                    },
                );
                self.switchboard.handle(now, t.arrived);
            }
            CallEvent::Rejected(record) => self.persist(*record),
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
                            match SessionDescription::parse_bytes(&answer)
                                .ok()
                                .and_then(|sdp| sdp.audio_endpoint())
                            {
                                Some(remote) => {
                                    l.relay.set_remote(Leg::B, remote);
                                    self.switchboard
                                        .handle(now, CallInput::SeatAnswered { call, seat });
                                }
                                None => {
                                    // An answer we cannot bridge: treat the seat as failed.
                                    self.hang_up_leg(&leg, legs.get(&call));
                                    self.switchboard.handle(
                                        now,
                                        CallInput::SeatFailed {
                                            call,
                                            seat,
                                            status: Some(488),
                                        },
                                    );
                                }
                            }
                        }
                        // Not current: a 2xx racing our CANCEL; rsipstack BYEs it.
                    }
                    _ if current => self
                        .switchboard
                        .handle(now, CallInput::SeatFailed { call, seat, status }),
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
        legs: &HashMap<String, Legs>,
        by_leg: &HashMap<String, String>,
    ) {
        let (id, terminated) = match &state {
            DialogState::Early(id, _) => (id, false),
            DialogState::Terminated(id, _) => (id, true),
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

    fn execute(&mut self, legs: &mut HashMap<String, Legs>, by_leg: &mut HashMap<String, String>) {
        while let Some(out) = self.switchboard.poll_output() {
            match out {
                CallOutput::RingSeat { call, seat } => self.ring_seat(call, seat, legs, by_leg),
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
                        if let Err(reason) = self.answer_caller(l) {
                            self.switchboard
                                .handle(wall_clock_now(), CallInput::Failed { call, reason });
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
                    if let Some(l) = legs.remove(&record.id) {
                        by_leg.remove(&l.trunk_leg);
                        if let Some((_, leg, _)) = &l.seat {
                            by_leg.remove(leg);
                        }
                        if l.bridged {
                            record.rtp = Some(rtp_counters(&l.relay));
                        }
                        l.relay.stop();
                    }
                    self.persist(*record);
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
        let now = wall_clock_now();
        let (Some(l), Some(contact)) = (legs.get_mut(&call), self.seats.contact(&seat)) else {
            self.switchboard.handle(now, unreachable(call, seat));
            return;
        };
        // Each offer to a seat is a new session towards that seat: a fresh origin version.
        l.seat_offers += 1;
        let mut offer = l.offer.clone();
        let anchored = offer
            .rewrite_for_anchor(self.sdp_ip, l.relay.local_addr(Leg::B).port())
            .map(|_| offer.set_origin("sas-router", l.origin, l.seat_offers));
        if anchored.is_err() {
            self.switchboard.handle(
                now,
                CallInput::Failed {
                    call,
                    reason: "caller_sdp_without_audio".into(),
                },
            );
            return;
        }
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
            callee: contact.uri,
            destination: Some(contact.destination),
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
                tracing::warn!(%seat, error = %e, "could not send INVITE to seat");
                self.switchboard.handle(now, unreachable(call, seat));
            }
        }
    }

    /// Answers the trunk leg with the relay's caller-side address.
    fn answer_caller(&self, l: &Legs) -> Result<(), String> {
        let remote: SocketAddr = l
            .offer
            .audio_endpoint()
            .ok_or_else(|| "caller_sdp_without_audio".to_string())?;
        l.relay.set_remote(Leg::A, remote);
        let mut answer = l.offer.clone();
        answer
            .rewrite_for_anchor(self.sdp_ip, l.relay.local_addr(Leg::A).port())
            .map_err(|e| format!("caller_sdp: {e}"))?;
        answer.set_origin("sas-router", l.origin, 1);
        l.trunk
            .accept(
                Some(vec![Header::ContentType("application/sdp".into())]),
                Some(answer.to_string().into_bytes()),
            )
            .map_err(|e| format!("answer_failed: {e}"))
    }

    fn hang_up_leg(&self, leg: &str, l: Option<&Legs>) {
        if let Some((_, seat_leg, dialog)) = l.and_then(|l| l.seat.as_ref())
            && seat_leg == leg
        {
            let dialog = dialog.clone();
            tokio::spawn(async move { dialog.hangup().await.ok() });
        }
    }

    fn persist(&mut self, record: CallRecord) {
        let outcome = record.outcome.unwrap_or(Outcome::Failed);
        self.metrics
            .calls
            .with_label_values(&[record.line.as_str(), outcome.label()])
            .inc();
        if outcome != Outcome::Failed
            && let Some(wait) = record.wait_ms
        {
            self.metrics.queue_wait.observe(wait as f64 / 1000.0);
        }
        tracing::info!(
            call = %record.id,
            line = %record.line,
            caller = %record.caller,
            outcome = outcome.label(),
            "call ended"
        );
        let store = self.store.clone();
        // The flush blocks on disk IO: keep it off the event loop.
        self.writes.retain(|w| !w.is_finished());
        self.writes.push(tokio::task::spawn_blocking(move || {
            if let Err(e) = store.put_call(&record) {
                tracing::error!(call = %record.id, error = %e, "call record NOT stored");
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

/// The offer could not reach the seat (no registration left, or the INVITE failed to go).
fn unreachable(call: String, seat: String) -> CallInput {
    CallInput::SeatFailed {
        call,
        seat,
        status: None,
    }
}

fn rtp_counters(relay: &MediaRelay) -> RtpCounters {
    let stats = relay.stats();
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
