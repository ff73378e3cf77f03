//! Wiring: builds the store, metrics, SIP endpoint, registrar, call driver, HTTP server and
//! recording purge from a [`Config`], starts them, and stops them on shutdown.
//!
//! [`start`] returns the addresses actually bound, so tests can ask for port 0.

use crate::acd::AcdSettings;
use crate::bans::Network;
use crate::bans::shared::Guard;
use crate::call::router::{LivenessSettings, Router, RouterInput};
use crate::call::{Switchboard, SwitchboardSettings};
use crate::config::{Config, OutboundTransport};
use crate::cti::CtiChannels;
use crate::http::cti::CtiAccounts;
use crate::http::{self, HttpState};
use crate::media::ports::PortPool;
use crate::metrics::Metrics;
use crate::net::calls::CallDriver;
use crate::net::front::FrontDesk;
use crate::net::limits::{self, Doorway, Gate};
use crate::net::overload::Overload;
use crate::net::reload::{LivePlans, ReloadMetrics};
use crate::net::requests::{Dispatcher, Registry, SharedRegistry};
use crate::net::sip_stream::GuardMetrics;
use crate::net::sip_tcp::{SipTcpListener, SipTls};
use crate::net::sip_tls_out::TrunkDialer;
use crate::net::sip_ws::SipWsListener;
use crate::net::supervise::metrics::SupervisorActions;
use crate::net::tls;
use crate::net::tls_pin::PinnedFlows;
use crate::shared_store::shipper::{Shipper, ShipperMetrics};
use crate::sip::digest::NonceStore;
use crate::sip::guard::GuardedUdpSocket;
use crate::sip::registrar::{Registrar, RegistrarConfig};
use crate::store::recordings::Recordings;
use crate::store::secrets;
use crate::store::writer::StoreWriter;
use crate::store::{Store, StoreError};
use crate::time::{Clock, SECOND, wall_clock_now};
use rsipstack::EndpointBuilder;
use rsipstack::dialog::dialog_layer::DialogLayer;
use rsipstack::sip::{Method, SipMessage, Uri};
use rsipstack::transaction::endpoint::EndpointOption;
use rsipstack::transaction::endpoint::MessageInspector;
use rsipstack::transport::udp::UdpConnection;
use rsipstack::transport::{SipAddr, TransportLayer};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use thiserror::Error;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Start-up failures.
#[derive(Debug, Error)]
pub enum AppError {
    /// The database could not be opened (another router running on the same data?).
    #[error("cannot open the call store in {dir}: {source}")]
    Store {
        /// Data directory.
        dir: PathBuf,
        /// Why.
        source: StoreError,
    },
    /// A listen address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The SIP stack refused to start.
    #[error("SIP stack: {0}")]
    Sip(Box<rsipstack::Error>),
    /// The dial plans are invalid (every problem, one per line).
    #[error("the dial plans are invalid:\n{0}")]
    DialPlans(String),
    /// The `[tls]` certificate or key cannot be used.
    #[error("{0}")]
    Tls(#[from] crate::net::tls::TlsError),
    /// Other IO (data directory, token file).
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

impl From<rsipstack::Error> for AppError {
    fn from(e: rsipstack::Error) -> Self {
        Self::Sip(Box::new(e))
    }
}

/// A running router.
pub struct Running {
    /// SIP UDP address bound.
    pub sip_udp: Option<SocketAddr>,
    /// SIP TCP address bound.
    pub sip_tcp: Option<SocketAddr>,
    /// SIP over TLS address bound.
    pub sip_tls: Option<SocketAddr>,
    /// SIP over WebSocket address bound.
    pub sip_ws: Option<SocketAddr>,
    /// SIP over secure WebSocket address bound.
    pub sip_wss: Option<SocketAddr>,
    /// HTTP address bound.
    pub http: SocketAddr,
    /// HTTPS address bound.
    pub https: Option<SocketAddr>,
    /// Metrics (tests read them directly too).
    pub metrics: Metrics,
    /// Starts and follows the SIGTERM drain.
    pub drain: Drain,
    shutdown: CancellationToken,
    /// The call driver: it ends every live call and writes the records before it returns.
    driver: JoinHandle<()>,
    /// IO loops that only stop when aborted.
    tasks: Vec<JoinHandle<()>>,
    /// The shared-store shipper and what stops it (after the driver: last records too).
    shipper: Option<(JoinHandle<()>, CancellationToken)>,
}

impl Running {
    /// Stops everything; live calls end with a record.
    pub async fn stop(self) {
        self.shutdown.cancel();
        self.wait().await;
    }

    /// Waits until the router stops (shutdown cancelled elsewhere): the call driver first,
    /// so every record is on disk, then the IO loops.
    pub async fn wait(self) {
        self.driver.await.ok();
        if let Some((shipper, stop)) = self.shipper {
            stop.cancel();
            shipper.await.ok();
        }
        for task in &self.tasks {
            task.abort();
        }
        for task in self.tasks {
            task.await.ok();
        }
    }
}

/// The SIGTERM drain: new calls are refused while the calls in progress finish.
#[derive(Clone)]
pub struct Drain {
    draining: CancellationToken,
    metrics: Metrics,
    limit: std::time::Duration,
}

impl Drain {
    /// Refuses new calls from now on (503 with Retry-After), then waits until no call is
    /// left or the `[shutdown] drain_s` limit passes. The caller then stops the router,
    /// which ends and records the calls still going.
    pub async fn run(&self) {
        self.draining.cancel();
        self.metrics.draining.set(1);
        let live = || self.metrics.active_calls.get();
        tracing::info!(calls = live(), limit_s = self.limit.as_secs(), "draining");
        let idle = async {
            while live() > 0 {
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
        };
        if tokio::time::timeout(self.limit, idle).await.is_err() {
            tracing::warn!(calls = live(), "drain time over: ending the calls left");
        }
    }
}

/// Counts SIP messages received, for the metrics, without touching them; names our TLS
/// listener in the Via of requests sent over TLS.
struct CountingInspector {
    metrics: Metrics,
    /// `sip.tls` as a Via sent-by: rsipstack puts its first listener's (UDP) address there.
    tls_sent_by: Option<rsipstack::sip::HostWithPort>,
}

impl MessageInspector for CountingInspector {
    fn before_send(&self, msg: SipMessage, _dest: Option<&SipAddr>) -> SipMessage {
        // Responses sent are counted where every datagram leaves (the guarded socket).
        match (&self.tls_sent_by, msg) {
            (Some(sent_by), SipMessage::Request(req)) => tls_via(req, sent_by).into(),
            (_, msg) => msg,
        }
    }

    fn after_received(&self, msg: SipMessage, _from: Option<&SipAddr>) -> SipMessage {
        match &msg {
            SipMessage::Request(r) => self
                .metrics
                .sip_requests
                .with_label_values(&[r.method.as_str()])
                .inc(),
            SipMessage::Response(r) => self.count_response(r, "received"),
        }
        msg
    }
}

/// `req` with its top Via, if it says TLS, sent by `sent_by` (transactions match responses
/// by branch, which stays).
fn tls_via(
    mut req: rsipstack::sip::Request,
    sent_by: &rsipstack::sip::HostWithPort,
) -> rsipstack::sip::Request {
    use rsipstack::sip::{Header, ToTypedHeader};
    let top = req.headers.iter_mut().find(|h| matches!(h, Header::Via(_)));
    if let Some(Header::Via(via)) = top
        && let Ok(mut typed) = via.typed()
        && typed.transport == rsipstack::sip::Transport::Tls
        && typed.uri.host_with_port != *sent_by
    {
        typed.uri.host_with_port = sent_by.clone();
        *via = typed.into();
    }
    req
}

impl CountingInspector {
    fn count_response(&self, r: &rsipstack::sip::Response, direction: &str) {
        use rsipstack::sip::prelude::HeadersExt;
        let method = r.cseq_header().and_then(|c| c.method());
        let method = method.as_ref().map_or("unknown", |m| m.as_str());
        let mut code = itoa::Buffer::new();
        self.metrics
            .sip_responses
            .with_label_values(&[method, code.format(r.status_code.code()), direction])
            .inc();
    }
}

/// Starts the router. `shutdown` stops it.
/// Pairs of finished legs' sockets kept bound for reuse: half the descriptors left beside
/// the connections and the reserve, two a pair (the other half for the legs in calls).
fn parked_pairs_max(open_files: u64, limits: &limits::LimitSettings) -> usize {
    let taken = limits.max_connections.saturating_add(limits.fd_reserve);
    usize::try_from(open_files)
        .unwrap_or(usize::MAX)
        .saturating_sub(taken)
        / 4
}

pub async fn start(config: Config, shutdown: CancellationToken) -> Result<Running, AppError> {
    let metrics = Metrics::new();
    // Invalid dial plans stop the start before anything listens.
    // Every line and queue shown from the start (and from the reload that adds it), at 0.
    let reload_metrics = ReloadMetrics::register(&metrics.registry)
        .map_err(|e| AppError::DialPlans(e.to_string()))?
        .with_call_series(&metrics);
    let plans = Arc::new(
        LivePlans::load(
            &config.routing.dialplans_dir,
            &config.media.prompts_dir,
            reload_metrics,
        )
        .map_err(|errors| AppError::DialPlans(errors.join("\n")))?,
    );
    let data_dir = config.store.data_dir.clone();
    std::fs::create_dir_all(&data_dir)?;
    let store_error = |source| AppError::Store {
        dir: data_dir.clone(),
        source,
    };
    let store = Store::open_with(&data_dir, config.store.options())
        .map_err(store_error)?
        .with_outbox(config.shared_store.is_some());
    if config.shared_store.is_none() && store.outbox_pending() > 0 {
        let rows = store.outbox_pending();
        tracing::warn!(
            rows,
            "rows wait for a shared store no longer configured ([shared_store])"
        );
    }
    // Calls the last run left in flight get their record before anything else happens.
    let recordings_root = Recordings::from_config(&config).root().to_path_buf();
    for record in store.recover(Some(&recordings_root)).map_err(store_error)? {
        let outcome = crate::store::record::Outcome::Interrupted.label();
        metrics
            .calls
            .with_label_values(&[record.line.as_str(), outcome])
            .inc();
    }
    let admin_token = secrets::admin_token(&data_dir)?;
    let metrics_token = secrets::metrics_token(&data_dir)?;
    let nonce_secret = secrets::nonce_key(&data_dir)?;
    // Connections: every TCP listener shares one gate under the open-file limit.
    let open_files = limits::raise_open_files();
    let peers = config.peers();
    let trusted: Vec<Network> = peers
        .all()
        .map(|ip| Network::host(*ip))
        .chain(config.bans.admin_networks.iter().copied())
        .collect();
    let gate = Gate::new(&config.limits, open_files, trusted, &metrics.registry)
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    let log_every = std::time::Duration::from_secs(config.limits.error_log_interval_s.into());
    let doorway = |listener, name| Doorway::new(listener, gate.clone(), name, log_every);
    let bans = Guard::new(
        config.bans.clone(),
        &peers.all().copied().collect::<Vec<_>>(),
        config.seats.iter().map(|s| s.username.clone()),
        &metrics.registry,
    )
    .map_err(|e| std::io::Error::other(e.to_string()))?;

    // SIP transports, each behind the malformed-input guard: UDP through rsipstack's socket
    // (wrapped), TCP (same port number) and WebSocket through our own listeners.
    let registrar_config = RegistrarConfig {
        realm: config.sip.realm.clone(),
        min_expires_s: config.sip.min_expires_s,
        max_expires_s: config.sip.max_expires_s,
        default_expires_s: config.sip.default_expires_s,
        digest: config.sip.digest.clone(),
    };
    let credentials: HashMap<_, _> = config
        .seats
        .iter()
        .map(|s| (s.username.clone(), s.credential(&config.sip.digest)))
        .collect();
    let nonces = || {
        let lifetime = config.sip.nonce_lifetime_s as u64 * SECOND;
        NonceStore::new(nonce_secret, lifetime, 10_000)
    };
    // One monotonic clock for every deadline of the call logic, from here on.
    let clock = Clock::new();
    let (ports_min, ports_max) = (config.media.rtp_port_min, config.media.rtp_port_max);
    let limits = config.overload.limits(ports_min, ports_max);
    tracing::info!(
        max_calls = limits.max_calls,
        max_call_rate = limits.max_call_rate,
        max_queue_delay_ms = limits.max_delay_ms,
        "overload control"
    );
    let gated = (peers.clone(), Arc::clone(&plans));
    let overload = Overload::new(limits, clock, gated, &metrics, log_every);
    let front = FrontDesk::new(
        Registrar::new(registrar_config.clone()),
        nonces(),
        credentials.clone(),
        bans.clone(),
        metrics.sip_requests.clone(),
        Some(overload.clone()),
    );
    let guard_metrics = GuardMetrics {
        malformed: metrics.sip_malformed.clone(),
        responses: metrics.sip_responses.clone(),
        front: Some(front.clone()),
    };
    let transport_layer = TransportLayer::new(shutdown.child_token());
    let mut sip_udp = None;
    if let Some(addr) = config.sip.udp {
        let socket =
            std::net::UdpSocket::bind(addr).map_err(|source| AppError::Bind { addr, source })?;
        let bound = socket.local_addr()?;
        let guarded = GuardedUdpSocket::new(
            socket,
            metrics.sip_malformed.clone(),
            metrics.sip_responses.clone(),
        )?
        .with_front(Arc::new(move |message, from| {
            front.answer(message, from, rsipstack::sip::Transport::Udp)
        }));
        let conn =
            UdpConnection::from_socket(Arc::new(guarded), None, Some(shutdown.child_token()))
                .await?;
        transport_layer.add_transport(conn.into());
        sip_udp = Some(bound);
    }
    let mut tcp_listener = None;
    if let Some(mut addr) = config.sip.tcp {
        if addr.port() == 0 {
            addr.set_port(free_tcp_port(addr, sip_udp.map(|a| a.port()))?);
        }
        tcp_listener = Some(SipTcpListener {
            doorway: doorway(bind(addr).await?, "sip tcp"),
            tls: None,
            metrics: guard_metrics.clone(),
            message_timeout: config.limits.header_timeout(),
            idle_timeout: config.limits.sip_idle_timeout(),
        });
    }
    let sip_tcp = tcp_listener
        .as_ref()
        .and_then(|l| l.doorway.local_addr().ok());
    let tls = config.tls.as_ref().map(tls::acceptor).transpose()?;
    let pins = config.trunk.pins();
    let pinned_flows = PinnedFlows::default();
    let mut tls_listener = None;
    if let (Some(addr), Some(files)) = (config.sip.tls, &config.tls) {
        tls_listener = Some(SipTcpListener {
            doorway: doorway(bind(addr).await?, "sip tls"),
            tls: Some(SipTls {
                acceptor: tls::sip_acceptor(files, !pins.is_empty())?,
                pins: pins.clone(),
                flows: pinned_flows.clone(),
            }),
            metrics: guard_metrics.clone(),
            message_timeout: config.limits.header_timeout(),
            idle_timeout: config.limits.sip_idle_timeout(),
        });
    }
    let sip_tls = tls_listener
        .as_ref()
        .and_then(|l| l.doorway.local_addr().ok());
    let mut ws_listeners = Vec::new();
    for (addr, secure) in [(config.sip.ws, false), (config.sip.wss, true)] {
        let Some(addr) = addr else { continue };
        let name = if secure { "sip wss" } else { "sip ws" };
        ws_listeners.push(SipWsListener {
            doorway: doorway(bind(addr).await?, name),
            // Validated: `wss` comes with `[tls]`.
            tls: if secure { tls.clone() } else { None },
            metrics: guard_metrics.clone(),
            message_timeout: config.limits.header_timeout(),
            idle_timeout: config.limits.sip_idle_timeout(),
        });
    }
    let ws_addr = |secure: bool| {
        let mut bound = ws_listeners.iter().filter(|l| l.tls.is_some() == secure);
        bound.next().and_then(|l| l.doorway.local_addr().ok())
    };
    let (sip_ws, sip_wss) = (ws_addr(false), ws_addr(true));
    let contact_addr = sip_udp.or(sip_tcp).expect("validated: one SIP transport");
    let contact = Uri::try_from(format!("sip:sas-router@{contact_addr}"))
        .map_err(|e| AppError::from(rsipstack::Error::Error(e.to_string())))?;
    // What peers on TLS connections are given: our TLS listener (RFC 5630: sips), on its
    // own address unless it listens on every interface.
    let tls_contact = match sip_tls {
        Some(addr) => Some(
            Uri::try_from(format!(
                "sips:sas-router@{};transport=tls",
                match addr.ip().is_unspecified() {
                    true => format!("{}:{}", contact.host_with_port.host, addr.port()),
                    false => addr.to_string(),
                },
            ))
            .map_err(|e| AppError::from(rsipstack::Error::Error(e.to_string())))?,
        ),
        None => None,
    };

    let endpoint = EndpointBuilder::new()
        .with_user_agent(concat!("sas-router/", env!("CARGO_PKG_VERSION")))
        .with_transport_layer(transport_layer)
        .with_cancel_token(shutdown.child_token())
        .with_allows(vec![
            Method::Invite,
            Method::Ack,
            Method::Cancel,
            Method::Bye,
            Method::Options,
            Method::Register,
            Method::Info,
            Method::Refer,
            Method::Update,
        ])
        // Call-IDs of the seat legs name this host, not the library's default domain.
        .with_option(EndpointOption {
            callid_suffix: Some(contact_addr.ip().to_string()),
            ..EndpointOption::default()
        })
        .with_inspector(Box::new(CountingInspector {
            metrics: metrics.clone(),
            tls_sent_by: tls_contact.as_ref().map(|c| c.host_with_port.clone()),
        }))
        .build();
    let incoming = endpoint.incoming_transactions()?;
    let dialogs = Arc::new(DialogLayer::new(endpoint.inner.clone()));
    let (endpoint_inner, dialogs_watched) = (endpoint.inner.clone(), Arc::clone(&dialogs));
    let (state_sender, state_receiver) = dialogs.new_dialog_state_channel();

    let mut registrar = Registrar::new(registrar_config);
    // Registrations kept from the last run: their seats are online at once.
    let restored: Vec<String> = store
        .bindings()
        .map_err(store_error)?
        .into_iter()
        .filter_map(|(user, stored)| {
            let bindings = stored.iter().filter_map(|b| b.binding()).collect();
            registrar.restore(wall_clock_now(), &user, bindings)
        })
        .map(|change| change.username)
        .collect();
    let writer = StoreWriter::start(store.clone(), config.store.writer_options());
    if let Err(e) = writer.metrics().register(&metrics.registry) {
        tracing::warn!(error = %e, "store writer metrics not registered");
    }
    let registry = SharedRegistry(Arc::new(Mutex::new(Registry {
        registrar,
        nonces: nonces(),
        credentials,
        writer: Some(writer.clone()),
    })));

    let now = clock.now();
    let seats: Vec<(String, String)> = config
        .seats
        .iter()
        .map(|s| (s.username.clone(), s.role.clone()))
        .collect();
    let mut switchboard = Switchboard::new(
        SwitchboardSettings {
            acd: AcdSettings {
                ring_timeout_ms: config.acd.ring_timeout_s as u64 * SECOND,
                wrap_up_ms: config.acd.wrap_up_s as u64 * SECOND,
                autopause: config.acd.autopause,
                autopause_resume_ms: u64::from(config.acd.autopause_resume_s) * SECOND,
                autopause_burst: config.acd.autopause_burst,
                aging_step_ms: config.acd.aging_step_s as u64 * SECOND,
            },
            misdial_threshold_ms: config.acd.misdial_threshold_s as u64 * SECOND,
        },
        &seats,
        now,
    );
    for queue in &config.acd.queues {
        let (key, settings) = queue.acd();
        switchboard.set_queue(key, settings);
    }
    for seat in &config.seats {
        let skills: Vec<&str> = seat.skills.iter().map(String::as_str).collect();
        let wrap_up = seat.wrap_up_s.map(|s| u64::from(s) * SECOND);
        // Every configured seat was just added, so this cannot name an unknown one.
        let _ = switchboard.configure_seat(now, &seat.username, &skills, wrap_up);
    }
    let standings = store.seat_standings().map_err(store_error)?;
    for (seat, reason) in &standings {
        tracing::info!(%seat, reason = reason.label(), "seat pause restored");
        switchboard.restore_pause(now, seat, *reason);
    }
    let (call_events, call_receiver) = mpsc::unbounded_channel();
    let ports = Arc::new(
        PortPool::new(config.media.rtp_port_min, config.media.rtp_port_max)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e.to_string()))?
            .with_parked_max(parked_pairs_max(open_files, &config.limits)),
    );
    crate::media::ports::warn_if_ephemeral(config.media.rtp_port_min, config.media.rtp_port_max);
    crate::media::relay::set_relay_threads(config.media.relay_threads);
    let kernel_path = config
        .media
        .kernel_relay
        .then(|| crate::media::kernel::start(config.media.rtp_ip))
        .flatten()
        .map(|legs| crate::media::relay::KernelPath {
            legs,
            relayed: Some(metrics.kernel_relayed.clone()),
        });
    metrics
        .kernel_relay_active
        .set(i64::from(kernel_path.is_some()));
    for warning in config.transport_warnings() {
        tracing::warn!("{warning}");
    }
    let (cti, cti_commands) = CtiChannels::new(1024);
    let trunk_link = crate::net::sip_tls_out::LinkState::default();
    let srtp = Arc::new(crate::media::srtp::SrtpPolicies::from_config(&config));
    let wallboard = crate::net::wallboard::WallboardFeed::default();
    // Line switches shared with the other nodes through the shared store.
    let (shared_lines, line_sync_task) = match &config.shared_store {
        Some(shared) => {
            let (mut sync, task) = crate::shared_store::lines::LineSync::start(
                shared.clone(),
                config.node.name.clone(),
                call_events.clone(),
                shutdown.clone(),
            );
            // Changes made before a restart that the shared store never got: sent first.
            for change in store.unshared_lines().map_err(store_error)? {
                tracing::warn!(line = %change.line, "line change not yet shared: sent again");
                sync.resend(change);
            }
            (Some(sync), Some(task))
        }
        None => (None, None),
    };
    let mut driver = CallDriver {
        router: {
            let mut router = Router::new(switchboard, now);
            router.set_liveness(LivenessSettings {
                caller_silence_ms: u64::from(config.media.caller_rtp_timeout_s) * SECOND,
                seat_silence_ms: u64::from(config.media.seat_rtp_timeout_s) * SECOND,
            });
            // Restored registrations: their seats online at once, each contact's expiry
            // armed on the monotonic clock.
            let wall = wall_clock_now();
            for seat in restored {
                tracing::info!(%seat, "registration restored");
                let contacts = match registry.0.lock() {
                    Ok(r) => r.registrar.time_left(&seat, wall),
                    Err(_) => continue,
                };
                router.handle(now, RouterInput::Registration { seat, contacts });
            }
            for (line, switch) in store.line_switches().map_err(store_error)? {
                tracing::warn!(%line, by = %switch.by, "line still switched to the backup centre");
                metrics.line_switched.with_label_values(&[&line]).set(1);
                router.restore_switch(&line, switch);
            }
            router
        },
        clock,
        dialogs: dialogs.clone(),
        state_sender: state_sender.clone(),
        seats: Arc::new(registry.clone()),
        store: store.clone(),
        writer,
        metrics: metrics.clone(),
        contact: contact.clone(),
        sdp_ip: config.media.public_ip.unwrap_or(config.media.rtp_ip),
        events: call_events.clone(),
        trunk_out: config.trunk.outbound.map(|addr| SipAddr {
            r#type: Some(match config.trunk.outbound_transport {
                OutboundTransport::Udp => rsipstack::sip::Transport::Udp,
                OutboundTransport::Tls => rsipstack::sip::Transport::Tls,
            }),
            addr: addr.into(),
        }),
        tls_contact: tls_contact.clone(),
        trunk_link: trunk_link.clone(),
        recordings: config
            .recording
            .enabled
            .then(|| Recordings::from_config(&config).root().to_path_buf()),
        writes: Default::default(),
        cti: cti.clone(),
        last_waiting: None,
        webrtc: (&config.media).into(),
        srtp: Arc::clone(&srtp),
        webrtc_offers: 0,
        seat_rtp_timeout_ms: u64::from(config.media.seat_rtp_timeout_s) * 1000,
        caller_rtp_timeout_ms: u64::from(config.media.caller_rtp_timeout_s) * 1000,
        journal: crate::store::journal::Journal::with_seats(standings),
        tracking: Default::default(),
        overload: overload.clone(),
        wallboard: crate::net::wallboard::Wallboard::start(
            &store,
            Arc::clone(&plans),
            config.wallboard.thresholds(),
            wallboard.clone(),
            now.wall,
        )
        .map_err(store_error)?,
        shared_lines,
        // Only a duplicate name fails, a programming error Metrics::new also panics on.
        supervisor_actions: SupervisorActions::register(&metrics.registry)
            .expect("unique metric name"),
        node: config.node.name.clone(),
    };
    let draining = CancellationToken::new();
    let dispatcher = Arc::new(Dispatcher {
        dialogs,
        state_sender,
        registry: registry.clone(),
        peers,
        trunk_pinned: (!pins.is_empty()).then_some(pinned_flows),
        tls_contact,
        webrtc: (&config.media).into(),
        plans: Arc::clone(&plans),
        ports,
        rtp_ip: config.media.rtp_ip,
        contact,
        calls: call_events.clone(),
        sequence: AtomicU64::new(0),
        relay_metrics: crate::media::relay::RelayMetrics {
            relayed: Some(metrics.rtp_packets.clone()),
            srtp_rejected: Some(metrics.srtp_rejected.clone()),
            kernel: kernel_path,
        },
        srtp: Arc::clone(&srtp),
        draining: draining.clone(),
        retry_after_s: config.shutdown.retry_after_s,
        bans: bans.clone(),
        no_port_log: std::sync::Mutex::new(limits::LogThrottle::new(log_every)),
        overload: overload.clone(),
    });

    let http_listener = doorway(bind(config.http.listen).await?, "http");
    let http_addr = http_listener.local_addr()?;
    let https_listener = match (config.http.tls_listen, &tls) {
        (Some(addr), Some(tls)) => Some((doorway(bind(addr).await?, "https"), tls.clone())),
        _ => None,
    };
    let https = match &https_listener {
        Some((listener, _)) => Some(listener.local_addr()?),
        None => None,
    };
    let recordings = Recordings::from_config(&config);
    let purge_every =
        std::time::Duration::from_secs(config.recording.purge_interval_h as u64 * 3600);
    let purge = purge_recordings(
        recordings.clone(),
        store.clone(),
        purge_every,
        shutdown.clone(),
    );
    // CTI: the HTTP side sends commands and hears events; the call driver answers them.
    let shipping_store = store.clone();
    let http_state = Arc::new(HttpState {
        metrics: metrics.clone(),
        store,
        recordings,
        admin_token,
        metrics_token,
        plans: Arc::clone(&plans),
        cti: cti.clone(),
        cti_accounts: CtiAccounts::from_config(&config),
        bans,
        header_timeout: config.limits.header_timeout(),
        shared: config.shared_store.clone(),
        wallboard,
        wallboard_token: config.wallboard.token.clone(),
    });
    let shipper = match &config.shared_store {
        Some(shared) => {
            let metrics = ShipperMetrics::register(&metrics.registry)
                .map_err(|e| std::io::Error::other(e.to_string()))?;
            let shipper = Shipper::new(
                shipping_store,
                shared.clone(),
                config.node.name.clone(),
                metrics,
                log_every,
            );
            let stop = CancellationToken::new();
            Some((tokio::spawn(shipper.run(stop.clone())), stop))
        }
        None => None,
    };

    driver.publish_start();
    let driver = tokio::spawn(driver.run(
        call_receiver,
        state_receiver,
        cti_commands,
        shutdown.clone(),
    ));
    let mut tasks: Vec<JoinHandle<()>> = line_sync_task.into_iter().collect();
    for listener in ws_listeners {
        let run = listener.run(endpoint.inner.clone(), shutdown.clone());
        tasks.push(tokio::spawn(run));
    }
    for listener in tcp_listener.into_iter().chain(tls_listener) {
        let run = listener.run(endpoint.inner.clone(), shutdown.clone());
        tasks.push(tokio::spawn(run));
    }
    if let (Some(target), OutboundTransport::Tls) =
        (config.trunk.outbound, config.trunk.outbound_transport)
    {
        let dialer = TrunkDialer {
            target,
            connector: tls::trunk_connector(config.tls.as_ref(), pins)?,
            metrics: guard_metrics.clone(),
            message_timeout: config.limits.header_timeout(),
            idle_timeout: config.limits.sip_idle_timeout(),
            log_every,
            state: trunk_link.clone(),
        };
        tasks.push(tokio::spawn(
            dialer.run(endpoint.inner.clone(), shutdown.clone()),
        ));
    }
    if let (Some(target), OutboundTransport::Udp, 1..) = (
        config.trunk.outbound,
        config.trunk.outbound_transport,
        config.trunk.options_interval_s,
    ) {
        let every = std::time::Duration::from_secs(config.trunk.options_interval_s.into());
        let probe = crate::net::trunk_probe::TrunkProbe::new(target, every, &metrics);
        tasks.push(tokio::spawn(probe.run(shutdown.clone())));
    }
    tasks.push(tokio::spawn(async move { endpoint.serve().await }));
    tasks.push(tokio::spawn(dispatcher.run(incoming)));
    let probes = overload.run_probes(call_events.clone(), shutdown.clone());
    tasks.push(tokio::spawn(probes));
    if let Some((listener, tls)) = https_listener {
        let serve = http::serve_tls(listener, tls, http_state.clone(), shutdown.clone());
        tasks.push(tokio::spawn(serve));
    }
    tasks.push(tokio::spawn(http::serve(
        http_listener,
        http_state,
        shutdown.clone(),
    )));
    tasks.push(tokio::spawn(purge));
    tasks.push(tokio::spawn(crate::net::live::watch(
        metrics.clone(),
        endpoint_inner,
        Arc::clone(&dialogs_watched),
        shutdown.clone(),
    )));
    tasks.push(tokio::spawn(Arc::clone(&plans).watch(shutdown.clone())));
    let heap = crate::heap::HeapMetrics::register(&metrics.registry)
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    let trim = crate::heap::run(heap, crate::heap::PERIOD, shutdown.clone());
    tasks.push(tokio::spawn(trim));
    tracing::info!(?sip_udp, ?sip_tcp, ?sip_tls, ?sip_ws, ?sip_wss, http = %http_addr, ?https, "sas-router started");
    Ok(Running {
        sip_udp,
        sip_tcp,
        sip_tls,
        sip_ws,
        sip_wss,
        http: http_addr,
        https,
        drain: Drain {
            draining,
            metrics: metrics.clone(),
            limit: std::time::Duration::from_secs(config.shutdown.drain_s.into()),
        },
        metrics,
        shutdown,
        driver,
        tasks,
        shipper,
    })
}

/// Deletes recordings past retention at start-up and every `every`, until shutdown. The
/// purge does blocking file and sled IO, so it runs on the blocking pool.
async fn purge_recordings(
    recordings: Recordings,
    store: Store,
    every: std::time::Duration,
    shutdown: CancellationToken,
) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        let (r, s) = (recordings.clone(), store.clone());
        let run = tokio::task::spawn_blocking(move || r.purge(wall_clock_now(), &s, "retention"));
        match run.await {
            Ok(Ok(report)) => tracing::info!(
                deleted = report.deleted,
                kept = report.kept,
                failed = report.failed,
                unrecognised = report.unrecognised,
                bytes_freed = report.bytes_freed,
                "recording purge done"
            ),
            Ok(Err(e)) => tracing::error!(error = %e, "recording purge stopped"),
            Err(e) => tracing::error!(error = %e, "recording purge task failed"),
        }
    }
}

async fn bind(addr: SocketAddr) -> Result<tokio::net::TcpListener, AppError> {
    tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| AppError::Bind { addr, source })
}

/// A free TCP port, preferring `preferred` (the UDP port) so both share one number.
fn free_tcp_port(addr: SocketAddr, preferred: Option<u16>) -> Result<u16, AppError> {
    if let Some(port) = preferred
        && std::net::TcpListener::bind(SocketAddr::new(addr.ip(), port)).is_ok()
    {
        return Ok(port);
    }
    let probe =
        std::net::TcpListener::bind(addr).map_err(|source| AppError::Bind { addr, source })?;
    Ok(probe.local_addr()?.port())
}
