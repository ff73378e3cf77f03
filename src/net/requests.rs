//! The request dispatcher: every new server transaction from rsipstack lands here and is
//! answered or handed on: in-dialog requests to their dialog, REGISTER to the registrar,
//! OPTIONS answered, INVITEs admitted (or refused) and handed to the call driver: the
//! trunk's to entry numbers, seats' (digest-authenticated) to internal numbers only.

use crate::call::CallInput;
use crate::call::router::admission::{Admission, Invite, admit};
use crate::media::ports::PortPool;
use crate::media::relay::MediaRelay;
use crate::media::webrtc::WebRtcConfig;
use crate::net::caller_media::CallerMedia;
use crate::net::calls::{CallEvent, SeatContact, SeatDial, SeatDirectory, TrunkCall};
use crate::net::reload::LivePlans;
use crate::pii::CallerNumber;
use crate::sip::digest::{NonceStore, SeatCredential};
use crate::sip::guard::ALLOW;
use crate::sip::numbers::normalise;
use crate::sip::origin::{Origin, Peers};
use crate::sip::registrar::{Binding, Registrar};
use crate::store::record::{CallRecord, EndReason, EventKind, Outcome};
use crate::time::{EpochMillis, wall_clock_now};
use rsipstack::dialog::dialog::DialogStateSender;
use rsipstack::dialog::dialog_layer::DialogLayer;
use rsipstack::sip::headers::untyped::RetryAfter;
use rsipstack::sip::prelude::HeadersExt;
use rsipstack::sip::{Header, Method, StatusCode, Transport, Uri};
use rsipstack::transaction::transaction::Transaction;
use rsipstack::transport::SipAddr;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;

/// The registrar, its nonces and the seat credentials, behind one lock.
pub struct Registry {
    /// Bindings.
    pub registrar: Registrar,
    /// Digest nonces.
    pub nonces: NonceStore,
    /// Credentials by user name.
    pub credentials: HashMap<String, SeatCredential>,
    /// Where bindings are kept across restarts, off the SIP path (`None`: not kept).
    pub writer: Option<crate::store::writer::StoreWriter>,
}

impl Registry {
    /// Keeps `user`'s bindings as they are now, for the next start (the store writer
    /// writes them, in order, off this lock).
    pub fn persist(&self, user: &str) {
        if let Some(writer) = &self.writer {
            let bindings = self.registrar.bindings(user).to_vec();
            writer.bindings(user.to_string(), bindings);
        }
    }
}

/// Shared handle to the [`Registry`].
#[derive(Clone)]
pub struct SharedRegistry(pub Arc<Mutex<Registry>>);

impl SeatDirectory for SharedRegistry {
    fn contact(&self, seat: &str) -> Option<SeatContact> {
        let registry = self.0.lock().ok()?;
        let binding = registry.registrar.bindings(seat).first()?.clone();
        let destination = destination_of(&binding)?;
        Some(SeatContact {
            uri: binding.contact.clone(),
            destination,
            route: binding.path.clone(),
        })
    }

    fn remove_binding(&self, seat: &str, contact: &str) {
        if let Ok(mut registry) = self.0.lock()
            && (registry.registrar).remove_binding(seat, contact, wall_clock_now())
        {
            registry.persist(seat);
        }
    }
}

/// Where to send a seat's INVITEs. NAT: when the Contact's host is not where the REGISTER
/// came from, the Contact is a private address; send to the packet source (as nathelper
/// does). A Contact on the source host (another port, e.g. a separate UA process) is used as
/// given. A WebSocket phone is reachable only over its own connection (its Contact is
/// usually `….invalid;transport=ws`): always the source, whose cached connection it is. So
/// is a phone on TLS: the router dials no TLS to seats, and a phone behind NAT could not be
/// reached by a new connection anyway (calls go back over the one it registered on).
///
/// Registered through a proxy (Path, RFC 3327): to the first Path hop, the proxy, which
/// routes on to the phone (over the transport the REGISTER came on when the hop names none).
fn destination_of(binding: &Binding) -> Option<SipAddr> {
    if let Some(hop) = binding.path.first() {
        return path_hop(hop, binding);
    }
    let contact_ip = match &binding.contact.host_with_port.host {
        rsipstack::sip::Host::IpAddr(ip) => Some(*ip),
        rsipstack::sip::Host::Domain(_) => None,
    };
    let own_flow = matches!(
        binding.transport,
        Transport::Ws | Transport::Wss | Transport::Tls
    );
    if contact_ip == Some(binding.source.ip()) && !own_flow {
        SipAddr::try_from(&binding.contact).ok()
    } else {
        source_addr(binding)
    }
}

/// The address of a Path hop; a hop that names no IP address is the REGISTER's source.
fn path_hop(hop: &str, binding: &Binding) -> Option<SipAddr> {
    let Ok(uri) = Uri::try_from(hop) else {
        return source_addr(binding);
    };
    let rsipstack::sip::Host::IpAddr(ip) = uri.host_with_port.host else {
        return source_addr(binding);
    };
    let transport = uri
        .params
        .iter()
        .find_map(|p| match p {
            rsipstack::sip::Param::Transport(t) => Some(*t),
            _ => None,
        })
        .unwrap_or(binding.transport);
    let port = uri
        .host_with_port
        .port
        .map(|p| p.value())
        .unwrap_or(transport.default_port().into());
    Some(SipAddr {
        r#type: Some(transport),
        addr: SocketAddr::new(ip, port).into(),
    })
}

/// Where `binding`'s REGISTER came from, over its transport.
fn source_addr(binding: &Binding) -> Option<SipAddr> {
    Some(SipAddr {
        r#type: Some(binding.transport),
        addr: binding.source.into(),
    })
}

/// What the dispatcher needs.
pub struct Dispatcher {
    /// rsipstack's dialogs.
    pub dialogs: Arc<DialogLayer>,
    /// Dialog state events.
    pub state_sender: DialogStateSender,
    /// Registrar.
    pub registry: SharedRegistry,
    /// The trunk's and the proxies' (`[edge]`) source addresses.
    pub peers: Peers,
    /// With `[trunk] tls_pinned_sha256`: the TLS connections that presented a pinned
    /// certificate, the only ones the trunk's calls are taken from.
    pub trunk_pinned: Option<crate::net::tls_pin::PinnedFlows>,
    /// Our Contact on TLS connections (`sip.tls`).
    pub tls_contact: Option<Uri>,
    /// How WebRTC legs answering WebSocket phones gather their candidates.
    pub webrtc: WebRtcConfig,
    /// The dial plans in force.
    pub plans: Arc<LivePlans>,
    /// RTP ports.
    pub ports: Arc<PortPool>,
    /// Local RTP address.
    pub rtp_ip: IpAddr,
    /// Our Contact URI.
    pub contact: Uri,
    /// To the call driver.
    pub calls: mpsc::UnboundedSender<CallEvent>,
    /// Call id sequence.
    pub sequence: AtomicU64,
    /// What the call relays count into.
    pub relay_metrics: crate::media::relay::RelayMetrics,
    /// SRTP policies of the trunk and the seats.
    pub srtp: Arc<crate::media::srtp::SrtpPolicies>,
    /// Cancelled on SIGTERM: new calls are refused (503 with Retry-After) while the calls
    /// in progress finish.
    pub draining: tokio_util::sync::CancellationToken,
    /// The Retry-After of that 503, seconds.
    pub retry_after_s: u32,
    /// Password-guessing bans (shared with the console login).
    pub bans: crate::bans::shared::Guard,
    /// The "no RTP port" error, logged once per `[limits] error_log_interval_s` under a flood.
    pub no_port_log: std::sync::Mutex<crate::net::limits::LogThrottle>,
    /// Overload control: told when an admitted INVITE is refused after all; answers the
    /// trunk's OPTIONS with 503 while shedding.
    pub overload: crate::net::overload::Overload,
}

impl Dispatcher {
    /// Handles transactions until the endpoint stops.
    pub async fn run(self: Arc<Self>, mut incoming: rsipstack::transaction::TransactionReceiver) {
        while let Some(tx) = incoming.recv().await {
            let this = self.clone();
            tokio::spawn(async move {
                let method = tx.original.method;
                if let Err(e) = this.dispatch(tx).await {
                    tracing::debug!(%method, error = %e, "transaction ended with an error");
                }
            });
        }
    }

    async fn dispatch(&self, mut tx: Transaction) -> rsipstack::Result<()> {
        let in_dialog = tx
            .original
            .to_header()
            .ok()
            .and_then(|to| to.tag().ok().flatten())
            .is_some();
        if in_dialog {
            return match self.dialogs.match_dialog(&tx) {
                Some(mut dialog) => dialog.handle(&mut tx).await,
                None => tx.reply(StatusCode::CallTransactionDoesNotExist).await,
            };
        }
        // Banned sources and names, and scanners: refused once (429), then no answer at
        // all. The trunk's and the proxies' addresses are never banned, nor are the trunk's
        // calls ever held back (their From is a caller's number); a seat name guessed from
        // them is banned there too.
        if let Some((source, _)) = source_of(&tx) {
            let trunk = self.origin_of(&tx.original, source.ip()).is_trunk();
            let user = match tx.original.method {
                Method::Register => to_user(&tx.original),
                Method::Invite if !trunk => from_user(&tx.original),
                _ => None,
            };
            let scanner = !trunk && crate::bans::sip::is_scanner(&tx.original);
            let door = match scanner {
                true => crate::bans::Door::Silence { retry_after_s: 0 },
                false => self.bans.check(source.ip(), user.as_deref()),
            };
            if let Some(answer) = crate::bans::sip::refusal(door) {
                return match answer {
                    Some((status, headers)) => tx.reply_with(status, headers, None).await,
                    None => Ok(()),
                };
            }
        }
        match tx.original.method {
            Method::Register => self.register(&mut tx).await,
            // Real health for a proxy's probes (Kamailio's dispatcher): while we take no new
            // trunk call, it sends them to another node.
            Method::Options if let Some(retry) = self.unavailable_for(&tx) => {
                let retry = Header::RetryAfter(RetryAfter::new(retry.to_string()));
                tx.reply_with(StatusCode::ServiceUnavailable, vec![retry], None)
                    .await
            }
            Method::Options => {
                let allow = Header::Allow(ALLOW.into());
                let accept = Header::Other("Accept".into(), "application/sdp".into());
                tx.reply_with(StatusCode::OK, vec![allow, accept], None)
                    .await
            }
            Method::Invite => self.invite(tx).await,
            Method::Ack => Ok(()),
            Method::Bye | Method::Cancel => tx.reply(StatusCode::CallTransactionDoesNotExist).await,
            _ => {
                let allow = Header::Allow(ALLOW.into());
                tx.reply_with(StatusCode::MethodNotAllowed, vec![allow], None)
                    .await
            }
        }
    }

    async fn register(&self, tx: &mut Transaction) -> rsipstack::Result<()> {
        let Some((source, transport)) = source_of(tx) else {
            return tx.reply(StatusCode::BadRequest).await;
        };
        let now = wall_clock_now();
        let outcome = self
            .with_registry(|registry| {
                let credentials = &registry.credentials;
                let outcome = registry.registrar.handle_register(
                    now,
                    &tx.original,
                    source,
                    transport,
                    &mut registry.nonces,
                    |user| credentials.get(user).cloned(),
                );
                let contacts = outcome.change.as_ref().map(|change| {
                    registry.persist(&change.username);
                    let left = registry.registrar.time_left(&change.username, now);
                    (change.username.clone(), left)
                });
                (outcome.response, contacts)
            })
            .ok_or_else(registry_poisoned)?;
        let (response, contacts) = outcome;
        self.count_auth(source.ip(), to_user(&tx.original), &response.status_code);
        if let Some((seat, contacts)) = contacts {
            // The Router decides presence and arms each contact's expiry.
            let event = CallEvent::Registration { seat, contacts };
            self.calls.send(event).ok();
        }
        tx.respond(response).await
    }

    /// The Retry-After of a 503 to `tx`'s OPTIONS when no new call would be taken: the
    /// router drains, or sheds new trunk calls and `tx` comes from the trunk or a proxy
    /// (whose probes decide where the trunk's calls go).
    fn unavailable_for(&self, tx: &Transaction) -> Option<u32> {
        if self.draining.is_cancelled() {
            return Some(self.retry_after_s);
        }
        let from_trunk = source_of(tx).is_some_and(|(s, _)| self.peers.trusted(s.ip()));
        let shedding = self.overload.state() != crate::net::overload::State::Normal;
        (from_trunk && shedding).then(|| self.overload.retry_after_s())
    }

    async fn invite(&self, mut tx: Transaction) -> rsipstack::Result<()> {
        let now = wall_clock_now();
        let source = source_of(&tx);
        let transport = source.map_or(Transport::Udp, |s| s.1);
        let source = source.map(|s| s.0);
        let from_trunk = source.is_some_and(|addr| self.is_trunk(&tx.original, addr, transport));
        let max_forwards = tx
            .original
            .max_forwards_header()
            .ok()
            .and_then(|m| m.value().trim().parse::<u32>().ok())
            .unwrap_or(70);
        let called = normalise(&tx.original.uri.to_string());
        let routing = self.plans.current();
        let call = self.next_call_id(now);
        let sip_call_id = tx
            .original
            .call_id_header()
            .map(|c| c.value().to_string())
            .unwrap_or_default();
        // Admitted by overload control: pending until the driver takes it or it is refused.
        let pending = crate::net::overload::Pending::new(&self.overload, &sip_call_id);
        let draining = self.draining.is_cancelled().then_some(self.retry_after_s);
        let mut invite = Invite {
            from_trunk,
            called: &called,
            max_forwards,
            seat: None,
            draining,
        };
        // The decision is the core's (call/router/admission.rs); a seat authenticates
        // first when it asks so (same nonces and credentials as REGISTER).
        let mut admission = admit(&routing.plans, &invite);
        let seat;
        if admission == Admission::Authenticate {
            let authenticated = self
                .with_registry(|registry| {
                    let credentials = &registry.credentials;
                    registry.registrar.authenticate_request(
                        now,
                        &tx.original,
                        (
                            source.map_or(IpAddr::from([0, 0, 0, 0]), |s| s.ip()),
                            transport,
                        ),
                        &mut registry.nonces,
                        |user| credentials.get(user).cloned(),
                    )
                })
                .ok_or_else(registry_poisoned)?;
            if let Some(source) = source {
                let status = authenticated
                    .as_ref()
                    .map_or_else(|r| r.status_code.clone(), |_| StatusCode::OK);
                self.count_auth(source.ip(), from_user(&tx.original), &status);
            }
            seat = match authenticated {
                Ok(seat) => seat,
                Err(response) => {
                    let status = response.status_code.code();
                    tracing::info!(?source, status, "seat INVITE not authenticated");
                    return tx.respond(response).await;
                }
            };
            invite.seat = Some(&seat);
            admission = admit(&routing.plans, &invite);
        }
        let (entry, line, dialled_by) = match admission {
            Admission::Accept {
                entry,
                line,
                dialled,
            } => (entry, line, dialled),
            Admission::Authenticate => return tx.reply(StatusCode::Forbidden).await,
            Admission::Refuse(refusal) => {
                tracing::info!(%call, status = refusal.status, "INVITE refused");
                if let Some((reason, line)) = refusal.recorded {
                    let caller = CallerNumber::new(caller_of(&tx));
                    let (called, sip) = (called.clone(), sip_call_id);
                    let record = CallRecord::new(call, sip, line, called, caller, now);
                    self.refuse(record, reason);
                }
                let headers = (refusal.retry_after_s.into_iter())
                    .map(|s| Header::RetryAfter(RetryAfter::new(s.to_string())))
                    .collect();
                let status = StatusCode::from(refusal.status);
                return tx.reply_with(status, headers, None).await;
            }
        };
        let caller = match &dialled_by {
            Some(d) => CallerNumber::new(d.seat.clone()),
            None => CallerNumber::new(caller_of(&tx)),
        };
        let record = |line: &str| {
            let (id, sip) = (call.clone(), sip_call_id.clone());
            CallRecord::new(id, sip, line.into(), called.clone(), caller.clone(), now)
        };
        // A seat's phone on a WebSocket is a browser: its offer is WebRTC.
        let webrtc = dialled_by.as_ref().map(|_| &self.webrtc);
        let srtp = match &dialled_by {
            Some(d) => self.srtp.seat(&d.seat),
            None => self.srtp.trunk(),
        };
        let body = tx.original.body();
        let Some(mut media) = CallerMedia::negotiate(body, webrtc, srtp).await else {
            self.refuse(record(&line), EndReason::NoUsableSdp);
            return tx.reply(StatusCode::NotAcceptableHere).await;
        };
        let relay = match MediaRelay::bind(self.rtp_ip, &self.ports).await {
            Ok(relay) => relay,
            Err(e) => {
                let log = self.no_port_log.lock().ok();
                if let Some(unlogged) = log.and_then(|mut t| t.hit(std::time::Instant::now())) {
                    tracing::error!(error = %e, unlogged, "no RTP port for a call");
                }
                self.refuse(record(&line), EndReason::NoMediaPort);
                return tx.reply(StatusCode::ServiceUnavailable).await;
            }
        };
        let dialog = match self.dialogs.get_or_create_server_invite(
            &tx,
            self.state_sender.clone(),
            None,
            Some(self.contact_for(transport)),
        ) {
            Ok(dialog) => dialog,
            Err(e) => {
                // The guard refuses what rsipstack needs for a dialog (From tag, one usable
                // Contact); anything left is still the request's fault, not ours: 400.
                tracing::warn!(error = %e, "could not create the trunk dialog");
                self.refuse(record(&line), EndReason::DialogError);
                let reason = "Bad Request (cannot form a dialog)".to_string();
                return tx.reply(StatusCode::Other(400, reason)).await;
            }
        };
        let mut handler = dialog.clone();
        media.apply(&relay);
        let (events, notice_call) = (self.calls.clone(), call.clone());
        relay.start(
            self.relay_metrics.clone(),
            Box::new(move |notice| {
                let call = notice_call.clone();
                events.send(CallEvent::Media { call, notice }).ok();
            }),
        );
        pending.handed_over();
        // 180 at once (the 100 comes from the dialog's own handling below).
        dialog.ringing(None, None).ok();
        let overloaded = dialled_by.is_none() && self.overload.overflowed(&sip_call_id);
        match &dialled_by {
            Some(d) => {
                tracing::info!(%call, %entry, seat = %d.seat, "seat call admitted")
            }
            None if overloaded => {
                tracing::info!(%call, %entry, %caller, "trunk call admitted to its on_overload step")
            }
            None => tracing::info!(%call, %entry, %caller, "trunk call admitted"),
        }
        self.calls
            .send(CallEvent::Trunk(Box::new(TrunkCall {
                call: call.clone(),
                dialog,
                offer: media.offer,
                codecs: media.codecs,
                srtp: media.srtp,
                webrtc: media.webrtc,
                relay,
                entry,
                dialled_by: dialled_by.map(|d| SeatDial {
                    seat: d.seat,
                    step: d.step,
                }),
                routing: routing.clone(),
                overloaded,
                max_forwards: max_forwards - 1,
                arrived: CallInput::Arrived {
                    call: call.into(),
                    sip_call_id,
                    line,
                    called,
                    caller,
                },
            })))
            .ok();
        handler.handle(&mut tx).await
    }

    /// Whether `req` from `source` over `transport` is the trunk's: from one of its
    /// addresses and, when certificates are pinned, on a TLS connection that presented one;
    /// or from a proxy that marked it (`X-SAS-Origin: trunk`, see [`crate::sip::origin`]).
    fn is_trunk(
        &self,
        req: &rsipstack::sip::Request,
        source: SocketAddr,
        transport: Transport,
    ) -> bool {
        match self.origin_of(req, source.ip()) {
            Origin::Trunk => self
                .trunk_pinned
                .as_ref()
                .is_none_or(|flows| transport == Transport::Tls && flows.contains(source)),
            Origin::TrunkViaEdge => true,
            Origin::Seat | Origin::SeatViaEdge => false,
        }
    }

    /// Who sent `req` from `source`: the trunk or a seat, straight or through a proxy.
    fn origin_of(&self, req: &rsipstack::sip::Request, source: IpAddr) -> Origin {
        self.peers.origin(source, marked(req))
    }

    /// Our Contact for a dialog whose peer came over `transport`.
    fn contact_for(&self, transport: Transport) -> Uri {
        match (&self.tls_contact, transport) {
            (Some(tls), Transport::Tls) => tls.clone(),
            _ => self.contact.clone(),
        }
    }

    /// Tells the bans how a digest authentication from `source` as `user` ended: a plain
    /// `403` is a wrong password or an unknown name, `200` a success. A 403 with a reason
    /// of its own (a seat on a transport it may not use) guessed nothing.
    fn count_auth(&self, source: IpAddr, user: Option<String>, status: &StatusCode) {
        let user = user.unwrap_or_default();
        match status {
            StatusCode::Forbidden => self.bans.failed("sip", source, &user),
            StatusCode::OK => self.bans.succeeded(source, &user),
            _ => {}
        }
    }

    /// Runs `f` on the registry, under its lock (`None`: the lock is poisoned).
    fn with_registry<T>(&self, f: impl FnOnce(&mut Registry) -> T) -> Option<T> {
        let mut guard = self.registry.0.lock().ok()?;
        Some(f(&mut guard))
    }

    /// Records a trunk call refused at admission (outcome `failed`).
    fn refuse(&self, mut record: CallRecord, reason: EndReason) {
        let now = record.arrived_at;
        record.event(now, EventKind::Rejected, None, Some(reason.to_string()));
        record.ended_at = Some(now);
        record.wait_ms = Some(0);
        record.outcome = Some(Outcome::Failed);
        record.end_reason = Some(reason);
        self.calls.send(CallEvent::Rejected(Box::new(record))).ok();
    }

    fn next_call_id(&self, now: EpochMillis) -> String {
        let n = self.sequence.fetch_add(1, Ordering::Relaxed) % 10_000;
        let stamp = sas_core::ids::CallId::stamp(now);
        format!("{stamp}-{n:04}")
    }
}

fn registry_poisoned() -> rsipstack::Error {
    rsipstack::Error::Error("registrar lock poisoned".into())
}

/// The packet source of a transaction and its transport (the source's: a WebSocket phone
/// comes through a channel connection, whose own transport says UDP).
fn source_of(tx: &Transaction) -> Option<(SocketAddr, Transport)> {
    let conn = tx.connection.as_ref()?;
    let remote = conn.get_remote_addr()?;
    let transport = remote.r#type.unwrap_or_else(|| conn.transport());
    Some((remote.get_socketaddr().ok()?, transport))
}

/// The To URI's user part (a REGISTER's seat).
fn to_user(req: &rsipstack::sip::Request) -> Option<String> {
    req.to_header().ok()?.uri().ok()?.auth.map(|a| a.user)
}

/// The From URI's user part (a seat's INVITE).
fn from_user(req: &rsipstack::sip::Request) -> Option<String> {
    req.from_header().ok()?.uri().ok()?.auth.map(|a| a.user)
}

/// Whether `req` carries the trunk marker a proxy adds (`X-SAS-Origin: trunk`).
pub fn marked(req: &rsipstack::sip::Request) -> bool {
    req.headers.iter().any(|h| match h {
        Header::Other(name, value) => crate::sip::origin::is_marker(name, value),
        _ => false,
    })
}

/// The caller's number: the From URI's user part (display name when there is none).
fn caller_of(tx: &Transaction) -> String {
    let Ok(from) = tx.original.from_header() else {
        return String::new();
    };
    from.uri()
        .ok()
        .and_then(|uri| uri.auth.map(|a| a.user))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn binding(contact: &str, source: &str) -> Binding {
        Binding {
            contact: Uri::try_from(contact).unwrap(),
            source: source.parse().unwrap(),
            transport: Transport::Udp,
            expires_at: 0,
            call_id: String::new(),
            cseq: 1,
            registered_at: 0,
            path: Vec::new(),
        }
    }

    #[test]
    fn seats_behind_nat_are_reached_at_their_packet_source() {
        let natted = destination_of(&binding("sip:arm1@192.168.1.20:5060", "203.0.113.7:40123"));
        assert_eq!(
            natted.unwrap().get_socketaddr().unwrap(),
            "203.0.113.7:40123".parse::<std::net::SocketAddr>().unwrap()
        );
        let same_host = destination_of(&binding("sip:arm1@127.0.0.1:5071", "127.0.0.1:5072"));
        assert_eq!(
            same_host.unwrap().get_socketaddr().unwrap(),
            "127.0.0.1:5071".parse::<std::net::SocketAddr>().unwrap()
        );
        let by_name = destination_of(&binding("sip:arm1@phone.example", "198.51.100.2:5060"));
        assert_eq!(
            by_name.unwrap().get_socketaddr().unwrap(),
            "198.51.100.2:5060".parse::<std::net::SocketAddr>().unwrap()
        );
        let mut webrtc = binding("sip:x@127.0.0.1:5071;transport=ws", "127.0.0.1:40000");
        webrtc.transport = Transport::Ws;
        let over_ws = destination_of(&webrtc).unwrap();
        assert_eq!(over_ws.r#type, Some(Transport::Ws));
        assert_eq!(
            over_ws.get_socketaddr().unwrap(),
            "127.0.0.1:40000".parse::<std::net::SocketAddr>().unwrap(),
            "back over the phone's own connection"
        );
        // Through a proxy: to the Path's first hop, whatever the Contact and the source.
        let mut proxied = binding("sip:arm1@192.168.1.20:5060", "127.0.0.1:5060");
        proxied.path = vec![
            "sip:192.0.2.10:5070;lr;received=sip:203.0.113.7:40123".into(),
            "sip:10.0.0.1;lr".into(),
        ];
        let via_proxy = destination_of(&proxied).unwrap();
        assert_eq!(
            via_proxy.get_socketaddr().unwrap(),
            "192.0.2.10:5070".parse::<std::net::SocketAddr>().unwrap()
        );
        proxied.path = vec!["sip:edge.example;lr;transport=tcp".into()];
        let by_name = destination_of(&proxied).unwrap();
        assert_eq!(
            by_name.get_socketaddr().unwrap(),
            "127.0.0.1:5060".parse::<std::net::SocketAddr>().unwrap(),
            "a hop named, not numbered: the REGISTER's source"
        );
        let mut tls = binding("sip:arm1@127.0.0.1:5071;transport=tls", "127.0.0.1:40001");
        tls.transport = Transport::Tls;
        let over_tls = destination_of(&tls).unwrap();
        assert_eq!(over_tls.r#type, Some(Transport::Tls));
        assert_eq!(
            over_tls.get_socketaddr().unwrap(),
            "127.0.0.1:40001".parse::<std::net::SocketAddr>().unwrap(),
            "back over the TLS connection it registered on"
        );
    }
}
