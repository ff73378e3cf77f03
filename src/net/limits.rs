//! Connection limits shared by every TCP listener (HTTP, HTTPS, SIP TCP, WS, WSS): a cap per
//! source address and a total cap that keeps a reserve of file descriptors for what must
//! never fail (RTP sockets of new calls, sled, recordings, the trunk); the open-file limit
//! raised at start-up; accept errors logged at most once per interval.
//!
//! At the total cap a newcomer does not simply lose: the oldest connection of the source
//! holding the most is closed for it (when that source holds more than the newcomer's), so
//! idle-connection holders cannot starve the others; the trunk's addresses and the admin
//! networks are never refused. The timeouts themselves are applied by each listener
//! (`sip_tcp`, `sip_ws`, `http`).

use crate::bans::Network;
use prometheus::{IntCounterVec, IntGauge, Opts, Registry};
use serde::Deserialize;
use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

/// `[limits]`
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitSettings {
    /// Connections open at once over every TCP listener together; lowered at start-up so
    /// that `fd_reserve` file descriptors stay free under the open-file limit.
    pub max_connections: usize,
    /// Connections one source address may hold (the trunk and admin networks: no limit).
    pub per_source: usize,
    /// File descriptors kept out of the connections' reach.
    pub fd_reserve: usize,
    /// HTTP: a request's headers must arrive within this, counted from the connection or
    /// the previous answer (keep-alive). SIP streams: the first message, and any message
    /// begun, must be complete within this. Seconds.
    pub header_timeout_s: u32,
    /// A SIP TCP or WebSocket connection silent this long is closed (CRLF keep-alives
    /// count); keep it above `sip.max_expires_s` so a phone's refresh keeps it open.
    pub sip_idle_timeout_s: u32,
    /// A repeated error (accept failing, connections refused) is logged once per this
    /// many seconds, with the count.
    pub error_log_interval_s: u32,
}

impl Default for LimitSettings {
    fn default() -> Self {
        Self {
            max_connections: 4096,
            per_source: 128,
            fd_reserve: 256,
            header_timeout_s: 10,
            sip_idle_timeout_s: 3900,
            error_log_interval_s: 10,
        }
    }
}

impl LimitSettings {
    /// Values out of range: the key (dotted) and why.
    pub fn check(&self) -> Result<(), (&'static str, &'static str)> {
        let checks = [
            (
                "limits.max_connections",
                self.max_connections >= 16,
                "must be at least 16",
            ),
            (
                "limits.per_source",
                self.per_source >= 1,
                "must be at least 1",
            ),
            (
                "limits.fd_reserve",
                self.fd_reserve >= 64,
                "must be at least 64",
            ),
            (
                "limits.header_timeout_s",
                self.header_timeout_s >= 1,
                "must be at least 1",
            ),
            (
                "limits.sip_idle_timeout_s",
                self.sip_idle_timeout_s >= self.header_timeout_s,
                "must be at least limits.header_timeout_s",
            ),
            (
                "limits.error_log_interval_s",
                self.error_log_interval_s >= 1,
                "must be at least 1",
            ),
        ];
        match checks.into_iter().find(|(_, ok, _)| !ok) {
            Some((key, _, reason)) => Err((key, reason)),
            None => Ok(()),
        }
    }

    /// [`Self::header_timeout_s`] as a duration.
    pub fn header_timeout(&self) -> Duration {
        Duration::from_secs(self.header_timeout_s.into())
    }

    /// [`Self::sip_idle_timeout_s`] as a duration.
    pub fn sip_idle_timeout(&self) -> Duration {
        Duration::from_secs(self.sip_idle_timeout_s.into())
    }
}

/// Raises the soft open-file limit to the hard one; the limit in force afterwards.
pub fn raise_open_files() -> u64 {
    use rlimit::Resource;
    let before = rlimit::getrlimit(Resource::NOFILE)
        .map(|(soft, _)| soft)
        .unwrap_or(1024);
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(now) => {
            tracing::info!(before, now, "open-file limit raised to the hard limit");
            now
        }
        Err(e) => {
            tracing::warn!(limit = before, error = %e, "open-file limit could not be raised");
            before
        }
    }
}

/// Logs a repeated error at most once per interval, with how many were not logged.
#[derive(Debug)]
pub struct LogThrottle {
    interval: Duration,
    last: Option<Instant>,
    suppressed: u64,
}

impl LogThrottle {
    /// One line per `interval`.
    pub fn new(interval: Duration) -> Self {
        Self {
            interval,
            last: None,
            suppressed: 0,
        }
    }

    /// `Some(n)`: log now, `n` occurrences since the last line went unlogged; `None`: not now.
    pub fn hit(&mut self, now: Instant) -> Option<u64> {
        match self.last {
            Some(last) if now.duration_since(last) < self.interval => {
                self.suppressed += 1;
                None
            }
            _ => {
                self.last = Some(now);
                Some(std::mem::take(&mut self.suppressed))
            }
        }
    }
}

/// The connections' counters.
#[derive(Clone)]
struct GateMetrics {
    open: IntGauge,
    refused: IntCounterVec,
}

#[derive(Default)]
struct Book {
    next_id: u64,
    total: usize,
    /// Each source's connections, oldest first, with the token that closes them.
    by_source: HashMap<IpAddr, VecDeque<(u64, CancellationToken)>>,
}

/// Admission of TCP connections, shared by every listener.
#[derive(Clone)]
pub struct Gate {
    book: Arc<Mutex<Book>>,
    per_source: usize,
    total: usize,
    trusted: Arc<Vec<Network>>,
    metrics: GateMetrics,
}

/// Why a connection was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Its source holds `per_source` connections already.
    PerSource,
    /// The total cap is reached and no bigger holder can give one up.
    Total,
}

/// An admitted connection: it leaves the count when dropped.
pub struct Permit {
    book: Arc<Mutex<Book>>,
    open: IntGauge,
    source: IpAddr,
    id: u64,
    /// Cancelled when the gate closes this connection for a newcomer.
    pub evicted: CancellationToken,
}

impl Drop for Permit {
    fn drop(&mut self) {
        let mut book = lock(&self.book);
        if remove(&mut book, self.source, self.id) {
            self.open.set(book.total as i64);
        }
    }
}

fn lock(book: &Mutex<Book>) -> MutexGuard<'_, Book> {
    // A few counters and lists: usable whatever a panicking holder left.
    book.lock().unwrap_or_else(|p| p.into_inner())
}

/// Takes connection `id` of `source` off the book; false if it was not there (evicted).
fn remove(book: &mut Book, source: IpAddr, id: u64) -> bool {
    let Some(list) = book.by_source.get_mut(&source) else {
        return false;
    };
    let Some(at) = list.iter().position(|(i, _)| *i == id) else {
        return false;
    };
    list.remove(at);
    if list.is_empty() {
        book.by_source.remove(&source);
    }
    book.total -= 1;
    true
}

impl Gate {
    /// The gate for `settings` under an open-file limit of `open_files`; `trusted`
    /// sources (the trunk, the admin networks) are never refused.
    pub fn new(
        settings: &LimitSettings,
        open_files: u64,
        trusted: Vec<Network>,
        registry: &Registry,
    ) -> prometheus::Result<Self> {
        let room = usize::try_from(open_files)
            .unwrap_or(usize::MAX)
            .saturating_sub(settings.fd_reserve);
        let total = settings.max_connections.min(room).max(16);
        if total < settings.max_connections {
            tracing::info!(
                connections = total,
                open_files,
                reserve = settings.fd_reserve,
                "connection cap lowered to keep the file-descriptor reserve"
            );
        }
        let open = IntGauge::with_opts(Opts::new(
            "connections_open",
            "TCP connections open (HTTP, HTTPS, SIP TCP, WS, WSS)",
        ))?;
        let refused = IntCounterVec::new(
            Opts::new(
                "connections_refused_total",
                "TCP connections closed by the limits, by reason: per_source, total, \
                 evicted (for a newcomer), timeout (headers, first message, idle)",
            ),
            &["reason"],
        )?;
        registry.register(Box::new(open.clone()))?;
        registry.register(Box::new(refused.clone()))?;
        Ok(Self {
            book: Arc::default(),
            per_source: settings.per_source,
            total,
            trusted: Arc::new(trusted),
            metrics: GateMetrics { open, refused },
        })
    }

    /// The total cap in force.
    pub fn total(&self) -> usize {
        self.total
    }

    /// Counts a connection closed for being too slow or idle.
    pub fn timed_out(&self) {
        self.metrics.refused.with_label_values(&["timeout"]).inc();
    }

    /// Admits a connection from `source`, or says why not.
    pub fn admit(&self, source: IpAddr) -> Result<Permit, Refusal> {
        let trusted = self.trusted.iter().any(|n| n.contains(source));
        let mut book = lock(&self.book);
        let held = book.by_source.get(&source).map_or(0, VecDeque::len);
        if !trusted && held >= self.per_source {
            self.metrics
                .refused
                .with_label_values(&["per_source"])
                .inc();
            return Err(Refusal::PerSource);
        }
        if !trusted && book.total >= self.total {
            let hog = book
                .by_source
                .iter()
                .filter(|(ip, _)| !self.trusted.iter().any(|n| n.contains(**ip)))
                .max_by_key(|(_, list)| list.len())
                .filter(|(_, list)| list.len() > held + 1)
                .map(|(ip, _)| *ip);
            let Some(hog) = hog else {
                self.metrics.refused.with_label_values(&["total"]).inc();
                return Err(Refusal::Total);
            };
            let oldest = book.by_source.get(&hog).and_then(|l| l.front().cloned());
            if let Some((id, token)) = oldest {
                remove(&mut book, hog, id);
                token.cancel();
                self.metrics.refused.with_label_values(&["evicted"]).inc();
            }
        }
        book.next_id += 1;
        let id = book.next_id;
        let evicted = CancellationToken::new();
        book.by_source
            .entry(source)
            .or_default()
            .push_back((id, evicted.clone()));
        book.total += 1;
        self.metrics.open.set(book.total as i64);
        Ok(Permit {
            book: self.book.clone(),
            open: self.metrics.open.clone(),
            source,
            id,
            evicted,
        })
    }
}

/// A listener behind the gate: accept errors throttled, refused connections closed at once.
pub struct Doorway {
    listener: TcpListener,
    gate: Gate,
    name: &'static str,
    errors: LogThrottle,
    refusals: LogThrottle,
}

impl Doorway {
    /// `name` says which listener in the log (`http`, `sip tcp`…).
    pub fn new(listener: TcpListener, gate: Gate, name: &'static str, log_every: Duration) -> Self {
        Self {
            listener,
            gate,
            name,
            errors: LogThrottle::new(log_every),
            refusals: LogThrottle::new(log_every),
        }
    }

    /// The address bound.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// The gate this listener admits through.
    pub fn gate(&self) -> &Gate {
        &self.gate
    }

    /// The next admitted connection; `None` once `shutdown` is cancelled.
    pub async fn next(
        &mut self,
        shutdown: &CancellationToken,
    ) -> Option<(TcpStream, SocketAddr, Permit)> {
        loop {
            let accepted = tokio::select! {
                _ = shutdown.cancelled() => return None,
                accepted = self.listener.accept() => accepted,
            };
            let (stream, remote) = match accepted {
                Ok(a) => a,
                Err(e) => {
                    if let Some(more) = self.errors.hit(Instant::now()) {
                        let listener = self.name;
                        tracing::warn!(listener, error = %e, more, "accept failed");
                    }
                    // Out of descriptors (EMFILE) fails at once, again and again: wait for
                    // some to be freed rather than spin.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            match self.gate.admit(remote.ip()) {
                Ok(permit) => return Some((stream, remote, permit)),
                Err(refusal) => {
                    if let Some(more) = self.refusals.hit(Instant::now()) {
                        let listener = self.name;
                        let source = remote.ip();
                        tracing::info!(listener, %source, ?refusal, more, "connection refused by the limits");
                    }
                    drop(stream);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gate(per_source: usize, total: usize, trusted: &[&str]) -> Gate {
        let settings = LimitSettings {
            per_source,
            max_connections: total,
            fd_reserve: 64,
            ..LimitSettings::default()
        };
        let trusted = trusted.iter().map(|n| n.parse().unwrap()).collect();
        Gate::new(&settings, 1 << 20, trusted, &Registry::new()).unwrap()
    }

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([192, 0, 2, last])
    }

    #[test]
    fn per_source_cap_and_release() {
        let g = gate(2, 100, &[]);
        let a = g.admit(ip(1)).unwrap();
        let _b = g.admit(ip(1)).unwrap();
        assert_eq!(g.admit(ip(1)).err(), Some(Refusal::PerSource));
        assert!(g.admit(ip(2)).is_ok());
        drop(a);
        assert!(g.admit(ip(1)).is_ok());
    }

    #[test]
    fn at_the_cap_the_biggest_holder_gives_way() {
        let g = gate(100, 16, &["192.0.2.200"]);
        let hog: Vec<Permit> = (0..12).map(|_| g.admit(ip(1)).unwrap()).collect();
        let small: Vec<Permit> = (0..4).map(|_| g.admit(ip(2)).unwrap()).collect();
        let newcomer = g.admit(ip(3)).unwrap();
        assert!(hog[0].evicted.is_cancelled(), "the hog's oldest is closed");
        assert!(!hog[1].evicted.is_cancelled() && !small[0].evicted.is_cancelled());
        // The hog itself cannot take one more at the cap.
        assert_eq!(g.admit(ip(1)).err(), Some(Refusal::Total));
        // Trusted sources always get in.
        assert!(g.admit(ip(200)).is_ok());
        drop(hog);
        drop(newcomer);
        assert_eq!(lock(&g.book).total, 4);
    }

    #[test]
    fn the_cap_keeps_the_descriptor_reserve() {
        let settings = LimitSettings::default();
        let g = Gate::new(&settings, 1024, Vec::new(), &Registry::new()).unwrap();
        assert_eq!(g.total(), 1024 - 256);
    }

    #[test]
    fn repeated_errors_log_once_per_interval_with_a_count() {
        let mut t = LogThrottle::new(Duration::from_secs(10));
        let t0 = Instant::now();
        assert_eq!(t.hit(t0), Some(0));
        for i in 1..1000 {
            assert_eq!(t.hit(t0 + Duration::from_millis(i)), None);
        }
        assert_eq!(t.hit(t0 + Duration::from_secs(10)), Some(999));
    }
}
