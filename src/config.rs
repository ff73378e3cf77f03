//! Router configuration: parsed from TOML, then validated as a whole.
//!
//! Every key is documented in the shipped `config/sas-router.toml`. Parsing gives
//! [`ConfigError::Parse`] with the TOML location; [`Config::validate`] gives errors that
//! name the offending key.

use serde::Deserialize;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use thiserror::Error;

use crate::sip::digest::{DigestAlgorithm, SeatCredential};

mod runtime;
mod transport_checks;
mod wallboard;
use crate::sip::digest_policy::{SeatDigest, TransportAlgorithms};
pub use runtime::RuntimeConfig;
pub use wallboard::WallboardConfig;

/// Errors from loading or validating the configuration.
#[derive(Debug, Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The IO error.
        source: std::io::Error,
    },
    /// The TOML is malformed or a key has the wrong type.
    #[error("{path}: {source}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The TOML error, with line and column.
        source: Box<toml::de::Error>,
    },
    /// A value is out of range or inconsistent with another.
    #[error("invalid configuration: `{key}`: {reason}")]
    Invalid {
        /// The dotted key at fault.
        key: String,
        /// What is wrong, in a sentence.
        reason: String,
    },
}

/// The whole configuration file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// SIP listeners and registrar settings.
    pub sip: SipConfig,
    /// Where trunk INVITEs may come from.
    pub trunk: TrunkConfig,
    /// SIP proxies (Kamailio) in front of this node; none unless set.
    #[serde(default)]
    pub edge: EdgeConfig,
    /// Where the dial plans are.
    #[serde(default)]
    pub routing: RoutingConfig,
    /// Queue and seat timing.
    #[serde(default)]
    pub acd: AcdConfig,
    /// RTP anchoring.
    #[serde(default)]
    pub media: MediaConfig,
    /// HTTP server (metrics, health).
    #[serde(default)]
    pub http: HttpConfig,
    /// Certificate and key for `sip.wss` and `http.tls_listen`.
    #[serde(default)]
    pub tls: Option<TlsConfig>,
    /// Data directory (sled database).
    #[serde(default)]
    pub store: StoreConfig,
    /// This router's name among the nodes (rows of the shared store say who wrote them).
    #[serde(default)]
    pub node: crate::shared_store::NodeConfig,
    /// PostgreSQL shared by every node for records and audit entries; off unless set.
    #[serde(default)]
    pub shared_store: Option<crate::shared_store::SharedStoreConfig>,
    /// Call recordings and their retention.
    #[serde(default)]
    pub recording: RecordingConfig,
    /// What SIGTERM does.
    #[serde(default)]
    pub shutdown: ShutdownConfig,
    /// Logging.
    #[serde(default)]
    pub log: LogConfig,
    /// Connection caps and timeouts of every TCP listener.
    #[serde(default)]
    pub limits: crate::net::limits::LimitSettings,
    /// Password-guessing defence (SIP digest and console login).
    #[serde(default)]
    pub bans: crate::bans::BanSettings,
    /// Overload control: when new trunk calls are shed.
    #[serde(default)]
    pub overload: crate::net::overload::OverloadSettings,
    /// The live wallboard: wall displays' token, amber and red thresholds.
    #[serde(default)]
    pub wallboard: WallboardConfig,
    /// Worker threads of the async runtime.
    #[serde(default)]
    pub runtime: RuntimeConfig,
    /// Seats allowed to register.
    #[serde(default)]
    pub seats: Vec<SeatConfig>,
}

/// `[sip]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SipConfig {
    /// UDP listen address.
    #[serde(default = "default_sip_addr")]
    pub udp: Option<SocketAddr>,
    /// TCP listen address.
    #[serde(default = "default_sip_addr")]
    pub tcp: Option<SocketAddr>,
    /// SIP over WebSocket (RFC 7118) listen address, for WebRTC phones.
    #[serde(default)]
    pub ws: Option<SocketAddr>,
    /// SIP over secure WebSocket listen address (needs `[tls]`).
    #[serde(default)]
    pub wss: Option<SocketAddr>,
    /// SIP over TLS (RFC 3261 §26.2, `sips:`) listen address, e.g. `0.0.0.0:5061` (needs
    /// `[tls]`; off unless set).
    #[serde(default)]
    pub tls: Option<SocketAddr>,
    /// Digest realm for seats.
    #[serde(default = "default_realm")]
    pub realm: String,
    /// Lifetime of a digest nonce, seconds.
    #[serde(default = "default_nonce_lifetime")]
    pub nonce_lifetime_s: u32,
    /// Shortest registration accepted (423 below).
    #[serde(default = "default_min_expires")]
    pub min_expires_s: u32,
    /// Longest registration granted (clamped above).
    #[serde(default = "default_max_expires")]
    pub max_expires_s: u32,
    /// Registration length when the seat asks none.
    #[serde(default = "default_expires")]
    pub default_expires_s: u32,
    /// `[sip.digest]`: digest algorithms challenged with, per transport (default MD5 only).
    #[serde(default)]
    pub digest: TransportAlgorithms,
}

fn default_sip_addr() -> Option<SocketAddr> {
    Some(SocketAddr::from(([127, 0, 0, 1], 5060)))
}
fn default_realm() -> String {
    "sas-router".into()
}
fn default_nonce_lifetime() -> u32 {
    300
}
fn default_min_expires() -> u32 {
    60
}
fn default_max_expires() -> u32 {
    3600
}
fn default_expires() -> u32 {
    600
}

/// `[trunk]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrunkConfig {
    /// Source IP addresses of the operator's trunk; INVITEs from anywhere else get 403.
    pub addresses: Vec<IpAddr>,
    /// Where the router sends calls out (dial plan `forward` steps), `ip:port`. Without
    /// it, a call reaching a forward waits in its last queue instead.
    #[serde(default)]
    pub outbound: Option<SocketAddr>,
    /// How calls go out to `outbound`: `udp` (default) or `tls` (needs `sip.tls` and
    /// `tls_pinned_sha256`: the operator's certificate is checked against the pins).
    #[serde(default)]
    pub outbound_transport: OutboundTransport,
    /// SHA-256 fingerprints (hex, `:` allowed) of the operator's certificates. When set,
    /// the trunk is only recognised on a `sip.tls` connection whose client certificate is
    /// one of these (mutual TLS); a trunk address on another transport, or presenting
    /// another certificate or none, is not the trunk.
    #[serde(default)]
    pub tls_pinned_sha256: Vec<String>,
    /// SDES-SRTP with the trunk (`off`, `optional`: taken when offered, `required`).
    #[serde(default)]
    pub srtp: crate::media::srtp::SrtpPolicy,
    /// Seconds between OPTIONS probes of `outbound` over UDP (`net::trunk_probe`); 0: none.
    #[serde(default)]
    pub options_interval_s: u32,
}

/// `[edge]`: the SIP proxies in front of this node (docs/deployment.md). A request from
/// one of them is the trunk's when it carries `X-SAS-Origin: trunk` (the proxy adds it to
/// what it relays from the trunk and strips it from everything else), a seat's otherwise.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EdgeConfig {
    /// Source IP addresses of the proxies (each Kamailio host, and a floating address).
    #[serde(default)]
    pub addresses: Vec<IpAddr>,
}

impl Config {
    /// The trunk's and the proxies' addresses.
    pub fn peers(&self) -> sas_core::sip::origin::Peers {
        sas_core::sip::origin::Peers {
            trunk: self.trunk.addresses.clone(),
            edge: self.edge.addresses.clone(),
        }
    }
}

/// `[trunk] outbound_transport`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OutboundTransport {
    /// Plain UDP.
    #[default]
    Udp,
    /// TLS, one connection kept open to the operator.
    Tls,
}

impl TrunkConfig {
    /// `options_interval_s` needs a UDP `outbound` to probe (a TLS one has its link's
    /// keep-alive).
    fn check_probe(&self) -> Result<(), ConfigError> {
        let why = match (
            self.options_interval_s,
            self.outbound,
            self.outbound_transport,
        ) {
            (0, _, _) | (_, Some(_), OutboundTransport::Udp) => return Ok(()),
            (_, None, _) => "needs trunk.outbound, the address to probe",
            (_, Some(_), OutboundTransport::Tls) => {
                "probes go over UDP; with outbound_transport = \"tls\" set it to 0 (the TLS \
                 link's keep-alive watches the trunk)"
            }
        };
        Err(ConfigError::Invalid {
            key: "trunk.options_interval_s".into(),
            reason: why.into(),
        })
    }

    /// The pinned fingerprints (validated by [`Config::validate`]; bad ones are left out).
    pub fn pins(&self) -> crate::net::tls_pin::Pins {
        let parsed = self.tls_pinned_sha256.iter();
        crate::net::tls_pin::Pins(
            parsed
                .filter_map(|p| crate::net::tls_pin::Fingerprint::parse(p))
                .collect(),
        )
    }
}

/// `[routing]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoutingConfig {
    /// Directory of the dial plan files (`*.toml`), read at start-up.
    #[serde(default = "default_dialplans_dir")]
    pub dialplans_dir: PathBuf,
}

fn default_dialplans_dir() -> PathBuf {
    PathBuf::from("dialplans")
}

impl Default for RoutingConfig {
    fn default() -> Self {
        Self {
            dialplans_dir: default_dialplans_dir(),
        }
    }
}

/// `[acd]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AcdConfig {
    /// Seconds a seat may ring before the offer is withdrawn (ring-no-answer).
    #[serde(default = "default_ring_timeout")]
    pub ring_timeout_s: u32,
    /// Seconds of wrap-up after a call before the seat is offered again.
    #[serde(default = "default_wrap_up")]
    pub wrap_up_s: u32,
    /// Pause a seat that rejects or lets an offer ring out.
    #[serde(default = "default_true")]
    pub autopause: bool,
    /// Seconds after which an autopaused seat is back in distribution by itself (0: only
    /// the seat or a supervisor resumes it).
    #[serde(default = "default_autopause_resume")]
    pub autopause_resume_s: u32,
    /// This many seats missing offers within one ring timeout is an overload or a network
    /// fault, not their doing: none is paused for it (0: no such rule).
    #[serde(default = "default_autopause_burst")]
    pub autopause_burst: usize,
    /// Calls abandoned before this many seconds are misdials, not abandons.
    #[serde(default = "default_misdial")]
    pub misdial_threshold_s: u32,
    /// Seconds of waiting worth one priority level, so no call starves (0: strict order).
    #[serde(default = "default_aging_step")]
    pub aging_step_s: u32,
    /// `[[acd.queues]]`: settings of particular queues (others use the defaults).
    #[serde(default)]
    pub queues: Vec<QueueConfig>,
}

/// `[[acd.queues]]`: one queue's distribution settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueueConfig {
    /// Seat role served.
    pub role: String,
    /// Required skill: the queue of the seats of `role` that have it.
    #[serde(default)]
    pub skill: Option<String>,
    /// `longest_idle` (default), `round_robin`, `ring_all` or `fewest_calls`.
    #[serde(default)]
    pub strategy: crate::acd::Strategy,
    /// Wrap-up after this queue's calls (default: `acd.wrap_up_s`).
    #[serde(default)]
    pub wrap_up_s: Option<u32>,
    /// Calls allowed to wait; more are refused and follow the dial plan step's overflow
    /// at once (or are refused busy when it has none).
    #[serde(default)]
    pub max_waiting: Option<usize>,
    /// Seconds a seat that missed one of this queue's calls stays autopaused (default:
    /// `acd.autopause_resume_s`; 0: until resumed).
    #[serde(default)]
    pub autopause_resume_s: Option<u32>,
}

impl QueueConfig {
    /// The ACD's view of these settings.
    pub fn acd(&self) -> (crate::acd::QueueKey, crate::acd::QueueSettings) {
        let key = crate::acd::QueueKey {
            role: self.role.clone(),
            skill: self.skill.clone(),
        };
        let settings = crate::acd::QueueSettings {
            strategy: self.strategy,
            wrap_up_ms: self.wrap_up_s.map(|s| u64::from(s) * crate::time::SECOND),
            max_waiting: self.max_waiting,
            autopause_resume_ms: self
                .autopause_resume_s
                .map(|s| u64::from(s) * crate::time::SECOND),
        };
        (key, settings)
    }
}

fn default_ring_timeout() -> u32 {
    15
}
fn default_wrap_up() -> u32 {
    10
}
fn default_true() -> bool {
    true
}
fn default_misdial() -> u32 {
    15
}
fn default_aging_step() -> u32 {
    60
}
fn default_autopause_resume() -> u32 {
    60
}
fn default_autopause_burst() -> usize {
    3
}

impl Default for AcdConfig {
    fn default() -> Self {
        Self {
            ring_timeout_s: default_ring_timeout(),
            wrap_up_s: default_wrap_up(),
            autopause: true,
            autopause_resume_s: default_autopause_resume(),
            autopause_burst: default_autopause_burst(),
            misdial_threshold_s: default_misdial(),
            aging_step_s: default_aging_step(),
            queues: Vec::new(),
        }
    }
}

/// `[media]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MediaConfig {
    /// Local address RTP sockets bind to.
    #[serde(default = "default_rtp_ip")]
    pub rtp_ip: IpAddr,
    /// Address written into SDP (defaults to `rtp_ip`); set it behind NAT.
    #[serde(default)]
    pub public_ip: Option<IpAddr>,
    /// Local address the ICE host candidates of WebRTC seat legs bind to (defaults to
    /// `rtp_ip`); `public_ip`, when set, is what the candidates advertise instead.
    #[serde(default)]
    pub webrtc_ip: Option<IpAddr>,
    /// First RTP port (even). A call takes three RTP/RTCP pairs.
    #[serde(default = "default_rtp_min")]
    pub rtp_port_min: u16,
    /// Last RTP port.
    #[serde(default = "default_rtp_max")]
    pub rtp_port_max: u16,
    /// Directory of the announcement WAV files named by the dial plans.
    #[serde(default = "default_prompts_dir")]
    pub prompts_dir: PathBuf,
    /// A SIP seat's phone that sends no RTP for this long while it should (not on hold) is
    /// taken for dead: its leg is hung up and its caller waits again. 0: never.
    #[serde(default = "default_seat_rtp_timeout_s")]
    pub seat_rtp_timeout_s: u32,
    /// A trunk caller (answered) that sends neither RTP nor RTCP for this long has its
    /// dialog probed with an in-dialog OPTIONS; if that goes unanswered the caller is
    /// taken for gone (`caller_lost`). Generous: a silent caller may be unable to speak.
    /// 0: never.
    #[serde(default = "default_caller_rtp_timeout_s")]
    pub caller_rtp_timeout_s: u32,
    /// Threads relaying RTP, each for many calls' sockets in batches. 0: one per core.
    #[serde(default)]
    pub relay_threads: usize,
    /// Relay plain two-party bridges in the kernel (eBPF; needs `CAP_BPF` and
    /// `CAP_NET_ADMIN`, else every call relays in userspace, said once at start-up).
    #[serde(default)]
    pub kernel_relay: bool,
}

fn default_caller_rtp_timeout_s() -> u32 {
    60
}

fn default_seat_rtp_timeout_s() -> u32 {
    30
}

fn default_prompts_dir() -> PathBuf {
    PathBuf::from("dialplans/prompts")
}

fn default_rtp_ip() -> IpAddr {
    IpAddr::from([127, 0, 0, 1])
}
fn default_rtp_min() -> u16 {
    20000
}
fn default_rtp_max() -> u16 {
    29999
}

impl MediaConfig {
    /// Where WebRTC legs bind their ICE sockets: `webrtc_ip`, else `rtp_ip`.
    pub fn webrtc_bind_ip(&self) -> IpAddr {
        self.webrtc_ip.unwrap_or(self.rtp_ip)
    }
}

impl Default for MediaConfig {
    fn default() -> Self {
        Self {
            rtp_ip: default_rtp_ip(),
            public_ip: None,
            webrtc_ip: None,
            rtp_port_min: default_rtp_min(),
            rtp_port_max: default_rtp_max(),
            prompts_dir: default_prompts_dir(),
            seat_rtp_timeout_s: default_seat_rtp_timeout_s(),
            caller_rtp_timeout_s: default_caller_rtp_timeout_s(),
            relay_threads: 0,
            kernel_relay: false,
        }
    }
}

/// `[http]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    /// Listen address of `/metrics` and `/healthz` (and the APIs), plain HTTP.
    #[serde(default = "default_http")]
    pub listen: SocketAddr,
    /// HTTPS listen address serving the same routes (needs `[tls]`).
    #[serde(default)]
    pub tls_listen: Option<SocketAddr>,
}

/// `[tls]`: PEM files of the router's certificate (chain first) and private key.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// Certificate chain, PEM.
    pub cert: PathBuf,
    /// Private key (PKCS#8, PKCS#1 or SEC1), PEM.
    pub key: PathBuf,
}

fn default_http() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8080))
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            listen: default_http(),
            tls_listen: None,
        }
    }
}

/// `[store]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreConfig {
    /// Directory of the sled database; relative paths are relative to the working directory.
    #[serde(default = "default_data_dir")]
    pub data_dir: PathBuf,
    /// sled's page cache, MiB: bounds the memory the store takes however many calls it
    /// holds (sled's own default is 1 GiB). sled counts pages at their size on disk; in
    /// memory they take more (loadtest/README.md).
    #[serde(default = "default_cache_capacity_mb")]
    pub cache_capacity_mb: u32,
    /// sled writes its buffered changes out at least this often, ms. What a crash can lose
    /// is bounded by the commit log instead (see `checkpoint_ms`).
    #[serde(default = "default_flush_every_ms")]
    pub flush_every_ms: u32,
    /// The store writer's batch window, ms: a write waits at most this long for others to
    /// share its wake-up and its `write(2)` to the commit log. What a `kill -9` can take
    /// (those calls come back `interrupted` from the journal).
    #[serde(default = "default_batch_window_ms")]
    pub batch_window_ms: u32,
    /// The group commit's window, ms: a logged record (or wrap-up entry) waits at most this
    /// long for others to share its `fdatasync` of the commit log, and is confirmed after
    /// it. What a power loss can take of records finished but not yet confirmed; longer
    /// means fewer syncs per call.
    #[serde(default = "default_group_commit_ms")]
    pub group_commit_ms: u32,
    /// How often, at most, sled is flushed (a checkpoint): in between, writes are made
    /// durable in the commit log (`<data_dir>/commit.log`), replayed at start. Longer
    /// means fewer sled flushes and more to replay after a crash.
    #[serde(default = "default_checkpoint_ms")]
    pub checkpoint_ms: u32,
}

fn default_data_dir() -> PathBuf {
    PathBuf::from("./data")
}
fn default_cache_capacity_mb() -> u32 {
    16
}
fn default_flush_every_ms() -> u32 {
    200
}
fn default_batch_window_ms() -> u32 {
    2
}
fn default_group_commit_ms() -> u32 {
    10
}
fn default_checkpoint_ms() -> u32 {
    1000
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            data_dir: default_data_dir(),
            cache_capacity_mb: default_cache_capacity_mb(),
            flush_every_ms: default_flush_every_ms(),
            batch_window_ms: default_batch_window_ms(),
            group_commit_ms: default_group_commit_ms(),
            checkpoint_ms: default_checkpoint_ms(),
        }
    }
}

impl StoreConfig {
    /// The sled settings.
    pub fn options(&self) -> crate::store::StoreOptions {
        crate::store::StoreOptions {
            cache_capacity: u64::from(self.cache_capacity_mb) * 1024 * 1024,
            flush_every_ms: u64::from(self.flush_every_ms),
        }
    }

    /// The store writer's batching.
    pub fn writer_options(&self) -> crate::store::writer::WriterOptions {
        crate::store::writer::WriterOptions {
            batch_window: std::time::Duration::from_millis(u64::from(self.batch_window_ms)),
            group_commit: std::time::Duration::from_millis(u64::from(self.group_commit_ms)),
            checkpoint: std::time::Duration::from_millis(u64::from(self.checkpoint_ms)),
            ..Default::default()
        }
    }
}

/// `[shutdown]`: SIGTERM drains, a second SIGTERM (or SIGINT) stops at once.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShutdownConfig {
    /// Seconds calls in progress may go on after SIGTERM (new ones get 503 with
    /// Retry-After); those still going then are ended and recorded.
    #[serde(default = "default_drain_s")]
    pub drain_s: u32,
    /// The Retry-After of the 503 sent to new calls while draining, seconds.
    #[serde(default = "default_retry_after_s")]
    pub retry_after_s: u32,
}

fn default_drain_s() -> u32 {
    30
}
fn default_retry_after_s() -> u32 {
    30
}

impl Default for ShutdownConfig {
    fn default() -> Self {
        Self {
            drain_s: default_drain_s(),
            retry_after_s: default_retry_after_s(),
        }
    }
}

/// `[recording]`: every answered call is recorded under `<store.data_dir>/recordings`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordingConfig {
    /// Record calls (existing recordings are purged on schedule either way).
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// Days a recording is kept at least; older ones are purged (1827 days ≈ 5 years).
    #[serde(default = "default_retention_days")]
    pub retention_days: u32,
    /// Hours between purge runs (one also runs at start-up).
    #[serde(default = "default_purge_interval")]
    pub purge_interval_h: u32,
}

fn default_retention_days() -> u32 {
    1827
}
fn default_purge_interval() -> u32 {
    24
}

impl Default for RecordingConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            retention_days: default_retention_days(),
            purge_interval_h: default_purge_interval(),
        }
    }
}

/// `[log]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    /// `text` or `json`.
    #[serde(default = "default_log_format")]
    pub format: String,
    /// A `tracing` filter, e.g. `info` or `sas_router=debug`.
    #[serde(default = "default_log_level")]
    pub level: String,
}

fn default_log_format() -> String {
    "text".into()
}
fn default_log_level() -> String {
    "info".into()
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            format: default_log_format(),
            level: default_log_level(),
        }
    }
}

/// `[[seats]]`: a seat (a person's SIP account).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeatConfig {
    /// SIP user name (also the seat id).
    pub username: String,
    /// Display name.
    #[serde(default)]
    pub name: String,
    /// Role; `arm` seats take entry calls.
    #[serde(default = "default_role")]
    pub role: String,
    /// Hex MD5(username:realm:password).
    #[serde(default)]
    pub ha1_md5: Option<String>,
    /// Hex SHA-256(username:realm:password) (RFC 8760).
    #[serde(default)]
    pub ha1_sha256: Option<String>,
    /// Argon2 PHC string (`$argon2id$…`) of the console password; without it the console
    /// logs in with the SIP password, checked against the HA1s.
    #[serde(default)]
    pub console_password: Option<String>,
    /// Skills (`pédiatrie`, `langue:en`): the seat also serves queues requiring them.
    #[serde(default)]
    pub skills: Vec<String>,
    /// This seat's wrap-up, overriding its queues' and `acd.wrap_up_s`.
    #[serde(default)]
    pub wrap_up_s: Option<u32>,
    /// Digest algorithms this seat is challenged with, overriding `[sip.digest]` (on every
    /// transport, or on those given). Makes the seat's 401 distinguishable from others'.
    #[serde(default)]
    pub digest: Option<SeatDigest>,
    /// The transports this seat may register and call over (`["tls"]` for a remote
    /// regulator; any of `udp`, `tcp`, `tls`, `ws`, `wss`); others get 403. Default: any.
    #[serde(default)]
    pub transports: Option<Vec<crate::sip::seat_transports::SeatTransport>>,
    /// SDES-SRTP with this seat's phone (`off`, `optional`: taken when its phone offers
    /// it, `required`: the calls offered to it are SRTP, its plain offers refused).
    #[serde(default)]
    pub srtp: crate::media::srtp::SrtpPolicy,
}

impl SeatConfig {
    /// The seat's digest credential, its challenge lists resolved against `defaults`.
    pub fn credential(&self, defaults: &TransportAlgorithms) -> SeatCredential {
        SeatCredential {
            username: self.username.clone(),
            ha1_md5: self.ha1_md5.clone(),
            ha1_sha256: self.ha1_sha256.clone(),
            algorithms: self.digest.as_ref().map(|d| d.resolve(defaults)),
            transports: self.transports.clone(),
        }
    }
}

fn default_role() -> String {
    "arm".into()
}

impl Config {
    /// Parses TOML text; `path` is only used in error messages.
    pub fn from_toml(text: &str, path: &Path) -> Result<Self, ConfigError> {
        toml::from_str(text).map_err(|source| ConfigError::Parse {
            path: path.to_owned(),
            source: Box::new(source),
        })
    }

    /// Reads, parses and validates a file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let config = Self::from_toml(&text, path)?;
        config.validate()?;
        Ok(config)
    }

    /// Checks values that TOML types cannot express.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |key: &str, reason: String| ConfigError::Invalid {
            key: key.into(),
            reason,
        };
        if self.sip.udp.is_none() && self.sip.tcp.is_none() {
            return Err(invalid(
                "sip",
                "at least one of udp or tcp is needed".into(),
            ));
        }
        if self.tls.is_none() {
            let needs_tls = [
                ("sip.wss", self.sip.wss.is_some()),
                ("http.tls_listen", self.http.tls_listen.is_some()),
                ("sip.tls", self.sip.tls.is_some()),
            ];
            if let Some((key, _)) = needs_tls.iter().find(|(_, set)| *set) {
                return Err(invalid(key, "needs a [tls] section (cert and key)".into()));
            }
        }
        if let Some((key, reason)) = self.runtime.defect() {
            return Err(invalid(key, reason));
        }
        if self.media.kernel_relay && !crate::media::kernel::BUILT {
            return Err(invalid(
                "media.kernel_relay",
                "this sas-router was built without the `kernel-relay` cargo feature".into(),
            ));
        }
        if self.store.cache_capacity_mb == 0 {
            return Err(invalid(
                "store.cache_capacity_mb",
                "must be at least 1".into(),
            ));
        }
        if !(1..=60_000).contains(&self.store.flush_every_ms) {
            return Err(invalid(
                "store.flush_every_ms",
                "must be between 1 and 60000".into(),
            ));
        }
        if !(1..=600_000).contains(&self.store.checkpoint_ms) {
            return Err(invalid(
                "store.checkpoint_ms",
                "must be between 1 and 600000".into(),
            ));
        }
        self.node.validate()?;
        if let Some(shared) = &self.shared_store {
            shared.validate()?;
        }
        if self.sip.min_expires_s > self.sip.max_expires_s {
            return Err(invalid(
                "sip.min_expires_s",
                "must not exceed sip.max_expires_s".into(),
            ));
        }
        if self.trunk.addresses.is_empty() && self.edge.addresses.is_empty() {
            return Err(invalid(
                "trunk.addresses",
                "list at least one trunk address (or a proxy in edge.addresses); calls from \
                 anywhere else are refused"
                    .into(),
            ));
        }
        if let Some(both) = (self.edge.addresses.iter()).find(|a| self.trunk.addresses.contains(a))
        {
            return Err(invalid(
                "edge.addresses",
                format!(
                    "{both} is also in trunk.addresses: a proxy's requests are the trunk's only \
                     when it marks them (X-SAS-Origin: trunk); list it in edge.addresses only"
                ),
            ));
        }
        self.check_trunk_tls()?;
        self.trunk.check_probe()?;
        if self.media.rtp_port_min >= self.media.rtp_port_max {
            return Err(invalid(
                "media.rtp_port_min",
                "must be below media.rtp_port_max".into(),
            ));
        }
        if self.acd.ring_timeout_s == 0 {
            return Err(invalid("acd.ring_timeout_s", "must be at least 1".into()));
        }
        if self.recording.retention_days == 0 {
            return Err(invalid(
                "recording.retention_days",
                "must be at least 1 (0 would purge every recording as soon as it is made)".into(),
            ));
        }
        if self.recording.purge_interval_h == 0 {
            return Err(invalid(
                "recording.purge_interval_h",
                "must be at least 1".into(),
            ));
        }
        let mut queues = std::collections::HashSet::new();
        for (i, q) in self.acd.queues.iter().enumerate() {
            if !queues.insert((q.role.as_str(), q.skill.as_deref())) {
                return Err(invalid(
                    &format!("acd.queues[{i}]"),
                    "this role and skill are configured twice".into(),
                ));
            }
            if q.max_waiting == Some(0) {
                return Err(invalid(
                    &format!("acd.queues[{i}].max_waiting"),
                    "must be at least 1 (omit it for no limit)".into(),
                ));
            }
        }
        self.sip
            .digest
            .check()
            .map_err(|e| invalid("sip.digest", e.to_string()))?;
        let defences = [
            self.limits.check(),
            self.bans.check(),
            self.overload.check(),
        ];
        if let Some((key, reason)) = defences.into_iter().find_map(Result::err) {
            return Err(invalid(key, reason.into()));
        }
        if let Err((key, reason)) = self.wallboard.check() {
            return Err(invalid(&key, reason));
        }
        if self.limits.sip_idle_timeout_s <= self.sip.max_expires_s {
            return Err(invalid(
                "limits.sip_idle_timeout_s",
                "must exceed sip.max_expires_s, or a phone's connection would be closed \
                 between two REGISTERs (and its calls could not reach it)"
                    .into(),
            ));
        }
        let mut users = std::collections::HashSet::new();
        for (i, seat) in self.seats.iter().enumerate() {
            if !users.insert(seat.username.as_str()) {
                return Err(invalid(
                    &format!("seats[{i}].username"),
                    format!("{} is listed twice", seat.username),
                ));
            }
            if seat.ha1_md5.is_none() && seat.ha1_sha256.is_none() {
                return Err(invalid(
                    &format!("seats[{i}]"),
                    "give ha1_md5 and/or ha1_sha256 (see `sas-router hash-password`)".into(),
                ));
            }
            for (key, value, len) in [
                ("ha1_md5", &seat.ha1_md5, 32),
                ("ha1_sha256", &seat.ha1_sha256, 64),
            ] {
                if let Some(v) = value
                    && (v.len() != len || !v.bytes().all(|b| b.is_ascii_hexdigit()))
                {
                    return Err(invalid(
                        &format!("seats[{i}].{key}"),
                        format!("must be {len} hexadecimal characters"),
                    ));
                }
            }
            self.check_seat_digest(i, seat)?;
            self.check_seat_transports(i, seat)?;
            if let Some(phc) = &seat.console_password
                && (!phc.starts_with("$argon2") || argon2::PasswordHash::new(phc).is_err())
            {
                return Err(invalid(
                    &format!("seats[{i}].console_password"),
                    "must be an argon2 hash (see `sas-router hash-password`)".into(),
                ));
            }
        }
        Ok(())
    }

    /// A seat is only challenged with algorithms it has an HA1 for.
    fn check_seat_digest(&self, i: usize, seat: &SeatConfig) -> Result<(), ConfigError> {
        let (key, lists) = match &seat.digest {
            Some(own) => (format!("seats[{i}].digest"), own.resolve(&self.sip.digest)),
            None => (format!("seats[{i}]"), self.sip.digest.clone()),
        };
        let invalid = |reason: String| ConfigError::Invalid {
            key: key.clone(),
            reason,
        };
        lists
            .check()
            .map_err(|e| invalid(format!("seat {}: {e}", seat.username)))?;
        let credential = seat.credential(&self.sip.digest);
        for (transport, list) in lists.lists() {
            if let Some(missing) = list.iter().find(|a| credential.ha1_for(**a).is_none()) {
                let field = match missing {
                    DigestAlgorithm::Md5 => "ha1_md5",
                    DigestAlgorithm::Sha256 => "ha1_sha256",
                };
                return Err(invalid(format!(
                    "seat {} would be challenged with {} over {transport} but has no \
                     {field}: add {field}, or give the seat a `digest` list without {}",
                    seat.username,
                    missing.token(),
                    missing.token(),
                )));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        let c = Config::from_toml(text, Path::new("test.toml"))?;
        c.validate()?;
        Ok(c)
    }

    const MINIMAL: &str = r#"
[sip]
[trunk]
addresses = ["127.0.0.1"]
"#;

    #[test]
    fn a_node_behind_a_proxy_lists_it_apart_from_the_trunk() {
        let behind = "[sip]\n[edge]\naddresses = [\"10.0.0.10\"]\n[trunk]\naddresses = []\n";
        let c = parse(behind).unwrap();
        let peers = c.peers();
        assert_eq!(peers.edge, [IpAddr::from([10, 0, 0, 10])]);
        assert!(peers.trunk.is_empty());
        let both = format!("{MINIMAL}[edge]\naddresses = [\"127.0.0.1\"]\n");
        let e = parse(&both).unwrap_err().to_string();
        assert!(
            e.contains("edge.addresses") && e.contains("127.0.0.1"),
            "{e}"
        );
        let neither = "[sip]\n[trunk]\naddresses = []\n";
        assert!(
            parse(neither)
                .unwrap_err()
                .to_string()
                .contains("edge.addresses")
        );
        assert!(
            parse(MINIMAL).unwrap().peers().edge.is_empty(),
            "no proxy by default"
        );
    }

    #[test]
    fn kernel_relay_is_off_by_default_and_refused_by_a_build_without_it() {
        assert!(!parse(MINIMAL).unwrap().media.kernel_relay);
        let on = parse(&format!("{MINIMAL}[media]\nkernel_relay = true\n"));
        match crate::media::kernel::BUILT {
            true => assert!(on.unwrap().media.kernel_relay),
            false => {
                let e = on.unwrap_err().to_string();
                assert!(
                    e.contains("media.kernel_relay") && e.contains("kernel-relay"),
                    "{e}"
                );
            }
        }
    }

    #[test]
    fn shipped_config_is_valid() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/sas-router.toml");
        let config = Config::load(&path).expect("shipped config loads");
        assert_eq!(config.routing.dialplans_dir, Path::new("dialplans"));
        assert!(!config.seats.is_empty());
    }

    #[test]
    fn limits_and_bans_default_safely_and_name_the_key_at_fault() {
        let c = parse(MINIMAL).unwrap();
        assert_eq!(c.limits.per_source, 128);
        assert_eq!(c.limits.header_timeout_s, 10);
        assert_eq!((c.bans.max_failures, c.bans.ban_s), (5, 60));
        let with = |section: &str| format!("{MINIMAL}{section}");
        for (text, key) in [
            ("[limits]\nper_source = 0\n", "limits.per_source"),
            ("[limits]\nfd_reserve = 10\n", "limits.fd_reserve"),
            (
                "[limits]\nheader_timeout_s = 0\n",
                "limits.header_timeout_s",
            ),
            ("[bans]\nban_s = 120\nmax_ban_s = 60\n", "bans.max_ban_s"),
            ("[bans]\nmax_failures = 0\n", "bans.max_failures"),
            (
                "[limits]\nsip_idle_timeout_s = 600\n",
                "limits.sip_idle_timeout_s",
            ),
        ] {
            let err = parse(&with(text)).unwrap_err().to_string();
            assert!(err.contains(&format!("`{key}`")), "{text}: {err}");
        }
        let err = parse(&with("[bans]\nadmin_networks = [\"10.0.0.0/40\"]\n"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("10.0.0.0/40"), "{err}");
        let c = parse(&with("[bans]\nadmin_networks = [\"10.20.0.0/16\"]\n")).unwrap();
        assert!(c.bans.admin_networks[0].contains("10.20.3.4".parse().unwrap()));
    }

    #[test]
    fn minimal_config_takes_defaults() {
        let c = parse(MINIMAL).unwrap();
        assert_eq!(c.acd.ring_timeout_s, 15);
        assert_eq!(c.http.listen.port(), 8080);
        assert_eq!(c.sip.udp.unwrap().port(), 5060);
        assert!(c.recording.enabled);
        assert_eq!(c.recording.retention_days, 1827);
        assert_eq!(c.recording.purge_interval_h, 24);
        assert_eq!(c.media.webrtc_bind_ip(), c.media.rtp_ip);
        assert_eq!(c.store.options().cache_capacity, 16 * 1024 * 1024);
        assert_eq!(c.store.options().flush_every_ms, 200);
        assert_eq!((c.shutdown.drain_s, c.shutdown.retry_after_s), (30, 30));
    }

    #[test]
    fn digest_lists_default_to_md5_and_are_checked_against_each_seat() {
        use DigestAlgorithm::{Md5, Sha256};
        use rsipstack::sip::Transport;
        let md5 = "0".repeat(32);
        let sha = "1".repeat(64);
        let seat =
            |extra: &str| format!("[[seats]]\nusername = \"arm9\"\nha1_md5 = \"{md5}\"\n{extra}");
        let c = parse(&format!("{MINIMAL}{}", seat(""))).unwrap();
        assert_eq!(c.sip.digest, TransportAlgorithms::default());
        assert_eq!(c.seats[0].credential(&c.sip.digest).algorithms, None);

        // An MD5-only seat cannot be challenged with SHA-256, by default or by override.
        let sip = MINIMAL.replace("[sip]", "[sip.digest]\ntls = [\"SHA-256\", \"MD5\"]");
        let err = parse(&format!("{sip}{}", seat("")))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("seats[0]") && err.contains("seat arm9"),
            "{err}"
        );
        assert!(
            err.contains("SHA-256 over tls") && err.contains("ha1_sha256"),
            "{err}"
        );
        let own = seat("digest = [\"SHA-256\"]\n");
        let err = parse(&format!("{MINIMAL}{own}")).unwrap_err().to_string();
        assert!(
            err.contains("seats[0].digest") && err.contains("arm9"),
            "{err}"
        );

        // With its HA1 the override is taken, per transport, the rest from [sip.digest].
        let own = seat(&format!(
            "ha1_sha256 = \"{sha}\"\ndigest = {{ wss = [\"SHA-256\", \"MD5\"] }}\n"
        ));
        let c = parse(&format!("{sip}{own}")).unwrap();
        let lists = c.seats[0].credential(&c.sip.digest).algorithms.unwrap();
        assert_eq!(lists.for_transport(Transport::Wss), [Sha256, Md5]);
        assert_eq!(lists.for_transport(Transport::Tls), [Sha256, Md5]);
        assert_eq!(lists.for_transport(Transport::Udp), [Md5]);

        let empty = MINIMAL.replace("[sip]", "[sip.digest]\nudp = []");
        let err = parse(&empty).unwrap_err().to_string();
        assert!(err.contains("sip.digest") && err.contains("udp"), "{err}");
    }

    #[test]
    fn webrtc_ip_overrides_rtp_ip_for_ice() {
        let c = parse(&format!("{MINIMAL}[media]\nwebrtc_ip = \"10.1.2.3\"\n")).unwrap();
        assert_eq!(c.media.webrtc_bind_ip(), IpAddr::from([10, 1, 2, 3]));
    }

    #[test]
    fn trunk_options_probes_need_a_udp_outbound() {
        let probe = MINIMAL.replace("[trunk]\n", "[trunk]\noptions_interval_s = 30\n");
        let err = parse(&probe).unwrap_err().to_string();
        assert!(err.contains("trunk.options_interval_s"), "{err}");
        let udp = probe.replace("[trunk]\n", "[trunk]\noutbound = \"192.0.2.10:5060\"\n");
        assert_eq!(parse(&udp).unwrap().trunk.options_interval_s, 30);
    }

    #[test]
    fn rejections_name_the_key() {
        let no_trunk = MINIMAL.replace("[\"127.0.0.1\"]", "[]");
        assert!(
            parse(&no_trunk)
                .unwrap_err()
                .to_string()
                .contains("trunk.addresses")
        );

        let bad_seat = format!("{MINIMAL}[[seats]]\nusername = \"a\"\nha1_md5 = \"xyz\"\n");
        assert!(
            parse(&bad_seat)
                .unwrap_err()
                .to_string()
                .contains("seats[0].ha1_md5")
        );

        let no_retention = format!("{MINIMAL}[recording]\nretention_days = 0\n");
        let err = parse(&no_retention).unwrap_err().to_string();
        assert!(err.contains("recording.retention_days"), "{err}");

        let unknown = format!("{MINIMAL}[acd]\nring_timeout = 3\n");
        let err = parse(&unknown).unwrap_err().to_string();
        assert!(err.contains("unknown field"), "{err}");

        let twice = "[[acd.queues]]\nrole = \"arm\"\n";
        let err = parse(&format!("{MINIMAL}{twice}{twice}"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("acd.queues[1]"), "{err}");
        let wss = MINIMAL.replace("[sip]", "[sip]\nwss = \"127.0.0.1:5067\"");
        let err = parse(&wss).unwrap_err().to_string();
        assert!(err.contains("sip.wss") && err.contains("[tls]"), "{err}");
        let https = format!("{MINIMAL}[http]\ntls_listen = \"127.0.0.1:8443\"\n");
        let err = parse(&https).unwrap_err().to_string();
        assert!(err.contains("http.tls_listen"), "{err}");
        let console = format!(
            "{MINIMAL}[[seats]]\nusername = \"a\"\nha1_md5 = \"{}\"\nconsole_password = \"x\"\n",
            "0".repeat(32)
        );
        let err = parse(&console).unwrap_err().to_string();
        assert!(err.contains("seats[0].console_password"), "{err}");
        let empty = format!("{MINIMAL}[[acd.queues]]\nrole = \"arm\"\nmax_waiting = 0\n");
        let err = parse(&empty).unwrap_err().to_string();
        assert!(err.contains("acd.queues[0].max_waiting"), "{err}");
        for (key, value) in [
            ("cache_capacity_mb", 0),
            ("flush_every_ms", 0),
            ("checkpoint_ms", 0),
        ] {
            let store = format!("{MINIMAL}[store]\n{key} = {value}\n");
            let err = parse(&store).unwrap_err().to_string();
            assert!(err.contains(&format!("store.{key}")), "{err}");
        }
    }

    #[test]
    fn queues_and_seat_skills_parse() {
        let text = format!(
            "{MINIMAL}[[acd.queues]]\nrole = \"med\"\nskill = \"pédiatrie\"\n\
             strategy = \"round_robin\"\nwrap_up_s = 20\nmax_waiting = 50\n"
        );
        let c = parse(&text).unwrap();
        let (key, settings) = c.acd.queues[0].acd();
        assert_eq!(key, crate::acd::QueueKey::skilled("med", "pédiatrie"));
        assert_eq!(settings.strategy, crate::acd::Strategy::RoundRobin);
        assert_eq!(settings.wrap_up_ms, Some(20_000));
        assert_eq!(settings.max_waiting, Some(50));
        assert_eq!(c.acd.aging_step_s, 60);
    }
}
